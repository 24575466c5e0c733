package docs

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// outside are the strings that point at files a clone of the repository
// does not have: the developers' machine and its internal notes. The
// patterns are split so that this file does not match itself.
var outside = []string{
	"/wo" + "rk/",
	"../sha" + "red",
	"JURISDICTIONS" + ".md",
	"JURISDICTIONS" + "-20",
	"DESIGN" + ".md",
	"CODE-REVIEW" + "-20",
	"NEWCOMER" + "-20",
	"ANCHORS" + ".md",
	"STYLE-EXAMPLES" + ".md",
	"PREAMBLE" + ".md",
}

// TestNoOutsideReferences: no tracked file names a path outside the
// repository or the internal notes it was written from, and no Markdown
// link climbs out of the repository. A user of the repository must be able
// to check every reference.
func TestNoOutsideReferences(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	files := trackedFiles(t, root)
	if len(files) < 50 {
		t.Fatalf("only %d files found under %s", len(files), root)
	}
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Error(err)
			continue
		}
		if bytes.IndexByte(data, 0) >= 0 {
			continue // binary
		}
		for _, s := range outside {
			if i := bytes.Index(data, []byte(s)); i >= 0 {
				t.Errorf("%s:%d: refers to %q, outside the repository", f, 1+bytes.Count(data[:i], []byte("\n")), s)
			}
		}
		if !strings.HasSuffix(f, ".md") {
			continue
		}
		for _, m := range link.FindAllSubmatch(data, -1) {
			target := string(m[1])
			if strings.Contains(target, "://") || strings.HasPrefix(target, "#") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			abs := filepath.Join(root, filepath.Dir(f), target)
			if rel, err := filepath.Rel(root, abs); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
				t.Errorf("%s: link %s leaves the repository", f, target)
			}
		}
	}
}

// trackedFiles lists the files git tracks under root, or every file under
// root (without .git) when git is not available.
func trackedFiles(t *testing.T, root string) []string {
	t.Helper()
	cmd := exec.Command("git", "ls-files", "-z")
	cmd.Dir = root
	if out, err := cmd.Output(); err == nil && len(out) > 0 {
		var files []string
		for _, f := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
			if _, err := os.Stat(filepath.Join(root, f)); err == nil { // deleted but not yet committed
				files = append(files, f)
			}
		}
		return files
	}
	var files []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(root, p)
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

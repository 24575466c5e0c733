package docs

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/jurisdns/jurisdns/"

// configExceptions are the packages below app that still import config
// (architecture.md, "Known gaps"): to be removed by the typed vocabulary.
var configExceptions = []string{"policy", "resolver"}

// apart is the layer of test helpers and of the packages outside the
// program ("—" in the table).
const apart = -1

// layers reads the table of architecture.md: package → layer.
func layers(t *testing.T) map[string]int {
	t.Helper()
	data, err := os.ReadFile("architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	pkg := regexp.MustCompile("`([a-z0-9/]+)`")
	out := map[string]int{}
	in := false
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "| package | layer |") {
			in = true
			continue
		}
		if !in || strings.HasPrefix(line, "|---") {
			continue
		}
		if !strings.HasPrefix(line, "|") {
			break
		}
		cells := strings.Split(line, "|")
		if len(cells) < 4 {
			t.Fatalf("architecture.md: table row %q has too few cells", line)
		}
		layer := apart
		if l := strings.TrimSpace(cells[2]); l != "—" {
			if layer, err = strconv.Atoi(l); err != nil {
				t.Fatalf("architecture.md: row %q: layer %q is not a number or —", line, l)
			}
		}
		for _, m := range pkg.FindAllStringSubmatch(cells[1], -1) {
			out[m[1]] = layer
		}
	}
	if len(out) == 0 {
		t.Fatal("architecture.md: no table of packages found")
	}
	return out
}

// imports returns, for every package directory of the module (one with Go
// files, test files included), the module packages its non-test Go files
// import.
func imports(t *testing.T) map[string][]string {
	t.Helper()
	root := ".."
	out := map[string][]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") {
			return nil
		}
		dir, err := filepath.Rel(root, filepath.Dir(path))
		if err != nil {
			return err
		}
		pkg := filepath.ToSlash(dir)
		if _, ok := out[pkg]; !ok {
			out[pkg] = nil // a package, if only of tests
		}
		if strings.HasSuffix(name, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			p, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				return err
			}
			if own, ok := strings.CutPrefix(p, module); ok && !slices.Contains(out[pkg], own) {
				out[pkg] = append(out[pkg], own)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestImportRules enforces the import rules of architecture.md: imports
// point to lower layers only, nothing below app imports config (but the
// known exceptions), nothing imports app but the CLI, nothing imports the
// CLI.
func TestImportRules(t *testing.T) {
	layer := layers(t)
	deps := imports(t)
	var unplaced []string
	pkgs := make([]string, 0, len(deps))
	for p := range deps {
		pkgs = append(pkgs, p)
	}
	sort.Strings(pkgs)
	stillNeeded := map[string]bool{}
	for _, p := range pkgs {
		lp, placed := layer[p]
		if !placed {
			unplaced = append(unplaced, p)
		}
		for _, d := range deps[p] {
			if d == "config" && p != "app" && p != "cmd/jurisdns" {
				if slices.Contains(configExceptions, p) {
					stillNeeded[p] = true
				} else {
					t.Errorf("%s imports config: only app and cmd/jurisdns may (the rest takes plain or typed values)", p)
				}
			}
			if d == "app" && p != "cmd/jurisdns" {
				t.Errorf("%s imports app: only cmd/jurisdns may", p)
			}
			if strings.HasPrefix(d, "cmd/") {
				t.Errorf("%s imports %s: nothing imports the CLI", p, d)
			}
			ld, known := layer[d]
			switch {
			case !placed || lp == apart || !known:
				// Held only to the rules above.
			case ld == apart:
				t.Errorf("%s (layer %d) imports %s, which stands outside the program (test helper or tool)", p, lp, d)
			case ld >= lp:
				t.Errorf("%s (layer %d) imports %s (layer %d): imports must point to a lower layer", p, lp, d, ld)
			}
		}
	}
	for _, p := range configExceptions {
		if !stillNeeded[p] {
			t.Errorf("%s no longer imports config: remove it from the known exceptions here and in architecture.md", p)
		}
	}
	for p := range layer {
		if _, ok := deps[p]; !ok {
			t.Errorf("architecture.md names package %s, which does not exist", p)
		}
	}
	if len(unplaced) > 0 {
		t.Logf("packages without a row in architecture.md (held only to the config, app and cmd rules; give them a row): %s", strings.Join(unplaced, ", "))
	}
}

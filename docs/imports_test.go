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

// apart is the layer of test helpers and of the packages outside the
// program ("—" in the table).
const apart = -1

// table reads the table of architecture.md: package → layer, and, for a
// row of one package of the program, the packages its "imports" column
// names.
func table(t *testing.T) (map[string]int, map[string][]string) {
	t.Helper()
	data, err := os.ReadFile("architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	pkg := regexp.MustCompile("`([a-z0-9/]+)`")
	out := map[string]int{}
	declared := map[string][]string{}
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
		names := pkg.FindAllStringSubmatch(cells[1], -1)
		for _, m := range names {
			out[m[1]] = layer
		}
		if len(names) == 1 && layer != apart && len(cells) >= 5 {
			list := []string{}
			for _, m := range pkg.FindAllStringSubmatch(cells[4], -1) {
				list = append(list, m[1])
			}
			declared[names[0][1]] = list
		}
	}
	if len(out) == 0 {
		t.Fatal("architecture.md: no table of packages found")
	}
	return out, declared
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
// point to lower layers only, nothing below app imports config (the parts
// take the typed vocabulary, spec), nothing imports app but the CLI,
// nothing imports the CLI.
func TestImportRules(t *testing.T) {
	layer, declared := table(t)
	deps := imports(t)
	var unplaced []string
	pkgs := make([]string, 0, len(deps))
	for p := range deps {
		pkgs = append(pkgs, p)
	}
	sort.Strings(pkgs)
	for _, p := range pkgs {
		lp, placed := layer[p]
		if !placed {
			unplaced = append(unplaced, p)
		}
		for _, d := range deps[p] {
			if d == "config" && p != "app" && p != "cmd/jurisdns" {
				t.Errorf("%s imports config: only app and cmd/jurisdns may (the rest takes spec's types or plain values)", p)
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
	for p := range layer {
		if _, ok := deps[p]; !ok {
			t.Errorf("architecture.md names package %s, which does not exist", p)
		}
	}
	// The "imports" column tells the truth: every module package a row's
	// package imports, and no other (words in backquotes that name no
	// package, like a function, are not imports).
	for p, list := range declared {
		var named []string
		for _, d := range list {
			if _, isPkg := deps[d]; isPkg && d != p && !slices.Contains(named, d) {
				named = append(named, d)
			}
		}
		actual := slices.Clone(deps[p])
		slices.Sort(named)
		slices.Sort(actual)
		if !slices.Equal(named, actual) {
			t.Errorf("architecture.md: the imports column of %s names %v, but it imports %v: update the row", p, named, actual)
		}
	}
	if len(unplaced) > 0 {
		t.Logf("packages without a row in architecture.md (held only to the config, app and cmd rules; give them a row): %s", strings.Join(unplaced, ", "))
	}
}

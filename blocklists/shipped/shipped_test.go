package shipped

import (
	"io/fs"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestFiles checks that the embedded files are there and that each one is
// YAML whose id is its file name. Package policy checks the rest (schema,
// citations, defaults) when it loads them.
func TestFiles(t *testing.T) {
	names, err := fs.Glob(FS, "*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(names) < 20 {
		t.Fatalf("%d shipped files", len(names))
	}
	for _, name := range names {
		b, err := fs.ReadFile(FS, name)
		if err != nil {
			t.Fatal(err)
		}
		var f struct {
			ID      string `yaml:"id"`
			Sources []any  `yaml:"sources"`
		}
		if err := yaml.Unmarshal(b, &f); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if f.ID != strings.TrimSuffix(name, ".yaml") || len(f.Sources) == 0 {
			t.Errorf("%s: id %q, %d sources", name, f.ID, len(f.Sources))
		}
	}
}

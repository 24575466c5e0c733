package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoad writes arbitrary bytes as the configuration file (and an
// arbitrary value as a list-of-objects variable) and loads and validates
// them: errors are fine, panics are not.
func FuzzLoad(f *testing.F) {
	files, err := filepath.Glob(filepath.Join(testdataDir, "*.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, "")
	}
	f.Add(Default(), "[{id: acme, ede: 15, sources: [{name: a, inline: [x.example]}]}]")
	f.Add([]byte("a: &a [*a]\nlisten: *a\n"), "[*x]")
	f.Add([]byte("jurisdictions: [{id: x, effective: 2025-01-01, expires: 2024-01-01T00:00:00Z}]\n"), "{")
	f.Add([]byte("\xff\xfe"), "[{sources: [{max_shrink: .nan}]}]")
	// One file per fuzzing process: inputs run one at a time in a process.
	path := filepath.Join(f.TempDir(), "f.yaml")
	f.Fuzz(func(t *testing.T, data []byte, env string) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(LoadOptions{Path: path, Env: []string{"JURISDNS_JURISDICTIONS=" + env}})
		if err != nil {
			if cfg != nil {
				t.Fatal("config and error")
			}
			// Every problem is found by the decoder and names its source;
			// none is left for viper's final decode.
			for _, m := range messages(err) {
				if !strings.HasPrefix(m, path+":") && !strings.HasPrefix(m, "JURISDNS_JURISDICTIONS: ") {
					t.Fatalf("message without its source: %q", m)
				}
			}
			return
		}
		if cfg.Source != path {
			t.Fatalf("Source = %q", cfg.Source)
		}
		_ = cfg.Validate()
	})
}

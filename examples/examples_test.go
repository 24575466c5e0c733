// Package examples holds the example configurations of the docs; its test
// checks that every one of them passes `jurisdns validate`.
package examples

import (
	"context"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jurisdns/jurisdns/app"
	"github.com/jurisdns/jurisdns/config"
)

// exampleConfigs lists every YAML file under dir.
func exampleConfigs(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestExamplesValidate does what `jurisdns validate --config FILE` does for
// every example (load and validate the configuration, then build the policy
// from every list), with an empty environment so that no JURISDNS_ variable
// of the machine running the test changes the outcome. It is stricter than
// validate in one way: every list must load without a bad line, since an
// example is copied as it is.
func TestExamplesValidate(t *testing.T) {
	files := exampleConfigs(t, ".")
	if len(files) < 3 {
		t.Fatalf("found %d example configurations (%v), want office, sidecar and minimal at least", len(files), files)
	}
	for _, file := range files {
		t.Run(file, func(t *testing.T) {
			cfg, err := app.LoadConfig(config.LoadOptions{Path: file, Env: []string{}})
			if err != nil {
				t.Fatalf("jurisdns validate --config %s:\n%v", file, err)
			}
			if len(cfg.Upstreams.Servers) == 0 {
				t.Errorf("%s: upstreams.servers is empty: an example names its upstreams (the default reads /etc/resolv.conf, which a sidecar or container may point at jurisdns itself)", file)
			}
			for i, j := range cfg.Jurisdictions {
				for k, s := range j.Sources {
					if s.URL != "" {
						// validate would download it; the test stays off the network.
						t.Fatalf("%s: jurisdictions[%d].sources[%d] is a url source; examples/ keeps to local lists (show URL sources in docs/scaling.md)", file, i, k)
					}
				}
			}
			pol, err := app.BuildPolicy(context.Background(), cfg)
			if err != nil {
				t.Fatalf("jurisdns validate --config %s:\n%v", file, err)
			}
			for _, j := range pol.Jurisdictions() {
				if !j.Loaded {
					t.Errorf("%s: jurisdiction %s not loaded: %s", file, j.ID, j.LoadError)
				}
				for _, s := range j.Sources {
					if s.Err != "" || s.Bad > 0 {
						t.Errorf("%s: jurisdiction %s source %s: %d bad lines, error %q", file, j.ID, s.Name, s.Bad, s.Err)
					}
				}
			}
		})
	}
}

// TestOfficeExample checks the promises docs/office.md makes about
// examples/office.yaml: two floors in different jurisdictions by subnet,
// the Active Directory zone forwarded to the domain controllers, the bypass
// bundle everywhere and the enforcement log on.
func TestOfficeExample(t *testing.T) {
	cfg, err := app.LoadConfig(config.LoadOptions{Path: "office.yaml", Env: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	pol, err := app.BuildPolicy(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	named := map[string]string{}
	for _, c := range cfg.Clients {
		named[c.Name] = strings.Join(c.Jurisdictions, ",")
		if !strings.Contains(","+named[c.Name]+",", ",bypass,") {
			t.Errorf("client %s does not get the bypass bundle", c.Name)
		}
	}
	if named["floor-3-canberra-agency"] == named["floor-4-us-contractor"] || named["floor-3-canberra-agency"] == "" {
		t.Errorf("the two floors should have different jurisdictions: %v", named)
	}
	for _, c := range []struct{ client, name, want string }{
		{"10.40.3.25", "chat.deepseek.com", "au-gov"},
		{"10.40.4.25", "chat.deepseek.com", "us-gov"},
		{"10.40.0.50", "chat.deepseek.com", "acme-staff"},
		{"10.40.99.7", "use-application-dns.net", "bypass"},
	} {
		ex := pol.Explain(c.name, mustAddr(t, c.client), time.Now())
		if ex.Decision != "block" || ex.Jurisdiction != c.want {
			t.Errorf("client %s, %s: decision %s by %q; want block by %s", c.client, c.name, ex.Decision, ex.Jurisdiction, c.want)
		}
	}
	var ad bool
	for _, z := range cfg.Zones {
		if z.Name == "corp.acme.example." && len(z.Forward) >= 2 {
			ad = true
		}
	}
	if !ad {
		t.Error("no forward of the AD zone corp.acme.example. to two domain controllers")
	}
	if cfg.Audit.Path == "" {
		t.Error("the enforcement log is off")
	}
	if _, err := os.Stat(filepath.Join("lists", "acme-deepseek.txt")); err != nil {
		t.Error(err)
	}
}

func mustAddr(t *testing.T, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

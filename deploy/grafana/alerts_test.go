package grafana

import (
	"os"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/jurisdns/jurisdns/metrics"
)

// TestAlerts: alerts.yaml is a Prometheus rule file whose every rule has an
// alert name, a severity and a summary, and whose expressions name only
// metrics /metrics exports.
func TestAlerts(t *testing.T) {
	raw, err := os.ReadFile("alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	dec.KnownFields(true)
	if err := dec.Decode(&file); err != nil {
		t.Fatalf("alerts.yaml: %v", err)
	}
	names := metrics.New().Names()
	rules := 0
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			rules++
			if r.Alert == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("rule %q: needs alert, labels.severity and annotations.summary", r.Alert)
			}
			if r.For != "" {
				if _, err := time.ParseDuration(r.For); err != nil {
					t.Errorf("rule %s: for %q: %v", r.Alert, r.For, err)
				}
			}
			found := metricNames(r.Expr)
			if len(found) == 0 {
				t.Errorf("rule %s names no metric: %s", r.Alert, r.Expr)
			}
			for _, n := range found {
				if !exported(names, n) {
					t.Errorf("rule %s uses %s, which /metrics does not export: %s", r.Alert, n, r.Expr)
				}
			}
		}
	}
	if rules == 0 {
		t.Fatal("alerts.yaml has no rule")
	}
}

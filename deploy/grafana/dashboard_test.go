package grafana

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/jurisdns/jurisdns/metrics"
)

// dashboard is the part of the Grafana JSON the test reads.
type dashboard struct {
	Title         string  `json:"title"`
	UID           string  `json:"uid"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Annotations struct {
		List []struct {
			Expr string `json:"expr"`
		} `json:"list"`
	} `json:"annotations"`
}

type panel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	GridPos struct{ X, Y, W, H int } `json:"gridPos"`
	Targets []struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

var (
	reString   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	reVar      = regexp.MustCompile(`\$\{?\w+\}?`)
	reMatchers = regexp.MustCompile(`\{[^{}]*\}`)
	reRange    = regexp.MustCompile(`\[[^\[\]]*\]`)
	reGrouping = regexp.MustCompile(`(?i)\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	reIdent    = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*(\s*\()?`)
	reLabelVal = regexp.MustCompile(`^\s*label_values\((.*),\s*\w+\s*\)\s*$`)
)

// keywords of PromQL that look like identifiers.
var keywords = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"bool": true, "and": true, "or": true, "unless": true, "offset": true, "inf": true, "nan": true,
}

// metricNames returns the metric names a PromQL expression (or a Grafana
// label_values(...) query) refers to: identifiers that are not functions,
// keywords, labels or variables.
func metricNames(expr string) []string {
	if m := reLabelVal.FindStringSubmatch(expr); m != nil {
		expr = m[1]
	}
	expr = reString.ReplaceAllString(expr, `""`)
	expr = reVar.ReplaceAllString(expr, " ")
	for {
		next := reMatchers.ReplaceAllString(expr, " ")
		next = reRange.ReplaceAllString(next, " ")
		next = reGrouping.ReplaceAllString(next, " ")
		if next == expr {
			break
		}
		expr = next
	}
	var names []string
	for _, m := range reIdent.FindAllStringSubmatchIndex(expr, -1) {
		if m[2] >= 0 { // followed by "(": a function
			continue
		}
		id := expr[m[0]:m[1]]
		if keywords[strings.ToLower(id)] || (m[0] > 0 && (expr[m[0]-1] >= '0' && expr[m[0]-1] <= '9' || expr[m[0]-1] == '.')) {
			continue // a keyword, or the exponent/suffix of a number (1e3, 5m)
		}
		names = append(names, id)
	}
	return names
}

func TestMetricNames(t *testing.T) {
	tests := []struct {
		expr string
		want []string
	}{
		{`sum by (rcode) (rate(jurisdns_queries_total{instance=~"$instance"}[$__rate_interval]))`, []string{"jurisdns_queries_total"}},
		{`histogram_quantile(0.99, sum by (le, upstream) (rate(x_bucket{a="b{c}"}[5m])))`, []string{"x_bucket"}},
		{`a / (b + c) > bool 0.5 and on(instance) d offset 1h`, []string{"a", "b", "c", "d"}},
		{`time() - max(jurisdns_reload_last_success_timestamp_seconds)`, []string{"jurisdns_reload_last_success_timestamp_seconds"}},
		{`label_values(jurisdns_list_entries{instance=~"$instance"}, jurisdiction)`, []string{"jurisdns_list_entries"}},
		{`1e3 * sum(rate(m[1h:5m]))`, []string{"m"}},
	}
	for _, tc := range tests {
		if got := metricNames(tc.expr); !slices.Equal(got, tc.want) {
			t.Errorf("metricNames(%q) = %q, want %q", tc.expr, got, tc.want)
		}
	}
}

// exported reports whether /metrics has a series named name: a family of
// Names(), or a _bucket/_sum/_count series of a histogram family.
func exported(names []string, name string) bool {
	if slices.Contains(names, name) {
		return true
	}
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suf); ok && slices.Contains(names, base) {
			return true
		}
	}
	return false
}

func TestDashboard(t *testing.T) {
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(Dashboard)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("jurisdns.json does not parse: %v", err)
	}
	var generic any
	if err := json.Unmarshal(Dashboard, &generic); err != nil {
		t.Fatalf("jurisdns.json: %v", err)
	}
	if d.Title == "" || d.UID == "" || d.SchemaVersion == 0 {
		t.Errorf("title %q uid %q schemaVersion %d", d.Title, d.UID, d.SchemaVersion)
	}

	names := metrics.New().Names()
	var exprs []string
	ids := map[int]string{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if prev, dup := ids[p.ID]; dup {
				t.Errorf("panel id %d used by %q and %q", p.ID, prev, p.Title)
			}
			ids[p.ID] = p.Title
			if p.GridPos.X < 0 || p.GridPos.W <= 0 || p.GridPos.X+p.GridPos.W > 24 || p.GridPos.H <= 0 {
				t.Errorf("panel %q: gridPos %+v outside the 24-column grid", p.Title, p.GridPos)
			}
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if p.Datasource == nil || p.Datasource.Type != "prometheus" || p.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q: datasource %+v, want the prometheus ${datasource} variable", p.Title, p.Datasource)
			}
			if len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for _, tg := range p.Targets {
				if strings.TrimSpace(tg.Expr) == "" {
					t.Errorf("panel %q: empty query %s", p.Title, tg.RefID)
				}
				exprs = append(exprs, tg.Expr)
			}
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if q, ok := v.Query.(map[string]any); ok {
			if s, ok := q["query"].(string); ok {
				exprs = append(exprs, s)
			}
		}
	}
	for _, a := range d.Annotations.List {
		exprs = append(exprs, a.Expr)
	}

	used := map[string]bool{}
	for _, e := range exprs {
		found := metricNames(e)
		if len(found) == 0 && e != "" {
			t.Errorf("query names no metric: %s", e)
		}
		for _, n := range found {
			used[n] = true
			if !exported(names, n) {
				t.Errorf("query uses %s, which /metrics does not export: %s", n, e)
			}
		}
	}

	// The dashboard covers what issue 8 asks for.
	for topic, metric := range map[string]string{
		"queries and rcodes":     "jurisdns_queries_total",
		"blocks per":             "jurisdns_policy_hits_total",
		"cache hits":             "jurisdns_cache_hits_total",
		"cache misses":           "jurisdns_cache_misses_total",
		"upstream latency":       "jurisdns_upstream_request_duration_seconds_bucket",
		"upstream errors":        "jurisdns_upstream_errors_total",
		"reloads":                "jurisdns_reloads_total",
		"last successful reload": "jurisdns_reload_last_success_timestamp_seconds",
		"list freshness":         "jurisdns_list_last_refresh_success_timestamp_seconds",
		"list refresh failures":  "jurisdns_list_refresh_failures_total",
	} {
		if !used[metric] {
			t.Errorf("no panel shows %s (%s)", topic, metric)
		}
	}
}

package policy

import (
	"context"
	"io/fs"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jurisdns/jurisdns/blocklists/shipped"
	"github.com/jurisdns/jurisdns/config"
)

// wantDefaults are the jurisdictions the default configuration enables
// (issue 1 and 2).
var wantDefaults = []string{"au-gov", "be-gov", "bypass", "ca-gov", "cz-gov", "kr-gov", "nl-gov", "tw-gov", "us-gov"}

// TestShippedFiles checks the shipped data: every file parses, ids are
// unique and match their file, every entry cites its source, no default
// jurisdiction holds an unconfirmed entry, and the defaults are the
// expected ones.
func TestShippedFiles(t *testing.T) {
	files, err := parseShippedFS(shipped.FS)
	if err != nil {
		t.Fatal(err)
	}
	names, _ := fs.Glob(shipped.FS, "*.yaml")
	if len(files) != len(names) || len(files) < 20 {
		t.Fatalf("%d files parsed of %d", len(files), len(names))
	}
	ids := map[string]bool{}
	var defaults []string
	for _, f := range files {
		if ids[f.ID] {
			t.Errorf("duplicate id %q", f.ID)
		}
		ids[f.ID] = true
		if f.Default {
			defaults = append(defaults, f.ID)
		}
		if len(f.Links) == 0 {
			t.Errorf("%s: no links", f.file)
		}
		if f.EDE == nil || (*f.EDE != 15 && *f.EDE != 16) {
			t.Errorf("%s: ede must be 15 or 16", f.file)
		}
		if f.Tier == "mandated" && (f.EDE == nil || *f.EDE != 16) {
			t.Errorf("%s: a mandated jurisdiction answers EDE 16 (Censored)", f.file)
		}
		entries := 0
		for _, s := range f.Sources {
			for _, e := range s.Entries {
				entries++
				if strings.TrimSpace(e.Cite) == "" {
					t.Errorf("%s:%d: %q has no citation", f.file, e.line, e.Rule)
				}
				if f.Default && e.Unconfirmed {
					t.Errorf("%s:%d: default jurisdiction enforces unconfirmed entry %q", f.file, e.line, e.Rule)
				}
				if e.line == 0 {
					t.Errorf("%s: entry %q has no line", f.file, e.Rule)
				}
			}
		}
		if entries == 0 {
			t.Errorf("%s: no entries", f.file)
		}
	}
	if !slices.Equal(defaults, wantDefaults) {
		t.Errorf("default jurisdictions = %v, want %v", defaults, wantDefaults)
	}
	if !slices.Equal(ShippedDefaults(), wantDefaults) {
		t.Errorf("ShippedDefaults() = %v, want %v", ShippedDefaults(), wantDefaults)
	}
	for _, id := range []string{"kr-appstore", "deepseek-telemetry", "ai-chatgpt", "ai-claude", "ai-gemini",
		"ai-copilot", "ai-grok", "ai-manus", "ai-meta", "ai-perplexity"} {
		if !ids[id] {
			t.Errorf("shipped jurisdiction %q missing", id)
		}
	}
}

// TestShippedFileChecks shows that the data checks reject what they must.
func TestShippedFileChecks(t *testing.T) {
	const head = "id: x\ntitle: T\ninstrument: I\ntier: local\n"
	tests := []struct {
		name    string
		file    string
		content string
		wantErr string
	}{
		{name: "valid", file: "x.yaml", content: head + "sources:\n  - name: s\n    entries:\n      - rule: a.example\n        cite: JURISDICTIONS.md §5\n"},
		{name: "entry without citation", file: "x.yaml", content: head + "sources:\n  - name: s\n    entries:\n      - rule: a.example\n", wantErr: `shipped/x.yaml:8: entry "a.example" cites no source`},
		{name: "id does not match file", file: "y.yaml", content: head, wantErr: `id "x" does not match the file name`},
		{name: "unknown field", file: "x.yaml", content: head + "colour: red\n", wantErr: "field colour not found"},
		{name: "no instrument", file: "x.yaml", content: "id: x\ntitle: T\ntier: local\n", wantErr: "title, instrument and tier are required"},
		{name: "source without name", file: "x.yaml", content: head + "sources:\n  - entries: []\n", wantErr: "sources[0]: no name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseShippedFS(fstest.MapFS{tc.file: {Data: []byte(tc.content)}})
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
		})
	}
}

// TestShippedLoad builds every shipped jurisdiction: no bad lines, each
// entry loaded (unconfirmed ones skipped), line numbers of the YAML file.
func TestShippedLoad(t *testing.T) {
	p := build(t, &config.Config{}, BuildOptions{})
	for _, j := range p.Jurisdictions() {
		if !j.Shipped || !j.Loaded || j.Entries == 0 {
			t.Errorf("%s: shipped %v loaded %v entries %d", j.ID, j.Shipped, j.Loaded, j.Entries)
		}
		for _, s := range j.Sources {
			if s.Bad != 0 || s.Origin != "shipped" || len(s.Hash) != 64 {
				t.Errorf("%s/%s: bad %d origin %q hash %q: %v", j.ID, s.Name, s.Bad, s.Origin, s.Hash, s.Errors)
			}
		}
	}
	copilot := p.Lookup("ai-copilot")
	if got := copilot.Sources[0]; got.Entries != 5 || got.Skipped != 1 {
		t.Errorf("ai-copilot: %d entries, %d skipped; want 5 and 1 (unconfirmed github.copilot.azure.com)", got.Entries, got.Skipped)
	}
	if j := p.Lookup("us-state-tx"); j.InUse || j.Entries != 1 || p.Explain("chat.deepseek.com", netip.Addr{}, testNow).Elsewhere != nil {
		t.Errorf("a shipped jurisdiction nobody uses: in use %v, entries %d, indexed", j.InUse, j.Entries)
	}
	p = using(t, "ai-copilot", "deepseek-telemetry")
	for _, q := range []string{"github.copilot.azure.com", "hm.baidu.com"} {
		if v := p.Match(q, nil, testNow); v.Decision != DecisionNone {
			t.Errorf("unconfirmed %s is enforced by %s", q, v.Jurisdiction.ID)
		}
	}
	v := p.Match("copilot.microsoft.com", nil, testNow)
	if v.Decision != DecisionBlock || v.Source != "copilot" || v.Line == 0 {
		t.Errorf("copilot.microsoft.com: %+v", v)
	}
}

// TestDefaultConfigBlocksDeepSeek: the embedded default configuration
// blocks chat.deepseek.com out of the box.
func TestDefaultConfigBlocksDeepSeek(t *testing.T) {
	cfg, err := config.Load(config.LoadOptions{Env: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	p := build(t, cfg, BuildOptions{})
	got := slices.Clone(p.DefaultJurisdictions())
	slices.Sort(got)
	if !slices.Equal(got, wantDefaults) {
		t.Errorf("default_jurisdictions of the embedded config = %v, want %v", got, wantDefaults)
	}
	v := p.Match("chat.deepseek.com", p.ClientSet(netip.MustParseAddr("192.0.2.1")), testNow)
	if v.Decision != DecisionBlock || v.Jurisdiction.Tier != TierMandated || v.Rule != "deepseek.com" {
		t.Errorf("chat.deepseek.com: %+v", v)
	}
	nilDefaults := build(t, &config.Config{}, BuildOptions{})
	if !slices.Equal(nilDefaults.DefaultJurisdictions(), wantDefaults) {
		t.Errorf("nil default_jurisdictions = %v, want the shipped defaults", nilDefaults.DefaultJurisdictions())
	}
	none := build(t, &config.Config{DefaultJurisdictions: []string{}}, BuildOptions{})
	if v := none.Match("chat.deepseek.com", nil, testNow); v.Decision != DecisionNone {
		t.Errorf("empty default_jurisdictions still blocks: %+v", v)
	}
}

// TestShippedDefaultsBlockDeepSeek: every default government jurisdiction,
// alone, blocks DeepSeek's names and nothing that merely looks like them.
func TestShippedDefaultsBlockDeepSeek(t *testing.T) {
	tests := []struct {
		name  string
		qname string
		block bool
	}{
		{name: "web chat", qname: "chat.deepseek.com", block: true},
		{name: "apex, mixed case, trailing dot", qname: "DeepSeek.COM.", block: true},
		{name: "deep subdomain", qname: "a.b.c.deepseek.com", block: true},
		{name: "api", qname: "api.deepseek.com", block: true},
		{name: "label prefix", qname: "notdeepseek.com"},
		{name: "suffix of another zone", qname: "deepseek.com.evil.example"},
		{name: "other TLD", qname: "deepseek.net"},
		{name: "keyword elsewhere", qname: "deepseek-r1.models.ai.azure.com"},
	}
	for _, id := range wantDefaults {
		if id == "bypass" {
			continue
		}
		p := using(t, id)
		for _, tc := range tests {
			t.Run(id+"/"+tc.name, func(t *testing.T) {
				v := p.Match(tc.qname, nil, testNow)
				if !tc.block {
					if v.Decision != DecisionNone {
						t.Fatalf("blocked by %s rule %s", v.Jurisdiction.ID, v.Rule)
					}
					return
				}
				if v.Decision != DecisionBlock || v.Jurisdiction.ID != id || v.Rule != "deepseek.com" ||
					v.Source != "deepseek-core" || v.Action != ActionNXDomain || v.Jurisdiction.EDE != 16 {
					t.Fatalf("verdict %+v", v)
				}
			})
		}
	}
}

// TestKRAppstoreDates: kr-appstore switches on and off at its dates in the
// same policy, with no rebuild.
func TestKRAppstoreDates(t *testing.T) {
	p := using(t, "kr-appstore")
	j := p.Lookup("kr-appstore")
	if j.Default {
		t.Fatal("kr-appstore must not be a default")
	}
	tests := []struct {
		name       string
		now        time.Time
		qname      string
		wantBlock  bool
		wantStatus string
	}{
		{name: "today: expired", now: time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC), qname: "download.deepseek.com", wantStatus: "expired 2025-04-28"},
		{name: "during the suspension", now: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), qname: "download.deepseek.com", wantBlock: true, wantStatus: "active"},
		{name: "web service stayed available", now: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), qname: "chat.deepseek.com", wantStatus: "active"},
		{name: "first instant", now: time.Date(2025, 2, 15, 0, 0, 0, 0, time.UTC), qname: "download.deepseek.com", wantBlock: true, wantStatus: "active"},
		{name: "just before", now: time.Date(2025, 2, 14, 23, 59, 59, 0, time.UTC), qname: "download.deepseek.com", wantStatus: "inactive until 2025-02-15"},
		{name: "last instant", now: time.Date(2025, 4, 27, 23, 59, 59, 0, time.UTC), qname: "download.deepseek.com", wantBlock: true, wantStatus: "active"},
		{name: "expiry instant", now: time.Date(2025, 4, 28, 0, 0, 0, 0, time.UTC), qname: "download.deepseek.com", wantStatus: "expired 2025-04-28"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := j.Status(tc.now); got != tc.wantStatus {
				t.Errorf("Status = %q, want %q", got, tc.wantStatus)
			}
			if got := j.Active(tc.now); got != (tc.wantStatus == "active") {
				t.Errorf("Active = %v", got)
			}
			v := p.Match(tc.qname, nil, tc.now)
			if (v.Decision == DecisionBlock) != tc.wantBlock {
				t.Errorf("decision %v, want block %v", v.Decision, tc.wantBlock)
			}
		})
	}
}

// TestBypass: the canary and Private Relay get NXDOMAIN, DDR gets NODATA,
// whatever the bypass jurisdiction's own action is.
func TestBypass(t *testing.T) {
	tests := []struct {
		name       string
		action     string
		qname      string
		wantAction Action
		wantBlock  bool
	}{
		{name: "canary", qname: "use-application-dns.net", wantAction: ActionNXDomain, wantBlock: true},
		{name: "canary any case", qname: "Use-Application-DNS.net.", wantAction: ActionNXDomain, wantBlock: true},
		{name: "private relay", qname: "mask.icloud.com", wantAction: ActionNXDomain, wantBlock: true},
		{name: "private relay h2", qname: "mask-h2.icloud.com", wantAction: ActionNXDomain, wantBlock: true},
		{name: "ddr", qname: "_dns.resolver.arpa", wantAction: ActionNoData, wantBlock: true},
		{name: "canary keeps nxdomain under action null", action: "null", qname: "use-application-dns.net", wantAction: ActionNXDomain, wantBlock: true},
		{name: "ddr keeps nodata under action refused", action: "refused", qname: "_dns.resolver.arpa", wantAction: ActionNoData, wantBlock: true},
		{name: "exact only", qname: "x.use-application-dns.net"},
		{name: "icloud itself", qname: "icloud.com"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &config.Config{DefaultJurisdictions: []string{"bypass"}}
			if tc.action != "" {
				cfg.Jurisdictions = []config.Jurisdiction{{ID: "bypass", Action: tc.action}}
			}
			p := build(t, cfg, BuildOptions{})
			v := p.Match(tc.qname, nil, testNow)
			if (v.Decision == DecisionBlock) != tc.wantBlock {
				t.Fatalf("decision %v", v.Decision)
			}
			if !tc.wantBlock {
				return
			}
			if v.Action != tc.wantAction || v.Jurisdiction.ID != "bypass" || v.Jurisdiction.EDE != 15 || v.Jurisdiction.Tier != TierLocal {
				t.Fatalf("verdict %+v", v)
			}
		})
	}
}

// TestGeminiIsNotGeminiCom guards the AdGuard registry slip of §3.1.
func TestGeminiIsNotGeminiCom(t *testing.T) {
	p := using(t, "ai-gemini")
	if v := p.Match("gemini.google.com", nil, testNow); v.Decision != DecisionBlock {
		t.Error("gemini.google.com not blocked")
	}
	for _, q := range []string{"gemini.com", "www.gemini.com", "google.com", "mail.google.com"} {
		if v := p.Match(q, nil, testNow); v.Decision != DecisionNone {
			t.Errorf("%s blocked", q)
		}
	}
}

// using builds the shipped policy with ids as the default jurisdictions.
func using(t testing.TB, ids ...string) *Policy {
	t.Helper()
	return build(t, &config.Config{DefaultJurisdictions: ids}, BuildOptions{})
}

var testNow = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

func build(t testing.TB, cfg *config.Config, opts BuildOptions) *Policy {
	t.Helper()
	p, err := Build(context.Background(), cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

package policy

import (
	"context"
	"errors"
	"io/fs"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jurisdns/jurisdns/blocklists/shipped"
	"github.com/jurisdns/jurisdns/config"
	"github.com/jurisdns/jurisdns/spec"
)

// wantDefaults are the jurisdictions the default configuration enables
// (issue 1 and 2).
// Government jurisdictions are not defaults: an unmapped client gets the
// operator's own DeepSeek block (EDE 15), not a foreign government's law.
var wantDefaults = []string{"ai-deepseek", "bypass"}

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
		if len(f.Instruments) == 0 {
			t.Errorf("%s: no instruments", f.file)
		}
		if f.Tier == "advisory" && f.Mode != "report" {
			t.Errorf("%s: an advisory jurisdiction must ship in report mode", f.file)
		}
		if f.Default && (f.Tier != "local" || *f.EDE != 15) {
			t.Errorf("%s: a default jurisdiction applies to unmapped clients: it must be the operator's (tier local, EDE 15)", f.file)
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
					t.Errorf("%s:%d: %q has no citation", f.file, e.Line, e.Rule)
				}
				if f.Default && e.Unconfirmed {
					t.Errorf("%s:%d: default jurisdiction enforces unconfirmed entry %q", f.file, e.Line, e.Rule)
				}
				if e.Line == 0 {
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

// TestShippedFileChecks shows that the data checks reject what they must,
// each error with its file, line and key path.
func TestShippedFileChecks(t *testing.T) {
	const head = "id: x\ntitle: T\ntier: mandated\nmode: enforce\n" + // lines 1-4
		"instruments:\n" + // 5
		"  - name: Direction 1\n" + // 6
		"    issuer: A ministry\n" +
		"    date: \"2025-02-04\"\n" +
		"    scope: Government devices\n" +
		"    links:\n" +
		"      - url: https://gov.example/direction-1\n" + // 11
		"        title: \"Ministry: Direction 1\"\n"
	const entry = "sources:\n  - name: s\n    entries:\n      - rule: a.example\n" // entry at line 16
	tests := []struct {
		name    string
		file    string
		content string
		wantErr string
	}{
		{name: "valid", file: "x.yaml", content: head + entry + "        cite: https://gov.example/direction-1\n"},
		{name: "entry without citation", file: "x.yaml", content: head + entry, wantErr: `shipped/x.yaml:16: sources[0].entries[0].cite: entry "a.example" cites no source`},
		{name: "cite names no listed link", file: "x.yaml", content: head + entry + "        cite: https://gov.example/other\n",
			wantErr: `shipped/x.yaml:16: sources[0].entries[0].cite: "https://gov.example/other" is not a link of any instrument of x`},
		{name: "cite names a file", file: "x.yaml", content: head + entry + "        cite: research/notes.md §5\n",
			wantErr: `sources[0].entries[0].cite: "research/notes.md §5" is not a link`},
		{name: "names not listed", file: "x.yaml", content: head + entry + "        cite: https://gov.example/direction-1\n        names: https://lists.example/x\n",
			wantErr: `shipped/x.yaml:16: sources[0].entries[0].names: "https://lists.example/x" is not listed`},
		{name: "plain http link", file: "x.yaml", content: strings.Replace(head, "https://gov.example/direction-1", "http://gov.example/direction-1", 1),
			wantErr: `shipped/x.yaml:11: instruments[0].links[0].url: "http://gov.example/direction-1" is not an absolute https URL`},
		{name: "link without title", file: "x.yaml", content: strings.Replace(head, "        title: \"Ministry: Direction 1\"\n", "", 1),
			wantErr: "instruments[0].links[0].title: a link needs a short title"},
		{name: "government instrument without date", file: "x.yaml", content: strings.Replace(head, "    date: \"2025-02-04\"\n", "", 1),
			wantErr: "shipped/x.yaml:6: instruments[0].date: required for a mandated jurisdiction"},
		{name: "bad date", file: "x.yaml", content: strings.Replace(head, "2025-02-04", "4 Feb 2025", 1), wantErr: "shipped/x.yaml:6: instruments[0].date:"},
		{name: "repealed before date", file: "x.yaml", content: strings.Replace(head, "    scope:", "    repealed: \"2025-01-01\"\n    scope:", 1),
			wantErr: "instruments[0].repealed: 2025-01-01 is not after date 2025-02-04"},
		{name: "advisory in enforce mode", file: "x.yaml", content: strings.Replace(head, "tier: mandated", "tier: advisory", 1),
			wantErr: "shipped/x.yaml: mode: an advisory jurisdiction ships in mode report"},
		{name: "no instruments", file: "x.yaml", content: "id: x\ntitle: T\ntier: local\n", wantErr: "instruments: at least one instrument is required"},
		{name: "id does not match file", file: "y.yaml", content: head, wantErr: `id "x" does not match the file name`},
		// The shipped files are read by the configuration's decoder: an
		// unknown key, a value of the wrong kind or an unknown enum value
		// is an error with file:line and key path.
		{name: "unknown field", file: "x.yaml", content: head + "colour: red\n", wantErr: `shipped/x.yaml:13: unknown key "colour"`},
		{name: "misspelt field", file: "x.yaml", content: head + "leaves_outt: []\n", wantErr: `shipped/x.yaml:13: unknown key "leaves_outt" (did you mean "leaves_out"?)`},
		{name: "unknown tier", file: "x.yaml", content: strings.Replace(head, "tier: mandated", "tier: national", 1),
			wantErr: `shipped/x.yaml:3: tier: "national" is not one of mandated, local, advisory`},
		{name: "bad ttl", file: "x.yaml", content: head + "ttl: 60\n", wantErr: `shipped/x.yaml:13: ttl: "60" is not a duration`},
		{name: "unknown entry action", file: "x.yaml", content: head + entry + "        cite: https://gov.example/direction-1\n        action: servfail\n",
			wantErr: `shipped/x.yaml:18: sources[0].entries[0].action: "servfail" is not one of nxdomain, nodata, drop, allow, passthru`},
		{name: "unknown format", file: "x.yaml", content: head + "sources:\n  - name: s\n    format: csv\n",
			wantErr: `shipped/x.yaml:15: sources[0].format: "csv" is not one of domains, hosts, adblock, wildcard, rpz`},
		{name: "id rule of the configuration", file: "x_y.yaml", content: strings.Replace(head, "id: x", "id: x_y", 1),
			wantErr: `shipped/x_y.yaml: id: "x_y" is not a jurisdiction id (lower-case letters, digits and '-', at most 63)`},
		{name: "source without name", file: "x.yaml", content: head + "sources:\n  - entries: []\n", wantErr: "sources[0]: no name"},
		// The keys shared with a configured jurisdiction
		// (spec.JurisdictionAttrs, squashed) are the file's own, and
		// checked by the same rules.
		{name: "misspelt shared key", file: "x.yaml", content: head + "authorty: A\n", wantErr: `shipped/x.yaml:13: unknown key "authorty" (did you mean "authority"?)`},
		{name: "action ip without sinkhole", file: "x.yaml", content: head + "action: ip\n", wantErr: "shipped/x.yaml: sinkhole: action ip needs at least one sinkhole address"},
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

// TestShippedDatesChecked: a shipped file whose expires is not after its
// effective is rejected with its file name, by the rule of a configured
// jurisdiction (spec's); so are its other attributes.
func TestShippedDatesChecked(t *testing.T) {
	const instr = "instruments:\n  - name: P\n    issuer: O\n    scope: S\n    links:\n      - url: https://o.example/p\n        title: \"O: P\"\n"
	for _, tc := range []struct{ attrs, want string }{
		{"effective: \"2026-12-04\"\nexpires: \"2025-12-04\"\n", "shipped/x.yaml: expires: 2025-12-04 is not after effective (2026-12-04)"},
		{"effective: 4 Dec 2026\n", `shipped/x.yaml: effective: "4 Dec 2026" is not a date`},
		{"sinkhole: [sink.example]\n", `shipped/x.yaml: sinkhole[0]: "sink.example" is not an IP address`},
		{"ede: 70000\n", "shipped/x.yaml: ede: 70000 is not an EDE code (0 to 65535)"},
		{"ttl: -1m\n", "shipped/x.yaml: ttl: -1m0s is negative"},
	} {
		_, err := parseShippedFile("x.yaml", []byte("id: x\ntitle: T\ntier: local\n"+tc.attrs+instr))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.attrs, err, tc.want)
		}
	}
	// The merged jurisdiction is checked again where only the merge can
	// tell: an override's effective after the shipped expires.
	f, err := parseShippedFile("x.yaml", []byte("id: x\ntitle: T\ntier: local\nexpires: \"2025-12-04\"\n"+instr))
	if err != nil {
		t.Fatal(err)
	}
	b := &builder{byID: map[string]*jspec{}, userKey: map[string]string{}}
	b.addShipped(f)
	b.addUser(0, &spec.Jurisdiction{JurisdictionAttrs: spec.JurisdictionAttrs{ID: "x", Effective: "2026-12-04"}})
	b.check(b.specs[0])
	if err := errors.Join(b.errs...); err == nil || !strings.Contains(err.Error(), "jurisdictions[0]: effective 2026-12-04 is not before expires 2025-12-04") {
		t.Fatalf("error %v", err)
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
	if got := copilot.Sources[0]; got.Entries != 4 || got.Skipped != 2 {
		t.Errorf("ai-copilot: %d entries, %d skipped; want 4 and 2 (unconfirmed copilot.ai, github.copilot.azure.com)", got.Entries, got.Skipped)
	}
	if j := p.Lookup("us-state-tx"); j.InUse || j.Entries == 0 || p.Explain("chat.deepseek.com", netip.Addr{}, testNow).Elsewhere != nil {
		t.Errorf("a shipped jurisdiction nobody uses: in use %v, entries %d, indexed", j.InUse, j.Entries)
	}
	p = using(t, "ai-copilot", "deepseek-telemetry")
	for _, q := range []string{"github.copilot.azure.com", "copilot.ai", "hm.baidu.com"} {
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
	if v.Decision != DecisionBlock || v.Jurisdiction.ID != "ai-deepseek" || v.Jurisdiction.Tier != TierLocal || v.Rule != "deepseek.com" {
		t.Fatalf("chat.deepseek.com: %+v", v)
	}
	// An unmapped client is told it is the operator's policy (EDE 15), and
	// which governments ban DeepSeek, never that a foreign law binds it.
	if code, _ := v.EDE(); code != 15 {
		t.Errorf("EDE %d, want 15 (Blocked)", code)
	}
	text := string(v.AppendEDEText(nil))
	for _, want := range []string{"ai-deepseek: Operator policy, not a law binding this client", "AU, BE, CA, CZ, KR, NL, TW and the US", "rule deepseek.com (deepseek-core)"} {
		if !strings.Contains(text, want) {
			t.Errorf("EDE text %q lacks %q", text, want)
		}
	}
	if len(text) > maxEDEText {
		t.Errorf("EDE text of %d bytes", len(text))
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

// TestShippedDefaultsBlockDeepSeek: the default ai-deepseek and every
// government jurisdiction that once was a default, alone, block DeepSeek's
// names and nothing that merely looks like them.
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
	for _, id := range []string{"ai-deepseek", "au-gov", "be-gov", "cz-gov", "kr-gov", "nl-gov", "tw-gov", "us-gov"} {
		wantEDE := uint16(16)
		if id == "ai-deepseek" {
			wantEDE = 15
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
					v.Source != "deepseek-core" || v.Action != ActionNXDomain || v.Jurisdiction.EDE != wantEDE {
					t.Fatalf("verdict %+v", v)
				}
			})
		}
	}
}

// TestKRAppstoreDates: kr-appstore (a recommendation) ships in report
// mode; enforced by an operator's override, it switches on and off at its
// dates, 18:00 KST and midnight KST, in the same policy, with no rebuild.
func TestKRAppstoreDates(t *testing.T) {
	if j := using(t, "kr-appstore").Lookup("kr-appstore"); j.Default || j.Mode != ModeReport || j.Tier != TierAdvisory || j.EDE != 15 {
		t.Fatalf("shipped kr-appstore: default %v, mode %s, tier %s, EDE %d; want an advisory in report mode", j.Default, j.Mode, j.Tier, j.EDE)
	}
	p := build(t, &config.Config{DefaultJurisdictions: []string{"kr-appstore"},
		Jurisdictions: []config.Jurisdiction{{JurisdictionAttrs: config.JurisdictionAttrs{ID: "kr-appstore", Mode: "enforce"}}}}, BuildOptions{})
	j := p.Lookup("kr-appstore")
	const from, until = "2025-02-15T18:00:00+09:00", "2025-04-28T00:00:00+09:00"
	tests := []struct {
		name       string
		now        time.Time
		qname      string
		wantBlock  bool
		wantStatus string
	}{
		{name: "today: expired", now: time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC), qname: "download.deepseek.com", wantStatus: "expired " + until},
		{name: "during the suspension", now: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), qname: "download.deepseek.com", wantBlock: true, wantStatus: "active"},
		{name: "web service stayed available", now: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), qname: "chat.deepseek.com", wantStatus: "active"},
		{name: "first instant (18:00 KST)", now: time.Date(2025, 2, 15, 9, 0, 0, 0, time.UTC), qname: "download.deepseek.com", wantBlock: true, wantStatus: "active"},
		{name: "just before", now: time.Date(2025, 2, 15, 8, 59, 59, 0, time.UTC), qname: "download.deepseek.com", wantStatus: "inactive until " + from},
		{name: "last instant", now: time.Date(2025, 4, 27, 14, 59, 59, 0, time.UTC), qname: "download.deepseek.com", wantBlock: true, wantStatus: "active"},
		{name: "expiry instant (midnight KST)", now: time.Date(2025, 4, 27, 15, 0, 0, 0, time.UTC), qname: "download.deepseek.com", wantStatus: "expired " + until},
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
				cfg.Jurisdictions = []config.Jurisdiction{{JurisdictionAttrs: config.JurisdictionAttrs{ID: "bypass", Action: spec.Action(tc.action)}}}
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

// TestShippedCitesListedLinks: every shipped rule and allow entry cites an
// https URL that one of its jurisdiction's instruments lists.
func TestShippedCitesListedLinks(t *testing.T) {
	files, err := parseShippedFS(shipped.FS)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		links := map[string]bool{}
		for _, in := range f.Instruments {
			for _, l := range in.Links {
				links[l.URL] = true
			}
		}
		entries := slices.Clone(f.Allow)
		for _, s := range f.Sources {
			entries = append(entries, s.Entries...)
		}
		for _, e := range entries {
			if !strings.HasPrefix(e.Cite, "https://") || !links[e.Cite] {
				t.Errorf("%s:%d: %s cites %q, not an https link of its instruments", f.file, e.Line, e.Rule, e.Cite)
			}
		}
	}
}

// TestDecidingInstrument: the EDE text and `check` name the instrument that
// decides for the client at the query time, not a summary of the
// jurisdiction.
func TestDecidingInstrument(t *testing.T) {
	at := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 12, 0, 0, 0, time.UTC) }
	tests := []struct {
		jur, qname string
		now        time.Time
		want       string // the instrument's name starts so
		wantText   string
	}{
		{jur: "us-gov", qname: "chat.deepseek.com", now: testNow, want: "FY2026 NDAA (P.L. 119-60)",
			wantText: "us-gov: FY2026 NDAA (P.L. 119-60) §1532 and §6604; rule deepseek.com (deepseek-core)"},
		{jur: "us-gov", qname: "chat.deepseek.com", now: at(2025, 2, 1), want: "DISA block"},
		{jur: "au-gov", qname: "chat.deepseek.com", now: testNow, want: "PSPF Direction 001-2025",
			wantText: "au-gov: PSPF Direction 001-2025; rule deepseek.com (deepseek-core)"},
		{jur: "au-qld-gov", qname: "chat.deepseek.com", now: at(2025, 3, 1), want: "Queensland DeepSeek products, applications and web services policy (repealed)"},
		{jur: "au-qld-gov", qname: "chat.deepseek.com", now: testNow, want: "QGEA Restricted applications"},
		{jur: "us-state-tx", qname: "chat.deepseek.com", now: testNow, want: "Texas governor order of 2025-01-31"},
		{jur: "us-state-tx", qname: "www.kimi.com", now: testNow, want: "Texas prohibited technologies list, update of 2026-01-26"},
		{jur: "us-state-la", qname: "chat.deepseek.com", now: testNow, want: "Louisiana executive order"},
	}
	for _, tc := range tests {
		t.Run(tc.jur+"/"+tc.qname, func(t *testing.T) {
			p := using(t, tc.jur)
			e := p.Explain(tc.qname, netip.Addr{}, tc.now)
			if e.Decision != "block" || e.Jurisdiction != tc.jur || e.InstrumentInfo == nil {
				t.Fatalf("decision %s by %s, instrument %v", e.Decision, e.Jurisdiction, e.InstrumentInfo)
			}
			if !strings.HasPrefix(e.Instrument, tc.want) || e.InstrumentInfo.Name != e.Instrument || len(e.InstrumentInfo.Links) == 0 {
				t.Errorf("instrument %q, want %q…", e.Instrument, tc.want)
			}
			if e.EDE == nil || *e.EDE != 16 {
				t.Errorf("EDE %v, want 16", e.EDE)
			}
			if tc.wantText != "" && e.EDEText != tc.wantText {
				t.Errorf("EDE text %q, want %q", e.EDEText, tc.wantText)
			}
		})
	}
}

// TestTexasProductsNotParents: Texas's 2026 list blocks AI products, never
// their parents' shared infrastructure.
func TestTexasProductsNotParents(t *testing.T) {
	p := using(t, "us-state-tx")
	for _, q := range []string{"kimi.com", "chat.z.ai", "chatglm.cn", "hailuoai.com", "yiyan.baidu.com", "tongyi.aliyun.com", "www.xiaohongshu.com", "chat.deepseek.com"} {
		if v := p.Match(q, nil, testNow); v.Decision != DecisionBlock {
			t.Errorf("%s not blocked", q)
		}
	}
	for _, q := range []string{"baidu.com", "www.baidu.com", "x.yiyan.baidu.com", "aliyun.com", "www.aliyun.com", "oss.aliyuncs.com",
		"alicdn.com", "tencent.com", "yuanbao.tencent.com", "xfyun.cn", "www.xfyun.cn"} {
		if v := p.Match(q, nil, testNow); v.Decision != DecisionNone {
			t.Errorf("%s blocked by rule %s", q, v.Rule)
		}
	}
}

// TestTaiwanRedNoteExpired: the one-year DNS RPZ order ran out on
// 2026-12-04 (Taiwan time) and no renewal is sourced.
func TestTaiwanRedNoteExpired(t *testing.T) {
	p := using(t, "tw-rednote")
	j := p.Lookup("tw-rednote")
	today := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	if got := j.Status(today); got != "expired 2026-12-04T00:00:00+08:00" {
		t.Errorf("status today %q", got)
	}
	if v := p.Match("www.xiaohongshu.com", nil, today); v.Decision != DecisionNone {
		t.Error("still blocked after expiry")
	}
	if v := p.Match("www.xiaohongshu.com", nil, time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)); v.Decision != DecisionBlock || v.Jurisdiction.EDE != 16 {
		t.Errorf("not blocked during the order: %+v", v.Decision)
	}
}

// FuzzShippedFile: the shipped-file parser never panics, and a file it
// accepts has instruments and only cites that name their links.
func FuzzShippedFile(f *testing.F) {
	for _, name := range []string{"au-gov.yaml", "us-state-tx.yaml", "bypass.yaml", "kr-appstore.yaml"} {
		b, err := fs.ReadFile(shipped.FS, name)
		if err != nil {
			f.Fatal(err)
		}
		seed := []byte(strings.Replace(string(b), "id: "+strings.TrimSuffix(name, ".yaml")+"\n", "id: x\n", 1))
		if _, err := parseShippedFile("x.yaml", seed); err != nil {
			f.Fatalf("seed %s: %v", name, err)
		}
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		sf, err := parseShippedFile("x.yaml", b)
		if err != nil {
			return
		}
		links := map[string]bool{}
		for _, in := range sf.Instruments {
			for _, l := range in.Links {
				links[l.URL] = true
			}
		}
		if len(sf.Instruments) == 0 {
			t.Fatal("accepted without instruments")
		}
		for _, s := range sf.Sources {
			for _, e := range s.Entries {
				if !links[e.Cite] || !strings.HasPrefix(e.Cite, "https://") {
					t.Fatalf("accepted cite %q", e.Cite)
				}
			}
		}
	})
}

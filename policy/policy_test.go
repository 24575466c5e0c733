package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jurisdns/jurisdns/blocklists"
	"github.com/jurisdns/jurisdns/blocklists/shipped"
	"github.com/jurisdns/jurisdns/config"
	"github.com/jurisdns/jurisdns/spec"
)

// jd builds a user jurisdiction with one inline source of block entries
// (none when block is nil) and allow entries.
func jd(id, tier string, block []string, allow ...string) config.Jurisdiction {
	j := config.Jurisdiction{JurisdictionAttrs: config.JurisdictionAttrs{ID: id, Tier: spec.Tier(tier)}, Allow: allow}
	if block != nil {
		j.Sources = []config.Source{{Name: id + "-list", Inline: block}}
	}
	return j
}

func with(j config.Jurisdiction, f func(*config.Jurisdiction)) config.Jurisdiction {
	f(&j)
	return j
}

func report(j *config.Jurisdiction) { j.Mode = "report" }

func expires(s string) func(*config.Jurisdiction) {
	return func(j *config.Jurisdiction) { j.Expires = s }
}

func effective(s string) func(*config.Jurisdiction) {
	return func(j *config.Jurisdiction) { j.Effective = s }
}

func source(format string, lines ...string) func(*config.Jurisdiction) {
	return func(j *config.Jurisdiction) {
		j.Sources = []config.Source{{Name: j.ID + "-" + format, Format: spec.Format(format), Inline: lines}}
	}
}

func day(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}

var example = []string{"example.com"}

func TestPrecedence(t *testing.T) {
	tests := []struct {
		name         string
		jurs         []config.Jurisdiction
		order        []string // the client's jurisdictions
		qname        string
		now          time.Time
		wantDecision Decision
		wantJur      string
		wantRule     string
		wantAction   Action
		wantReported []string
	}{
		{
			name:  "mandated block is not lifted by a local allow",
			jurs:  []config.Jurisdiction{jd("m", "mandated", example), jd("l", "local", nil, "www.example.com")},
			order: []string{"l", "m"}, qname: "www.example.com",
			wantDecision: DecisionBlock, wantJur: "m", wantRule: "example.com",
		},
		{
			name:  "own allow lifts own mandated block",
			jurs:  []config.Jurisdiction{jd("m", "mandated", example, "www.example.com")},
			order: []string{"m"}, qname: "a.www.example.com",
		},
		{
			name:  "own allow leaves the rest blocked",
			jurs:  []config.Jurisdiction{jd("m", "mandated", example, "www.example.com")},
			order: []string{"m"}, qname: "mail.example.com",
			wantDecision: DecisionBlock, wantJur: "m", wantRule: "example.com",
		},
		{
			name:  "local allow lifts an advisory block",
			jurs:  []config.Jurisdiction{jd("a", "advisory", example), jd("l", "local", nil, "www.example.com")},
			order: []string{"a", "l"}, qname: "www.example.com",
		},
		{
			name:  "mandated allow lifts a local block",
			jurs:  []config.Jurisdiction{jd("l", "local", example), jd("m", "mandated", nil, "example.com")},
			order: []string{"l", "m"}, qname: "www.example.com",
		},
		{
			name:  "local allow does not lift another local block",
			jurs:  []config.Jurisdiction{jd("l1", "local", example), jd("l2", "local", nil, "www.example.com")},
			order: []string{"l1", "l2"}, qname: "www.example.com",
			wantDecision: DecisionBlock, wantJur: "l1", wantRule: "example.com",
		},
		{
			name:  "advisory allow does not lift a local block",
			jurs:  []config.Jurisdiction{jd("l", "local", example), jd("a", "advisory", nil, "www.example.com")},
			order: []string{"a", "l"}, qname: "www.example.com",
			wantDecision: DecisionBlock, wantJur: "l", wantRule: "example.com",
		},
		{
			name:  "highest tier is named whatever the client order",
			jurs:  []config.Jurisdiction{jd("l", "local", example), jd("m", "mandated", example)},
			order: []string{"l", "m"}, qname: "example.com",
			wantDecision: DecisionBlock, wantJur: "m", wantRule: "example.com",
		},
		{
			name:  "same tier: the client's order decides",
			jurs:  []config.Jurisdiction{jd("m1", "mandated", example), jd("m2", "mandated", example)},
			order: []string{"m2", "m1"}, qname: "example.com",
			wantDecision: DecisionBlock, wantJur: "m2", wantRule: "example.com",
		},
		{
			name:  "most specific rule of the jurisdiction is named",
			jurs:  []config.Jurisdiction{jd("m", "mandated", []string{"example.com", "full:www.example.com"})},
			order: []string{"m"}, qname: "www.example.com",
			wantDecision: DecisionBlock, wantJur: "m", wantRule: "www.example.com",
		},
		{
			name:  "report mode never blocks but is reported",
			jurs:  []config.Jurisdiction{with(jd("r", "mandated", example), report)},
			order: []string{"r"}, qname: "www.example.com",
			wantReported: []string{"r"},
		},
		{
			name:  "report mode is listed beside the enforcing block",
			jurs:  []config.Jurisdiction{with(jd("r", "mandated", example), report), jd("l", "local", example)},
			order: []string{"r", "l"}, qname: "www.example.com",
			wantDecision: DecisionBlock, wantJur: "l", wantRule: "example.com", wantReported: []string{"r"},
		},
		{
			name:  "a report-mode allow does not lift an enforcing block",
			jurs:  []config.Jurisdiction{with(jd("r", "mandated", nil, "example.com"), report), jd("l", "local", example)},
			order: []string{"r", "l"}, qname: "www.example.com",
			wantDecision: DecisionBlock, wantJur: "l", wantRule: "example.com",
		},
		{
			name:  "an enforcing allow lifts a lower report-mode block",
			jurs:  []config.Jurisdiction{with(jd("r", "advisory", example), report), jd("l", "local", nil, "example.com")},
			order: []string{"r", "l"}, qname: "www.example.com",
		},
		{
			name:  "expired jurisdiction does not block",
			jurs:  []config.Jurisdiction{with(jd("m", "mandated", example), expires("2025-04-28"))},
			order: []string{"m"}, qname: "example.com", now: day("2026-11-29"),
		},
		{
			name:  "the same jurisdiction blocks before it expires",
			jurs:  []config.Jurisdiction{with(jd("m", "mandated", example), expires("2025-04-28"))},
			order: []string{"m"}, qname: "example.com", now: day("2025-03-01"),
			wantDecision: DecisionBlock, wantJur: "m", wantRule: "example.com",
		},
		{
			name:  "future jurisdiction does not block yet",
			jurs:  []config.Jurisdiction{with(jd("m", "mandated", example), effective("2027-01-01"))},
			order: []string{"m"}, qname: "example.com", now: day("2026-12-31"),
		},
		{
			name:  "future jurisdiction blocks from its date",
			jurs:  []config.Jurisdiction{with(jd("m", "mandated", example), effective("2027-01-01"))},
			order: []string{"m"}, qname: "example.com", now: day("2027-01-01"),
			wantDecision: DecisionBlock, wantJur: "m", wantRule: "example.com",
		},
		{
			name:  "an expired allow lifts nothing",
			jurs:  []config.Jurisdiction{jd("a", "advisory", example), with(jd("l", "local", nil, "example.com"), expires("2025-01-01"))},
			order: []string{"a", "l"}, qname: "example.com",
			wantDecision: DecisionBlock, wantJur: "a", wantRule: "example.com",
		},
		{
			name:  "a jurisdiction that does not apply to the client does not block",
			jurs:  []config.Jurisdiction{jd("m", "mandated", example), jd("l", "local", []string{"other.example"})},
			order: []string{"l"}, qname: "example.com",
		},
		{
			name:  "a jurisdiction that does not apply to the client lifts nothing",
			jurs:  []config.Jurisdiction{jd("a", "advisory", example), jd("m", "mandated", nil, "example.com")},
			order: []string{"a"}, qname: "example.com",
			wantDecision: DecisionBlock, wantJur: "a", wantRule: "example.com",
		},
		{
			name:  "adblock @@ exception lifts its own block",
			jurs:  []config.Jurisdiction{with(jd("l", "local", nil), source("adblock", "||ads.example^", "@@||ok.ads.example^"))},
			order: []string{"l"}, qname: "x.ok.ads.example",
		},
		{
			name:  "adblock block next to the exception",
			jurs:  []config.Jurisdiction{with(jd("l", "local", nil), source("adblock", "||ads.example^", "@@||ok.ads.example^"))},
			order: []string{"l"}, qname: "x.ads.example",
			wantDecision: DecisionBlock, wantJur: "l", wantRule: "ads.example",
		},
		{
			name: "RPZ passthru of a local jurisdiction lifts an advisory block",
			jurs: []config.Jurisdiction{jd("a", "advisory", example),
				with(jd("l", "local", nil), source("rpz", "www.example.com CNAME rpz-passthru."))},
			order: []string{"a", "l"}, qname: "www.example.com",
		},
		{
			name:  "RPZ rule action replaces the jurisdiction action",
			jurs:  []config.Jurisdiction{with(jd("l", "local", nil), source("rpz", "*.example.com CNAME *."))},
			order: []string{"l"}, qname: "www.example.com",
			wantDecision: DecisionBlock, wantJur: "l", wantRule: "example.com", wantAction: ActionNoData,
		},
		{
			name: "jurisdiction action applies to plain rules",
			jurs: []config.Jurisdiction{with(jd("l", "local", example), func(j *config.Jurisdiction) {
				j.Action = "refused"
			})},
			order: []string{"l"}, qname: "example.com",
			wantDecision: DecisionBlock, wantJur: "l", wantRule: "example.com", wantAction: ActionRefused,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := build(t, &config.Config{Jurisdictions: tc.jurs, DefaultJurisdictions: tc.order}, BuildOptions{})
			now := tc.now
			if now.IsZero() {
				now = testNow
			}
			v := p.Match(tc.qname, nil, now)
			if v.Decision != tc.wantDecision {
				t.Fatalf("decision %v, want %v (%+v)", v.Decision, tc.wantDecision, v)
			}
			if tc.wantDecision == DecisionBlock {
				if v.Jurisdiction.ID != tc.wantJur || v.Rule != tc.wantRule || v.Action != tc.wantAction {
					t.Errorf("named %s rule %q action %v, want %s %q %v", v.Jurisdiction.ID, v.Rule, v.Action, tc.wantJur, tc.wantRule, tc.wantAction)
				}
			}
			var reported []string
			for _, j := range v.ReportedJurisdictions() {
				reported = append(reported, j.ID)
			}
			if !slices.Equal(reported, tc.wantReported) {
				t.Errorf("reported %v, want %v", reported, tc.wantReported)
			}
			// Explain must agree with Match.
			e := p.Explain(tc.qname, netip.Addr{}, now)
			if e.Decision != tc.wantDecision.String() || e.Jurisdiction != tc.wantJur {
				t.Errorf("Explain says %s %s", e.Decision, e.Jurisdiction)
			}
		})
	}
}

// TestDatesSwitchWithoutRebuild: one policy, the clock moves, the
// jurisdiction turns on and off.
func TestDatesSwitchWithoutRebuild(t *testing.T) {
	p := build(t, &config.Config{
		Jurisdictions: []config.Jurisdiction{with(jd("m", "mandated", example), func(j *config.Jurisdiction) {
			j.Effective, j.Expires = "2026-12-01", "2026-12-24T18:00:00+01:00"
		})},
		DefaultJurisdictions: []string{"m"},
	}, BuildOptions{})
	j := p.Lookup("m")
	steps := []struct {
		now        time.Time
		wantBlock  bool
		wantStatus string
	}{
		{now: day("2026-11-30"), wantStatus: "inactive until 2026-12-01"},
		{now: day("2026-12-01"), wantBlock: true, wantStatus: "active"},
		{now: time.Date(2026, 12, 24, 16, 59, 59, 0, time.UTC), wantBlock: true, wantStatus: "active"},
		{now: time.Date(2026, 12, 24, 17, 0, 0, 0, time.UTC), wantStatus: "expired 2026-12-24T18:00:00+01:00"},
	}
	for _, s := range steps {
		v := p.Match("example.com", nil, s.now)
		if (v.Decision == DecisionBlock) != s.wantBlock || j.Status(s.now) != s.wantStatus {
			t.Errorf("%v: decision %v status %q, want block %v status %q", s.now, v.Decision, j.Status(s.now), s.wantBlock, s.wantStatus)
		}
	}
}

func TestClientSets(t *testing.T) {
	cfg := &config.Config{
		Jurisdictions: []config.Jurisdiction{
			jd("wide", "local", []string{"wide.example"}),
			jd("narrow", "local", []string{"narrow.example"}),
			jd("v6", "local", []string{"v6.example"}),
			jd("mapped", "local", []string{"mapped.example"}),
			jd("host", "local", []string{"host.example"}),
		},
		Clients: []config.Client{
			{Name: "office", Subnets: []string{"10.0.0.0/8"}, Jurisdictions: []string{"wide"}},
			{Name: "lab", Subnets: []string{"10.1.0.0/16", "2001:db8:1::/48"}, Jurisdictions: []string{"narrow", "wide"}},
			{Name: "v6-site", Subnets: []string{"2001:db8::/32"}, Jurisdictions: []string{"v6"}},
			{Name: "mapped", Subnets: []string{"::ffff:192.168.0.0/112"}, Jurisdictions: []string{"mapped"}},
			{Name: "one-host", Subnets: []string{"10.1.2.3/32"}, Jurisdictions: []string{"host"}},
		},
		DefaultJurisdictions: []string{"bypass"},
	}
	p := build(t, cfg, BuildOptions{})
	tests := []struct {
		name      string
		addr      string
		wantEntry string
		wantJurs  []string
	}{
		{name: "v4 wide", addr: "10.200.0.1", wantEntry: "office", wantJurs: []string{"wide"}},
		{name: "v4 longest prefix", addr: "10.1.9.9", wantEntry: "lab", wantJurs: []string{"narrow", "wide"}},
		{name: "v4 host prefix", addr: "10.1.2.3", wantEntry: "one-host", wantJurs: []string{"host"}},
		{name: "v4-mapped client", addr: "::ffff:10.1.9.9", wantEntry: "lab", wantJurs: []string{"narrow", "wide"}},
		{name: "v4-mapped prefix in config", addr: "192.168.7.7", wantEntry: "mapped", wantJurs: []string{"mapped"}},
		{name: "v6 wide", addr: "2001:db8:ffff::1", wantEntry: "v6-site", wantJurs: []string{"v6"}},
		{name: "v6 longest prefix", addr: "2001:db8:1::53", wantEntry: "lab", wantJurs: []string{"narrow", "wide"}},
		{name: "v6 with zone", addr: "2001:db8:1::53%eth0", wantEntry: "lab", wantJurs: []string{"narrow", "wide"}},
		{name: "default v4", addr: "172.16.0.1", wantEntry: "default", wantJurs: []string{"bypass"}},
		{name: "default v6", addr: "2001:db9::1", wantEntry: "default", wantJurs: []string{"bypass"}},
		{name: "no address", addr: "", wantEntry: "default", wantJurs: []string{"bypass"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var a netip.Addr
			if tc.addr != "" {
				a = netip.MustParseAddr(tc.addr)
			}
			cs := p.ClientSet(a)
			var ids []string
			for _, j := range cs.Jurisdictions {
				ids = append(ids, j.ID)
			}
			if cs.Name != tc.wantEntry || !slices.Equal(ids, tc.wantJurs) {
				t.Errorf("got %s %v, want %s %v", cs.Name, ids, tc.wantEntry, tc.wantJurs)
			}
			e := p.Explain(tc.wantJurs[0]+".example", a, testNow)
			if e.ClientEntry != tc.wantEntry || (tc.wantJurs[0] != "bypass" && e.Decision != "block") {
				t.Errorf("Explain: entry %s decision %s", e.ClientEntry, e.Decision)
			}
		})
	}
	if got := p.ClientSet(netip.MustParseAddr("10.1.9.9")).Subnets; !slices.Equal(got, []netip.Prefix{
		netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("2001:db8:1::/48")}) {
		t.Errorf("lab subnets %v", got)
	}
	if got := p.Explain("x", netip.MustParseAddr("10.1.9.9"), testNow).ClientSubnet; got != "10.1.0.0/16" {
		t.Errorf("ClientSubnet %q", got)
	}
}

func TestOverrideShipped(t *testing.T) {
	ede := 3
	p := build(t, &config.Config{
		Jurisdictions: []config.Jurisdiction{{
			JurisdictionAttrs: config.JurisdictionAttrs{
				ID:       "au-gov",
				Mode:     "report",
				Action:   "ip",
				Sinkhole: []string{"192.0.2.10", "2001:db8::10"},
				EDE:      &ede,
				TTL:      5 * time.Minute,
			},
			Sources: []config.Source{{Name: "extra", Inline: []string{"# more", "deepseek.example"}}},
			Allow:   []string{"api.deepseek.com"},
		}},
		DefaultJurisdictions: []string{"au-gov"},
	}, BuildOptions{})
	j := p.Lookup("au-gov")
	if !j.Shipped || !j.Overridden || j.Mode != ModeReport || j.Action != ActionIP || j.EDE != 3 ||
		j.TTL != 5*time.Minute || j.Tier != TierMandated || j.Instrument != "PSPF Direction 001-2025" {
		t.Fatalf("override not applied: %+v", j)
	}
	if len(j.Sources) != 2 || j.Sources[0].Name != "deepseek-core" || j.Sources[1].Name != "extra" || j.Sources[1].Origin != "inline" {
		t.Fatalf("sources %+v", j.Sources)
	}
	if len(j.Allow) != 1 || j.Allow[0].Origin != "jurisdictions[0].allow[0]" || j.Entries != 3 {
		t.Fatalf("allow %+v entries %d", j.Allow, j.Entries)
	}
	if got := j.Status(testNow); got != "report" {
		t.Errorf("status %q", got)
	}
	// Report mode: not blocked, reported.
	v := p.Match("chat.deepseek.com", nil, testNow)
	if v.Decision != DecisionNone || v.NReported != 1 || v.Reported[0] != j {
		t.Fatalf("report mode verdict %+v", v)
	}
	// Enforcing again, the same override: sinkhole answer, extra source, allow.
	p = build(t, &config.Config{
		Jurisdictions: []config.Jurisdiction{
			{
				JurisdictionAttrs: config.JurisdictionAttrs{ID: "au-gov", Action: "ip", Sinkhole: []string{"192.0.2.10"}, EDE: &ede},
				Sources:           []config.Source{{Name: "extra", Inline: []string{"# more", "deepseek.example"}}},
				Allow:             []string{"api.deepseek.com"},
			},
		},
		DefaultJurisdictions: []string{"au-gov"},
	}, BuildOptions{})
	tests := []struct {
		name      string
		qname     string
		wantBlock bool
		wantRule  string
		wantSrc   string
		wantLine  int
	}{
		{name: "shipped rule, sinkhole", qname: "chat.deepseek.com", wantBlock: true, wantRule: "deepseek.com", wantSrc: "deepseek-core", wantLine: shippedLine(t, "au-gov.yaml", "- rule: deepseek.com")},
		{name: "extra inline source", qname: "www.deepseek.example", wantBlock: true, wantRule: "deepseek.example", wantSrc: "extra", wantLine: 2},
		{name: "allow entry lifts own block", qname: "api.deepseek.com"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := p.Match(tc.qname, nil, testNow)
			if (v.Decision == DecisionBlock) != tc.wantBlock {
				t.Fatalf("decision %v", v.Decision)
			}
			if !tc.wantBlock {
				return
			}
			if v.Rule != tc.wantRule || v.Source != tc.wantSrc || v.Line != tc.wantLine || v.Action != ActionIP ||
				!slices.Equal(v.Addrs, []netip.Addr{netip.MustParseAddr("192.0.2.10")}) || v.Jurisdiction.EDE != 3 {
				t.Fatalf("verdict %+v", v)
			}
		})
	}
}

func TestUserFileSource(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "lists/acme.txt", "# ACME's own list\ndeepseek.com\nbad..name\nfull:exact.example\n")
	writeFile(t, dir, "lists/junk.txt", "bad..one\nok.example\nbad..two\n")
	cfg := &config.Config{
		Jurisdictions: []config.Jurisdiction{{
			JurisdictionAttrs: config.JurisdictionAttrs{ID: "acme", Title: "ACME staff policy", Tier: "local"},
			Sources:           []config.Source{{Name: "deepseek-core", Path: "lists/acme.txt", Match: "suffix"}},
		}},
		DefaultJurisdictions: []string{"acme"},
	}
	p := build(t, cfg, BuildOptions{BaseDir: dir})
	j := p.Lookup("acme")
	path := filepath.Join(dir, "lists/acme.txt")
	s := j.Sources[0]
	if j.Shipped || j.EDE != 15 || j.Action != ActionNXDomain || j.TTL != DefaultTTL || j.OnLoadFailure != LastKnownGood {
		t.Errorf("defaults of a new jurisdiction: %+v", j)
	}
	if s.Origin != path || s.Entries != 2 || s.Bad != 1 || len(s.Errors) != 1 {
		t.Fatalf("source %+v", s)
	}
	if got := s.Errors[0].Error(); !strings.HasPrefix(got, path+":3: ") {
		t.Errorf("line error %q, want %s:3: …", got, path)
	}
	v := p.Match("chat.deepseek.com", nil, testNow)
	if v.Decision != DecisionBlock || v.Source != "deepseek-core" || v.Line != 2 {
		t.Errorf("verdict %+v", v)
	}
	e := p.Explain("chat.deepseek.com", netip.Addr{}, testNow)
	if len(e.Matches) != 1 || e.Matches[0].Origin != path || e.Matches[0].Line != 2 || e.Matches[0].Outcome != "decides" {
		t.Errorf("explain %+v", e.Matches)
	}
	if v := p.Match("x.exact.example", nil, testNow); v.Decision != DecisionNone {
		t.Error("full: entry matched a subdomain")
	}

	// A list with mostly bad lines is rejected, with its key path and
	// file:line.
	cfg.Jurisdictions[0].Sources[0].Path = "lists/junk.txt"
	_, err := Build(context.Background(), cfg, BuildOptions{BaseDir: dir})
	junk := filepath.Join(dir, "lists/junk.txt")
	for _, want := range []string{"jurisdictions[0].sources[0]: ", junk + ":1: ", "no previous copy"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want it to contain %q", err, want)
		}
	}
}

func TestBuildErrors(t *testing.T) {
	cfg := &config.Config{
		Jurisdictions: []config.Jurisdiction{
			{JurisdictionAttrs: config.JurisdictionAttrs{ID: "t1", Tier: "supreme"}},
			{JurisdictionAttrs: config.JurisdictionAttrs{ID: "t2", Action: "ip"}},
			{JurisdictionAttrs: config.JurisdictionAttrs{ID: "t3"}, Sources: []config.Source{{Path: "a.txt", Inline: []string{"x.example"}}}},
			{JurisdictionAttrs: config.JurisdictionAttrs{ID: "t4"}, Sources: []config.Source{{URL: "https://lists.example/x.txt"}}},
			{JurisdictionAttrs: config.JurisdictionAttrs{ID: "t5"}, Allow: []string{"bad..name"}},
			{JurisdictionAttrs: config.JurisdictionAttrs{ID: "t6"}, Sources: []config.Source{{Path: "missing.txt"}}},
			{JurisdictionAttrs: config.JurisdictionAttrs{ID: "t7", Effective: "2026-01-01", Expires: "2025-01-01"}},
			{JurisdictionAttrs: config.JurisdictionAttrs{ID: "t1"}},
			{JurisdictionAttrs: config.JurisdictionAttrs{ID: "t8"}, Sources: []config.Source{{Inline: []string{"x.example"}, Format: "csv"}}},
		},
		Clients: []config.Client{
			{Name: "a", Subnets: []string{"10.0.0.0/8"}, Jurisdictions: []string{"t1"}},
			{Name: "b", Subnets: []string{"10.0.0.0/33"}, Jurisdictions: []string{"xx"}},
		},
		DefaultJurisdictions: []string{"au-gov", "nope"},
	}
	_, err := Build(context.Background(), cfg, BuildOptions{BaseDir: t.TempDir()})
	if err == nil {
		t.Fatal("no error")
	}
	wants := []string{
		`jurisdictions[1]: action ip needs sinkhole addresses`,
		`jurisdictions[3].sources[0]: url sources need the downloader`,
		`jurisdictions[4].allow[0]: bad allow entry "bad..name"`,
		`jurisdictions[5].sources[0]: open `,
		`jurisdictions[6]: effective 2026-01-01 is not before expires 2025-01-01`,
		`clients[1].jurisdictions[0]: unknown jurisdiction "xx"`,
		`default_jurisdictions[1]: unknown jurisdiction "nope"`,
	}
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in:\n%v", w, err)
		}
	}
	// The values of the vocabulary are checked once, by spec.Validate, not
	// again by Build: the enum is converted, the duplicate is not looked
	// for.
	for _, no := range []string{"unknown tier", "duplicate id", ".format: unknown format"} {
		if strings.Contains(err.Error(), no) {
			t.Errorf("Build checked %q again:\n%v", no, err)
		}
	}
	verr := cfg.Validate()
	for _, w := range []string{
		`jurisdictions[0].tier: "supreme" is not one of mandated, local, advisory`,
		`jurisdictions[7].id: "t1" is already used by jurisdictions[0]`,
		`jurisdictions[8].sources[0].format: "csv" is not one of domains, hosts, adblock, wildcard, rpz`,
		`clients[1].subnets[0]: "10.0.0.0/33" is not a CIDR prefix`,
		`jurisdictions[2].sources[0]: has path and inline: exactly one of path, url, inline or transfer is allowed`,
	} {
		if verr == nil || !strings.Contains(verr.Error(), w) {
			t.Errorf("Validate: missing %q in:\n%v", w, verr)
		}
	}
}

// fetcher serves URL sources from a map, as a downloader without a last
// good copy: a missing URL fails, and so does a body accept refuses.
type fetcher map[string]string

func (f fetcher) fetch(_ context.Context, _ string, src config.Source, accept func([]byte, int) (int, error)) error {
	if s, ok := f[src.URL]; ok {
		_, err := accept([]byte(s), blocklists.NoBaseline)
		return err
	}
	return errors.New("connection refused")
}

func TestOnLoadFailure(t *testing.T) {
	const url = "https://lists.example/ai.txt"
	urlJur := func(olf string) *config.Config {
		return &config.Config{
			Jurisdictions: []config.Jurisdiction{{
				JurisdictionAttrs: config.JurisdictionAttrs{ID: "remote", Tier: "mandated", OnLoadFailure: spec.OnLoadFailure(olf)},
				Sources:           []config.Source{{Name: "ai", URL: url}},
			}},
			Clients: []config.Client{
				{Name: "remote-clients", Subnets: []string{"10.0.0.0/8"}, Jurisdictions: []string{"remote", "au-gov"}},
			},
			DefaultJurisdictions: []string{"au-gov"},
		}
	}
	remoteClient := netip.MustParseAddr("10.0.0.1")
	otherClient := netip.MustParseAddr("192.0.2.1")
	good := fetcher{url: "ai.example\nmore.example\n"}.fetch
	down := fetcher{}.fetch

	t.Run("fail_closed", func(t *testing.T) {
		p := build(t, urlJur("fail_closed"), BuildOptions{Fetch: down})
		j := p.Lookup("remote")
		if j.Loaded || !strings.Contains(j.LoadError, "connection refused") || j.Status(testNow) != "not loaded (fail_closed)" {
			t.Fatalf("jurisdiction %+v", j)
		}
		v := p.Match("anything.example", p.ClientSet(remoteClient), testNow)
		if v.Decision != DecisionFailClosed || v.Jurisdiction != j {
			t.Fatalf("verdict %+v", v)
		}
		if got := string(v.AppendEDEText(nil)); got != "remote: policy not loaded (on_load_failure fail_closed)" {
			t.Errorf("EDE text %q", got)
		}
		if v := p.Match("anything.example", p.ClientSet(otherClient), testNow); v.Decision != DecisionNone {
			t.Errorf("other clients are affected: %v", v.Decision)
		}
	})
	t.Run("fail_open", func(t *testing.T) {
		p := build(t, urlJur("fail_open"), BuildOptions{Fetch: down})
		j := p.Lookup("remote")
		if j.Loaded || j.Status(testNow) != "not loaded (fail_open)" {
			t.Fatalf("jurisdiction %+v", j)
		}
		cs := p.ClientSet(remoteClient)
		if v := p.Match("ai.example", cs, testNow); v.Decision != DecisionNone {
			t.Errorf("ai.example: %v", v.Decision)
		}
		if v := p.Match("chat.deepseek.com", cs, testNow); v.Decision != DecisionBlock || v.Jurisdiction.ID != "au-gov" {
			t.Errorf("the client's other jurisdictions must still apply: %+v", v)
		}
	})
	t.Run("last_known_good", func(t *testing.T) {
		if _, err := Build(context.Background(), urlJur(""), BuildOptions{Fetch: down}); err == nil ||
			!strings.Contains(err.Error(), "jurisdictions[0].sources[0]: connection refused (on_load_failure last_known_good: no previous copy)") {
			t.Fatalf("first build without a copy: %v", err)
		}
		prev := build(t, urlJur(""), BuildOptions{Fetch: good})
		p := build(t, urlJur(""), BuildOptions{Fetch: down, Previous: prev})
		j := p.Lookup("remote")
		s := j.Sources[0]
		if !j.Loaded || !s.Stale || s.Entries != 2 || !strings.Contains(s.Err, "connection refused") {
			t.Fatalf("source %+v", s)
		}
		v := p.Match("ai.example", p.ClientSet(remoteClient), testNow)
		if v.Decision != DecisionBlock || v.Jurisdiction != j || v.Line != 1 {
			t.Fatalf("verdict %+v", v)
		}
		if p.Hash() != prev.Hash() {
			t.Error("last known good rules changed the policy hash")
		}
		// And once more from the stale policy.
		p2 := build(t, urlJur(""), BuildOptions{Fetch: down, Previous: p})
		if p2.Entries("remote") != 2 {
			t.Errorf("entries %d", p2.Entries("remote"))
		}
	})
}

func TestGuards(t *testing.T) {
	const url = "https://lists.example/g.txt"
	cfg := func(src config.Source) *config.Config {
		src.URL = url
		return &config.Config{Jurisdictions: []config.Jurisdiction{{
			JurisdictionAttrs: config.JurisdictionAttrs{ID: "g", OnLoadFailure: "fail_open"},
			Sources:           []config.Source{src},
		}}, DefaultJurisdictions: []string{"g"}}
	}
	full := fetcher{url: "a.example\nb.example\nc.example\nd.example\n"}.fetch
	half := fetcher{url: "a.example\n"}.fetch
	prev := build(t, cfg(config.Source{}), BuildOptions{Fetch: full})
	tests := []struct {
		name    string
		src     config.Source
		fetch   func(context.Context, string, config.Source, func([]byte, int) (int, error)) error
		wantErr string
	}{
		{name: "min_entries met", src: config.Source{MinEntries: 4}, fetch: full},
		{name: "min_entries", src: config.Source{MinEntries: 5}, fetch: full, wantErr: "4 entries, fewer than min_entries 5"},
		{name: "must_contain met", src: config.Source{MustContain: []string{"x.b.example"}}, fetch: full},
		{name: "must_contain", src: config.Source{MustContain: []string{"deepseek.com"}}, fetch: full, wantErr: "must_contain deepseek.com: not blocked"},
		{name: "sha256", src: config.Source{SHA256: strings.Repeat("ab", 32)}, fetch: full, wantErr: "does not match the pinned"},
		{name: "max_shrink met", src: config.Source{MaxShrink: 0.8}, fetch: half},
		{name: "max_shrink", src: config.Source{MaxShrink: 0.5}, fetch: half, wantErr: "1 entries, shrunk from 4 by more than max_shrink 0.5"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := build(t, cfg(tc.src), BuildOptions{Fetch: tc.fetch, Previous: prev})
			j := p.Lookup("g")
			if tc.wantErr == "" {
				if !j.Loaded || j.Entries == 0 {
					t.Fatalf("not loaded: %s", j.LoadError)
				}
				return
			}
			if j.Loaded || !strings.Contains(j.LoadError, tc.wantErr) || j.Entries != 0 {
				t.Fatalf("loaded %v entries %d error %q, want %q", j.Loaded, j.Entries, j.LoadError, tc.wantErr)
			}
			if v := p.Match("a.example", nil, testNow); v.Decision != DecisionNone {
				t.Error("rules of a failed source still match")
			}
		})
	}
}

func TestRPZLocalData(t *testing.T) {
	p := build(t, &config.Config{
		Jurisdictions: []config.Jurisdiction{with(jd("l", "local", nil), source("rpz",
			"$ORIGIN rpz.example.", "@ SOA ns.rpz.example. hostmaster.rpz.example. 1 3600 600 86400 60",
			"portal.example.rpz.example. A 192.0.2.80", "  AAAA 2001:db8::80", "drop.example CNAME rpz-drop."))},
		DefaultJurisdictions: []string{"l"},
	}, BuildOptions{})
	v := p.Match("portal.example", nil, testNow)
	want := []netip.Addr{netip.MustParseAddr("192.0.2.80"), netip.MustParseAddr("2001:db8::80")}
	if v.Decision != DecisionBlock || v.Action != ActionIP || !slices.Equal(v.Addrs, want) || v.Line != 3 {
		t.Fatalf("local data verdict %+v", v)
	}
	if v := p.Match("drop.example", nil, testNow); v.Action != ActionDrop || v.Line != 5 {
		t.Fatalf("drop verdict %+v", v)
	}
	if v := p.Match("x.portal.example", nil, testNow); v.Decision != DecisionNone {
		t.Fatalf("an RPZ trigger without *. matched a subdomain: %+v", v)
	}
}

// TestFailedSourceLiftsNothing: the allow rules of a source that failed
// after it was indexed are dead too.
func TestFailedSourceLiftsNothing(t *testing.T) {
	p := build(t, &config.Config{
		Jurisdictions: []config.Jurisdiction{
			jd("loc", "local", example),
			{
				JurisdictionAttrs: config.JurisdictionAttrs{ID: "m", Tier: "mandated", OnLoadFailure: "fail_open"},
				Sources: []config.Source{{
					Name: "exceptions", Format: "adblock", Inline: []string{"@@||example.com^"}, MinEntries: 2,
				}},
			},
		},
		DefaultJurisdictions: []string{"loc", "m"},
	}, BuildOptions{})
	if p.Lookup("m").Loaded {
		t.Fatal("guard did not fail")
	}
	if v := p.Match("example.com", nil, testNow); v.Decision != DecisionBlock || v.Jurisdiction.ID != "loc" {
		t.Fatalf("verdict %+v", v)
	}
	e := p.Explain("example.com", netip.Addr{}, testNow)
	var outcomes []string
	for _, m := range e.Matches {
		outcomes = append(outcomes, m.Jurisdiction+" "+m.Outcome)
	}
	if !slices.Equal(outcomes, []string{"m failed", "loc decides"}) {
		t.Errorf("explain outcomes %v", outcomes)
	}
}

func TestHashAndDiff(t *testing.T) {
	jurs := []config.Jurisdiction{
		jd("one", "local", []string{"a.example", "b.example", "c.example"}),
		jd("two", "mandated", []string{"x.example"}, "ok.x.example"),
	}
	cfg := func(js ...config.Jurisdiction) *config.Config {
		return &config.Config{Jurisdictions: js, DefaultJurisdictions: []string{"one", "two"},
			Clients: []config.Client{{Name: "c", Subnets: []string{"10.0.0.0/8", "192.0.2.0/24"}, Jurisdictions: []string{"two"}}}}
	}
	p1 := build(t, cfg(jurs...), BuildOptions{})
	p2 := build(t, cfg(jurs...), BuildOptions{})
	if len(p1.Hash()) != 64 || p1.Hash() != p2.Hash() {
		t.Fatalf("same input, hashes %s and %s", p1.Hash(), p2.Hash())
	}
	reordered := cfg(jurs[1], with(jurs[0], func(j *config.Jurisdiction) {
		j.Sources[0].Inline = []string{"c.example", "# comment", "a.example", "b.example"}
	}))
	reordered.Clients[0].Subnets = []string{"192.0.2.0/24", "10.0.0.0/8"}
	if p3 := build(t, reordered, BuildOptions{}); p3.Hash() != p1.Hash() {
		t.Error("reordering jurisdictions, rules or subnets changed the hash")
	}
	changed := cfg(with(jurs[0], func(j *config.Jurisdiction) {
		j.Sources[0].Inline = []string{"a.example", "b.example", "d.example", "e.example"}
	}), jurs[1])
	p4 := build(t, changed, BuildOptions{})
	if p4.Hash() == p1.Hash() || p4.Lookup("one").Hash == p1.Lookup("one").Hash {
		t.Error("a changed rule did not change the hash")
	}
	if p4.Lookup("two").Hash != p1.Lookup("two").Hash {
		t.Error("an unchanged jurisdiction changed its hash")
	}
	ttl := cfg(jurs[0], with(jurs[1], func(j *config.Jurisdiction) { j.TTL = time.Hour }))
	if build(t, ttl, BuildOptions{}).Hash() == p1.Hash() {
		t.Error("a changed TTL did not change the hash")
	}
	got := Diff(p1, p4)
	if len(got) != 1 || got["one"] != (Change{Added: 2, Removed: 1}) {
		t.Errorf("Diff = %v, want one: +2 -1", got)
	}
	if got := Diff(nil, p1); got["one"] != (Change{Added: 3}) || got["two"] != (Change{Added: 2}) {
		t.Errorf("Diff from nil = %v", got)
	}
	if got := Diff(p1, p2); len(got) != 0 {
		t.Errorf("Diff of equal policies = %v", got)
	}
	if p1.Entries("two") != 2 || p1.Entries("nope") != 0 {
		t.Errorf("Entries: %d %d", p1.Entries("two"), p1.Entries("nope"))
	}
}

func TestExplain(t *testing.T) {
	p := build(t, &config.Config{
		Jurisdictions: []config.Jurisdiction{
			jd("adv", "advisory", example),
			jd("loc", "local", nil, "www.example.com"),
			with(jd("rep", "mandated", example), report),
			with(jd("old", "mandated", example), expires("2025-01-01")),
			jd("elsewhere", "mandated", example),
			jd("m", "mandated", []string{"*.www.example.com"}),
		},
		DefaultJurisdictions: []string{"adv", "loc", "rep", "old", "m"},
	}, BuildOptions{})
	e := p.Explain("A.WWW.Example.com.", netip.Addr{}, testNow)
	if e.Canonical != "a.www.example.com" || e.ClientEntry != "default" || e.Decision != "block" ||
		e.Jurisdiction != "m" || e.Rule != "*.www.example.com" || e.Action != "nxdomain" || e.EDE == nil || *e.EDE != 16 ||
		e.TTLSeconds != 60 || !slices.Equal(e.Reported, []string{"rep"}) || e.PolicyHash != p.Hash() {
		t.Fatalf("explanation %+v", e)
	}
	if e.EDEText != "m: m; rule *.www.example.com (m-list)" {
		t.Errorf("EDE text %q", e.EDEText)
	}
	got := map[string]string{}
	for _, m := range e.Matches {
		got[m.Jurisdiction+" "+m.Rule] = m.Outcome + " " + m.LiftedBy
	}
	want := map[string]string{
		"adv example.com":     "lifted loc: www.example.com (jurisdictions[1].allow[0]:1)",
		"loc www.example.com": "allows ",
		"rep example.com":     "report ",
		"old example.com":     "inactive ",
		"m *.www.example.com": "decides ",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("matches:\n got %v\nwant %v", got, want)
	}
	if !slices.Contains(e.Elsewhere, "elsewhere") || slices.Contains(e.Elsewhere, "adv") {
		t.Errorf("elsewhere %v", e.Elsewhere)
	}
	if len(e.Jurisdictions) != 5 || e.Jurisdictions[3].Status != "expired 2025-01-01" {
		t.Errorf("jurisdictions %+v", e.Jurisdictions)
	}
	if bad := p.Explain("bad..name", netip.Addr{}, testNow); bad.NameError == "" || bad.Decision != "none" {
		t.Errorf("invalid name: %+v", bad)
	}
}

func TestEDEText(t *testing.T) {
	long := strings.Repeat("é", 150) // 300 bytes
	tests := []struct {
		name string
		j    Jurisdiction
		v    Verdict
		want string
	}{
		{
			name: "instrument and rule",
			j:    Jurisdiction{Description: Description{ID: "au-gov", Instrument: "PSPF Direction 001-2025"}},
			v:    Verdict{Decision: DecisionBlock, Rule: "deepseek.com", Source: "deepseek-core"},
			want: "au-gov: PSPF Direction 001-2025; rule deepseek.com (deepseek-core)",
		},
		{
			name: "title when there is no instrument, below rule",
			j:    Jurisdiction{Description: Description{ID: "acme", Title: "ACME policy"}},
			v:    Verdict{Decision: DecisionBlock, Rule: "x.example", Kind: blocklists.Below, Source: "inline"},
			want: "acme: ACME policy; rule *.x.example (inline)",
		},
		{
			name: "cut at 200 bytes on a rune boundary",
			j:    Jurisdiction{Description: Description{ID: "x", Instrument: long}},
			v:    Verdict{Decision: DecisionBlock, Rule: "r", Source: "s"},
			want: "x: " + strings.Repeat("é", 98),
		},
		{name: "no decision", j: Jurisdiction{Description: Description{ID: "x"}}, v: Verdict{}, want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.v.Jurisdiction = &tc.j
			got := string(tc.v.AppendEDEText([]byte(nil)))
			if got != tc.want || len(got) > 200 || !utf8.ValidString(got) {
				t.Errorf("got %q (%d bytes), want %q", got, len(got), tc.want)
			}
		})
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	p := build(t, &config.Config{
		Jurisdictions: []config.Jurisdiction{
			with(jd("rep", "mandated", []string{"deepseek.com"}), report),
			jd("loc", "local", nil, "api.deepseek.com"),
		},
		Clients: []config.Client{{Name: "c", Subnets: []string{"10.0.0.0/8"}, Jurisdictions: []string{"rep", "us-gov", "loc", "bypass"}}},
	}, BuildOptions{})
	client := netip.MustParseAddr("::ffff:10.1.2.3")
	for _, q := range []string{"chat.deepseek.com", "api.deepseek.com", "www.example.org", "_dns.resolver.arpa", "a.b.c.d.e.f.g.h.example.com."} {
		var v Verdict
		allocs := testing.AllocsPerRun(100, func() {
			v = p.Match(q, p.ClientSet(client), testNow)
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per Match", q, allocs)
		}
		if q == "chat.deepseek.com" && (v.Decision != DecisionBlock || v.NReported != 1) {
			t.Errorf("%s: %+v", q, v)
		}
	}
}

// shippedLine returns the line of the first line of a shipped file that
// contains text.
func shippedLine(t *testing.T, file, text string) int {
	t.Helper()
	b, err := fs.ReadFile(shipped.FS, file)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, text) {
			return i + 1
		}
	}
	t.Fatalf("%s: no %q", file, text)
	return 0
}

func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestStructuredEDEText: with a contact, the EDE text of a block is the
// JSON of draft-ietf-dnsop-structured-dns-error, valid and within 200
// bytes however long the plain text is; without one, the plain text stays.
func TestStructuredEDEText(t *testing.T) {
	p := build(t, &config.Config{
		StructuredErrors: config.StructuredErrors{Contact: "mailto:it@acme.example", Organisation: "ACME IT"},
		Jurisdictions: []config.Jurisdiction{
			jd("acme", "local", []string{"acme-only.example"}),
			with(jd("gov", "mandated", []string{"x.example"}), func(j *config.Jurisdiction) {
				j.Contact = "it-help@gov.example" // its own, bare e-mail
				j.Instrument = strings.Repeat(`"Direction" \ é `, 20)
			}),
		},
		Clients: []config.Client{{Name: "c", Subnets: []string{"10.0.0.0/8"}, Jurisdictions: []string{"acme", "gov", "us-gov"}}},
	}, BuildOptions{})
	cs := p.ClientSet(netip.MustParseAddr("10.1.2.3"))
	type sde struct {
		C []string `json:"c"`
		J string   `json:"j"`
		O string   `json:"o"`
		S *int     `json:"s"`
		L string   `json:"l"`
	}
	parse := func(q string) (sde, string) {
		t.Helper()
		v := p.Match(q, cs, testNow)
		text := v.AppendEDEText(nil)
		var got sde
		if err := json.Unmarshal(text, &got); err != nil || len(text) > 200 || !utf8.Valid(text) {
			t.Fatalf("%s: %q (%d bytes): %v", q, text, len(text), err)
		}
		return got, string(text)
	}
	got, text := parse("www.acme-only.example")
	if len(got.C) != 1 || got.C[0] != "mailto:it@acme.example" || got.O != "ACME IT" || got.S == nil || *got.S != 6 || got.L != "en" ||
		got.J != "acme: acme; rule acme-only.example (acme-list)" {
		t.Errorf("acme: %s", text)
	}
	got, text = parse("www.x.example")
	if len(got.C) != 1 || got.C[0] != "mailto:it-help@gov.example" || got.O != "" || got.S != nil || !strings.HasPrefix(got.J, `gov: "Direction" \ é`) ||
		strings.Contains(got.J, "rule") {
		t.Errorf("gov: %s", text)
	}
	if len(text) < 190 {
		t.Errorf("the justification was cut too short: %d bytes", len(text))
	}
	allocs := testing.AllocsPerRun(100, func() {
		v := p.Match("www.x.example", cs, testNow)
		var buf [256]byte
		_ = v.AppendEDEText(buf[:0])
	})
	if allocs != 0 {
		t.Errorf("%v allocations", allocs)
	}
	plain := build(t, &config.Config{DefaultJurisdictions: []string{"au-gov"}}, BuildOptions{})
	if v := plain.Match("chat.deepseek.com", nil, testNow); string(v.AppendEDEText(nil)) != "au-gov: PSPF Direction 001-2025; rule deepseek.com (deepseek-core)" {
		t.Errorf("no contact: %q", v.AppendEDEText(nil))
	}
	longest := config.StructuredErrors{Contact: "mailto:" + strings.Repeat("m", 57), Organisation: strings.Repeat("o", 32)}
	if _, err := Build(context.Background(), &config.Config{StructuredErrors: longest}, BuildOptions{}); err != nil {
		t.Errorf("the longest valid contact and organisation: %v", err)
	}
	longest.Organisation = strings.Repeat(`"`, 32) // escaped, twice as long
	if _, err := Build(context.Background(), &config.Config{StructuredErrors: longest}, BuildOptions{}); err == nil ||
		!strings.Contains(err.Error(), "structured_errors: contact and organisation take 16") || strings.Count(err.Error(), "structured_errors") != 1 {
		t.Errorf("too long once escaped: %v", err)
	}
	_, err := Build(context.Background(), &config.Config{Jurisdictions: []config.Jurisdiction{{JurisdictionAttrs: config.JurisdictionAttrs{ID: "x"}, Organisation: "ACME"}}}, BuildOptions{})
	if err == nil || !strings.Contains(err.Error(), "jurisdictions[0].organisation: needs a contact") {
		t.Errorf("organisation without contact: %v", err)
	}
}

// FuzzStructuredEDEText: whatever the names, the structured EDE text is
// valid JSON, valid UTF-8 and at most 200 bytes, and its justification is
// a prefix of the plain text.
func FuzzStructuredEDEText(f *testing.F) {
	f.Add("PSPF Direction 001-2025", "deepseek.com", "deepseek-core", "ACME IT")
	f.Add(`"\`+"\x00\x7f\xff", "é", strings.Repeat("ü", 120), "")
	f.Fuzz(func(t *testing.T, instr, rule, source, org string) {
		if len(org) > 32 {
			org = org[:32]
		}
		j := &Jurisdiction{Description: Description{ID: "x", Instrument: instr, Contact: "mailto:it@acme.example", Organisation: org}, EDE: 15}
		j.sde = structuredPrefix(j)
		if len(j.sde) > maxSDEPrefix {
			return // rejected by Build
		}
		v := Verdict{Decision: DecisionBlock, Jurisdiction: j, Rule: rule, Source: source}
		text := v.AppendEDEText(nil)
		var got struct {
			C []string `json:"c"`
			J string   `json:"j"`
		}
		if len(text) > maxEDEText || !utf8.Valid(text) {
			t.Fatalf("%d bytes, valid UTF-8 %v: %q", len(text), utf8.Valid(text), text)
		}
		if err := json.Unmarshal(text, &got); err != nil || len(got.C) != 1 {
			t.Fatalf("%q: %v", text, err)
		}
		parts := v.blockText()
		plain := strings.Join(parts[:], "")
		// (Invalid UTF-8 bytes become U+FFFD each: only valid text compares.)
		if utf8.ValidString(plain) && !strings.HasPrefix(plain, got.J) {
			t.Fatalf("j %q is not a prefix of the plain text %q", got.J, plain)
		}
	})
}

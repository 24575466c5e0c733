package resolver

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/config"
	"github.com/jurisdns/jurisdns/policy"
)

// copyingAuditor keeps the last event the way the status page does: the
// strings copied into buffers it reuses, so that keeping them allocates
// nothing once warm.
type copyingAuditor struct {
	n          int
	name, rule []byte
	ev         policy.Event
}

func (a *copyingAuditor) PolicyEvent(ev *policy.Event) {
	a.n++
	a.name = append(a.name[:0], ev.Name...)
	a.rule = append(a.rule[:0], ev.Rule...)
	a.ev = *ev
	a.ev.Name, a.ev.Rule = "", ""
}

// TestFastBlockAuditedWithoutAllocating checks that a blocked query on the
// fast path hands the auditor a complete event (name, rule with its "*."
// for a name below the listed one, jurisdiction, action) and allocates
// nothing doing so.
func TestFastBlockAuditedWithoutAllocating(t *testing.T) {
	// The default jurisdictions plus one whose rule matches only below a
	// name ("*.below.example": the event's rule text gets its "*.").
	path := filepath.Join(t.TempDir(), "jurisdns.yaml")
	yaml := `jurisdictions:
  - id: wild
    title: Wildcard test
    tier: local
    sources: [{name: w, inline: ["*.below.example"], format: wildcard}]
`
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(config.LoadOptions{Path: path, Env: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	cfg.DefaultJurisdictions = append(cfg.DefaultJurisdictions, "wild")
	pol, err := policy.Build(context.Background(), cfg, policy.BuildOptions{BaseDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(ServerOptions{Cache: NewCache(CacheOptions{Size: 100, MaxTTL: time.Hour})})
	rt, err := s.NewRuntime(cfg, pol, stubUpstream{}, []string{"stub"})
	if err != nil {
		t.Fatal(err)
	}
	s.Swap(rt)
	a := &copyingAuditor{}
	s.audit = a
	client := netip.MustParseAddrPort("127.0.0.1:5353")
	w := newWorker()
	for _, tc := range []struct{ qname, name string }{
		{"Chat.DeepSeek.com.", "chat.deepseek.com."},
		{"deepseek.com.", "deepseek.com."},
		{"x.y.chat.deepseek.com.", "x.y.chat.deepseek.com."},
		{"WWW.below.example.", "www.below.example."},
	} {
		rt := s.Runtime()
		v := rt.Policy.Match(tc.name, rt.Policy.ClientSet(client.Addr()), s.now())
		want := v.RuleText() // what the slow path records
		if tc.name == "www.below.example." && want != "*.below.example" {
			t.Fatalf("the wildcard rule reads %q", want)
		}
		pkt := packQuery(tc.qname, dns.TypeA, true)
		if _, ok := s.fast(w, s.Runtime(), pkt, client); !ok {
			t.Fatalf("%s: not blocked on the fast path", tc.qname)
		}
		if string(a.name) != tc.name || string(a.rule) != want || want == "" {
			t.Errorf("%s: event name %q rule %q, want %q %q", tc.qname, a.name, a.rule, tc.name, want)
		}
		wantInstr := v.Jurisdiction.Instrument
		if v.Instrument != nil {
			wantInstr = v.Instrument.Name // the deciding instrument
		}
		if a.ev.Instrument != wantInstr || (v.Jurisdiction.ID == "ai-deepseek" && wantInstr == "") {
			t.Errorf("%s: event instrument %q, want %q", tc.qname, a.ev.Instrument, wantInstr)
		}
		if a.ev.Jurisdiction == nil || a.ev.Mode != "enforce" || a.ev.Action == "" || a.ev.Client != client.Addr() || a.ev.Qtype != dns.TypeA {
			t.Errorf("%s: incomplete event %+v", tc.qname, a.ev)
		}
		allocs := testing.AllocsPerRun(100, func() {
			if _, ok := s.fast(w, s.Runtime(), pkt, client); !ok {
				t.Fatal("not blocked")
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %.1f allocations per audited block, want 0", tc.qname, allocs)
		}
	}
	if a.n == 0 {
		t.Fatal("the auditor saw nothing")
	}
}

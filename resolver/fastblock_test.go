package resolver_test

import (
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/config"
	"github.com/jurisdns/jurisdns/resolver"
	"github.com/jurisdns/jurisdns/resolver/resolvertest"
	"github.com/jurisdns/jurisdns/spec"
)

// TestFastBlockMatchesSlowPath checks that blocked answers written by the
// fast path of every transport are byte-for-byte those of the full path.
func TestFastBlockMatchesSlowPath(t *testing.T) {
	up := resolvertest.StartUpstream(t, resolvertest.Echo())
	h, roots := startEncrypted(t, []string{up.Addr()}, func(c *config.Config) {
		c.DefaultJurisdictions = []string{"us-gov", "bypass", "acme-null", "acme-ip", "acme-nodata", "acme-refused", "acme-below"}
		mk := func(id, action string, sink []string, names ...string) config.Jurisdiction {
			return config.Jurisdiction{
				JurisdictionAttrs: config.JurisdictionAttrs{ID: id, Title: id, Tier: "local", Action: spec.Action(action), Sinkhole: sink, EDE: ptr(15)},
				Sources:           []config.Source{{Name: id + "-list", Inline: names}},
			}
		}
		below := mk("acme-below", "", nil, "*.below.example")
		below.Sources[0].Format = "wildcard"
		c.Jurisdictions = []config.Jurisdiction{
			mk("acme-null", "null", nil, "null.example"),
			mk("acme-ip", "ip", []string{"192.0.2.80", "192.0.2.81", "2001:db8::80"}, "sink.example"),
			mk("acme-nodata", "nodata", nil, "nodata.example"),
			mk("acme-refused", "refused", nil, "refused.example"),
			below,
		}
	})
	names := []string{"chat.deepseek.com.", "deepseek.com.", "DeepSeek.com.", "CHAT.DEEPSEEK.COM.", "a.b.Deepseek.COM.",
		"use-application-dns.net.", "mask.icloud.com.", "_dns.resolver.arpa.",
		"null.example.", "X.Null.Example.", "sink.example.", "nodata.example.", "refused.example.", "x.below.example.", "A.B.Below.Example."}
	types := []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeMX, dns.TypeHTTPS, dns.TypeSVCB}
	opts := []struct {
		name string
		f    func(*dns.Msg)
	}{
		{name: "plain", f: func(*dns.Msg) {}},
		{name: "edns", f: func(m *dns.Msg) { m.SetEdns0(1232, false) }},
		{name: "edns_do_512", f: func(m *dns.Msg) { m.SetEdns0(512, true) }},
		{name: "cd_nord", f: func(m *dns.Msg) { m.CheckingDisabled = true; m.RecursionDesired = false; m.SetEdns0(4096, false) }},
	}
	streams := newStreamClients(t, h, roots)
	for _, name := range names {
		for _, qt := range types {
			for _, o := range opts {
				m := new(dns.Msg)
				m.SetQuestion(name, qt)
				m.Id = 4711
				o.f(m)
				wire, _ := m.Pack()
				fast := rawExchange(t, h.addr, wire, 3*time.Second)
				sameAnswer(t, name+" "+dns.TypeToString[qt]+" "+o.name+": fast path", fast, h.srv.SlowAnswer(wire, slowClient, resolver.UDP))
				streams.same(t, wire)
			}
		}
	}
	if up.Queries() != 0 {
		t.Errorf("blocked names reached the upstream")
	}
}

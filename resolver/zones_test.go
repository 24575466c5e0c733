package resolver_test

import (
	"testing"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/config"
	"github.com/jurisdns/jurisdns/resolver/resolvertest"
)

// TestLocalZonesForwardsAndSpecialNames: a local zone answers with AA=1, a
// conditional forward goes to its own servers (policy first), and
// special-use names never leave the resolver.
func TestLocalZonesForwardsAndSpecialNames(t *testing.T) {
	def := resolvertest.StartUpstream(t, resolvertest.Answer("@ 60 IN A 192.0.2.100"))
	ad := resolvertest.StartUpstream(t, resolvertest.Answer("@ 60 IN A 10.0.0.10"))
	h := start(t, []string{def.Addr()}, func(c *config.Config) {
		c.Zones = []config.Zone{
			{Name: "corp.example.", File: "corp.example.zone"},
			{Name: "ad.corp.example.", Forward: []string{ad.Addr()}},
			{Name: "10.in-addr.arpa.", Forward: []string{ad.Addr()}},
		}
		c.Jurisdictions = []config.Jurisdiction{{
			JurisdictionAttrs: config.JurisdictionAttrs{ID: "acme", Title: "acme", Tier: "local", EDE: ptr(15)},
			Sources:           []config.Source{{Name: "acme", Inline: []string{"blocked.ad.corp.example"}}},
		}}
		c.DefaultJurisdictions = []string{"us-gov", "acme"}
	})
	tests := []struct {
		name      string
		qname     string
		qtype     uint16
		wantRcode int
		wantAA    bool
		wantAns   int
		wantUp    string // "def", "ad" or "" (none)
	}{
		{name: "local_zone", qname: "mail.corp.example.", qtype: dns.TypeA, wantAA: true, wantAns: 1},
		{name: "local_cname_chain", qname: "a.corp.example.", qtype: dns.TypeA, wantAA: true, wantAns: 3},
		{name: "local_nxdomain", qname: "nope.corp.example.", qtype: dns.TypeA, wantRcode: dns.RcodeNameError, wantAA: true},
		{name: "conditional_forward", qname: "dc1.ad.corp.example.", qtype: dns.TypeA, wantAns: 1, wantUp: "ad"},
		{name: "reverse_private_forwarded", qname: "10.0.0.10.in-addr.arpa.", qtype: dns.TypePTR, wantAns: 1, wantUp: "ad"},
		{name: "policy_before_forward", qname: "blocked.ad.corp.example.", qtype: dns.TypeA, wantRcode: dns.RcodeNameError},
		{name: "default_upstream", qname: "www.example.org.", qtype: dns.TypeA, wantAns: 1, wantUp: "def"},
		{name: "localhost", qname: "localhost.", qtype: dns.TypeA, wantAA: true, wantAns: 1},
		{name: "invalid", qname: "foo.invalid.", qtype: dns.TypeA, wantRcode: dns.RcodeNameError, wantAA: true},
		{name: "single_label", qname: "printer.", qtype: dns.TypeA, wantRcode: dns.RcodeNameError, wantAA: true},
		{name: "rfc6303_reverse", qname: "1.1.168.192.in-addr.arpa.", qtype: dns.TypePTR, wantRcode: dns.RcodeNameError, wantAA: true},
		{name: "resolver_arpa", qname: "resolver.arpa.", qtype: dns.TypeA, wantAA: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			def.Reset()
			ad.Reset()
			for _, n := range nets {
				r := resolvertest.Query(t, h.addr, n, tc.qname, tc.qtype)
				if r.Rcode != tc.wantRcode || r.Authoritative != tc.wantAA || len(r.Answer) != tc.wantAns {
					t.Fatalf("%s: rcode %s AA %v answers %d, want %s %v %d\n%v", n, dns.RcodeToString[r.Rcode], r.Authoritative, len(r.Answer),
						dns.RcodeToString[tc.wantRcode], tc.wantAA, tc.wantAns, r)
				}
			}
			gotDef, gotAD := def.Queries() > 0, ad.Queries() > 0
			if gotDef != (tc.wantUp == "def") || gotAD != (tc.wantUp == "ad") {
				t.Errorf("upstream queries: default %d, ad %d; want %q", def.Queries(), ad.Queries(), tc.wantUp)
			}
		})
	}
}

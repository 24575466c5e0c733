package zones

import (
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

func TestDDRRecords(t *testing.T) {
	t.Parallel()
	rrs := DDRRecords("DNS.Corp.Example", []DDREndpoint{
		{ALPN: "dot", Port: 853, Hints: []netip.Addr{netip.MustParseAddr("10.0.0.53"), netip.MustParseAddr("fd00::53")}},
		{ALPN: "h2", Port: 443, DoHPath: "/dns-query", Hints: []netip.Addr{netip.MustParseAddr("::ffff:10.0.0.53")}},
		{ALPN: "dot", Port: 8853},
	})
	want := []string{
		`_dns.resolver.arpa.	3600	IN	SVCB	1 dns.corp.example. alpn="dot" port="853" ipv4hint="10.0.0.53" ipv6hint="fd00::53"`,
		`_dns.resolver.arpa.	3600	IN	SVCB	2 dns.corp.example. alpn="h2" port="443" ipv4hint="10.0.0.53" dohpath="/dns-query{?dns}"`,
		`_dns.resolver.arpa.	3600	IN	SVCB	3 dns.corp.example. alpn="dot" port="8853"`,
	}
	if len(rrs) != len(want) {
		t.Fatalf("got %d records, want %d", len(rrs), len(want))
	}
	for i, rr := range rrs {
		if rr.String() != want[i] {
			t.Errorf("record %d:\n got %s\nwant %s", i, rr, want[i])
		}
		// Every record packs (keys in ascending order, RFC 9460 §2.2).
		buf := make([]byte, 512)
		if _, err := dns.PackRR(rr, buf, 0, nil, false); err != nil {
			t.Errorf("record %d does not pack: %v", i, err)
		}
	}
}

func TestSpecialsDDR(t *testing.T) {
	t.Parallel()
	ddr := DDRRecords("dns.corp.example.", []DDREndpoint{{ALPN: "dot", Port: 853}, {ALPN: "h2", Port: 443, DoHPath: "/dns-query"}})
	on := NewSpecials(nil, SpecialOptions{DDR: ddr})
	off := NewSpecials(nil, SpecialOptions{})
	q := func(name string, qt uint16) *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion(name, qt)
		return m
	}
	tests := []struct {
		name     string
		s        *Specials
		qname    string
		qt       uint16
		wantAns  int
		wantSOA  bool
		wantDDR  bool
		wantName string
	}{
		{name: "svcb_on", s: on, qname: "_dns.resolver.arpa.", qt: dns.TypeSVCB, wantAns: 2, wantDDR: true, wantName: "_dns.resolver.arpa."},
		{name: "svcb_on_case_kept", s: on, qname: "_DNS.Resolver.ARPA.", qt: dns.TypeSVCB, wantAns: 2, wantName: "_DNS.Resolver.ARPA."},
		{name: "any_on", s: on, qname: "_dns.resolver.arpa.", qt: dns.TypeANY, wantAns: 2, wantDDR: true, wantName: "_dns.resolver.arpa."},
		{name: "a_on_nodata", s: on, qname: "_dns.resolver.arpa.", qt: dns.TypeA, wantSOA: true, wantDDR: true},
		{name: "other_name_on_nodata", s: on, qname: "x._dns.resolver.arpa.", qt: dns.TypeSVCB, wantSOA: true},
		{name: "svcb_off_nodata", s: off, qname: "_dns.resolver.arpa.", qt: dns.TypeSVCB, wantSOA: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := tc.s.Answer(q(tc.qname, tc.qt))
			if m == nil {
				t.Fatal("no answer")
			}
			if m.Rcode != dns.RcodeSuccess || len(m.Answer) != tc.wantAns || (len(m.Ns) == 1) != tc.wantSOA {
				t.Fatalf("got rcode %d, %d answers, %d authority: %v", m.Rcode, len(m.Answer), len(m.Ns), m)
			}
			for _, rr := range m.Answer {
				if rr.Header().Name != tc.wantName {
					t.Errorf("owner %q, want %q", rr.Header().Name, tc.wantName)
				}
			}
			if got := tc.s.DDR(dns.CanonicalName(tc.qname)); got != tc.wantDDR && tc.qname == dns.CanonicalName(tc.qname) {
				t.Errorf("DDR(%q) = %v, want %v", tc.qname, got, tc.wantDDR)
			}
		})
	}
	// The records handed out are copies: a caller changing one does not
	// change the next answer.
	m := on.Answer(q("_dns.resolver.arpa.", dns.TypeSVCB))
	m.Answer[0].(*dns.SVCB).Priority = 9
	if on.Answer(q("_dns.resolver.arpa.", dns.TypeSVCB)).Answer[0].(*dns.SVCB).Priority != 1 {
		t.Error("Answer hands out its own records")
	}
}

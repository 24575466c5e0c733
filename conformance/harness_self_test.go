package conformance

import (
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// TestCompareWithKnotCatches checks the suite's own comparison: a reply
// equal to the authoritative one but for one planted fault must be
// reported, so that a passing comparison means something.
func TestCompareWithKnotCatches(t *testing.T) {
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	q := newQuery("WwW.Example.", dns.TypeA, withEDNS(1232, true))
	knot := new(dns.Msg)
	knot.SetReply(q)
	knot.Authoritative = true
	knot.SetEdns0(1232, true)
	knot.Answer = []dns.RR{rr("www.example. 300 IN A 192.0.2.1"), rr("www.example. 300 IN A 192.0.2.2")}
	knot.Ns = []dns.RR{rr("example. 300 IN NS ns.example.")}
	good := func() *dns.Msg {
		m := knot.Copy()
		m.Authoritative = false
		m.RecursionAvailable = true
		m.Answer = []dns.RR{rr("www.example. 299 IN A 192.0.2.2"), rr("WWW.example. 300 IN A 192.0.2.1")} // order, case, lower TTL
		m.Ns = []dns.RR{rr("example. 300 IN NS NS.example.")}
		return m
	}
	if probs := compareWithKnot(q, good(), knot); len(probs) > 0 {
		t.Fatalf("an equivalent reply is reported: %v", probs)
	}
	faults := []struct {
		want  string
		plant func(m *dns.Msg)
	}{
		{"missing", func(m *dns.Msg) { m.Answer = m.Answer[:1] }},
		{"extra", func(m *dns.Msg) { m.Extra = append(m.Extra, rr("ns.example. 300 IN A 192.0.2.53")) }},
		{"TTL 301 above", func(m *dns.Msg) { m.Answer[0].Header().Ttl = 301 }},
		{"duplicate", func(m *dns.Msg) { m.Answer = append(m.Answer, dns.Copy(m.Answer[0])) }},
		{"rcode", func(m *dns.Msg) { m.Rcode = dns.RcodeNameError }},
		{"AA=1", func(m *dns.Msg) { m.Authoritative = true }},
		{"RA=0", func(m *dns.Msg) { m.RecursionAvailable = false }},
		{"TC=true", func(m *dns.Msg) { m.Truncated = true }},
		{"AD=true", func(m *dns.Msg) { m.AuthenticatedData = true }},
		{"case must be kept", func(m *dns.Msg) { m.Question[0].Name = "www.example." }},
		{"ID", func(m *dns.Msg) { m.Id++ }},
		{"DO=false", func(m *dns.Msg) { m.IsEdns0().SetDo(false) }},
		{"no OPT", func(m *dns.Msg) { m.Extra = nil }},
		{"CD=true", func(m *dns.Msg) { m.CheckingDisabled = true }},
	}
	for _, f := range faults {
		m := good()
		f.plant(m)
		probs := compareWithKnot(q, m, knot)
		if !strings.Contains(strings.Join(probs, "\n"), f.want) {
			t.Errorf("planted %q: reported %q", f.want, probs)
		}
	}
}

// TestLongNames checks that the suite's 253-character names are what the
// zone files hold: 253 characters, 255 octets on the wire.
func TestLongNames(t *testing.T) {
	for _, n := range []string{long253, long253NX, long253Signd} {
		if len(n) != 254 { // with the trailing dot
			t.Errorf("%d characters: %s", len(n)-1, n)
		}
		if _, ok := dns.IsDomainName(n); !ok {
			t.Errorf("not a domain name: %s", n)
		}
		if l := (&dns.Msg{Question: []dns.Question{{Name: n, Qtype: dns.TypeA, Qclass: dns.ClassINET}}}).Len() - 12 - 4; l != 255 {
			t.Errorf("%d octets on the wire: %s", l, n)
		}
	}
}

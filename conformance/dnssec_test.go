package conformance

import (
	"fmt"
	"net"
	"testing"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/resolver/resolvertest"
)

// validating returns a handler that answers like a validating resolver
// upstream of jurisdns: A 192.0.2.1 for every name, with AD=1 when adFor
// says so for the query.
func validating(adFor func(q *dns.Msg) bool) dns.HandlerFunc {
	return resolvertest.Func(func(q *dns.Msg) *dns.Msg {
		m := new(dns.Msg)
		m.SetReply(q)
		m.RecursionAvailable = true
		if o := q.IsEdns0(); o != nil {
			m.SetEdns0(1232, o.Do())
		}
		m.Answer = []dns.RR{&dns.A{
			Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300},
			A:   net.IPv4(192, 0, 2, 1).To4(),
		}}
		m.AuthenticatedData = adFor(q)
		return m
	})
}

// rfc6840 is RFC 6840 §5.7: a validating resolver sets AD only when the
// query had AD or DO set.
func rfc6840(q *dns.Msg) bool {
	return q.AuthenticatedData || (q.IsEdns0() != nil && q.IsEdns0().Do())
}

// adClient describes what a client sends: AD in the header, EDNS, DO.
type adClient struct {
	label string
	ad    bool
	edns  bool
	do    bool
	// wantAD is the AD jurisdns must return when the upstream validated
	// the data (RFC 6840 §5.7: only to a client that sent AD or DO).
	wantAD bool
}

var adClients = []adClient{
	{"plain", false, false, false, false},
	{"edns", false, true, false, false},
	{"ad", true, false, false, true},
	{"ad+edns", true, true, false, true},
	{"do", false, true, true, true},
	{"ad+do", true, true, true, true},
}

func (c adClient) query(name string) *dns.Msg {
	var opts []qopt
	if c.edns {
		opts = append(opts, withEDNS(1232, c.do))
	}
	if c.ad {
		opts = append(opts, withAD())
	}
	return newQuery(name, dns.TypeA, opts...)
}

// TestADUpstreamAlwaysSets: the upstream sets AD on every answer. jurisdns
// passes AD only to clients that sent AD or DO, on the miss and on every
// cache hit, whatever client filled the cache entry.
func TestADUpstreamAlwaysSets(t *testing.T) {
	up := resolvertest.StartUpstream(t, validating(func(*dns.Msg) bool { return true }))
	j := startJurisdns(t, []string{up.Addr()}, jopts{})
	testAD(t, j, func(adClient) bool { return true })
}

// TestADUpstreamNeverSets: an upstream that does not validate never sets
// AD, and jurisdns never invents it.
func TestADUpstreamNeverSets(t *testing.T) {
	up := resolvertest.StartUpstream(t, validating(func(*dns.Msg) bool { return false }))
	j := startJurisdns(t, []string{up.Addr()}, jopts{})
	testAD(t, j, func(adClient) bool { return false })
}

// testAD asks, for each client kind first, a name no one asked before, then
// the same name as every other client kind, over UDP and TCP, twice each
// (miss, then cache hits on the fast and the slow path).
func testAD(t *testing.T, j *jurisdns, upstreamAD func(adClient) bool) {
	for i, first := range adClients {
		name := fmt.Sprintf("ad-%d.example.", i)
		order := append([]adClient{first}, adClients...)
		for _, c := range order {
			for _, n := range nets {
				for pass := 1; pass <= 2; pass++ {
					q := c.query(name)
					r := mustExchange(t, j.addr, n, q)
					for _, p := range checkReplyHeader(q, r) {
						t.Errorf("%s (first %s) over %s: %s", c.label, first.label, n, p)
					}
					want := c.wantAD && upstreamAD(c)
					if r.AuthenticatedData != want {
						t.Errorf("name filled by a %s client; a %s client over %s, query %d: AD=%v, want %v",
							first.label, c.label, n, pass, r.AuthenticatedData, want)
					}
				}
			}
		}
	}
}

// TestADRFC6840Upstream: the upstream follows RFC 6840 §5.7 like every
// common validating resolver (unbound, BIND, public resolvers): AD only
// when the query had AD or DO. A client that sends AD without DO (glibc's
// "options trust-ad", systemd-resolved) should then see AD=1, which needs
// jurisdns to ask its upstream with AD=1.
func TestADRFC6840Upstream(t *testing.T) {
	up := resolvertest.StartUpstream(t, validating(rfc6840))
	j := startJurisdns(t, []string{up.Addr()}, jopts{})
	// DO clients work whatever jurisdns sends, since it forwards DO.
	for _, n := range nets {
		q := newQuery("do-"+n+".example.", dns.TypeA, withEDNS(1232, true))
		if r := mustExchange(t, j.addr, n, q); !r.AuthenticatedData {
			t.Errorf("DO client over %s: AD=0 from an upstream that sets AD for DO queries", n)
		}
	}
	t.Run("ad-without-do", func(t *testing.T) {
		for _, n := range nets {
			up.Reset()
			name := "ad-only-" + n + ".example."
			q := newQuery(name, dns.TypeA, withAD())
			r := mustExchange(t, j.addr, n, q)
			last := up.Last()
			if last == nil {
				t.Fatalf("over %s: the query did not reach the upstream", n)
			}
			if !last.AuthenticatedData {
				t.Errorf("over %s: the upstream query had AD=0, so an RFC 6840 upstream cannot say the data validated", n)
			}
			if !r.AuthenticatedData {
				t.Errorf("AD=1 client (no DO) over %s: AD=0", n)
			}
			// A plain client asking next is served from the same cache
			// entry and must not see AD.
			q = newQuery(name, dns.TypeA)
			if r := mustExchange(t, j.addr, n, q); r.AuthenticatedData {
				t.Errorf("plain client over %s after an AD client: AD=1", n)
			}
		}
	})
}

// TestDOAndCDForwarded: the upstream sees the client's DO and CD bits,
// with jurisdns's own EDNS (1232 bytes, version 0, no options).
func TestDOAndCDForwarded(t *testing.T) {
	up := resolvertest.StartUpstream(t, resolvertest.Echo())
	j := startJurisdns(t, []string{up.Addr()}, jopts{})
	i := 0
	for _, do := range []bool{false, true} {
		for _, cd := range []bool{false, true} {
			for _, n := range nets {
				i++
				opts := []qopt{withEDNS(4096, do)}
				if cd {
					opts = append(opts, withCD())
				}
				q := newQuery(fmt.Sprintf("fwd-%d.example.", i), dns.TypeA, opts...)
				up.Reset()
				r := mustExchange(t, j.addr, n, q)
				for _, p := range checkReplyHeader(q, r) {
					t.Errorf("DO=%v CD=%v over %s: %s", do, cd, n, p)
				}
				last := up.Last()
				if last == nil {
					t.Fatalf("DO=%v CD=%v over %s: nothing reached the upstream", do, cd, n)
				}
				o := last.IsEdns0()
				switch {
				case o == nil:
					t.Errorf("DO=%v CD=%v over %s: upstream query without EDNS", do, cd, n)
				case o.Do() != do:
					t.Errorf("DO=%v CD=%v over %s: upstream query has DO=%v", do, cd, n, o.Do())
				}
				if last.CheckingDisabled != cd {
					t.Errorf("DO=%v CD=%v over %s: upstream query has CD=%v", do, cd, n, last.CheckingDisabled)
				}
			}
		}
	}
}

// TestCacheKeyedByCD: a validating upstream answers SERVFAIL for bogus
// data unless CD is set. A CD=1 answer must never be served to a CD=0
// client from the cache, nor a CD=0 SERVFAIL to a CD=1 client.
func TestCacheKeyedByCD(t *testing.T) {
	up := resolvertest.StartUpstream(t, resolvertest.Func(func(q *dns.Msg) *dns.Msg {
		m := new(dns.Msg)
		m.SetReply(q)
		if o := q.IsEdns0(); o != nil {
			m.SetEdns0(1232, o.Do())
		}
		if !q.CheckingDisabled {
			m.Rcode = dns.RcodeServerFailure // bogus: validation failed
			return m
		}
		m.Answer = []dns.RR{&dns.A{
			Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300},
			A:   net.IPv4(192, 0, 2, 66).To4(),
		}}
		return m
	}))
	j := startJurisdns(t, []string{up.Addr()}, jopts{})
	for _, cdFirst := range []bool{true, false} {
		name := fmt.Sprintf("bogus-%v.example.", cdFirst)
		for _, cd := range []bool{cdFirst, !cdFirst, cdFirst, !cdFirst} {
			for _, n := range nets {
				opts := []qopt{withEDNS(1232, true)}
				if cd {
					opts = append(opts, withCD())
				}
				q := newQuery(name, dns.TypeA, opts...)
				r := mustExchange(t, j.addr, n, q)
				for _, p := range checkReplyHeader(q, r) {
					t.Errorf("CD=%v over %s: %s", cd, n, p)
				}
				switch {
				case cd && (r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1):
					t.Errorf("%s, CD=1 over %s (CD=%v asked first): %s with %d records; want the answer",
						name, n, cdFirst, dns.RcodeToString[r.Rcode], len(r.Answer))
				case !cd && r.Rcode != dns.RcodeServerFailure:
					t.Errorf("%s, CD=0 over %s (CD=%v asked first): %s with %d records; want SERVFAIL (the bogus data must not leak from the CD=1 cache entry)",
						name, n, cdFirst, dns.RcodeToString[r.Rcode], len(r.Answer))
				}
			}
		}
	}
}

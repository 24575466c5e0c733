package resolver_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/config"
	"github.com/jurisdns/jurisdns/resolver/resolvertest"
)

// The UDP miss path without a worker (asyncMiss): what its first try does
// not answer goes on as the blocking path would.

// TestMissServfailFailsOver: a SERVFAIL from the first upstream sends the
// query on to the second, and the first is not asked again.
func TestMissServfailFailsOver(t *testing.T) {
	bad := resolvertest.StartUpstream(t, resolvertest.Rcode(dns.RcodeServerFailure))
	good := resolvertest.StartUpstream(t, resolvertest.Echo())
	h := start(t, []string{bad.Addr(), good.Addr()}, nil)
	r := resolvertest.Query(t, h.addr, "udp", "sf.example.", dns.TypeA)
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Fatalf("reply %v: want the second upstream's answer", r)
	}
	if bad.Queries() != 1 || good.Queries() != 1 {
		t.Errorf("queries: first %d, second %d; want 1 and 1", bad.Queries(), good.Queries())
	}
}

// TestMissServfailOnly: with one upstream, its SERVFAIL is the answer.
func TestMissServfailOnly(t *testing.T) {
	bad := resolvertest.StartUpstream(t, resolvertest.Rcode(dns.RcodeServerFailure))
	h := start(t, []string{bad.Addr()}, nil)
	r := resolvertest.Query(t, h.addr, "udp", "sf.example.", dns.TypeA)
	if r.Rcode != dns.RcodeServerFailure {
		t.Fatalf("reply %v: want SERVFAIL", r)
	}
	if bad.Queries() != 1 {
		t.Errorf("upstream asked %d times, want 1", bad.Queries())
	}
}

// TestMissJoinedAcrossTransports: a TCP query for a name whose UDP miss is
// in flight joins its flight: the upstream is asked once, both answered,
// with a cacheable answer and with one that is not (TTL 0: each caller
// gets its own message; -race checks that no two share one).
func TestMissJoinedAcrossTransports(t *testing.T) {
	for _, ttl := range []string{"300", "0"} {
		up := resolvertest.StartUpstream(t, resolvertest.Func(func(r *dns.Msg) *dns.Msg {
			time.Sleep(300 * time.Millisecond)
			m := new(dns.Msg).SetReply(r)
			a, _ := dns.NewRR(r.Question[0].Name + " " + ttl + " IN A 192.0.2.7")
			m.Answer = append(m.Answer, a)
			return m
		}))
		h := start(t, []string{up.Addr()}, func(c *config.Config) { c.Upstreams.TryTimeout = time.Second; c.Upstreams.Timeout = 2 * time.Second })
		var wg sync.WaitGroup
		replies := make([]*dns.Msg, 2)
		for i, n := range []string{"udp", "tcp"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				replies[i] = resolvertest.Query(t, h.addr, n, "joined.example.", dns.TypeA)
			}()
			time.Sleep(100 * time.Millisecond) // UDP first: it leads
		}
		wg.Wait()
		for i, r := range replies {
			if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
				t.Errorf("TTL %s, reply %d: %v", ttl, i, r)
			}
		}
		if n := up.Queries(); n != 1 {
			t.Errorf("TTL %s: upstream asked %d times, want 1", ttl, n)
		}
	}
}

// TestMissUncacheable: an answer with TTL 0 is not cached; the worker the
// query is handed to writes it, and the next query asks again.
func TestMissUncacheable(t *testing.T) {
	up := resolvertest.StartUpstream(t, resolvertest.Answer("@ 0 IN A 192.0.2.8"))
	h := start(t, []string{up.Addr()}, nil)
	for i := range 2 {
		r := resolvertest.Query(t, h.addr, "udp", "zero.example.", dns.TypeA)
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || r.Answer[0].Header().Ttl != 0 {
			t.Fatalf("query %d: %v", i+1, r)
		}
	}
	if n := up.Queries(); n != 2 {
		t.Errorf("upstream asked %d times, want 2", n)
	}
}

// TestMissOwnerCase: the answer's owner, the question's name in the
// upstream query's 0x20 case, written out again (a server that does not
// compress: the Msg path) or pointing at the question (putWire), reaches
// the client in its own case, on the miss and on the hit.
func TestMissOwnerCase(t *testing.T) {
	for _, compress := range []bool{false, true} {
		up := resolvertest.StartUpstream(t, resolvertest.Func(func(r *dns.Msg) *dns.Msg {
			m := new(dns.Msg).SetReply(r)
			m.Compress = compress
			a, _ := dns.NewRR(r.Question[0].Name + " 300 IN A 192.0.2.9")
			m.Answer = append(m.Answer, a)
			return m
		}))
		h := start(t, []string{up.Addr()}, nil)
		const name = "Owner-Case.Example."
		for i := range 2 { // the miss, then the hit
			r := resolvertest.Query(t, h.addr, "udp", name, dns.TypeA)
			if len(r.Answer) != 1 || r.Answer[0].Header().Name != name {
				t.Fatalf("compress %v, query %d: %v; want the owner %q", compress, i+1, r, name)
			}
		}
	}
}

// TestMissReuseKeepsAnswersApart: many distinct misses at once, some with
// identical queries joining (those misses are not reused), each answered
// by the upstream with an address of its own name: every client gets its
// own name's answer, through the reuse of the asyncMiss values (and -race
// sees no value written while another query still reads it).
func TestMissReuseKeepsAnswersApart(t *testing.T) {
	addrOf := func(name string) string {
		var h uint32
		for _, c := range []byte(name) {
			h = h*31 + uint32(c)
		}
		return fmt.Sprintf("10.%d.%d.%d", byte(h>>16), byte(h>>8), byte(h))
	}
	up := resolvertest.StartUpstream(t, resolvertest.Func(func(r *dns.Msg) *dns.Msg {
		m := new(dns.Msg).SetReply(r)
		name := strings.ToLower(r.Question[0].Name)
		a, _ := dns.NewRR(r.Question[0].Name + " 300 IN A " + addrOf(name))
		m.Answer = append(m.Answer, a)
		return m
	}))
	h := start(t, []string{up.Addr()}, nil)
	const clients, each = 16, 40
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for i := range each {
				// Pairs of clients ask the same names: some join a flight.
				name := fmt.Sprintf("n%d-%d.reuse.example.", c/2, i)
				r := resolvertest.Query(t, h.addr, "udp", name, dns.TypeA)
				if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || !strings.EqualFold(r.Question[0].Name, name) {
					t.Errorf("%s: %v", name, r)
					return
				}
				a, ok := r.Answer[0].(*dns.A)
				if !ok || !strings.EqualFold(a.Hdr.Name, name) || a.A.String() != addrOf(name) {
					t.Errorf("%s: answer %v, want %s", name, r.Answer[0], addrOf(name))
					return
				}
			}
		})
	}
	wg.Wait()
}

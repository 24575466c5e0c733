package resolvertest

import (
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestUpstreamAnswerCountsBothTransports(t *testing.T) {
	t.Parallel()
	u := StartUpstream(t, Answer("@ 60 IN A 192.0.2.7"))
	for _, network := range []string{"udp", "tcp"} {
		resp := Query(t, u.Addr(), network, "Mixed.Example", dns.TypeA)
		if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 1 {
			t.Fatalf("%s: got %v", network, resp)
		}
		a, ok := resp.Answer[0].(*dns.A)
		if !ok || a.Hdr.Name != "Mixed.Example." || a.A.String() != "192.0.2.7" || a.Hdr.Ttl != 60 {
			t.Fatalf("%s: answer %v", network, resp.Answer[0])
		}
	}
	if u.Queries() != 2 || u.UDPQueries() != 1 || u.TCPQueries() != 1 {
		t.Fatalf("counts total=%d udp=%d tcp=%d, want 2/1/1", u.Queries(), u.UDPQueries(), u.TCPQueries())
	}
	if last := u.Last(); last == nil || last.Question[0].Name != "Mixed.Example." {
		t.Fatalf("Last() = %v", last)
	}
	u.Reset()
	if u.Queries() != 0 || u.UDPQueries() != 0 || u.TCPQueries() != 0 || u.Last() != nil {
		t.Fatal("Reset did not clear")
	}
}

func TestHandlers(t *testing.T) {
	t.Parallel()
	t.Run("rcode", func(t *testing.T) {
		t.Parallel()
		u := StartUpstream(t, Rcode(dns.RcodeRefused))
		if got := Query(t, u.Addr(), "udp", "x.example", dns.TypeA).Rcode; got != dns.RcodeRefused {
			t.Fatalf("rcode %d", got)
		}
	})
	t.Run("nxdomain", func(t *testing.T) {
		t.Parallel()
		u := StartUpstream(t, NXDomain("example. 300 IN SOA ns.example. h.example. 1 2 3 4 5"))
		resp := Query(t, u.Addr(), "udp", "x.example", dns.TypeA)
		if resp.Rcode != dns.RcodeNameError || len(resp.Ns) != 1 || resp.Ns[0].Header().Rrtype != dns.TypeSOA {
			t.Fatalf("got %v", resp)
		}
	})
	t.Run("truncated", func(t *testing.T) {
		t.Parallel()
		u := StartUpstream(t, Truncated("@ 60 IN A 192.0.2.8"))
		udp := Query(t, u.Addr(), "udp", "x.example", dns.TypeA)
		if !udp.Truncated || len(udp.Answer) != 0 {
			t.Fatalf("udp: %v", udp)
		}
		tcp := Query(t, u.Addr(), "tcp", "x.example", dns.TypeA)
		if tcp.Truncated || len(tcp.Answer) != 1 {
			t.Fatalf("tcp: %v", tcp)
		}
	})
	t.Run("echo_mirrors_edns", func(t *testing.T) {
		t.Parallel()
		u := StartUpstream(t, Echo())
		resp := Query(t, u.Addr(), "udp", "anything.test", dns.TypeA, EDNS(1400, true), CD())
		if len(resp.Answer) != 1 || resp.Answer[0].(*dns.A).A.String() != "192.0.2.1" || resp.Answer[0].Header().Ttl != 300 {
			t.Fatalf("answer %v", resp.Answer)
		}
		opt := resp.IsEdns0()
		if opt == nil || !opt.Do() || opt.UDPSize() != 1400 {
			t.Fatalf("opt %v", opt)
		}
		if !u.Last().CheckingDisabled {
			t.Fatal("CD not sent")
		}
		if resp := Query(t, u.Addr(), "udp", "x.test", dns.TypeAAAA); len(resp.Answer) != 0 || resp.Rcode != dns.RcodeSuccess {
			t.Fatalf("AAAA: %v", resp)
		}
	})
	t.Run("sequence", func(t *testing.T) {
		t.Parallel()
		u := StartUpstream(t, Sequence(Rcode(dns.RcodeServerFailure), Rcode(dns.RcodeNameError)))
		for i, want := range []int{dns.RcodeServerFailure, dns.RcodeNameError, dns.RcodeNameError} {
			if got := Query(t, u.Addr(), "udp", "x.example", dns.TypeA).Rcode; got != want {
				t.Fatalf("query %d: rcode %d, want %d", i, got, want)
			}
		}
	})
	t.Run("func_nil_drops", func(t *testing.T) {
		t.Parallel()
		u := StartUpstream(t, Func(func(r *dns.Msg) *dns.Msg { return nil }))
		m := new(dns.Msg).SetQuestion("x.example.", dns.TypeA)
		c := &dns.Client{Net: "udp", Timeout: 200 * time.Millisecond}
		if _, _, err := c.Exchange(m, u.Addr()); err == nil {
			t.Fatal("got a reply from a dropping handler")
		}
	})
}

// TestSpoofedThenGood checks that All(WrongID(h), WrongQuestion(h), h) sends
// three datagrams: bad ID, bad question, then the real reply.
func TestSpoofedThenGood(t *testing.T) {
	t.Parallel()
	h := Answer("@ 60 IN A 192.0.2.9")
	u := StartUpstream(t, All(WrongID(h), WrongQuestion(h), h))
	conn, err := dns.Dial("udp", u.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	q := new(dns.Msg).SetQuestion("x.example.", dns.TypeA)
	if err := conn.WriteMsg(q); err != nil {
		t.Fatal(err)
	}
	var got []*dns.Msg
	for range 3 {
		m, err := conn.ReadMsg()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, m)
	}
	if got[0].Id == q.Id || got[0].Question[0].Name != "x.example." {
		t.Errorf("first reply should have a wrong ID: %v", got[0])
	}
	if got[1].Id != q.Id || got[1].Question[0].Name == "x.example." {
		t.Errorf("second reply should have a wrong question: %v", got[1])
	}
	if got[2].Id != q.Id || got[2].Question[0].Name != "x.example." || len(got[2].Answer) != 1 {
		t.Errorf("third reply should be good: %v", got[2])
	}
	if _, ok := conn.Conn.(*net.UDPConn); !ok {
		t.Fatalf("not UDP: %T", conn.Conn)
	}
}

package resolver_test

import (
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// answerA is the reply to the query pkt with one A record, the question as
// sent (0x20 case kept), and id as its ID.
func answerA(t *testing.T, pkt []byte, id uint16, a string) []byte {
	q := new(dns.Msg)
	if err := q.Unpack(pkt); err != nil {
		t.Error(err)
		return nil
	}
	m := new(dns.Msg).SetReply(q)
	m.Id = id
	m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300},
		A: net.ParseIP(a).To4()}}
	b, err := m.Pack()
	if err != nil {
		t.Error(err)
	}
	return b
}

// rawUpstream serves UDP on 127.0.0.1 with handle, called for every query
// with its number (from 1) in the server's one read loop.
func rawUpstream(t *testing.T, handle func(pc *net.UDPConn, pkt []byte, from netip.AddrPort, n int64)) string {
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	var n atomic.Int64
	go func() {
		buf := make([]byte, 4096)
		for {
			k, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			handle(pc, append([]byte(nil), buf[:k]...), from, n.Add(1))
		}
	}()
	return pc.LocalAddr().String()
}

// firstA is the address of the first A record of m, or "".
func firstA(m *dns.Msg) string {
	for _, rr := range m.Answer {
		if a, ok := rr.(*dns.A); ok {
			return a.A.String()
		}
	}
	return ""
}

// TestForgedRepliesNeverCached: replies with a wrong ID, a wrong question,
// the question in the wrong case (0x20) or from a wrong source port, each
// carrying a forged address, are never answered to the client nor cached;
// the real reply that follows them is. A reply that comes after its query
// gave up is not cached either: the next query goes to the upstream again.
func TestForgedRepliesNeverCached(t *testing.T) {
	t.Parallel()
	const forged, real = "192.0.2.66", "192.0.2.1"
	other, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	forgeries := map[string]func(pc *net.UDPConn, pkt []byte, from netip.AddrPort){
		"id": func(pc *net.UDPConn, pkt []byte, from netip.AddrPort) {
			id := uint16(pkt[0])<<8 | uint16(pkt[1])
			_, _ = pc.WriteToUDPAddrPort(answerA(t, pkt, id^0x5a5a, forged), from)
		},
		"question": func(pc *net.UDPConn, pkt []byte, from netip.AddrPort) {
			q := new(dns.Msg)
			_ = q.Unpack(pkt)
			q.Question[0].Name = "other.example."
			b, _ := q.Pack()
			_, _ = pc.WriteToUDPAddrPort(answerA(t, b, q.Id, forged), from)
		},
		"case": func(pc *net.UDPConn, pkt []byte, from netip.AddrPort) {
			q := new(dns.Msg)
			_ = q.Unpack(pkt)
			q.Question[0].Name = strings.ToLower(q.Question[0].Name)
			b, _ := q.Pack()
			_, _ = pc.WriteToUDPAddrPort(answerA(t, b, q.Id, forged), from)
		},
		"port": func(_ *net.UDPConn, pkt []byte, from netip.AddrPort) {
			id := uint16(pkt[0])<<8 | uint16(pkt[1])
			_, _ = other.WriteToUDPAddrPort(answerA(t, pkt, id, forged), from)
		},
	}
	for name, forge := range forgeries {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			up := rawUpstream(t, func(pc *net.UDPConn, pkt []byte, from netip.AddrPort, _ int64) {
				forge(pc, pkt, from)
				time.Sleep(30 * time.Millisecond)
				id := uint16(pkt[0])<<8 | uint16(pkt[1])
				_, _ = pc.WriteToUDPAddrPort(answerA(t, pkt, id, real), from)
			})
			h := start(t, []string{up}, nil)
			// 26 letters: the chance that 0x20 leaves them all lower case is 2^-26.
			q := new(dns.Msg).SetQuestion("abcdefghijklmnopqrstuvwxyz.example.", dns.TypeA)
			for i := range 2 { // the second from the cache
				if got := firstA(exchange(t, h.addr, "udp", q, 2*time.Second)); got != real {
					t.Fatalf("query %d: answer %q, want %s", i+1, got, real)
				}
			}
		})
	}
	t.Run("late", func(t *testing.T) {
		t.Parallel()
		held := make(chan func(), 1)
		up := rawUpstream(t, func(pc *net.UDPConn, pkt []byte, from netip.AddrPort, n int64) {
			id := uint16(pkt[0])<<8 | uint16(pkt[1])
			if n == 1 { // answered after the query gave up
				held <- func() { _, _ = pc.WriteToUDPAddrPort(answerA(t, pkt, id, forged), from) }
				return
			}
			_, _ = pc.WriteToUDPAddrPort(answerA(t, pkt, id, real), from)
		})
		h := start(t, []string{up}, nil)
		q := new(dns.Msg).SetQuestion("late.example.", dns.TypeA)
		if m := exchange(t, h.addr, "udp", q, 2*time.Second); m.Rcode != dns.RcodeServerFailure {
			t.Fatalf("first query: %v, want SERVFAIL (the upstream did not answer in time)", m)
		}
		(<-held)()
		time.Sleep(50 * time.Millisecond) // the late reply is read and dropped
		for i := range 2 {
			if got := firstA(exchange(t, h.addr, "udp", q, 2*time.Second)); got != real {
				t.Fatalf("query %d after the late reply: answer %q, want %s", i+2, got, real)
			}
		}
	})
}

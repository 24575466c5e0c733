package upstream_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/upstream"
)

// startRaw runs a UDP server on 127.0.0.1 that hands every datagram to
// handle, in the server's one read loop.
func startRaw(t *testing.T, handle func(pc *net.UDPConn, pkt []byte, from netip.AddrPort)) string {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			handle(pc, append([]byte(nil), buf[:n]...), from)
		}
	}()
	return pc.LocalAddr().String()
}

// reflect is the reply to the query pkt that a server keeping the case
// gives: the query itself, QR set, with rcode.
func reflect(pkt []byte, rcode int) []byte {
	out := append([]byte(nil), pkt...)
	out[2] |= 0x80
	out[3] = out[3]&0xF0 | byte(rcode)
	return out
}

// drops counts OnDrop's calls by reason.
type drops struct {
	mu sync.Mutex
	n  map[string]int
}

func (d *drops) add(reason string) {
	d.mu.Lock()
	if d.n == nil {
		d.n = map[string]int{}
	}
	d.n[reason]++
	d.mu.Unlock()
}

func (d *drops) get(reason string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.n[reason]
}

// TestMuxWrongSourcePort: a reply right in every byte (ID, question, case)
// that comes from another port of the server's address is not accepted; the
// real one that follows is.
func TestMuxWrongSourcePort(t *testing.T) {
	t.Parallel()
	other, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	addr := startRaw(t, func(pc *net.UDPConn, pkt []byte, from netip.AddrPort) {
		_, _ = other.WriteToUDPAddrPort(reflect(pkt, dns.RcodeNameError), from) // the forgery
		if q := new(dns.Msg); q.Unpack(pkt) == nil && q.Question[0].Name[0]|0x20 == 'o' {
			return // "only-forged": no real answer
		}
		time.Sleep(20 * time.Millisecond)
		_, _ = pc.WriteToUDPAddrPort(reflect(pkt, dns.RcodeSuccess), from)
	})
	u := mustParse(t, addr)
	resp, err := exchange(t, u, 2*time.Second, question("forged-first.example.", dns.TypeA))
	if err != nil || resp.Rcode != dns.RcodeSuccess {
		t.Fatalf("got %v, %v; want the server's NOERROR", resp, err)
	}
	if resp, err := exchange(t, u, 300*time.Millisecond, question("only-forged.example.", dns.TypeA)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a reply from another port was accepted: %v, %v", resp, err)
	}
}

// TestMuxLateReply: a reply that comes after its query gave up is read,
// counted as "id" and answers nothing, not the query sent next on the same
// socket for the same name.
func TestMuxLateReply(t *testing.T) {
	t.Parallel()
	var (
		mu    sync.Mutex
		first []byte
		from0 netip.AddrPort
	)
	addr := startRaw(t, func(pc *net.UDPConn, pkt []byte, from netip.AddrPort) {
		mu.Lock()
		defer mu.Unlock()
		if first == nil { // hold the first query's reply
			first, from0 = pkt, from
			return
		}
		if from == from0 {
			// The next query on the first one's socket: the late
			// reply comes first, then this one's.
			_, _ = pc.WriteToUDPAddrPort(reflect(first, dns.RcodeNameError), from0)
			time.Sleep(20 * time.Millisecond)
		}
		_, _ = pc.WriteToUDPAddrPort(reflect(pkt, dns.RcodeSuccess), from)
	})
	var d drops
	u, err := upstream.Parse(addr, upstream.Options{OnDrop: d.add})
	if err != nil {
		t.Fatal(err)
	}
	m := question("late.example.", dns.TypeA)
	if resp, err := exchange(t, u, 200*time.Millisecond, m); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, %v; want a timeout", resp, err)
	}
	// The next three go to the other sockets; the fourth shares the first
	// one's socket (round robin), and meets the late reply there.
	for i := range upstream.MuxSockets {
		resp, err := exchange(t, u, 2*time.Second, m)
		if err != nil || resp.Rcode != dns.RcodeSuccess {
			t.Fatalf("query %d: got %v, %v; want NOERROR", i+2, resp, err)
		}
	}
	// Counted as "id", or "case" in the odd case that the new query drew
	// the old one's ID (0x20 then tells them apart).
	if d.get("id")+d.get("case") != 1 {
		t.Errorf("drops %v: the late reply was not counted once", d.n)
	}
}

// TestMuxOutOfOrder: many queries in flight share a few sockets and each
// gets its own answer, whatever the order the server answers in.
func TestMuxOutOfOrder(t *testing.T) {
	t.Parallel()
	const n = 40
	var (
		mu    sync.Mutex
		held  [][]byte
		froms []netip.AddrPort
		ports = map[uint16]bool{}
	)
	addr := startRaw(t, func(pc *net.UDPConn, pkt []byte, from netip.AddrPort) {
		mu.Lock()
		defer mu.Unlock()
		held, froms = append(held, pkt), append(froms, from)
		ports[from.Port()] = true
		if len(held) < n {
			return
		}
		for i := len(held) - 1; i >= 0; i-- { // last asked, first answered
			_, _ = pc.WriteToUDPAddrPort(reflect(held[i], dns.RcodeSuccess), froms[i])
		}
	})
	u := mustParse(t, addr)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			name := "q" + strconv.Itoa(i) + ".example."
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			resp, err := u.Exchange(ctx, question(name, dns.TypeA))
			if err != nil {
				t.Errorf("%s: %v", name, err)
				return
			}
			if resp.Question[0].Name != name {
				t.Errorf("asked %s, got the answer for %s", name, resp.Question[0].Name)
			}
		})
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(ports) > upstream.MuxSockets {
		t.Errorf("%d queries in flight came from %d ports, want at most %d sockets", n, len(ports), upstream.MuxSockets)
	}
}

// TestMuxRotation: a source port serves at most MuxMaxUses queries, then
// its socket is replaced by one on a new port.
func TestMuxRotation(t *testing.T) {
	t.Parallel()
	var (
		mu    sync.Mutex
		ports []uint16 // of each query, in order
	)
	addr := startRaw(t, func(pc *net.UDPConn, pkt []byte, from netip.AddrPort) {
		mu.Lock()
		ports = append(ports, from.Port())
		mu.Unlock()
		_, _ = pc.WriteToUDPAddrPort(reflect(pkt, dns.RcodeSuccess), from)
	})
	u := mustParse(t, addr)
	const k, uses = upstream.MuxSockets, upstream.MuxMaxUses
	const queries = 3*k*uses + 1
	for i := range queries {
		if _, err := exchange(t, u, 2*time.Second, question("r"+strconv.Itoa(i)+".example.", dns.TypeA)); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	// One at a time, query i goes to socket slot i%k, whose socket is
	// replaced after uses queries: query i uses the generation i/k/uses
	// of its slot, and a new generation opens while the old one is still
	// open, so on another port.
	for i, p := range ports {
		slot, gen := i%k, i/k/uses
		first := gen*uses*k + slot // the generation's first query
		if p != ports[first] {
			t.Fatalf("query %d from port %d, the other queries of its socket from %d", i, p, ports[first])
		}
		if gen > 0 && p == ports[first-uses*k] {
			t.Fatalf("query %d: slot %d kept port %d after %d queries", i, slot, p, uses)
		}
	}
}

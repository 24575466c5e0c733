package upstream_test

import (
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// portServer is a UDP DNS server on 127.0.0.1 that records the source port
// of every query. It answers at once, except names starting with "late",
// which it answers after lateBy (to a socket the client has given up on).
type portServer struct {
	conn   *net.UDPConn
	lateBy time.Duration

	mu    sync.Mutex
	ports []uint16
}

func startPortServer(t *testing.T, lateBy time.Duration) *portServer {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	s := &portServer{conn: c, lateBy: lateBy}
	done := make(chan struct{})
	t.Cleanup(func() { _ = c.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 65535)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			q := new(dns.Msg)
			if q.Unpack(buf[:n]) != nil || len(q.Question) != 1 {
				continue
			}
			s.mu.Lock()
			s.ports = append(s.ports, from.Port())
			s.mu.Unlock()
			r := new(dns.Msg)
			r.SetReply(q)
			rr, _ := dns.NewRR(q.Question[0].Name + " 60 IN A 192.0.2.1")
			r.Answer = []dns.RR{rr}
			out, _ := r.Pack()
			if strings.HasPrefix(strings.ToLower(q.Question[0].Name), "late") {
				time.AfterFunc(s.lateBy, func() { _, _ = c.WriteToUDPAddrPort(out, from) })
				continue
			}
			_, _ = c.WriteToUDPAddrPort(out, from)
		}
	}()
	return s
}

func (s *portServer) seen() []uint16 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]uint16(nil), s.ports...)
}

// TestUDPSocketsPooled checks the reuse rules of the UDP upstream's socket
// pool: sequential queries share a socket, a socket serves a bounded number
// of queries, and a socket whose query timed out is never used again (its
// late reply cannot reach the next query).
func TestUDPSocketsPooled(t *testing.T) {
	srv := startPortServer(t, 300*time.Millisecond)
	u := mustParse(t, srv.conn.LocalAddr().String())

	for i := range 10 {
		if _, err := exchange(t, u, 2*time.Second, question("a"+strconv.Itoa(i)+".example.", dns.TypeA)); err != nil {
			t.Fatal(err)
		}
	}
	ports := srv.seen()
	for _, p := range ports[1:] {
		if p != ports[0] {
			t.Fatalf("10 sequential queries used ports %v; want one pooled socket", ports)
		}
	}

	if _, err := exchange(t, u, 100*time.Millisecond, question("late.example.", dns.TypeA)); err == nil {
		t.Fatal("the late answer came in time")
	}
	latePort := srv.seen()[len(srv.seen())-1]
	time.Sleep(400 * time.Millisecond) // the late reply is sent meanwhile
	resp, err := exchange(t, u, 2*time.Second, question("after.example.", dns.TypeA))
	if err != nil || resp.Question[0].Name != "after.example." {
		t.Fatalf("query after a timeout: %v %v", resp, err)
	}
	if p := srv.seen()[len(srv.seen())-1]; p == latePort {
		t.Errorf("the socket of a timed-out query (port %d) was used again", p)
	}

	before := len(srv.seen())
	for i := range 70 {
		if _, err := exchange(t, u, 2*time.Second, question("b"+strconv.Itoa(i)+".example.", dns.TypeA)); err != nil {
			t.Fatal(err)
		}
	}
	distinct := map[uint16]bool{}
	for _, p := range srv.seen()[before:] {
		distinct[p] = true
	}
	if len(distinct) < 2 {
		t.Errorf("70 sequential queries all used one socket; want a new one after at most 64")
	}
}

// TestUDPPoolClosedByClose: Close closes the pooled sockets at once (not
// when the garbage collector finds them): the port of the pooled socket is
// free again right after Close.
func TestUDPPoolClosedByClose(t *testing.T) {
	srv := startPortServer(t, time.Second)
	u := mustParse(t, srv.conn.LocalAddr().String())
	if _, err := exchange(t, u, 2*time.Second, question("pooled.example.", dns.TypeA)); err != nil {
		t.Fatal(err)
	}
	port := srv.seen()[0]
	addr := net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port))
	if c, err := net.ListenUDP("udp", addr); err == nil {
		_ = c.Close()
		t.Fatalf("port %d is free while its socket is pooled", port)
	}
	if err := u.(io.Closer).Close(); err != nil {
		t.Fatal(err)
	}
	c, err := net.ListenUDP("udp", addr)
	if err != nil {
		t.Fatalf("port %d of the pooled socket is still in use after Close: %v", port, err)
	}
	_ = c.Close()
}

// TestForgedReplyFromOtherPort: a forger who knows everything a reply must
// repeat (the ID, the question in its 0x20 case, the client's port) but
// sends from another source port is never heard: the socket is connected
// to the server's address. The real reply, sent after the forgery, wins.
func TestForgedReplyFromOtherPort(t *testing.T) {
	t.Parallel()
	srv, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	forger, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { _ = srv.Close(); _ = forger.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 65535)
		for {
			n, from, err := srv.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			q := new(dns.Msg)
			if q.Unpack(buf[:n]) != nil || len(q.Question) != 1 {
				continue
			}
			reply := func(ip string) []byte {
				r := new(dns.Msg).SetReply(q) // the ID and the question as sent, 0x20 case included
				rr, _ := dns.NewRR(q.Question[0].Name + " 60 IN A " + ip)
				r.Answer = []dns.RR{rr}
				out, _ := r.Pack()
				return out
			}
			_, _ = forger.WriteToUDPAddrPort(reply("203.0.113.66"), from)
			time.Sleep(50 * time.Millisecond)
			_, _ = srv.WriteToUDPAddrPort(reply("192.0.2.1"), from)
		}
	}()
	u := mustParse(t, srv.LocalAddr().String())
	resp, err := exchange(t, u, 2*time.Second, question("forged.example.", dns.TypeA))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Answer) != 1 || resp.Answer[0].(*dns.A).A.String() != "192.0.2.1" {
		t.Fatalf("accepted %v; want the server's 192.0.2.1, never the forger's", resp.Answer)
	}
}

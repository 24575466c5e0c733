package resolver_test

import (
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/config"
	"github.com/jurisdns/jurisdns/resolver/resolvertest"
)

// TestTCPPipelining sends several queries on one connection before reading
// any reply (RFC 7766 §6.2.1.1): every one is answered, matched by ID.
func TestTCPPipelining(t *testing.T) {
	up := resolvertest.StartUpstream(t, resolvertest.Echo())
	h := start(t, []string{up.Addr()}, nil)
	c, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 200
	names := make([]string, n)
	for i := range names {
		names[i] = "p" + string(rune('a'+i%26)) + ".example."
		if i%3 == 0 {
			names[i] = "chat.deepseek.com."
		}
	}
	writeQueries(t, c, 1000, names)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	seen := map[uint16]bool{}
	for len(seen) < n {
		r, err := readAnswer(c)
		if err != nil {
			t.Fatalf("after %d replies: %v", len(seen), err)
		}
		if seen[r.Id] || r.Id < 1000 || r.Id >= 1000+n {
			t.Fatalf("unexpected reply id %d", r.Id)
		}
		seen[r.Id] = true
		want := dns.RcodeSuccess
		if (r.Id-1000)%3 == 0 {
			want = dns.RcodeNameError
		}
		if r.Rcode != want {
			t.Errorf("id %d: rcode %s", r.Id, dns.RcodeToString[r.Rcode])
		}
	}
}

// TestTCPIdleTimeoutAndConnectionCap: an idle connection is closed after
// server.tcp_idle_timeout; at the connection cap the oldest idle connection
// is closed to admit a new one (RFC 7766 §6.2.3), and a new connection is
// closed only when every connection is busy.
func TestTCPIdleTimeoutAndConnectionCap(t *testing.T) {
	up := resolvertest.StartUpstream(t, resolvertest.Echo())
	h := start(t, []string{up.Addr()}, func(c *config.Config) {
		c.Server.TCPIdleTimeout = 300 * time.Millisecond
		c.Server.MaxTCPConnections = 2
	})
	idle, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	if !closedByServer(idle, 10*time.Second) {
		t.Fatal("idle connection was not closed by the server")
	}

	// A second server with a long idle timeout: only the cap can close.
	h = start(t, []string{up.Addr()}, func(c *config.Config) {
		c.Server.TCPIdleTimeout = time.Minute
		c.Server.MaxTCPConnections = 2
	})
	// Fill the cap with two connections that stay open and idle, the
	// first one idle longest.
	var held []net.Conn
	for i := 0; i < 2; i++ {
		c := dialServed(t, h.addr)
		held = append(held, c)
		time.Sleep(20 * time.Millisecond)
	}
	// A third is admitted: the oldest idle one is closed for it.
	third := dialServed(t, h.addr)
	if !closedByServer(held[0], 5*time.Second) {
		t.Fatal("the oldest idle connection was not closed at the cap")
	}
	// Make both open connections busy: a query begun (its length sent)
	// but not finished.
	for _, c := range []net.Conn{held[1], third} {
		if _, err := c.Write([]byte{0, 40}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond)
	extra, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	if !closedByServer(extra, 5*time.Second) {
		t.Fatal("connection over the cap was not closed while every connection was busy")
	}
	// UDP still works.
	if r := resolvertest.Query(t, h.addr, "udp", "still.example.", dns.TypeA); len(r.Answer) != 1 {
		t.Fatalf("udp: %v", r)
	}
}

// dialServed opens a TCP connection and has one query answered on it.
func dialServed(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	co := &dns.Conn{Conn: c}
	m := new(dns.Msg)
	m.SetQuestion("held.example.", dns.TypeA)
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if err := co.WriteMsg(m); err != nil {
		t.Fatal(err)
	}
	if _, err := co.ReadMsg(); err != nil { // accepted and served
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Time{})
	return c
}

// closedByServer reports whether the server closes c (EOF or reset) within
// d, without sending anything.
func closedByServer(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := c.Read(make([]byte, 1))
	if err == nil {
		return false
	}
	ne, ok := err.(net.Error)
	return !ok || !ne.Timeout()
}

// TestTCPHalfCloseGetsEveryAnswer: a client that sends its pipelined
// queries and half-closes the connection (shutdown SHUT_WR) still reads an
// answer to each, those of the slow path (here: waiting for a slow
// upstream) included, before the server closes.
func TestTCPHalfCloseGetsEveryAnswer(t *testing.T) {
	up := resolvertest.StartUpstream(t, resolvertest.Func(func(r *dns.Msg) *dns.Msg {
		time.Sleep(100 * time.Millisecond)
		m := new(dns.Msg)
		m.SetReply(r)
		m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, 1)})
		return m
	}))
	h := start(t, []string{up.Addr()}, nil)
	c, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 5
	names := make([]string, n)
	for i := range names {
		names[i] = "half" + string(rune('a'+i)) + ".example."
	}
	writeQueries(t, c, 2000, names)
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	seen := map[uint16]bool{}
	for len(seen) < n {
		r, err := readAnswer(c)
		if err != nil {
			t.Fatalf("after %d of %d answers: %v", len(seen), n, err)
		}
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || seen[r.Id] {
			t.Fatalf("answer %v", r)
		}
		seen[r.Id] = true
	}
}

// writeQueries writes A queries for names on c in one write, framed for a
// stream (RFC 1035 §4.2.2), with the IDs id0, id0+1, ...
func writeQueries(t *testing.T, c net.Conn, id0 uint16, names []string) {
	t.Helper()
	var frames []byte
	for i, name := range names {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		m.Id = id0 + uint16(i)
		b, _ := m.Pack()
		frames = binary.BigEndian.AppendUint16(frames, uint16(len(b)))
		frames = append(frames, b...)
	}
	if _, err := c.Write(frames); err != nil {
		t.Fatal(err)
	}
}

// readAnswer reads one framed message from c.
func readAnswer(c net.Conn) (*dns.Msg, error) {
	var l [2]byte
	if _, err := io.ReadFull(c, l[:]); err != nil {
		return nil, err
	}
	b := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(c, b); err != nil {
		return nil, err
	}
	r := new(dns.Msg)
	return r, r.Unpack(b)
}

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
	var frames []byte
	for i := 0; i < n; i++ {
		m := new(dns.Msg)
		name := "p" + string(rune('a'+i%26)) + ".example."
		if i%3 == 0 {
			name = "chat.deepseek.com."
		}
		m.SetQuestion(name, dns.TypeA)
		m.Id = uint16(1000 + i)
		b, _ := m.Pack()
		frames = binary.BigEndian.AppendUint16(frames, uint16(len(b)))
		frames = append(frames, b...)
	}
	if _, err := c.Write(frames); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	seen := map[uint16]bool{}
	for len(seen) < n {
		var l [2]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			t.Fatalf("after %d replies: %v", len(seen), err)
		}
		b := make([]byte, binary.BigEndian.Uint16(l[:]))
		if _, err := io.ReadFull(c, b); err != nil {
			t.Fatal(err)
		}
		r := new(dns.Msg)
		if err := r.Unpack(b); err != nil {
			t.Fatal(err)
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
// server.tcp_idle_timeout, and connections beyond the cap are closed at
// once while those under it are served.
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
	_ = idle.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := idle.Read(make([]byte, 1)); err == nil {
		t.Fatal("idle connection got data")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("idle connection was not closed by the server")
	}

	// A second server with a long idle timeout: only the cap can close.
	h = start(t, []string{up.Addr()}, func(c *config.Config) {
		c.Server.TCPIdleTimeout = time.Minute
		c.Server.MaxTCPConnections = 2
	})
	// Fill the cap with two connections that stay open.
	var held []net.Conn
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", h.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		co := &dns.Conn{Conn: c}
		m := new(dns.Msg)
		m.SetQuestion("held.example.", dns.TypeA)
		if err := co.WriteMsg(m); err != nil {
			t.Fatal(err)
		}
		if _, err := co.ReadMsg(); err != nil { // accepted and served
			t.Fatal(err)
		}
		held = append(held, c)
	}
	extra, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	_ = extra.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := extra.Read(make([]byte, 1)); err == nil {
		t.Fatal("connection over the cap got data")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("connection over the cap was not closed")
	}
	// UDP still works.
	if r := resolvertest.Query(t, h.addr, "udp", "still.example.", dns.TypeA); len(r.Answer) != 1 {
		t.Fatalf("udp: %v", r)
	}
	_ = held
}

package resolver_test

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/config"
	"github.com/jurisdns/jurisdns/resolver/resolvertest"
)

// bigTXT answers every question with a TXT RRset of about size bytes.
func bigTXT(size int) dns.HandlerFunc {
	return resolvertest.Func(func(r *dns.Msg) *dns.Msg {
		m := new(dns.Msg)
		m.SetReply(r)
		var txt []string
		for n := 0; n < size; n += 255 {
			txt = append(txt, strings.Repeat("x", 250))
		}
		m.Answer = []dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 300}, Txt: txt}}
		return m
	})
}

// slowEcho is Echo after a delay, counting the queries it is holding.
func slowEcho(d time.Duration, holding *atomic.Int64) dns.HandlerFunc {
	echo := resolvertest.Echo()
	return func(w dns.ResponseWriter, r *dns.Msg) {
		if holding != nil {
			holding.Add(1)
			defer holding.Add(-1)
		}
		time.Sleep(d)
		echo(w, r)
	}
}

// dialSmallWindow connects to addr with a 4 KB receive buffer, so that a
// client that does not read fills it quickly.
func dialSmallWindow(t *testing.T, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func frame(name string, qtype uint16, id uint16) []byte {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Id = id
	b, _ := m.Pack()
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...)
}

// TestTCPClientThatNeverReads: one connection pipelines thousands of
// queries with 4 KB answers and never reads. The server stops reading it
// at the per-connection bound: its goroutines stay bounded (today's code
// started one per query), and other clients are answered meanwhile.
func TestTCPClientThatNeverReads(t *testing.T) {
	up := resolvertest.StartUpstream(t, bigTXT(4000))
	h := start(t, []string{up.Addr()}, func(c *config.Config) { c.Server.TCPIdleTimeout = 3 * time.Second })
	base := runtime.NumGoroutine()
	c := dialSmallWindow(t, h.addr)
	var flood []byte
	for i := 0; i < 5000; i++ {
		flood = append(flood, frame("flood.example.", dns.TypeTXT, uint16(i))...)
	}
	go func() {
		_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_, _ = c.Write(flood) // blocks once the server stops reading
	}()
	time.Sleep(1500 * time.Millisecond)
	if n := runtime.NumGoroutine() - base; n > 200 {
		t.Errorf("%d goroutines for one connection that does not read (want a bound, not one per query)", n)
	}
	// Others are served meanwhile, over TCP and UDP.
	for _, n := range nets {
		startQ := time.Now()
		r := exchange(t, h.addr, n, question("other.example.", dns.TypeTXT), 2*time.Second)
		if r == nil || r.Rcode != dns.RcodeSuccess {
			t.Errorf("%s: other client got %v while one connection was stalled", n, r)
		} else if d := time.Since(startQ); d > time.Second {
			t.Errorf("%s: other client waited %v", n, d)
		}
	}
	// The stalled connection is closed by its write deadline, and its
	// goroutines end.
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine()-base > 20 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if n := runtime.NumGoroutine() - base; n > 20 {
		t.Errorf("%d goroutines left after the stalled connection timed out", n)
	}
}

func question(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	return m
}

// TestInflightBudgetSharedByTCPAndUDP: TCP queries count against the same
// in-flight bound as UDP ones: with server.max_inflight 4 held by TCP
// misses, a UDP miss gets SERVFAIL at once.
func TestInflightBudgetSharedByTCPAndUDP(t *testing.T) {
	var holding atomic.Int64
	up := resolvertest.StartUpstream(t, slowEcho(time.Second, &holding))
	h := start(t, []string{up.Addr()}, func(c *config.Config) {
		c.Server.MaxInflight, c.Server.MaxInflightPerClient = 4, 4
		c.Upstreams.Timeout, c.Upstreams.TryTimeout = 3*time.Second, 3*time.Second
	})
	c, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var b []byte
	for i := 0; i < 4; i++ {
		b = append(b, frame(fmt.Sprintf("tcp%d.example.", i), dns.TypeA, uint16(i))...)
	}
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return holding.Load() == 4 }, "the upstream to hold 4 TCP misses")
	r := exchange(t, h.addr, "udp", question("udp.example.", dns.TypeA), 500*time.Millisecond)
	if r == nil || r.Rcode != dns.RcodeServerFailure {
		t.Fatalf("UDP miss while TCP held the whole budget: %v, want SERVFAIL", r)
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestInflightPerClientShare: a client flooding misses to a slow upstream
// uses at most its share of the budget; another client's misses are all
// answered.
func TestInflightPerClientShare(t *testing.T) {
	var holding atomic.Int64
	up := resolvertest.StartUpstream(t, slowEcho(200*time.Millisecond, &holding))
	h := start(t, []string{up.Addr()}, func(c *config.Config) {
		c.Server.MaxInflight, c.Server.MaxInflightPerClient = 32, 8
	})
	flooder, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer flooder.Close()
	dst := net.UDPAddrFromAddrPort(mustAddrPort(t, h.addr))
	servfail := 0
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // count the flooder's SERVFAILs
		defer wg.Done()
		buf := make([]byte, 4096)
		_ = flooder.SetReadDeadline(time.Now().Add(2 * time.Second))
		for {
			n, err := flooder.Read(buf)
			if err != nil {
				return
			}
			r := new(dns.Msg)
			if r.Unpack(buf[:n]) == nil && r.Rcode == dns.RcodeServerFailure {
				servfail++
			}
		}
	}()
	for i := 0; i < 200; i++ {
		q := frame(fmt.Sprintf("f%d.flood.example.", i), dns.TypeA, uint16(i))[2:]
		_, _ = flooder.WriteTo(q, dst)
	}
	waitFor(t, func() bool { return holding.Load() >= 8 }, "the flood to reach the upstream")
	var fails atomic.Int64
	var cw sync.WaitGroup
	for i := 0; i < 8; i++ {
		cw.Add(1)
		go func() {
			defer cw.Done()
			c := clientFrom("127.0.0.2", "udp", 2*time.Second)
			r, _, err := c.Exchange(question(fmt.Sprintf("b%d.other.example.", i), dns.TypeA), h.addr)
			if err != nil || r.Rcode != dns.RcodeSuccess {
				fails.Add(1)
			}
		}()
	}
	cw.Wait()
	if n := fails.Load(); n > 0 {
		t.Errorf("%d of 8 misses of another client failed while one client flooded", n)
	}
	wg.Wait()
	if servfail == 0 {
		t.Error("the flooding client was never held to its share")
	}
}

// TestTCPAcceptChecks: a client outside access.allow is closed at accept
// and takes no connection slot (even with access.action drop); one client
// cannot hold more than server.max_tcp_per_client connections.
func TestTCPAcceptChecks(t *testing.T) {
	up := resolvertest.StartUpstream(t, resolvertest.Echo())
	h := start(t, []string{up.Addr()}, func(c *config.Config) {
		c.Access.Allow = []string{"127.0.0.1/32", "127.0.0.3/32"}
		c.Access.Action = "drop"
		c.Server.MaxTCPConnections = 3
		c.Server.MaxTCPPerClient = 2
		c.Server.TCPIdleTimeout = time.Minute
	})
	dialFrom := func(src string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		c, err := d.Dial("tcp", h.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	for i := 0; i < 5; i++ {
		if c := dialFrom("127.0.0.2"); !closedByServer(c, 2*time.Second) {
			t.Fatalf("outsider connection %d was not closed at accept", i)
		}
	}
	// Two busy connections of 127.0.0.3: a third one is over its cap.
	for i := 0; i < 2; i++ {
		c := dialFrom("127.0.0.3")
		if _, err := c.Write([]byte{0, 40}); err != nil { // a query begun: busy
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond)
	if c := dialFrom("127.0.0.3"); !closedByServer(c, 2*time.Second) {
		t.Fatal("a client's connection over server.max_tcp_per_client was not closed")
	}
	// The outsiders took no slot: 127.0.0.1 gets the third one.
	if r := send(t, "127.0.0.1", h.addr, "tcp", "ok.example."); r == nil || r.Rcode != dns.RcodeSuccess {
		t.Fatalf("allowed client over TCP: %v", r)
	}
}

// TestCacheMaxBytes: 32 KB answers cannot grow the cache past
// cache.max_bytes, whatever cache.size allows.
func TestCacheMaxBytes(t *testing.T) {
	up := resolvertest.StartUpstream(t, bigTXT(32000))
	const limit = 1 << 20
	h := start(t, []string{up.Addr()}, func(c *config.Config) {
		c.Cache.Size = 100000
		c.Cache.MaxBytes = limit
	})
	co, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer co.Close()
	dc := &dns.Conn{Conn: co}
	for i := 0; i < 100; i++ {
		if err := dc.WriteMsg(question(fmt.Sprintf("big%d.example.", i), dns.TypeTXT)); err != nil {
			t.Fatal(err)
		}
		_ = co.SetReadDeadline(time.Now().Add(3 * time.Second))
		if r, err := dc.ReadMsg(); err != nil || len(r.Answer) != 1 {
			t.Fatalf("query %d: %v %v", i, r, err)
		}
	}
	c := h.srv.Cache()
	if b := c.Bytes(); b > limit || b < limit/4 {
		t.Errorf("cache accounts %d bytes for %d entries; want at most cache.max_bytes %d (and most of it used)", b, c.Len(), limit)
	}
	if n := c.Len(); n >= 100 || n == 0 {
		t.Errorf("cache holds %d of 100 answers of 32 KB under a 1 MB bound", n)
	}
}

// TestTruncatedUDPAnswerIsEmpty: a UDP answer too big for the client
// carries header (TC=1), question and OPT only, never a partial RRset.
func TestTruncatedUDPAnswerIsEmpty(t *testing.T) {
	up := resolvertest.StartUpstream(t, resolvertest.Func(func(r *dns.Msg) *dns.Msg {
		m := new(dns.Msg)
		m.SetReply(r)
		for i := 0; i < 100; i++ {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300},
				A: net.IPv4(192, 0, 2, byte(i)).To4()})
		}
		return m
	}))
	h := start(t, []string{up.Addr()}, nil)
	for _, edns := range []bool{false, true} {
		for round := 0; round < 2; round++ { // miss, then hit
			m := question("big.example.", dns.TypeA)
			if edns {
				m.SetEdns0(1232, false)
			}
			r := exchange(t, h.addr, "udp", m, 2*time.Second)
			if r == nil || !r.Truncated {
				t.Fatalf("edns %v: %v, want TC=1", edns, r)
			}
			if len(r.Answer) != 0 || len(r.Ns) != 0 || len(r.Extra) != btoi(edns) || len(r.Question) != 1 {
				t.Errorf("edns %v: truncated answer carries records: %v", edns, r)
			}
		}
	}
	if r := exchange(t, h.addr, "tcp", question("big.example.", dns.TypeA), 2*time.Second); r == nil || len(r.Answer) != 100 {
		t.Errorf("tcp: %v", r)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestACLBeforeRateLimitAndOverload: with access.action drop, an outsider
// gets nothing: no TC=1 from the rate limiter, no SERVFAIL under
// overload.
func TestACLBeforeRateLimitAndOverload(t *testing.T) {
	var holding atomic.Int64
	up := resolvertest.StartUpstream(t, slowEcho(time.Second, &holding))
	h := start(t, []string{up.Addr()}, func(c *config.Config) {
		c.Access.Allow = []string{"127.0.0.1/32"}
		c.Access.Action = "drop"
		c.Access.RateLimit = config.RateLimit{QPS: 1, Burst: 1, IPv4Prefix: 32, IPv6Prefix: 64, Action: "truncate"}
		c.Server.MaxInflight, c.Server.MaxInflightPerClient = 1, 1
		c.Upstreams.Timeout, c.Upstreams.TryTimeout = 3*time.Second, 3*time.Second
	})
	for i := 0; i < 4; i++ { // over the rate after the first
		if r := send(t, "127.0.0.2", h.addr, "udp", "rl.example."); r != nil {
			t.Fatalf("outsider query %d got %v", i, r)
		}
	}
	// Overload: the only slot is held by an allowed client's miss.
	go func() { _ = send(t, "127.0.0.1", h.addr, "udp", "held.example.") }()
	waitFor(t, func() bool { return holding.Load() == 1 }, "the upstream to hold a miss")
	if r := send(t, "127.0.0.2", h.addr, "udp", "over.example."); r != nil {
		t.Fatalf("outsider under overload got %v", r)
	}
}

// TestLocalOnlyQueryTypes: AXFR and IXFR for a zone jurisdns does not
// serve get REFUSED, qtype 0 FORMERR, on both transports, and none of them
// reaches the upstream.
func TestLocalOnlyQueryTypes(t *testing.T) {
	up := resolvertest.StartUpstream(t, resolvertest.Echo())
	h := start(t, []string{up.Addr()}, nil)
	for _, n := range nets {
		for _, c := range []struct {
			qtype uint16
			rcode int
		}{{dns.TypeAXFR, dns.RcodeRefused}, {dns.TypeIXFR, dns.RcodeRefused}, {0, dns.RcodeFormatError}} {
			for round := 0; round < 2; round++ {
				r := exchange(t, h.addr, n, question("example.com.", c.qtype), 2*time.Second)
				if r == nil || r.Rcode != c.rcode {
					t.Errorf("%s type %d: %v, want %s", n, c.qtype, r, dns.RcodeToString[c.rcode])
				}
			}
		}
	}
	if q := up.Queries(); q != 0 {
		t.Errorf("%d local-only queries reached the upstream", q)
	}
}

// TestOutOfBailiwickRecordsDropped: authority and additional records of an
// upstream answer that lie outside the answer's bailiwick reach no client,
// on a miss or a hit.
func TestOutOfBailiwickRecordsDropped(t *testing.T) {
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	up := resolvertest.StartUpstream(t, resolvertest.Func(func(r *dns.Msg) *dns.Msg {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Answer = []dns.RR{rr("www.example.com. 300 IN A 192.0.2.1")}
		m.Ns = []dns.RR{rr("example.com. 300 IN NS ns1.example.com."), rr("evil.test. 300 IN NS ns.evil.test."),
			rr("com. 300 IN NS ns.evil.test.")}
		m.Extra = []dns.RR{rr("ns1.example.com. 300 IN A 192.0.2.53"), rr("ns.evil.test. 300 IN A 203.0.113.66"),
			rr("www.bank.test. 300 IN A 203.0.113.66")}
		return m
	}))
	h := start(t, []string{up.Addr()}, nil)
	for _, n := range nets {
		for round := 0; round < 2; round++ {
			r := exchange(t, h.addr, n, question("www.example.com.", dns.TypeA), 2*time.Second)
			if r == nil || len(r.Answer) != 1 {
				t.Fatalf("%s: %v", n, r)
			}
			for _, x := range append(append([]dns.RR{}, r.Ns...), r.Extra...) {
				if strings.HasSuffix(x.Header().Name, "test.") {
					t.Errorf("%s round %d: out-of-bailiwick record reached the client: %v", n, round, x)
				}
			}
			// "com. NS" is an ancestor of the name: in bailiwick, kept.
			if len(r.Ns) != 2 || len(r.Extra) != 1 {
				t.Errorf("%s round %d: in-bailiwick records lost: ns %v extra %v", n, round, r.Ns, r.Extra)
			}
		}
	}
}

// TestNotImpClearsQueryFlags: the answer to an opcode other than QUERY is
// NOTIMP with RA, AD and CD clear (they are defined for QUERY only).
func TestNotImpClearsQueryFlags(t *testing.T) {
	up := resolvertest.StartUpstream(t, resolvertest.Echo())
	h := start(t, []string{up.Addr()}, nil)
	for _, n := range nets {
		for _, op := range []int{dns.OpcodeIQuery, dns.OpcodeStatus, 15} {
			m := question("example.com.", dns.TypeA)
			m.Opcode = op
			m.CheckingDisabled, m.AuthenticatedData = true, true
			r := exchange(t, h.addr, n, m, 2*time.Second)
			if r == nil || r.Rcode != dns.RcodeNotImplemented {
				t.Fatalf("%s opcode %d: %v", n, op, r)
			}
			if r.RecursionAvailable || r.AuthenticatedData || r.CheckingDisabled {
				t.Errorf("%s opcode %d: RA %v AD %v CD %v, want all clear", n, op, r.RecursionAvailable, r.AuthenticatedData, r.CheckingDisabled)
			}
		}
	}
}

func mustAddrPort(t *testing.T, s string) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		t.Fatal(err)
	}
	return ap
}

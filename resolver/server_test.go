package resolver_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/config"
	"github.com/jurisdns/jurisdns/internal/testclock"
	"github.com/jurisdns/jurisdns/policy"
	"github.com/jurisdns/jurisdns/resolver"
	"github.com/jurisdns/jurisdns/resolver/resolvertest"
)

type harness struct {
	addr  string
	srv   *resolver.Server
	clock *testclock.Clock
	cfg   *config.Config
	// dot and doh are the DoT and DoH addresses (startEncrypted only).
	dot, doh string
}

// start runs a jurisdns server on 127.0.0.1:0 forwarding to upstreams, with
// the embedded default configuration changed by mutate.
func start(t testing.TB, upstreams []string, mutate func(*config.Config)) *harness {
	t.Helper()
	return startWith(t, upstreams, mutate, nil)
}

// startWith is start; with a certificate it also serves DoT and DoH on
// 127.0.0.1:0 (see startEncrypted).
func startWith(t testing.TB, upstreams []string, mutate func(*config.Config), cert *tls.Certificate) *harness {
	t.Helper()
	cfg, err := config.Load(config.LoadOptions{Env: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen = []string{"127.0.0.1:0"}
	cfg.Upstreams.Servers = upstreams
	cfg.Upstreams.Timeout = 600 * time.Millisecond
	cfg.Upstreams.TryTimeout = 250 * time.Millisecond
	cfg.Admin = ""
	cfg.Server.UDPWorkers = 2
	if mutate != nil {
		mutate(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	h := &harness{clock: testclock.New(time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)), cfg: cfg}
	h.srv = resolver.NewServer(resolver.ServerOptions{
		Cache: resolver.NewCache(resolver.CacheOptions{Size: cfg.Cache.Size, MaxBytes: cfg.Cache.MaxBytes, MinTTL: cfg.Cache.MinTTL, MaxTTL: cfg.Cache.MaxTTL,
			NegativeMaxTTL: cfg.Cache.NegativeMaxTTL, ServfailTTL: cfg.Cache.ServfailTTL, ServeStale: cfg.Cache.ServeStale}),
		Now: h.clock.Now,
	})
	listDir := t.TempDir()
	rt, err := h.srv.Build(context.Background(), cfg, resolver.BuildOptions{
		Policy: func(ctx context.Context, _ *policy.Policy) (*policy.Policy, error) {
			return policy.Build(ctx, cfg, policy.BuildOptions{BaseDir: listDir})
		},
		BaseDir:     filepath.Join("..", "testdata", "zones"),
		Now:         h.clock.Now,
		Certificate: cert,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.srv.Swap(rt)
	if err := h.srv.Listen(cfg.Listen, cfg.Server.UDPWorkers, cfg.Server.MaxTCPConnections); err != nil {
		t.Fatal(err)
	}
	h.srv.Serve()
	h.addr = h.srv.Addrs()[0]
	var enc *resolver.Encrypted
	if cert != nil {
		enc, err = h.srv.ListenEncrypted(resolver.EncryptedOptions{DoT: []string{"127.0.0.1:0"}, DoH: []string{"127.0.0.1:0"},
			DoTMaxConns: 100, DoHMaxConns: 100})
		if err != nil {
			t.Fatal(err)
		}
		enc.Serve()
		h.dot, h.doh = enc.DoTAddrs()[0], enc.DoHAddrs()[0]
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if enc != nil {
			if err := enc.Shutdown(ctx); err != nil {
				t.Errorf("encrypted shutdown: %v", err)
			}
		}
		if err := h.srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return h
}

// exchange sends m over netw and returns the reply (nil on timeout).
func exchange(t testing.TB, addr, netw string, m *dns.Msg, timeout time.Duration) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: netw, Timeout: timeout, UDPSize: 65535}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return nil
		}
		t.Fatalf("exchange: %v", err)
	}
	return r
}

// rawExchange sends raw bytes over UDP and returns the raw reply, or nil
// when nothing comes back within wait.
func rawExchange(t testing.TB, addr string, pkt []byte, wait time.Duration) []byte {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(pkt); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	if err != nil {
		return nil
	}
	return buf[:n]
}

func ede(m *dns.Msg) (uint16, string, bool) {
	if o := m.IsEdns0(); o != nil {
		for _, op := range o.Option {
			if e, ok := op.(*dns.EDNS0_EDE); ok {
				return e.InfoCode, e.ExtraText, true
			}
		}
	}
	return 0, "", false
}

var nets = []string{"udp", "tcp"}

func TestForwardingFidelity(t *testing.T) {
	up := resolvertest.StartUpstream(t, resolvertest.Func(func(r *dns.Msg) *dns.Msg {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Authoritative = true // an authoritative upstream: must not leak to clients
		rr, _ := dns.NewRR(r.Question[0].Name + " 300 IN A 192.0.2.7")
		m.Answer = []dns.RR{rr}
		return m
	}))
	h := start(t, []string{up.Addr()}, nil)
	for _, n := range nets {
		t.Run(n, func(t *testing.T) {
			m := new(dns.Msg)
			m.SetQuestion("FoRwArD-"+n+".Example.", dns.TypeA)
			m.Id = 4242
			r := exchange(t, h.addr, n, m, 3*time.Second)
			if r == nil {
				t.Fatal("no reply")
			}
			if r.Id != 4242 || r.Question[0].Name != m.Question[0].Name {
				t.Errorf("id/question = %d %q, want 4242 %q", r.Id, r.Question[0].Name, m.Question[0].Name)
			}
			if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "192.0.2.7" {
				t.Fatalf("reply = %v", r)
			}
			if !r.RecursionAvailable || !r.RecursionDesired || r.Authoritative || r.Zero {
				t.Errorf("flags RA=%v RD=%v AA=%v Z=%v", r.RecursionAvailable, r.RecursionDesired, r.Authoritative, r.Zero)
			}
			if r.IsEdns0() != nil {
				t.Error("reply has OPT though the query had none")
			}
		})
	}
}

func TestCacheHitAndTTLCountdown(t *testing.T) {
	up := resolvertest.StartUpstream(t, resolvertest.Answer("@ 300 IN A 192.0.2.1"))
	h := start(t, []string{up.Addr()}, nil)
	for i, n := range []string{"udp", "udp", "tcp"} {
		r := resolvertest.Query(t, h.addr, n, "cached.example.", dns.TypeA)
		if len(r.Answer) != 1 {
			t.Fatalf("query %d: %v", i, r)
		}
		if got := r.Answer[0].Header().Ttl; got != 300 {
			t.Errorf("query %d: ttl %d, want 300", i, got)
		}
	}
	if up.Queries() != 1 {
		t.Fatalf("upstream queries = %d, want 1 (cache hits must not reach it)", up.Queries())
	}
	h.clock.Add(100 * time.Second)
	for _, n := range nets {
		r := resolvertest.Query(t, h.addr, n, "CACHED.example.", dns.TypeA)
		if got := r.Answer[0].Header().Ttl; got != 200 {
			t.Errorf("%s after 100s: ttl %d, want 200", n, got)
		}
		if r.Question[0].Name != "CACHED.example." {
			t.Errorf("%s: question case lost: %q", n, r.Question[0].Name)
		}
	}
	h.clock.Add(201 * time.Second)
	resolvertest.Query(t, h.addr, "udp", "cached.example.", dns.TypeA)
	if up.Queries() != 2 {
		t.Fatalf("after expiry upstream queries = %d, want 2", up.Queries())
	}
}

func TestNegativeCaching(t *testing.T) {
	up := resolvertest.StartUpstream(t, resolvertest.NXDomain("example. 3600 IN SOA ns.example. h.example. 1 7200 900 1209600 120"))
	h := start(t, []string{up.Addr()}, nil)
	for i := 0; i < 3; i++ {
		r := resolvertest.Query(t, h.addr, "udp", "nope.example.", dns.TypeA)
		if r.Rcode != dns.RcodeNameError || len(r.Ns) != 1 {
			t.Fatalf("reply %d = %v", i, r)
		}
		if ttl := r.Ns[0].Header().Ttl; ttl != 120 {
			t.Errorf("SOA ttl %d, want 120 (RFC 2308: min of SOA TTL and minimum)", ttl)
		}
	}
	if up.Queries() != 1 {
		t.Fatalf("upstream queries = %d, want 1", up.Queries())
	}
	h.clock.Add(121 * time.Second)
	resolvertest.Query(t, h.addr, "udp", "nope.example.", dns.TypeA)
	if up.Queries() != 2 {
		t.Fatalf("after negative TTL: upstream queries = %d, want 2", up.Queries())
	}
}

func TestFailoverWithDeadUpstream(t *testing.T) {
	dead := resolvertest.StartUpstream(t, resolvertest.Drop())
	good := resolvertest.StartUpstream(t, resolvertest.Echo())
	h := start(t, []string{dead.Addr(), good.Addr()}, nil)
	for i := 0; i < 3; i++ {
		r := resolvertest.Query(t, h.addr, "udp", "fo"+string(rune('a'+i))+".example.", dns.TypeA)
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
			t.Fatalf("query %d: %v", i, r)
		}
	}
	if dead.Queries() != 1 {
		t.Errorf("dead upstream got %d queries, want 1 (then skipped)", dead.Queries())
	}
}

func TestTruncatedUpstreamRetriesOverTCP(t *testing.T) {
	up := resolvertest.StartUpstream(t, resolvertest.Truncated("@ 60 IN A 192.0.2.9"))
	h := start(t, []string{up.Addr()}, nil)
	r := resolvertest.Query(t, h.addr, "udp", "tc.example.", dns.TypeA)
	if len(r.Answer) != 1 || r.Truncated {
		t.Fatalf("reply = %v", r)
	}
	if up.TCPQueries() != 1 {
		t.Errorf("TCP queries upstream = %d, want 1", up.TCPQueries())
	}
}

func TestAllUpstreamsDown(t *testing.T) {
	a := resolvertest.StartUpstream(t, resolvertest.Drop())
	b := resolvertest.StartUpstream(t, resolvertest.Drop())
	h := start(t, []string{a.Addr(), b.Addr()}, nil)
	for _, n := range nets {
		m := new(dns.Msg)
		m.SetQuestion("down-"+n+".example.", dns.TypeA)
		m.SetEdns0(1232, false)
		began := time.Now()
		r := exchange(t, h.addr, n, m, 5*time.Second)
		if r == nil {
			t.Fatalf("%s: no reply within 5s", n)
		}
		if r.Rcode != dns.RcodeServerFailure {
			t.Fatalf("%s: rcode %s", n, dns.RcodeToString[r.Rcode])
		}
		code, _, ok := ede(r)
		if !ok || (code != dns.ExtendedErrorCodeNoReachableAuthority && code != dns.ExtendedErrorCodeNetworkError) {
			t.Errorf("%s: EDE = %d %v, want 22 or 23", n, code, ok)
		}
		t.Logf("%s: SERVFAIL after %v", n, time.Since(began))
	}
}

func TestServeStale(t *testing.T) {
	var mu sync.Mutex
	alive := true
	up := resolvertest.StartUpstream(t, resolvertest.Func(func(r *dns.Msg) *dns.Msg {
		mu.Lock()
		defer mu.Unlock()
		if !alive {
			return nil
		}
		m := new(dns.Msg)
		m.SetReply(r)
		rr, _ := dns.NewRR(r.Question[0].Name + " 60 IN A 192.0.2.3")
		m.Answer = []dns.RR{rr}
		return m
	}))
	h := start(t, []string{up.Addr()}, func(c *config.Config) { c.Cache.ServeStale = time.Hour; c.Cache.Prefetch = false })
	resolvertest.Query(t, h.addr, "udp", "stale.example.", dns.TypeA)
	mu.Lock()
	alive = false
	mu.Unlock()
	h.clock.Add(10 * time.Minute)
	r := resolvertest.Query(t, h.addr, "udp", "stale.example.", dns.TypeA, resolvertest.EDNS(1232, false))
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Fatalf("stale reply = %v", r)
	}
	if code, _, ok := ede(r); !ok || code != dns.ExtendedErrorCodeStaleAnswer {
		t.Errorf("EDE = %d %v, want 3 (stale answer)", code, ok)
	}
	if ttl := r.Answer[0].Header().Ttl; ttl != 30 {
		t.Errorf("stale TTL %d, want 30 (RFC 8767)", ttl)
	}
	h.clock.Add(2 * time.Hour)
	r = resolvertest.Query(t, h.addr, "udp", "stale.example.", dns.TypeA)
	if r.Rcode != dns.RcodeServerFailure {
		t.Errorf("beyond serve_stale: rcode %s, want SERVFAIL", dns.RcodeToString[r.Rcode])
	}
}

func TestTruncationToClientSize(t *testing.T) {
	var txt []string
	for i := 0; i < 20; i++ {
		txt = append(txt, `@ 60 IN TXT "`+strings.Repeat("x", 100)+`"`)
	}
	up := resolvertest.StartUpstream(t, resolvertest.Answer(txt...))
	h := start(t, []string{up.Addr()}, nil)
	tests := []struct {
		name    string
		netw    string
		edns    uint16
		wantTC  bool
		maxSize int
	}{
		{name: "udp_no_edns", netw: "udp", wantTC: true, maxSize: 512},
		{name: "udp_edns_1232", netw: "udp", edns: 1232, wantTC: true, maxSize: 1232},
		{name: "udp_edns_4096_capped", netw: "udp", edns: 4096, wantTC: true, maxSize: 1232},
		{name: "tcp", netw: "tcp", wantTC: false, maxSize: 65535},
	}
	for pass := 0; pass < 2; pass++ { // miss, then cache hit
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				m := new(dns.Msg)
				m.SetQuestion("big.example.", dns.TypeTXT)
				if tc.edns > 0 {
					m.SetEdns0(tc.edns, false)
				}
				r := exchange(t, h.addr, tc.netw, m, 3*time.Second)
				if r == nil {
					t.Fatal("no reply")
				}
				if r.Truncated != tc.wantTC {
					t.Errorf("TC = %v, want %v", r.Truncated, tc.wantTC)
				}
				r.Compress = true
				if r.Len() > tc.maxSize {
					t.Errorf("size %d > %d", r.Len(), tc.maxSize)
				}
				if !tc.wantTC && len(r.Answer) != 20 {
					t.Errorf("answers = %d, want 20", len(r.Answer))
				}
			})
		}
	}
}

func TestMalformedQueries(t *testing.T) {
	up := resolvertest.StartUpstream(t, resolvertest.Echo())
	h := start(t, []string{up.Addr()}, nil)
	base := func() *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion("edge.example.", dns.TypeA)
		m.Id = 777
		return m
	}
	pack := func(m *dns.Msg) []byte {
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name      string
		pkt       func() []byte
		wantReply bool
		wantRcode int
	}{
		{name: "response_dropped", pkt: func() []byte { m := base(); m.Response = true; return pack(m) }},
		{name: "notify_notimp", pkt: func() []byte { m := base(); m.Opcode = dns.OpcodeNotify; return pack(m) }, wantReply: true, wantRcode: dns.RcodeNotImplemented},
		{name: "update_notimp", pkt: func() []byte { m := base(); m.Opcode = dns.OpcodeUpdate; return pack(m) }, wantReply: true, wantRcode: dns.RcodeNotImplemented},
		{name: "status_notimp", pkt: func() []byte { m := base(); m.Opcode = dns.OpcodeStatus; return pack(m) }, wantReply: true, wantRcode: dns.RcodeNotImplemented},
		{name: "qdcount_0_formerr", pkt: func() []byte { m := base(); m.Question = nil; return pack(m) }, wantReply: true, wantRcode: dns.RcodeFormatError},
		{name: "qdcount_2_formerr", pkt: func() []byte {
			m := base()
			m.Question = append(m.Question, dns.Question{Name: "b.example.", Qtype: dns.TypeA, Qclass: dns.ClassINET})
			return pack(m)
		}, wantReply: true, wantRcode: dns.RcodeFormatError},
		{name: "edns_version_1_badvers", pkt: func() []byte {
			m := base()
			m.SetEdns0(1232, false)
			m.IsEdns0().SetVersion(1)
			return pack(m)
		}, wantReply: true, wantRcode: dns.RcodeBadVers},
		{name: "chaos_refused", pkt: func() []byte { m := base(); m.Question[0].Qclass = dns.ClassCHAOS; return pack(m) }, wantReply: true, wantRcode: dns.RcodeRefused},
		{name: "any_class_refused", pkt: func() []byte { m := base(); m.Question[0].Qclass = dns.ClassANY; return pack(m) }, wantReply: true, wantRcode: dns.RcodeRefused},
		{name: "truncated_question_formerr", pkt: func() []byte { b := pack(base()); return b[:len(b)-3] }, wantReply: true, wantRcode: dns.RcodeFormatError},
		{name: "short_header_dropped", pkt: func() []byte { return []byte{1, 2, 3} }},
		{name: "garbage_header_formerr", pkt: func() []byte { return []byte{0x03, 0x09, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xff, 0xff} }, wantReply: true, wantRcode: dns.RcodeFormatError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := rawExchange(t, h.addr, tc.pkt(), 300*time.Millisecond)
			if !tc.wantReply {
				if b != nil {
					t.Fatalf("got a reply (%d bytes), want none", len(b))
				}
				return
			}
			if b == nil {
				t.Fatal("no reply")
			}
			r := new(dns.Msg)
			if err := r.Unpack(b); err != nil {
				t.Fatalf("unpack reply: %v", err)
			}
			if r.Rcode != tc.wantRcode {
				t.Errorf("rcode %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.wantRcode])
			}
			if !r.Response {
				t.Error("QR not set")
			}
		})
	}
	// A normal query still works afterwards.
	r := resolvertest.Query(t, h.addr, "udp", "after.example.", dns.TypeA)
	if len(r.Answer) != 1 {
		t.Fatalf("normal query after malformed ones: %v", r)
	}
}

// TestFastPathMatchesSlowPath checks that a cache miss answered by the UDP
// miss path and a cache hit answered by the fast path of every transport
// (UDP, TCP, DoT, DoH) are byte for byte the answers the full path gives
// over that transport (padded for DoT and DoH).
func TestFastPathMatchesSlowPath(t *testing.T) {
	up := resolvertest.StartUpstream(t, resolvertest.Func(func(r *dns.Msg) *dns.Msg {
		m := new(dns.Msg)
		m.SetReply(r)
		q := r.Question[0].Name
		for _, s := range []string{q + " 300 IN CNAME www.target.example.", "www.target.example. 300 IN A 192.0.2.1", "www.target.example. 300 IN A 192.0.2.2"} {
			rr, _ := dns.NewRR(s)
			m.Answer = append(m.Answer, rr)
		}
		if strings.Contains(strings.ToLower(q), "big") { // over 512 bytes: truncated over UDP only
			for i := range 40 {
				rr, _ := dns.NewRR(fmt.Sprintf("www.target.example. 300 IN A 192.0.2.%d", 10+i))
				m.Answer = append(m.Answer, rr)
			}
		}
		ns, _ := dns.NewRR("target.example. 300 IN NS ns1.target.example.")
		m.Ns = []dns.RR{ns}
		m.AuthenticatedData = true
		return m
	}))
	h, roots := startEncrypted(t, []string{up.Addr()}, nil)
	streams := newStreamClients(t, h, roots)
	tests := []struct {
		name string
		opts func(*dns.Msg)
	}{
		{name: "plain", opts: func(*dns.Msg) {}},
		{name: "edns", opts: func(m *dns.Msg) { m.SetEdns0(1232, false) }},
		{name: "edns_do", opts: func(m *dns.Msg) { m.SetEdns0(4096, true) }},
		{name: "cd", opts: func(m *dns.Msg) { m.CheckingDisabled = true }},
		{name: "ad", opts: func(m *dns.Msg) { m.AuthenticatedData = true }},
		{name: "no_rd", opts: func(m *dns.Msg) { m.RecursionDesired = false }},
		{name: "big", opts: func(m *dns.Msg) { m.SetEdns0(1232, true) }},
		{name: "big_plain", opts: func(*dns.Msg) {}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// A cache miss over UDP (missUDP writes it from the new
			// entry) against the slow path's answer a moment later
			// (from that entry).
			mm := new(dns.Msg)
			mm.SetQuestion("Miss-"+tc.name+".Example.", dns.TypeA)
			tc.opts(mm)
			mm.Id = 4242
			wire, _ := mm.Pack()
			sameAnswer(t, "miss path", rawExchange(t, h.addr, wire, 3*time.Second), h.srv.SlowAnswer(wire, slowClient, resolver.UDP))

			m := new(dns.Msg)
			m.SetQuestion("Fast-"+tc.name+".Example.", dns.TypeA)
			tc.opts(m)
			m.Id = 99
			wire, _ = m.Pack()
			resolvertest.Query(t, h.addr, "tcp", "fast-"+tc.name+".example.", dns.TypeA, func(q *dns.Msg) { *q = *m.Copy() }) // warm
			h.clock.Add(7 * time.Second)
			fast := rawExchange(t, h.addr, wire, 3*time.Second)
			sameAnswer(t, "fast path", fast, h.srv.SlowAnswer(wire, slowClient, resolver.UDP))
			r := new(dns.Msg)
			_ = r.Unpack(fast)
			if len(r.Answer) > 0 && r.Answer[0].Header().Ttl > 293 {
				t.Errorf("ttl %d did not count down", r.Answer[0].Header().Ttl)
			}
			streams.same(t, wire)
		})
	}
}

// slowClient is the client address the slow path's reference answers are
// computed for (the answers do not depend on the port).
var slowClient = netip.MustParseAddrPort("127.0.0.1:5353")

// streamClients are one connection of each stream transport to a server.
type streamClients struct {
	h        *harness
	tcp, dot *streamClient
	doh      *http.Client
}

func newStreamClients(t *testing.T, h *harness, roots *x509.CertPool) *streamClients {
	return &streamClients{h: h, tcp: dialStream(t, "tcp", h.addr, nil), dot: dialStream(t, "dot", h.dot, roots), doh: dohClient(roots)}
}

// same fails the test when the answer to the raw query wire over TCP, DoT
// or DoH differs in any byte from the slow path's over that transport.
func (sc *streamClients) same(t *testing.T, wire []byte) {
	t.Helper()
	sameAnswer(t, "tcp", sc.tcp.exchange(t, wire), sc.h.srv.SlowAnswer(wire, slowClient, resolver.TCP))
	sameAnswer(t, "dot", sc.dot.exchange(t, wire), sc.h.srv.SlowAnswer(wire, slowClient, resolver.DoT))
	sameAnswer(t, "doh", dohExchange(t, sc.doh, sc.h.doh, wire), sc.h.srv.SlowAnswer(wire, slowClient, resolver.DoH))
}

// sameAnswer fails the test when got (an answer of the path named what)
// and the slow path's answer differ in any byte.
func sameAnswer(t *testing.T, what string, got, slow []byte) {
	t.Helper()
	if string(got) != string(slow) {
		gm, sm := new(dns.Msg), new(dns.Msg)
		_ = gm.Unpack(got)
		_ = sm.Unpack(slow)
		t.Fatalf("%s and slow path differ:\n%s %x\n%v\nslow %x\n%v", what, what, got, gm, slow, sm)
	}
}

func TestANYIsMinimal(t *testing.T) {
	up := resolvertest.StartUpstream(t, resolvertest.Echo())
	h := start(t, []string{up.Addr()}, nil)
	r := resolvertest.Query(t, h.addr, "udp", "any.example.", dns.TypeANY)
	if len(r.Answer) != 1 || r.Answer[0].Header().Rrtype != dns.TypeHINFO || r.Answer[0].(*dns.HINFO).Cpu != "RFC8482" {
		t.Fatalf("ANY answer = %v, want the RFC 8482 HINFO", r.Answer)
	}
	if up.Queries() != 0 {
		t.Errorf("ANY reached the upstream")
	}
	if r := resolvertest.Query(t, h.addr, "udp", "chat.deepseek.com.", dns.TypeANY); r.Rcode != dns.RcodeNameError {
		t.Errorf("ANY for a blocked name: %s, want NXDOMAIN", dns.RcodeToString[r.Rcode])
	}
}

func TestPrefetchRefreshesPopularEntries(t *testing.T) {
	up := resolvertest.StartUpstream(t, resolvertest.Answer("@ 100 IN A 192.0.2.1"))
	h := start(t, []string{up.Addr()}, func(c *config.Config) { c.Cache.Prefetch = true })
	for i := 0; i < 3; i++ { // a miss, then two hits: popular
		resolvertest.Query(t, h.addr, "udp", "popular.example.", dns.TypeA)
	}
	if up.Queries() != 1 {
		t.Fatalf("upstream queries = %d, want 1", up.Queries())
	}
	h.clock.Add(95 * time.Second) // 5 s left of 100: within the last tenth
	r := resolvertest.Query(t, h.addr, "udp", "popular.example.", dns.TypeA)
	if ttl := r.Answer[0].Header().Ttl; ttl != 5 {
		t.Fatalf("hit before the refresh: ttl %d, want 5", ttl)
	}
	deadline := time.Now().Add(5 * time.Second)
	for up.Queries() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond) // waiting for the background refresh, not for a TTL
	}
	if up.Queries() != 2 {
		t.Fatalf("upstream queries = %d, want 2 (one prefetch)", up.Queries())
	}
	// The refreshed entry is served with its full TTL, without another
	// upstream query, even after the old one would have expired.
	var ttl uint32
	for time.Now().Before(deadline) {
		r = resolvertest.Query(t, h.addr, "udp", "popular.example.", dns.TypeA)
		if ttl = r.Answer[0].Header().Ttl; ttl == 100 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if ttl != 100 {
		t.Fatalf("after prefetch: ttl %d, want 100", ttl)
	}
	h.clock.Add(10 * time.Second)
	resolvertest.Query(t, h.addr, "udp", "popular.example.", dns.TypeA)
	if up.Queries() != 2 {
		t.Errorf("upstream queries = %d after the old expiry, want 2", up.Queries())
	}
}

// TestPrefetchRetriedAfterFailedRefresh: a refresh that stores no new
// answer (here the upstream answers SERVFAIL, with cache.servfail_ttl 0 so
// that it is not cached) leaves the entry refreshable: the next hit within
// its last tenth tries again.
func TestPrefetchRetriedAfterFailedRefresh(t *testing.T) {
	up := resolvertest.StartUpstream(t, resolvertest.Sequence(
		resolvertest.Answer("@ 100 IN A 192.0.2.1"),
		resolvertest.Rcode(dns.RcodeServerFailure),
		resolvertest.Answer("@ 100 IN A 192.0.2.1"),
	))
	h := start(t, []string{up.Addr()}, func(c *config.Config) { c.Cache.Prefetch, c.Cache.ServfailTTL = true, 0 })
	for i := 0; i < 3; i++ { // a miss, then two hits: popular
		resolvertest.Query(t, h.addr, "udp", "retry.example.", dns.TypeA)
	}
	h.clock.Add(95 * time.Second) // within the last tenth
	for want := int64(2); want <= 3; want++ {
		deadline := time.Now().Add(5 * time.Second)
		for up.Queries() < want && time.Now().Before(deadline) {
			resolvertest.Query(t, h.addr, "udp", "retry.example.", dns.TypeA)
			time.Sleep(20 * time.Millisecond) // waiting for the background refresh, not for a TTL
		}
		if up.Queries() != want {
			t.Fatalf("upstream queries = %d, want %d (refresh %d)", up.Queries(), want, want-1)
		}
	}
}

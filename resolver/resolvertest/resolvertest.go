// Package resolvertest has helpers for tests that talk DNS over real sockets:
// a local upstream server on 127.0.0.1 that counts queries, builders for the
// handlers it serves, and a small query client.
//
// Nothing here uses the global dns.DefaultServeMux or package-level mutable
// state, so tests that use it may run in parallel.
package resolvertest

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Upstream is a DNS server on 127.0.0.1 serving one handler over UDP and TCP
// on the same port. It counts the queries it receives. Its methods are safe
// for concurrent use.
type Upstream struct {
	addr  string
	total atomic.Int64
	udp   atomic.Int64
	tcp   atomic.Int64

	mu   sync.Mutex
	last *dns.Msg
}

// StartUpstream serves h on 127.0.0.1 over UDP and TCP on one port until the
// test ends. It fails the test if the server cannot start. Handlers should not
// block for longer than a few seconds: shutdown waits for them.
func StartUpstream(t testing.TB, h dns.Handler) *Upstream {
	t.Helper()
	pc, ln, err := listenPair()
	if err != nil {
		t.Fatalf("resolvertest: listening on 127.0.0.1: %v", err)
	}
	u := &Upstream{addr: pc.LocalAddr().String()}

	udpStarted := make(chan struct{})
	tcpStarted := make(chan struct{})
	udpSrv := &dns.Server{
		PacketConn:        pc,
		Handler:           u.counted(h, &u.udp),
		NotifyStartedFunc: func() { close(udpStarted) },
	}
	tcpSrv := &dns.Server{
		Listener:          ln,
		Handler:           u.counted(h, &u.tcp),
		MaxTCPQueries:     -1,
		NotifyStartedFunc: func() { close(tcpStarted) },
	}
	errc := make(chan error, 2)
	go func() { errc <- udpSrv.ActivateAndServe() }()
	go func() { errc <- tcpSrv.ActivateAndServe() }()
	for _, started := range []chan struct{}{udpStarted, tcpStarted} {
		select {
		case <-started:
		case err := <-errc:
			_ = pc.Close()
			_ = ln.Close()
			t.Fatalf("resolvertest: starting upstream on %s: %v", u.addr, err)
		}
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := udpSrv.ShutdownContext(ctx); err != nil {
			t.Errorf("resolvertest: shutting down UDP upstream %s: %v", u.addr, err)
		}
		if err := tcpSrv.ShutdownContext(ctx); err != nil {
			t.Errorf("resolvertest: shutting down TCP upstream %s: %v", u.addr, err)
		}
	})
	return u
}

// listenPair opens a UDP socket on 127.0.0.1 with a kernel-chosen port and a
// TCP listener on the same port, retrying when that TCP port is taken.
func listenPair() (net.PacketConn, net.Listener, error) {
	var lastErr error
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, err
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln, nil
		}
		_ = pc.Close()
		lastErr = err
	}
	return nil, nil, lastErr
}

func (u *Upstream) counted(h dns.Handler, perNet *atomic.Int64) dns.HandlerFunc {
	return func(w dns.ResponseWriter, r *dns.Msg) {
		u.total.Add(1)
		perNet.Add(1)
		u.mu.Lock()
		u.last = r.Copy()
		u.mu.Unlock()
		h.ServeDNS(w, r)
	}
}

// Addr returns the server's address, "127.0.0.1:port".
func (u *Upstream) Addr() string { return u.addr }

// Queries returns the number of queries received over UDP and TCP.
func (u *Upstream) Queries() int64 { return u.total.Load() }

// UDPQueries returns the number of queries received over UDP.
func (u *Upstream) UDPQueries() int64 { return u.udp.Load() }

// TCPQueries returns the number of queries received over TCP.
func (u *Upstream) TCPQueries() int64 { return u.tcp.Load() }

// Last returns a copy of the last query received, or nil if none was.
func (u *Upstream) Last() *dns.Msg {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.last == nil {
		return nil
	}
	return u.last.Copy()
}

// Reset sets the query counters to zero and forgets the last query.
func (u *Upstream) Reset() {
	u.total.Store(0)
	u.udp.Store(0)
	u.tcp.Store(0)
	u.mu.Lock()
	u.last = nil
	u.mu.Unlock()
}

// reply returns a reply to r that mirrors r's EDNS (UDP size and DO bit, no
// options), as a well-behaved server does.
func reply(r *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(r)
	if opt := r.IsEdns0(); opt != nil {
		m.SetEdns0(opt.UDPSize(), opt.Do())
	}
	return m
}

// mustRRs parses rrs, replacing an owner name "@" with qname. It panics on an
// invalid record: that is a bug in the test, like a bad regexp.MustCompile.
func mustRRs(qname string, rrs []string) []dns.RR {
	out := make([]dns.RR, 0, len(rrs))
	for _, s := range rrs {
		if rest, ok := strings.CutPrefix(s, "@"); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
			s = qname + rest
		}
		rr, err := dns.NewRR(s)
		if err != nil || rr == nil {
			panic("resolvertest: bad RR " + strings.TrimSpace(s) + ": " + errString(err))
		}
		out = append(out, rr)
	}
	return out
}

func errString(err error) string {
	if err == nil {
		return "empty record"
	}
	return err.Error()
}

// Answer returns a handler that answers NOERROR with rrs (in zone-file syntax,
// parsed by dns.NewRR) in the answer section. An owner name "@" stands for
// the question name as the client sent it. The reply mirrors the query's
// EDNS. Answer panics at once if a record does not parse.
func Answer(rrs ...string) dns.HandlerFunc {
	mustRRs("example.", rrs) // fail early, in the test goroutine
	return func(w dns.ResponseWriter, r *dns.Msg) {
		m := reply(r)
		if len(r.Question) > 0 {
			m.Answer = mustRRs(r.Question[0].Name, rrs)
		}
		_ = w.WriteMsg(m)
	}
}

// Rcode returns a handler that answers with rcode and empty sections.
func Rcode(rcode int) dns.HandlerFunc {
	return func(w dns.ResponseWriter, r *dns.Msg) {
		m := reply(r)
		m.Rcode = rcode
		_ = w.WriteMsg(m)
	}
}

// NXDomain returns a handler that answers NXDOMAIN with soa (an SOA record in
// zone-file syntax; "@" as owner means the question name) in the authority
// section. It panics at once if soa does not parse.
func NXDomain(soa string) dns.HandlerFunc {
	mustRRs("example.", []string{soa})
	return func(w dns.ResponseWriter, r *dns.Msg) {
		m := reply(r)
		m.Rcode = dns.RcodeNameError
		if len(r.Question) > 0 {
			m.Ns = mustRRs(r.Question[0].Name, []string{soa})
		}
		_ = w.WriteMsg(m)
	}
}

// Drop returns a handler that never answers, to test timeouts.
func Drop() dns.HandlerFunc {
	return func(dns.ResponseWriter, *dns.Msg) {}
}

// Truncated returns a handler that answers over UDP with TC=1 and no records,
// and over TCP like Answer(rrs...).
func Truncated(rrs ...string) dns.HandlerFunc {
	full := Answer(rrs...)
	return func(w dns.ResponseWriter, r *dns.Msg) {
		if _, ok := w.RemoteAddr().(*net.UDPAddr); !ok {
			full(w, r)
			return
		}
		m := reply(r)
		m.Truncated = true
		_ = w.WriteMsg(m)
	}
}

// Echo returns a handler that answers every A question, whatever the name,
// with "A 192.0.2.1" and TTL 300, and any other type with NOERROR and no
// records (NODATA). The reply mirrors the query's EDNS.
func Echo() dns.HandlerFunc {
	return func(w dns.ResponseWriter, r *dns.Msg) {
		m := reply(r)
		if len(r.Question) > 0 && r.Question[0].Qtype == dns.TypeA {
			m.Answer = []dns.RR{&dns.A{
				Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300},
				A:   net.IPv4(192, 0, 2, 1).To4(),
			}}
		}
		_ = w.WriteMsg(m)
	}
}

// Func returns a handler that writes f(r) as the reply, or nothing when f
// returns nil. f may be called concurrently.
func Func(f func(r *dns.Msg) *dns.Msg) dns.HandlerFunc {
	return func(w dns.ResponseWriter, r *dns.Msg) {
		if m := f(r); m != nil {
			_ = w.WriteMsg(m)
		}
	}
}

// Sequence returns a handler that serves the n-th query (counting from 0,
// over UDP and TCP together) with hs[n]; once hs is used up, the last
// handler serves every further query. It panics if hs is empty.
func Sequence(hs ...dns.Handler) dns.HandlerFunc {
	if len(hs) == 0 {
		panic("resolvertest: Sequence needs at least one handler")
	}
	var n atomic.Int64
	return func(w dns.ResponseWriter, r *dns.Msg) {
		i := int(n.Add(1) - 1)
		hs[min(i, len(hs)-1)].ServeDNS(w, r)
	}
}

// All returns a handler that lets each of hs in turn handle the same query
// on the same connection, so a client may receive several replies (over UDP
// each is its own datagram from the same address). All(WrongID(h), h) sends
// a spoofed reply followed by the real one.
func All(hs ...dns.Handler) dns.HandlerFunc {
	return func(w dns.ResponseWriter, r *dns.Msg) {
		for _, h := range hs {
			h.ServeDNS(w, r)
		}
	}
}

// WrongID returns a handler that sends h's reply with a different message ID.
func WrongID(h dns.Handler) dns.HandlerFunc {
	return rewrite(h, func(m *dns.Msg) { m.Id ^= 0x5a5a })
}

// WrongQuestion returns a handler that sends h's reply with the question name
// replaced by "wrong-question.invalid.".
func WrongQuestion(h dns.Handler) dns.HandlerFunc {
	return rewrite(h, func(m *dns.Msg) {
		for i := range m.Question {
			m.Question[i].Name = "wrong-question.invalid."
		}
	})
}

// rewrite passes every message h writes through f before sending it.
func rewrite(h dns.Handler, f func(*dns.Msg)) dns.HandlerFunc {
	return func(w dns.ResponseWriter, r *dns.Msg) {
		h.ServeDNS(&rewriter{ResponseWriter: w, f: f}, r)
	}
}

type rewriter struct {
	dns.ResponseWriter
	f func(*dns.Msg)
}

func (rw *rewriter) WriteMsg(m *dns.Msg) error {
	m = m.Copy()
	rw.f(m)
	return rw.ResponseWriter.WriteMsg(m)
}

func (rw *rewriter) Write(b []byte) (int, error) {
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		return 0, errors.Join(errors.New("resolvertest: rewriting reply"), err)
	}
	if err := rw.WriteMsg(m); err != nil {
		return 0, err
	}
	return len(b), nil
}

// QueryOption changes a query built by Query before it is sent.
type QueryOption func(*dns.Msg)

// EDNS adds an OPT record with the given UDP size and DO bit.
func EDNS(udpSize uint16, do bool) QueryOption {
	return func(m *dns.Msg) { m.SetEdns0(udpSize, do) }
}

// CD sets the Checking Disabled bit.
func CD() QueryOption {
	return func(m *dns.Msg) { m.CheckingDisabled = true }
}

// Query sends one query for name (made fully qualified) and qtype to addr
// over network net ("udp" or "tcp") with RD set, and returns the reply. It
// fails the test on any error or after 5 seconds, so call it only from the
// test's goroutine.
func Query(t testing.TB, addr, net, name string, qtype uint16, opts ...QueryOption) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	for _, o := range opts {
		o(m)
	}
	c := &dns.Client{Net: net, Timeout: 5 * time.Second}
	resp, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("resolvertest: query %s %s to %s over %s: %v", name, dns.TypeToString[qtype], addr, net, err)
	}
	return resp
}

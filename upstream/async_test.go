package upstream_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/upstream"
)

// asyncResult is what an Async's handler got.
type asyncResult struct {
	reply []byte
	err   error
}

// chanHandler hands every UDPDone to a channel (a copy of the reply: it is
// valid only during the call).
type chanHandler chan asyncResult

func (c chanHandler) UDPDone(reply []byte, err error) {
	c <- asyncResult{reply: append([]byte(nil), reply...), err: err}
}

// wireQuestion is the question section of a query for name and qtype.
func wireQuestion(t *testing.T, name string, qtype uint16) []byte {
	t.Helper()
	b, err := new(dns.Msg).SetQuestion(name, qtype).Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b[12:]
}

// startAsync starts a query for name on g and returns the handler's
// channel, failing the test when StartUDP declines.
func startAsync(t *testing.T, g *upstream.Group, name string, cd, do bool, deadline time.Time) chanHandler {
	t.Helper()
	h := make(chanHandler, 1)
	a := &upstream.Async{H: h}
	if !g.StartUDP(a, wireQuestion(t, name, dns.TypeA), cd, do, time.Now(), deadline) {
		t.Fatalf("StartUDP(%s) declined", name)
	}
	return h
}

// wait returns the handler's result, failing the test after 5 s.
func (c chanHandler) wait(t *testing.T) asyncResult {
	t.Helper()
	select {
	case r := <-c:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("UDPDone was not called within 5 s")
		return asyncResult{}
	}
}

func plainGroup(t *testing.T, opts upstream.GroupOptions, uopts upstream.Options, addrs ...string) *upstream.Group {
	t.Helper()
	var ups []upstream.Upstream
	for _, a := range addrs {
		u, err := upstream.Parse(a, uopts)
		if err != nil {
			t.Fatal(err)
		}
		ups = append(ups, u)
	}
	if opts.TryTimeout == 0 {
		opts.TryTimeout = 300 * time.Millisecond
	}
	g, err := upstream.NewGroup(ups, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() })
	return g
}

// TestStartUDPQuery: the query StartUDP sends (RD, AD, CD and DO as asked,
// a random ID, the name in 0x20 mixed case, an OPT) and the reply handed to
// the handler, question as sent.
func TestStartUDPQuery(t *testing.T) {
	t.Parallel()
	got := make(chan *dns.Msg, 1)
	addr := startRaw(t, func(pc *net.UDPConn, pkt []byte, from netip.AddrPort) {
		q := new(dns.Msg)
		if q.Unpack(pkt) == nil {
			got <- q
		}
		_, _ = pc.WriteToUDPAddrPort(reflect(pkt, dns.RcodeNameError), from)
	})
	g := plainGroup(t, upstream.GroupOptions{}, upstream.Options{}, addr)
	const name = "abcdefghijklmnopqrstuvwxyz.example."
	r := startAsync(t, g, "AbCdefghijklmnopqrstuvwxyz.Example.", true, true, time.Now().Add(2*time.Second)).wait(t)
	if r.err != nil {
		t.Fatal(r.err)
	}
	q := <-got
	if !q.RecursionDesired || !q.AuthenticatedData || !q.CheckingDisabled || q.IsEdns0() == nil || !q.IsEdns0().Do() {
		t.Errorf("query %v: want RD, AD, CD and an OPT with DO", q)
	}
	if qn := q.Question[0].Name; !strings.EqualFold(qn, name) || qn == name || qn == strings.ToUpper(name) {
		t.Errorf("question name %q: want %q in mixed case", qn, name)
	}
	m := new(dns.Msg)
	if err := m.Unpack(r.reply); err != nil || m.Rcode != dns.RcodeNameError || m.Question[0].Name != q.Question[0].Name {
		t.Errorf("reply %v (%v): want the server's NXDOMAIN with the question as sent", m, err)
	}
	// Without 0x20 (#no-0x20) the name goes in lower case, and a reply in
	// any case is taken.
	addr2 := startRaw(t, func(pc *net.UDPConn, pkt []byte, from netip.AddrPort) {
		q := new(dns.Msg)
		if q.Unpack(pkt) == nil {
			got <- q
		}
		out := reflect(pkt, dns.RcodeSuccess)
		copy(out[12:], bytes.ToUpper(out[12:12+len(name)+1]))
		_, _ = pc.WriteToUDPAddrPort(out, from)
	})
	g2 := plainGroup(t, upstream.GroupOptions{}, upstream.Options{}, addr2+"#"+upstream.NoCaseRandomization)
	r = startAsync(t, g2, strings.ToUpper(name), false, false, time.Now().Add(2*time.Second)).wait(t)
	if r.err != nil {
		t.Fatalf("a reply in other case from a server without 0x20: %v", r.err)
	}
	if q := <-got; q.Question[0].Name != name || q.CheckingDisabled || q.IsEdns0() == nil || q.IsEdns0().Do() {
		t.Errorf("query %v: want the name in lower case, no CD, an OPT without DO", q)
	}
}

// TestStartUDPForgeries: replies with a wrong ID, question, case (0x20) or
// source port never reach the handler; the real reply that follows does.
// A reply after the try gave up reaches nothing and is counted as "id".
func TestStartUDPForgeries(t *testing.T) {
	t.Parallel()
	other, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	addr := startRaw(t, func(pc *net.UDPConn, pkt []byte, from netip.AddrPort) {
		wrongID := reflect(pkt, dns.RcodeNameError)
		wrongID[0] ^= 0x5a
		_, _ = pc.WriteToUDPAddrPort(wrongID, from)
		wrongCase := reflect(pkt, dns.RcodeNameError)
		wrongCase[13] ^= 0x20 // one letter in the other case
		_, _ = pc.WriteToUDPAddrPort(wrongCase, from)
		wrongQuestion := reflect(pkt, dns.RcodeNameError)
		wrongQuestion[14] ^= 0x01 // another letter
		_, _ = pc.WriteToUDPAddrPort(wrongQuestion, from)
		wrongType := reflect(pkt, dns.RcodeNameError)
		wrongType[len(wrongType)-11-3] ^= 0x08
		_, _ = pc.WriteToUDPAddrPort(wrongType, from)
		notReply := append([]byte(nil), pkt...)
		_, _ = pc.WriteToUDPAddrPort(notReply, from)
		_, _ = other.WriteToUDPAddrPort(reflect(pkt, dns.RcodeNameError), from)
		if bytes.Contains(bytes.ToLower(pkt), []byte("silent")) {
			go func() {
				time.Sleep(400 * time.Millisecond) // after the try gave up
				_, _ = pc.WriteToUDPAddrPort(reflect(pkt, dns.RcodeSuccess), from)
			}()
			return
		}
		time.Sleep(30 * time.Millisecond)
		_, _ = pc.WriteToUDPAddrPort(reflect(pkt, dns.RcodeSuccess), from)
	})
	var d drops
	g := plainGroup(t, upstream.GroupOptions{TryTimeout: 200 * time.Millisecond}, upstream.Options{OnDrop: d.add}, addr)
	r := startAsync(t, g, "abcdefghijklmnopqrstuvwxyz.example.", false, false, time.Now().Add(2*time.Second)).wait(t)
	if r.err != nil || len(r.reply) < 4 || r.reply[3]&0xF != dns.RcodeSuccess {
		t.Fatalf("got %x, %v; want the real NOERROR", r.reply, r.err)
	}
	time.Sleep(50 * time.Millisecond)
	// question: another name, another type, QR not set. (The one from
	// another port never reaches the connected socket.)
	for reason, want := range map[string]int{"id": 1, "case": 1, "question": 3} {
		if got := d.get(reason); got != want {
			t.Errorf("drops %v: %d for %q, want %d", d.n, got, reason, want)
		}
	}

	before := d.get("id")
	r = startAsync(t, g, "silent.example.", false, false, time.Now().Add(2*time.Second)).wait(t)
	if !errors.Is(r.err, context.DeadlineExceeded) || r.reply != nil {
		t.Fatalf("got %x, %v; want the try's timeout", r.reply, r.err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for d.get("id") < before+2 && time.Now().Before(deadline) { // the wrong-ID forgery and the late reply
		time.Sleep(10 * time.Millisecond)
	}
	if d.get("id") < before+2 {
		t.Errorf("drops %v: the late reply was not dropped as id", d.n)
	}
}

// TestStartUDPHealth: a try that times out marks the upstream down, so the
// next query does not start (StartUDP declines: ExchangeBy knows the order
// of the others); ExchangeAfter then asks the second upstream only, never the
// one the try asked. Observe sees each try.
func TestStartUDPHealth(t *testing.T) {
	t.Parallel()
	var firstQueries atomic.Int32
	silent := startRaw(t, func(*net.UDPConn, []byte, netip.AddrPort) { firstQueries.Add(1) })
	good := startRaw(t, func(pc *net.UDPConn, pkt []byte, from netip.AddrPort) {
		_, _ = pc.WriteToUDPAddrPort(reflect(pkt, dns.RcodeSuccess), from)
	})
	var o observed
	g := plainGroup(t, upstream.GroupOptions{TryTimeout: 100 * time.Millisecond, Observe: o.observe}, upstream.Options{}, silent, good)
	h := make(chanHandler, 1)
	a := &upstream.Async{H: h}
	if !g.StartUDP(a, wireQuestion(t, "x.example.", dns.TypeA), false, false, time.Now(), time.Now().Add(2*time.Second)) {
		t.Fatal("StartUDP declined with every upstream healthy")
	}
	r := h.wait(t)
	if !errors.Is(r.err, context.DeadlineExceeded) {
		t.Fatalf("got %v; want the try's timeout", r.err)
	}
	resp, err := g.ExchangeAfter(context.Background(), question("x.example.", dns.TypeA), a, nil, r.err)
	if err != nil || resp.Rcode != dns.RcodeSuccess {
		t.Fatalf("ExchangeAfter: %v, %v; want the second upstream's NOERROR", resp, err)
	}
	if n := firstQueries.Load(); n != 1 {
		t.Errorf("the first upstream got %d queries, want 1 (ExchangeAfter must not ask it again)", n)
	}
	if tries, _ := o.take(); len(tries) != 2 || tries[1] == tries[0] {
		t.Errorf("tries %v: want the first upstream, then the second", tries)
	}
	if g.StartUDP(&upstream.Async{H: h}, wireQuestion(t, "y.example.", dns.TypeA), false, false, time.Now(), time.Now().Add(2*time.Second)) {
		t.Error("StartUDP started a query on an upstream marked down")
	}
}

// startServfail starts a query for x.example. on g, whose first upstream
// answers SERVFAIL, and returns the try and that reply.
func startServfail(t *testing.T, g *upstream.Group) (*upstream.Async, *dns.Msg) {
	t.Helper()
	h := make(chanHandler, 1)
	a := &upstream.Async{H: h}
	if !g.StartUDP(a, wireQuestion(t, "x.example.", dns.TypeA), false, false, time.Now(), time.Now().Add(2*time.Second)) {
		t.Fatal("StartUDP declined")
	}
	r := h.wait(t)
	bad := new(dns.Msg)
	if r.err != nil || bad.Unpack(r.reply) != nil || bad.Rcode != dns.RcodeServerFailure {
		t.Fatalf("got %x, %v; want the SERVFAIL", r.reply, r.err)
	}
	return a, bad
}

// TestExchangeAfterBadReply: a SERVFAIL the try got is the answer when the
// other upstreams do no better (here: there are none).
func TestExchangeAfterBadReply(t *testing.T) {
	t.Parallel()
	addr := startRaw(t, func(pc *net.UDPConn, pkt []byte, from netip.AddrPort) {
		_, _ = pc.WriteToUDPAddrPort(reflect(pkt, dns.RcodeServerFailure), from)
	})
	g := plainGroup(t, upstream.GroupOptions{}, upstream.Options{}, addr)
	a, bad := startServfail(t, g)
	resp, err := g.ExchangeAfter(context.Background(), question("x.example.", dns.TypeA), a, bad, nil)
	if err != nil || resp != bad {
		t.Fatalf("ExchangeAfter: %v, %v; want the try's SERVFAIL", resp, err)
	}
	// The SERVFAIL did not mark the upstream down.
	h := make(chanHandler, 1)
	if !g.StartUDP(&upstream.Async{H: h}, wireQuestion(t, "y.example.", dns.TypeA), false, false, time.Now(), time.Now().Add(2*time.Second)) {
		t.Error("StartUDP declined after a SERVFAIL: the upstream was marked down")
	}
	h.wait(t)
}

// TestStartUDPDeclines: what StartUDP does not start, sending nothing.
func TestStartUDPDeclines(t *testing.T) {
	t.Parallel()
	var queries atomic.Int32
	addr := startRaw(t, func(*net.UDPConn, []byte, netip.AddrPort) { queries.Add(1) })
	q := wireQuestion(t, "x.example.", dns.TypeA)
	compressed := append([]byte{0xC0, 0x0C}, q[len(q)-4:]...)
	for name, c := range map[string]struct {
		g *upstream.Group
		q []byte
	}{
		"parallel":   {plainGroup(t, upstream.GroupOptions{Strategy: upstream.StrategyParallel}, upstream.Options{}, addr, addr), q},
		"tcp only":   {plainGroup(t, upstream.GroupOptions{}, upstream.Options{}, "tcp://"+addr), q},
		"compressed": {plainGroup(t, upstream.GroupOptions{}, upstream.Options{}, addr), compressed},
		"short":      {plainGroup(t, upstream.GroupOptions{}, upstream.Options{}, addr), q[:3]},
	} {
		if c.g.StartUDP(&upstream.Async{H: make(chanHandler, 1)}, c.q, false, false, time.Now(), time.Now().Add(time.Second)) {
			t.Errorf("%s: StartUDP started a query", name)
		}
	}
	time.Sleep(50 * time.Millisecond)
	if n := queries.Load(); n != 0 {
		t.Errorf("%d queries sent by declined starts", n)
	}
}

// TestExchangeAfterSkipsTried: after a try that got SERVFAIL (its upstream
// stays healthy), ExchangeAfter asks the next upstream and not that one
// again.
func TestExchangeAfterSkipsTried(t *testing.T) {
	t.Parallel()
	var firstQueries atomic.Int32
	failing := startRaw(t, func(pc *net.UDPConn, pkt []byte, from netip.AddrPort) {
		firstQueries.Add(1)
		_, _ = pc.WriteToUDPAddrPort(reflect(pkt, dns.RcodeServerFailure), from)
	})
	good := startRaw(t, func(pc *net.UDPConn, pkt []byte, from netip.AddrPort) {
		_, _ = pc.WriteToUDPAddrPort(reflect(pkt, dns.RcodeSuccess), from)
	})
	g := plainGroup(t, upstream.GroupOptions{}, upstream.Options{}, failing, good)
	a, bad := startServfail(t, g)
	resp, err := g.ExchangeAfter(context.Background(), question("x.example.", dns.TypeA), a, bad, nil)
	if err != nil || resp.Rcode != dns.RcodeSuccess {
		t.Fatalf("ExchangeAfter: %v, %v; want the second upstream's NOERROR", resp, err)
	}
	if n := firstQueries.Load(); n != 1 {
		t.Errorf("the first upstream got %d queries, want 1", n)
	}
}

// recordingTap is a UDPTap that keeps what TapUDP was given.
type recordingTap struct {
	upstream.Upstream
	query, reply chan []byte
}

func (r *recordingTap) Unwrap() upstream.Upstream { return r.Upstream }

func (r *recordingTap) TapUDP(query, reply []byte, queryTime, responseTime time.Time) {
	if responseTime.Before(queryTime) {
		panic("responseTime before queryTime")
	}
	r.query <- bytes.Clone(query)
	r.reply <- bytes.Clone(reply)
}

// TestStartUDPTap: a member wrapped in a UDPTap goes the StartUDP way, and
// the tap gets the query as the server got it and the reply as it came
// (nil for a try that timed out).
func TestStartUDPTap(t *testing.T) {
	t.Parallel()
	got := make(chan []byte, 2)
	addr := startRaw(t, func(pc *net.UDPConn, pkt []byte, from netip.AddrPort) {
		got <- pkt
		if !bytes.Contains(bytes.ToLower(pkt), []byte("silent")) {
			_, _ = pc.WriteToUDPAddrPort(reflect(pkt, dns.RcodeSuccess), from)
		}
	})
	u, err := upstream.Parse(addr, upstream.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tap := &recordingTap{Upstream: u, query: make(chan []byte, 2), reply: make(chan []byte, 2)}
	g, err := upstream.NewGroup([]upstream.Upstream{tap}, upstream.GroupOptions{TryTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	r := startAsync(t, g, "tapped.example.", false, false, time.Now().Add(2*time.Second)).wait(t)
	if r.err != nil {
		t.Fatal(r.err)
	}
	sent := <-got
	if q := <-tap.query; !bytes.Equal(q, sent) {
		t.Errorf("tapped query %x, the server got %x", q, sent)
	}
	if rep := <-tap.reply; !bytes.Equal(rep, r.reply) {
		t.Errorf("tapped reply %x, the handler got %x", rep, r.reply)
	}
	r = startAsync(t, g, "silent.example.", false, false, time.Now().Add(2*time.Second)).wait(t)
	if r.err == nil {
		t.Fatal("no timeout")
	}
	<-got
	if q, rep := <-tap.query, <-tap.reply; len(q) == 0 || rep != nil {
		t.Errorf("after a timeout: tapped query %x, reply %x; want the query and no reply", q, rep)
	}
}

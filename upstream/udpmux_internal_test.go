package upstream

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// silentServer returns the address of a UDP socket that reads nothing and
// answers nothing.
func silentServer(t *testing.T) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	return pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

// testQuery is the wire form of a query (ID 0 until start picks one).
func testQuery() (*sentQuery, []byte) {
	return &sentQuery{}, []byte{0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1}
}

// TestUDPMuxCounted checks the gauges behind jurisdns_upstream_udp_sockets,
// _idle and _inflight, the bound on queries in flight, the unique IDs on a
// socket, and that retired sockets close once their queries are over. Not
// parallel: the counts are process-wide and the parallel tests run after
// this one.
func TestUDPMuxCounted(t *testing.T) {
	m := &udpMux{raddr: silentServer(t)}
	open0, idle0 := UDPSockets()
	fly0 := UDPInflight()
	check := func(step string, open, idle, fly int64) {
		t.Helper()
		o, i := UDPSockets()
		if f := UDPInflight(); o-open0 != open || i-idle0 != idle || f-fly0 != fly {
			t.Fatalf("%s: open %+d idle %+d in flight %+d, want %+d %+d %+d", step, o-open0, i-idle0, f-fly0, open, idle, fly)
		}
	}
	type inFlight struct {
		s *muxSock
		p *pendingQuery
	}
	var all []inFlight
	ids := map[*muxSock]map[uint16]bool{}
	for {
		q, wire := testQuery()
		s, p, err := m.start(q, wire, time.Now())
		if errors.Is(err, ErrBusy) {
			break
		}
		if err != nil {
			t.Fatalf("query %d: %v", len(all), err)
		}
		if ids[s] == nil {
			ids[s] = map[uint16]bool{}
		}
		if ids[s][q.id] || p.q.id != q.id || uint16(wire[0])<<8|uint16(wire[1]) != q.id {
			t.Fatalf("query %d: ID %d taken twice on a socket, or not the one sent", len(all), q.id)
		}
		ids[s][q.id] = true
		all = append(all, inFlight{s, p})
		if len(all) == 1 {
			check("one query", 1, 0, 1)
		}
		if len(all) > muxMaxInflight {
			t.Fatalf("%d queries in flight, the bound is %d", len(all), muxMaxInflight)
		}
	}
	if len(all) != muxMaxInflight {
		t.Fatalf("busy after %d queries, want %d", len(all), muxMaxInflight)
	}
	// The sockets were worn out and replaced on the way; the retired
	// ones wait for their queries.
	if want := muxMaxInflight / muxMaxUses; len(ids) != want {
		t.Fatalf("%d sockets for %d queries, want %d (a new one every %d queries)", len(ids), len(all), want, muxMaxUses)
	}
	for s, q := range ids {
		if s.uses != muxMaxUses || len(q) != muxMaxUses {
			t.Fatalf("a socket took %d queries, want %d", s.uses, muxMaxUses)
		}
	}
	check("busy", int64(len(ids)), 0, int64(len(all)))
	for _, f := range all {
		f.s.abandon(f.p)
	}
	// The retired sockets closed with their last query; the current ones
	// stay, idle.
	check("all over", muxSockets, muxSockets, 0)
	// A socket past its age is replaced by the next query.
	m.mu.Lock()
	old := m.socks[m.next]
	old.uses, old.born = 0, time.Now().Add(-muxMaxAge) // worn by age only
	m.mu.Unlock()
	q, wire := testQuery()
	s, p, err := m.start(q, wire, time.Now())
	if err != nil || s == old || !old.closed {
		t.Fatalf("start on an old socket: %v, new %v, old closed %v", err, s != old, old.closed)
	}
	check("replaced by age", muxSockets, muxSockets-1, 1)
	m.close()
	check("closed, one query in flight", 1, 0, 1)
	s.abandon(p)
	check("closed", 0, 0, 0)
	// After close a query gets a socket of its own, closed after it.
	q, wire = testQuery()
	s, p, err = m.start(q, wire, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	check("after close", 1, 0, 1)
	s.abandon(p)
	check("after close, done", 0, 0, 0)
}

// TestMuxFromServer: a datagram from another port or address than the
// server's is not the server's.
func TestMuxFromServer(t *testing.T) {
	s := &muxSock{mux: &udpMux{raddr: netip.MustParseAddrPort("127.0.0.1:53")}}
	for ap, want := range map[string]bool{
		"127.0.0.1:53":          true,
		"[::ffff:127.0.0.1]:53": true,
		"127.0.0.1:54":          false,
		"127.0.0.2:53":          false,
		"[::1]:53":              false,
	} {
		if got := s.fromServer(netip.MustParseAddrPort(ap)); got != want {
			t.Errorf("fromServer(%s) = %v, want %v", ap, got, want)
		}
	}
}

// TestGroupBusyIsNotDown: a server with its most queries in flight turns a
// query away at once (ErrBusy) and is not marked down for it.
func TestGroupBusyIsNotDown(t *testing.T) {
	t.Parallel()
	u, err := Parse(silentServer(t).String(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	u.(*server).mux.inflight.Store(muxMaxInflight)
	g, err := NewGroup([]Upstream{u}, GroupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	m := new(dns.Msg).SetQuestion("busy.example.", dns.TypeA)
	start := time.Now()
	if _, err := g.Exchange(context.Background(), m); !errors.Is(err, ErrBusy) {
		t.Fatalf("err = %v, want ErrBusy", err)
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("a busy server took %v to turn the query away", el)
	}
	if mb := g.ups[0]; mb.fails != 0 {
		t.Errorf("a busy server was marked down (%d failures)", mb.fails)
	}
}

// TestMuxSenderBound: at most maxQueuedQueries wait in a server's sender;
// the caller of one more writes its own.
func TestMuxSenderBound(t *testing.T) {
	t.Parallel()
	var w muxSender
	w.running = true // no goroutine starts: nothing is written
	for i := range maxQueuedQueries {
		if !w.send(nil, nil, nil) {
			t.Fatalf("query %d not queued", i)
		}
	}
	if w.send(nil, nil, nil) {
		t.Fatalf("%d queries queued, the bound is %d", len(w.q), maxQueuedQueries)
	}
}

// TestMuxWriteFails: a query whose datagram cannot be written ends at once
// with the error, not at its deadline.
func TestMuxWriteFails(t *testing.T) {
	t.Parallel()
	m := &udpMux{raddr: silentServer(t)}
	q, wire := testQuery()
	s, p, err := m.start(q, wire, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	_ = s.c.Close()
	s.writeBatch([]queuedQuery{{s: s, p: p, wire: wire}})
	select {
	case <-p.done:
		if r := p.result; !errors.Is(r.err, net.ErrClosed) {
			t.Fatalf("err = %v, want net.ErrClosed", r.err)
		}
	default:
		t.Fatal("the query did not end")
	}
	if n := m.inflight.Load(); n != 0 {
		t.Errorf("%d in flight after the failed write", n)
	}
	m.close()
}

// TestIDTable: IDs that share their low bits (one probe chain) are found,
// removed and re-added independently; a removed entry no longer answers, and
// does not hide the entries after it.
func TestIDTable(t *testing.T) {
	var tab idTable
	mk := func(id uint16) *pendingQuery { return &pendingQuery{q: sentQuery{id: id}} }
	a, b, c := mk(7), mk(7+idSlots), mk(7+2*idSlots) // one chain
	d := mk(8)                                       // where the chain spills over
	for _, p := range []*pendingQuery{a, b, c, d} {
		tab.put(p)
	}
	if tab.n != 4 {
		t.Fatalf("n = %d, want 4", tab.n)
	}
	for _, p := range []*pendingQuery{a, b, c, d} {
		if got := tab.get(p.q.id); got != p {
			t.Fatalf("get(%d) = %v", p.q.id, got)
		}
	}
	if !tab.remove(b) || tab.remove(b) {
		t.Fatal("remove(b): want true once, then false")
	}
	if tab.get(b.q.id) != nil || tab.get(c.q.id) != c || tab.get(d.q.id) != d {
		t.Fatal("after removing b: b still found, or c or d lost")
	}
	if tab.remove(mk(c.q.id)) {
		t.Fatal("removed another query with c's ID")
	}
	b2 := mk(b.q.id)
	tab.put(b2)
	if tab.get(b.q.id) != b2 || tab.n != 4 {
		t.Fatalf("re-added ID: get = %v, n = %d", tab.get(b.q.id), tab.n)
	}
	if tab.get(9) != nil || tab.get(7+3*idSlots) != nil {
		t.Fatal("found an ID never added")
	}
}

// BenchmarkIDTable is the ID bookkeeping of one socket's life (muxMaxUses
// queries, 16 in flight): for each query a free random ID, put, the two
// lookups of its reply's dispatch, remove. ns/op is per socket life.
func BenchmarkIDTable(b *testing.B) {
	ps := make([]*pendingQuery, muxMaxUses)
	for i := range ps {
		ps[i] = &pendingQuery{q: sentQuery{id: uint16(rand.Uint32())}}
	}
	for b.Loop() {
		t := new(idTable)
		for i, p := range ps {
			for t.get(p.q.id) != nil {
				p.q.id++
			}
			t.put(p)
			if i >= 16 {
				o := ps[i-16]
				_ = t.get(o.q.id)
				_ = t.get(o.q.id)
				t.remove(o)
			}
		}
	}
}

// TestICMPCountsOnce: one ICMP error on a multiplexed socket ends all of
// its queries, but counts once against the server's health (it counted
// once per query in flight: up to 256 failures, the longest backoff, from
// one message an off-path sender could spoof).
func TestICMPCountsOnce(t *testing.T) {
	t.Parallel()
	u, err := Parse(silentServer(t).String(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewGroup([]Upstream{u}, GroupOptions{TryTimeout: 10 * time.Second, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	const n = 20
	errs := make(chan error, n)
	for i := range n {
		go func() {
			m := new(dns.Msg).SetQuestion("icmp"+string(rune('a'+i))+".example.", dns.TypeA)
			_, err := g.Exchange(context.Background(), m)
			errs <- err
		}()
	}
	mux := &u.(*server).mux
	for deadline := time.Now().Add(5 * time.Second); mux.inflight.Load() < n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d queries in flight, want %d", mux.inflight.Load(), n)
		}
	}
	mux.mu.Lock()
	socks := mux.socks
	mux.mu.Unlock()
	failed := 0
	for _, s := range socks {
		if s != nil {
			s.fail(syscall.ECONNREFUSED) // what the reader does on the kernel's report
			failed++
		}
	}
	for range n {
		if err := <-errs; !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("err = %v, want ECONNREFUSED", err)
		}
	}
	g.ups[0].mu.Lock()
	fails := g.ups[0].fails
	g.ups[0].mu.Unlock()
	if fails < 1 || fails > failed {
		t.Errorf("%d failures counted for %d ICMP errors on %d queries", fails, failed, n)
	}
}

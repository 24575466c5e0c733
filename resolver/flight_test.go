package resolver

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// gateUpstream answers once released: calls counts the queries it got and
// entered is signalled as each arrives. ttl is the answer's TTL (0: not
// cacheable); panicking makes it panic instead of answering.
type gateUpstream struct {
	calls     atomic.Int32
	entered   chan struct{}
	release   chan struct{}
	ttl       uint32
	panicking bool
}

func newGate(ttl uint32) *gateUpstream {
	return &gateUpstream{entered: make(chan struct{}, 16), release: make(chan struct{}), ttl: ttl}
}

func (g *gateUpstream) Exchange(_ context.Context, m *dns.Msg) (*dns.Msg, error) {
	g.calls.Add(1)
	g.entered <- struct{}{}
	<-g.release
	if g.panicking {
		panic("upstream blew up")
	}
	r := new(dns.Msg)
	r.SetReply(m)
	r.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: m.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: g.ttl}, A: []byte{192, 0, 2, 1}}}
	return r, nil
}

type fetchResult struct {
	e   *entry
	m   *dns.Msg
	err error
}

// flyShared starts a leader fetch of name through up, waits until it is
// at the upstream, joins n more callers to its flight and releases the
// upstream; it returns the leader's result first. A panic of the leader is
// recovered and reported as panicked.
func flyShared(t *testing.T, f *forwarder, up *gateUpstream, name string, n int) (results []fetchResult, panicked bool) {
	t.Helper()
	results = make([]fetchResult, n+1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer func() { panicked = recover() != nil }()
		e, m, err := f.fetch(context.Background(), &Request{Name: name, Qtype: dns.TypeA, up: up})
		results[0] = fetchResult{e, m, err}
	}()
	<-up.entered
	key := flightKey{name: name, qtype: dns.TypeA}
	for i := 1; i <= n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e, m, err := f.fetch(context.Background(), &Request{Name: name, Qtype: dns.TypeA, up: up})
			results[i] = fetchResult{e, m, err}
		}()
	}
	// Release the upstream only once every caller has joined the flight.
	for deadline := time.Now().Add(5 * time.Second); ; {
		f.flights.mu.Lock()
		dups := f.flights.m[key].dups
		f.flights.mu.Unlock()
		if dups == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d callers joined the flight", dups, n)
		}
		time.Sleep(time.Millisecond)
	}
	close(up.release)
	wg.Wait()
	return results, panicked
}

// TestFlightSharesOneQuery: identical concurrent misses ask the upstream
// once and all get the new cache entry.
func TestFlightSharesOneQuery(t *testing.T) {
	f := newInProcess(t).Runtime().fwd
	up := newGate(300)
	results, panicked := flyShared(t, f, up, "shared.example.", 5)
	if panicked {
		t.Fatal("leader panicked")
	}
	if n := up.calls.Load(); n != 1 {
		t.Fatalf("upstream asked %d times, want 1", n)
	}
	for i, r := range results {
		if r.err != nil || r.e == nil || r.e != results[0].e {
			t.Fatalf("caller %d: entry %p, err %v; want the leader's entry %p", i, r.e, r.err, results[0].e)
		}
	}
	if len(f.flights.m) != 0 {
		t.Fatalf("%d flights left in the table", len(f.flights.m))
	}
}

// TestFlightUncacheableCopies: an answer that is not cached is shared as
// a copy per caller (each may change its own).
func TestFlightUncacheableCopies(t *testing.T) {
	f := newInProcess(t).Runtime().fwd
	up := newGate(0)
	results, _ := flyShared(t, f, up, "nocache.example.", 3)
	seen := map[*dns.Msg]bool{}
	for i, r := range results {
		if r.err != nil || r.e != nil || r.m == nil || len(r.m.Answer) != 1 {
			t.Fatalf("caller %d: entry %v, msg %v, err %v; want an uncached answer", i, r.e, r.m, r.err)
		}
		if seen[r.m] {
			t.Fatalf("caller %d got a message another caller holds", i)
		}
		seen[r.m] = true
	}
	// Alone on its flight, a caller gets the message without a copy, and
	// it is still its own.
	alone := newGate(0)
	close(alone.release)
	_, m, err := f.fetch(context.Background(), &Request{Name: "nocache.example.", Qtype: dns.TypeA, up: alone})
	if err != nil || m == nil || seen[m] {
		t.Fatalf("lone caller: msg %p, err %v", m, err)
	}
}

// TestFlightLeaderPanic: when the leader panics, the callers that joined
// get an error (not a nil answer) and the next miss flies again.
func TestFlightLeaderPanic(t *testing.T) {
	f := newInProcess(t).Runtime().fwd
	up := newGate(300)
	up.panicking = true
	results, panicked := flyShared(t, f, up, "panic.example.", 2)
	if !panicked {
		t.Fatal("the leader's panic was swallowed")
	}
	for i, r := range results[1:] {
		if !errors.Is(r.err, errFlightAborted) {
			t.Fatalf("joined caller %d: entry %v, msg %v, err %v; want errFlightAborted", i+1, r.e, r.m, r.err)
		}
	}
	again := newGate(300)
	close(again.release)
	e, _, err := f.fetch(context.Background(), &Request{Name: "panic.example.", Qtype: dns.TypeA, up: again})
	if err != nil || e == nil || again.calls.Load() != 1 {
		t.Fatalf("after the panic: entry %v, err %v, %d upstream calls", e, err, again.calls.Load())
	}
}

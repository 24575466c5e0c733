package ratelimit

import (
	"math/rand/v2"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is an injected clock; step, if set, advances it on every read.
type fakeClock struct {
	base time.Time
	off  atomic.Int64
	step time.Duration
}

func newClock() *fakeClock { return &fakeClock{base: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	if c.step != 0 {
		return c.base.Add(time.Duration(c.off.Add(int64(c.step))))
	}
	return c.base.Add(time.Duration(c.off.Load()))
}

func (c *fakeClock) Advance(d time.Duration) { c.off.Add(int64(d)) }

func mustNew(t testing.TB, o Options) *Limiter {
	t.Helper()
	l, err := New(o)
	if err != nil {
		t.Fatalf("New(%+v): %v", o, err)
	}
	return l
}

func countAllowed(l *Limiter, a netip.Addr, n int) int {
	k := 0
	for range n {
		if l.Allow(a) {
			k++
		}
	}
	return k
}

// checkInvariants verifies every shard's table, LRU list and free list.
func checkInvariants(t *testing.T, l *Limiter) {
	t.Helper()
	total := 0
	for si := range l.shards {
		s := &l.shards[si]
		s.mu.Lock()
		inList := 0
		prev := int32(none)
		for i := s.head; i != none; i = s.ents[i].next {
			e := &s.ents[i]
			if e.prev != prev {
				t.Fatalf("shard %d: entry %d prev %d, want %d", si, i, e.prev, prev)
			}
			if got := s.find(e.key, e.hash); got != i {
				t.Fatalf("shard %d: find(entry %d) = %d", si, i, got)
			}
			if uint64(l.hash(e.key))>>l.shift != uint64(si) || uint32(l.hash(e.key)) != e.hash {
				t.Fatalf("shard %d: entry %d has a foreign or stale hash", si, i)
			}
			prev = i
			inList++
		}
		if prev != s.tail {
			t.Fatalf("shard %d: tail %d, want %d", si, s.tail, prev)
		}
		used := 0
		for _, v := range s.slots {
			if v != 0 {
				used++
			}
		}
		free := 0
		for i := s.free; i != none; i = s.ents[i].next {
			free++
		}
		if inList != s.n || used != s.n || free+s.n != len(s.ents) || s.n > s.cap || 2*s.n > len(s.slots) && len(s.slots) < s.maxSl {
			t.Fatalf("shard %d: n=%d list=%d slots=%d/%d free=%d ents=%d cap=%d", si, s.n, inList, used, len(s.slots), free, len(s.ents), s.cap)
		}
		total += s.n
		s.mu.Unlock()
	}
	if total != l.Len() {
		t.Fatalf("Len() = %d, shards hold %d", l.Len(), total)
	}
}

func TestBurstRefusalRefill(t *testing.T) {
	type step struct {
		advance time.Duration
		send    int
		want    int // allowed among send
	}
	tests := []struct {
		name  string
		qps   float64
		burst int
		steps []step
	}{
		{
			name: "burst then refusal then refill", qps: 10, burst: 5,
			steps: []step{
				{send: 8, want: 5},
				{advance: 100 * time.Millisecond, send: 3, want: 1},
				{advance: 250 * time.Millisecond, send: 3, want: 2},
				{advance: 10 * time.Second, send: 10, want: 5}, // refills to burst, not beyond
			},
		},
		{
			name: "burst 0 means one second's worth", qps: 2.5, burst: 0,
			steps: []step{
				{send: 5, want: 3},
				{advance: 399 * time.Millisecond, send: 1, want: 0},
				{advance: time.Millisecond, send: 1, want: 1},
			},
		},
		{
			name: "burst 1 is a strict interval", qps: 1, burst: 1,
			steps: []step{
				{send: 2, want: 1},
				{advance: 999 * time.Millisecond, send: 1, want: 0},
				{advance: time.Millisecond, send: 2, want: 1},
			},
		},
		{
			name: "fractional qps", qps: 0.5, burst: 2,
			steps: []step{
				{send: 3, want: 2},
				{advance: time.Second, send: 1, want: 0},
				{advance: time.Second, send: 1, want: 1},
			},
		},
		{
			name: "refused queries take no tokens", qps: 1, burst: 1,
			steps: []step{
				{send: 1000, want: 1},
				{advance: time.Second, send: 1, want: 1},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newClock()
			l := mustNew(t, Options{QPS: tc.qps, Burst: tc.burst, Now: c.Now})
			a := netip.MustParseAddr("192.0.2.1")
			for i, s := range tc.steps {
				c.Advance(s.advance)
				if got := countAllowed(l, a, s.send); got != s.want {
					t.Fatalf("step %d: %d of %d allowed, want %d", i, got, s.send, s.want)
				}
			}
		})
	}
}

func TestGrouping(t *testing.T) {
	tests := []struct {
		name       string
		ipv4, ipv6 int
		a, b       string
		shared     bool
	}{
		{name: "v4 same address", a: "192.0.2.1", b: "192.0.2.1", shared: true},
		{name: "v4 /32 default", a: "192.0.2.1", b: "192.0.2.2", shared: false},
		{name: "v6 same /64", a: "2001:db8:0:1::1", b: "2001:db8:0:1:ffff:ffff:ffff:ffff", shared: true},
		{name: "v6 different /64", a: "2001:db8:0:1::1", b: "2001:db8:0:2::1", shared: false},
		{name: "v4 /24 same", ipv4: 24, a: "192.0.2.1", b: "192.0.2.254", shared: true},
		{name: "v4 /24 different", ipv4: 24, a: "192.0.2.1", b: "192.0.3.1", shared: false},
		{name: "v6 /48 same", ipv6: 48, a: "2001:db8:1:2::1", b: "2001:db8:1:ffff::9", shared: true},
		{name: "v6 /48 different", ipv6: 48, a: "2001:db8:1::1", b: "2001:db8:2::1", shared: false},
		{name: "v6 /128", ipv6: 128, a: "2001:db8::1", b: "2001:db8::2", shared: false},
		{name: "v6 /72", ipv6: 72, a: "2001:db8::ff:1", b: "2001:db8::1", shared: true},
		{name: "v6 /72 different", ipv6: 72, a: "2001:db8::0100:0:0:1", b: "2001:db8::1", shared: false},
		{name: "mapped is v4", a: "::ffff:192.0.2.1", b: "192.0.2.1", shared: true},
		{name: "mapped /24", ipv4: 24, a: "::ffff:192.0.2.1", b: "192.0.2.7", shared: true},
		{name: "v4-compatible is v6", ipv6: 128, a: "::192.0.2.1", b: "192.0.2.1", shared: false},
		{name: "families apart at /1", ipv4: 1, ipv6: 1, a: "0.0.0.1", b: "::1", shared: false},
		{name: "families apart at /96", ipv6: 96, a: "::ffff:0:0:1", b: "0.0.0.1", shared: false},
		{name: "zone ignored", a: "fe80::1%eth0", b: "fe80::2", shared: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := mustNew(t, Options{QPS: 1, Burst: 1, IPv4Prefix: tc.ipv4, IPv6Prefix: tc.ipv6, Now: newClock().Now})
			a, b := netip.MustParseAddr(tc.a), netip.MustParseAddr(tc.b)
			if !l.Allow(a) {
				t.Fatalf("first query from %v refused", a)
			}
			if got := l.Allow(b); got == tc.shared {
				t.Fatalf("Allow(%v) after draining %v = %v, want shared=%v", b, a, got, tc.shared)
			}
			want := 2
			if tc.shared {
				want = 1
			}
			if l.Len() != want {
				t.Fatalf("Len() = %d, want %d", l.Len(), want)
			}
		})
	}
}

func TestExempt(t *testing.T) {
	exempt, err := ParsePrefixes([]string{"10.0.0.0/8", "2001:db8::/32", "192.0.2.9"})
	if err != nil {
		t.Fatal(err)
	}
	l := mustNew(t, Options{QPS: 1, Burst: 1, Exempt: exempt, Now: newClock().Now})
	tests := []struct {
		name   string
		addr   string
		exempt bool
	}{
		{name: "v4 prefix", addr: "10.1.2.3", exempt: true},
		{name: "v4 host", addr: "192.0.2.9", exempt: true},
		{name: "mapped", addr: "::ffff:10.9.9.9", exempt: true},
		{name: "v6 prefix", addr: "2001:db8:ffff::1", exempt: true},
		{name: "v4 outside", addr: "192.0.2.10", exempt: false},
		{name: "v6 outside", addr: "2001:db9::1", exempt: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := l.Len()
			got := countAllowed(l, netip.MustParseAddr(tc.addr), 100)
			if want := map[bool]int{true: 100, false: 1}[tc.exempt]; got != want {
				t.Fatalf("%d of 100 allowed, want %d", got, want)
			}
			if grew := l.Len() - before; grew != map[bool]int{true: 0, false: 1}[tc.exempt] {
				t.Fatalf("Len grew by %d", grew)
			}
		})
	}
}

func TestDisabled(t *testing.T) {
	tests := []struct {
		name string
		l    *Limiter
	}{
		{name: "nil", l: nil},
		{name: "qps 0", l: mustNew(t, Options{QPS: 0, Burst: 5})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := netip.MustParseAddr("192.0.2.1")
			if got := countAllowed(tc.l, a, 1000); got != 1000 {
				t.Fatalf("%d of 1000 allowed", got)
			}
			if !tc.l.AllowAt(a, time.Time{}) || !tc.l.Disabled() || tc.l.Len() != 0 || tc.l.Stats() != (Stats{}) {
				t.Fatalf("disabled limiter: Disabled=%v Len=%d Stats=%+v", tc.l.Disabled(), tc.l.Len(), tc.l.Stats())
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name string
		opts Options
	}{
		{name: "negative qps", opts: Options{QPS: -1}},
		{name: "NaN qps", opts: Options{QPS: nan()}},
		{name: "infinite qps", opts: Options{QPS: inf()}},
		{name: "negative burst", opts: Options{QPS: 1, Burst: -1}},
		{name: "ipv4 prefix 33", opts: Options{QPS: 1, IPv4Prefix: 33}},
		{name: "ipv6 prefix -1", opts: Options{QPS: 1, IPv6Prefix: -1}},
		{name: "ipv6 prefix 129", opts: Options{QPS: 1, IPv6Prefix: 129}},
		{name: "negative max clients", opts: Options{QPS: 1, MaxClients: -1}},
		{name: "refill overflows", opts: Options{QPS: 1e-9, Burst: 1 << 20}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if l, err := New(tc.opts); err == nil {
				t.Fatalf("New(%+v) = %v, want an error", tc.opts, l)
			}
		})
	}
}

func TestExtremeOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		send    int
		allowed int
		wantLen int // after one more query from the zero Addr (limited as "::")
	}{
		{name: "huge qps, default burst", opts: Options{QPS: 1e300}, send: 1000, allowed: 1000, wantLen: 2},
		{name: "huge burst", opts: Options{QPS: 1e9, Burst: 1 << 50}, send: 1000, allowed: 1000, wantLen: 2},
		{name: "one client tracked", opts: Options{QPS: 1, Burst: 1, MaxClients: 1}, send: 3, allowed: 1, wantLen: 1},
		{name: "prefix /1", opts: Options{QPS: 1, Burst: 2, IPv4Prefix: 1, IPv6Prefix: 1}, send: 3, allowed: 2, wantLen: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Now = newClock().Now
			l := mustNew(t, tc.opts)
			if got := countAllowed(l, netip.MustParseAddr("192.0.2.1"), tc.send); got != tc.allowed {
				t.Fatalf("%d of %d allowed, want %d", got, tc.send, tc.allowed)
			}
			l.Allow(netip.Addr{})
			if l.Len() != tc.wantLen {
				t.Fatalf("Len() = %d, want %d", l.Len(), tc.wantLen)
			}
		})
	}
}

func nan() float64 { z := 0.0; return z / z }
func inf() float64 { z := 0.0; return 1 / z }

// TestMatchesTokenBucket drives the limiter and a plain token bucket per
// client (unbounded map, tokens counted in nanoseconds of credit) with the
// same random queries and clock steps: answers must match exactly, since
// dropping refilled buckets loses nothing.
func TestMatchesTokenBucket(t *testing.T) {
	tests := []struct {
		name       string
		qps        float64
		burst      int
		clients    int
		maxClients int
	}{
		{name: "few clients", qps: 50, burst: 10, clients: 5, maxClients: 100},
		{name: "many clients, reaping", qps: 3, burst: 4, clients: 500, maxClients: 1000},
		{name: "sharded", qps: 1000, burst: 1, clients: 3000, maxClients: 100_000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newClock()
			l := mustNew(t, Options{QPS: tc.qps, Burst: tc.burst, MaxClients: tc.maxClients, Now: c.Now})
			interval := int64(1e9 / tc.qps)
			window := interval * int64(tc.burst)
			type bucket struct{ credit, last int64 }
			model := map[int]*bucket{}
			r := rand.New(rand.NewPCG(1, uint64(tc.clients)))
			queries := 200_000
			if raceEnabled {
				queries = 50_000
			}
			var now int64
			for i := range queries {
				if r.IntN(4) == 0 {
					d := r.Int64N(3 * interval)
					c.Advance(time.Duration(d))
					now += d
				}
				id := r.IntN(tc.clients)
				b := model[id]
				if b == nil {
					b = &bucket{credit: window, last: now}
					model[id] = b
				}
				b.credit = min(window, b.credit+now-b.last)
				b.last = now
				want := b.credit >= interval
				if want {
					b.credit -= interval
				}
				a := netip.AddrFrom4([4]byte{10, byte(id >> 16), byte(id >> 8), byte(id)})
				if got := l.Allow(a); got != want {
					t.Fatalf("query %d from client %d: Allow = %v, token bucket says %v", i, id, got, want)
				}
			}
			if st := l.Stats(); st.Evicted != 0 || st.Tracked > tc.clients || st.Tracked != l.Len() {
				t.Fatalf("stats %+v", st)
			}
			checkInvariants(t, l)
		})
	}
}

func TestReapIdle(t *testing.T) {
	c := newClock()
	// 100 clients fit one shard, so the order of reaping is known.
	l := mustNew(t, Options{QPS: 10, Burst: 10, MaxClients: 100, Now: c.Now})
	if len(l.shards) != 1 {
		t.Fatalf("%d shards, want 1", len(l.shards))
	}
	drained := netip.MustParseAddr("198.51.100.1")
	countAllowed(l, drained, 20) // empty, refills in 1s
	for i := range 50 {
		l.Allow(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}))
	}
	c.Advance(500 * time.Millisecond) // the 50 have refilled, drained has not
	for i := range 50 {
		l.Allow(netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}))
	}
	if got := l.Len(); got != 51 {
		t.Fatalf("Len() = %d, want 51 (50 new + the drained one)", got)
	}
	if got := countAllowed(l, drained, 10); got != 5 {
		t.Fatalf("drained client: %d of 10 allowed after 0.5s, want 5", got)
	}
	c.Advance(time.Hour)
	for range 7 * 64 { // seven periodic reaps of up to 8 each
		l.Allow(drained)
	}
	if got := l.Len(); got != 1 {
		t.Fatalf("Len() = %d after an hour of one client, want 1", got)
	}
	checkInvariants(t, l)
}

func TestEvictLeastRecentlySeen(t *testing.T) {
	c := newClock()
	l := mustNew(t, Options{QPS: 1, Burst: 1, MaxClients: 64, Now: c.Now})
	hot := netip.MustParseAddr("2001:db8::1")
	other := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{192, 0, byte(i >> 8), byte(i)}) }
	l.Allow(hot)
	for i := range 63 {
		l.Allow(other(i))
	}
	if l.Len() != 64 || l.Allow(hot) {
		t.Fatalf("Len() = %d, hot client not limited", l.Len())
	}
	l.Allow(other(1000)) // evicts other(0), the least recently seen
	if l.Allow(hot) || l.Len() != 64 {
		t.Fatalf("recently seen client was evicted (Len %d)", l.Len())
	}
	for i := range 64 {
		l.Allow(other(2000 + i))
	}
	if !l.Allow(hot) {
		t.Fatal("client evicted by 64 newer ones is still limited")
	}
	// other(0), then the 64 tracked, then one more for hot's new bucket.
	if st := l.Stats(); st.Evicted != 1+64+1 {
		t.Fatalf("Evicted = %d, want 66", st.Evicted)
	}
	checkInvariants(t, l)
}

// TestSpoofedFlood sends one query from each of 1M (200k under -race)
// distinct sources (IPv4
// and IPv6 /64s) from one goroutine per core without the clock moving, so no bucket refills: state must
// stay within MaxClients, memory within a fixed bound, and a real client
// must still be limited correctly afterwards.
func TestSpoofedFlood(t *testing.T) {
	const maxClients = 20_000
	sources := 1_000_000
	if raceEnabled {
		sources = 200_000 // still ten times MaxClients
	}
	c := newClock()
	l := mustNew(t, Options{QPS: 10, Burst: 10, MaxClients: maxClients, Now: c.Now})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	// One goroutine per core, each with its own half of the sources.
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	var failed atomic.Value
	for w := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(2, uint64(w)))
			var b16 [16]byte
			for i := w; i < sources; i += workers {
				var a netip.Addr
				if i%2 == 0 {
					a = netip.AddrFrom4([4]byte{byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)})
				} else {
					x := r.Uint64()
					for j := range 8 {
						b16[j] = byte(x >> (8 * j))
					}
					b16[0] = 0x20
					a = netip.AddrFrom16(b16)
				}
				if !l.Allow(a) {
					failed.Store(a)
					return
				}
				if i%100_000 == 0 && l.Len() > maxClients {
					failed.Store(l.Len())
					return
				}
			}
		})
	}
	wg.Wait()
	if f := failed.Load(); f != nil {
		t.Fatalf("during the flood: first query refused or Len over the bound: %v", f)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if n := l.Len(); n > maxClients || n < maxClients/2 {
		t.Fatalf("Len() = %d, want within (%d, %d]", n, maxClients/2, maxClients)
	}
	// 40 bytes per entry plus 8 per slot at most 4 slots per entry, with
	// room for the slices' doubling.
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > maxClients*200 {
		t.Fatalf("heap grew by %d bytes for %d buckets", grew, maxClients)
	}
	if st := l.Stats(); st.Evicted < uint64(sources-maxClients) {
		t.Fatalf("Evicted = %d", st.Evicted)
	}
	real := netip.MustParseAddr("198.51.100.7")
	if got := countAllowed(l, real, 20); got != 10 {
		t.Fatalf("real client after the flood: %d of 20 allowed, want 10", got)
	}
	checkInvariants(t, l)
}

// TestConcurrent hammers one limiter from many goroutines under -race with a
// clock that moves 1µs per read; no client may get more than its burst plus
// what the elapsed time refills.
func TestConcurrent(t *testing.T) {
	c := newClock()
	c.step = time.Microsecond
	const qps, burst, workers, perWorker, clients = 1000, 20, 8, 20_000, 64
	l := mustNew(t, Options{QPS: qps, Burst: burst, MaxClients: 10_000, Now: c.Now})
	allowed := make([][clients]int, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 9))
			for range perWorker {
				id := r.IntN(clients)
				a := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 7: byte(id), 15: byte(r.Uint32())})
				if l.Allow(a) {
					allowed[w][id]++
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Duration(c.off.Load())
	limit := burst + int(elapsed/(time.Second/qps))
	total := 0
	for id := range clients {
		n := 0
		for w := range workers {
			n += allowed[w][id]
		}
		total += n
		if n > limit {
			t.Errorf("client %d: %d allowed, at most %d possible", id, n, limit)
		}
	}
	st := l.Stats()
	if st.Tracked > clients || st.Tracked != l.Len() {
		t.Fatalf("stats %+v, counted %d allowed", st, total)
	}
	checkInvariants(t, l)
}

func TestAllowAllocs(t *testing.T) {
	exempt := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	l := mustNew(t, Options{QPS: 1e6, Burst: 1e6, Exempt: exempt})
	tests := []struct {
		name string
		addr netip.Addr
	}{
		{name: "v4", addr: netip.MustParseAddr("192.0.2.1")},
		{name: "v6", addr: netip.MustParseAddr("2001:db8::1")},
		{name: "mapped", addr: netip.MustParseAddr("::ffff:192.0.2.1")},
		{name: "exempt", addr: netip.MustParseAddr("10.0.0.1")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l.Allow(tc.addr)
			if n := testing.AllocsPerRun(1000, func() { l.Allow(tc.addr) }); n != 0 {
				t.Fatalf("Allow: %v allocs per run", n)
			}
			now := time.Now()
			if n := testing.AllocsPerRun(1000, func() { l.AllowAt(tc.addr, now) }); n != 0 {
				t.Fatalf("AllowAt: %v allocs per run", n)
			}
		})
	}
}

// Benchmarks. "known" is one client already tracked; "clients1k" cycles
// through 1000 tracked clients; "flood" is a new source on every call with
// the table full (insert plus eviction).

func benchAddrs(n int) []netip.Addr {
	as := make([]netip.Addr, n)
	for i := range as {
		as[i] = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
	}
	return as
}

// huge never limits: the benchmarks measure allowed queries.
var huge = Options{QPS: 1e9, Burst: 1 << 40}

func BenchmarkAllow(b *testing.B) {
	v4, v6 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")
	now := time.Now()
	b.Run("known-v4", func(b *testing.B) {
		l := mustNew(b, huge)
		for b.Loop() {
			l.AllowAt(v4, now)
		}
	})
	b.Run("known-v6", func(b *testing.B) {
		l := mustNew(b, huge)
		for b.Loop() {
			l.AllowAt(v6, now)
		}
	})
	b.Run("known-v4-Allow-time.Now", func(b *testing.B) {
		l := mustNew(b, huge)
		for b.Loop() {
			l.Allow(v4)
		}
	})
	b.Run("known-v4-with-exempt-list", func(b *testing.B) {
		o := huge
		o.Exempt = []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("2001:db8::/32")}
		l := mustNew(b, o)
		for b.Loop() {
			l.AllowAt(v4, now)
		}
	})
	b.Run("exempt", func(b *testing.B) {
		o := huge
		o.Exempt = []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}
		l, a := mustNew(b, o), netip.MustParseAddr("198.51.100.1")
		for b.Loop() {
			l.AllowAt(a, now)
		}
	})
	b.Run("clients1k", func(b *testing.B) {
		l, as := mustNew(b, huge), benchAddrs(1000)
		i := 0
		for b.Loop() {
			l.AllowAt(as[i%len(as)], now)
			i++
		}
	})
	b.Run("flood", func(b *testing.B) {
		// Time stands still: no bucket refills, so once the table is full
		// every call evicts one.
		l := mustNew(b, huge)
		i := uint32(0)
		for b.Loop() {
			l.AllowAt(netip.AddrFrom4([4]byte{byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}), now)
			i += 0x9E3779B9 // distinct for 2^32 calls
		}
		b.ReportMetric(float64(l.Len()), "buckets")
	})
	b.Run("disabled", func(b *testing.B) {
		l := mustNew(b, Options{})
		for b.Loop() {
			l.Allow(v4)
		}
	})
}

func BenchmarkAllowParallel(b *testing.B) {
	now := time.Now()
	b.Run("client-per-goroutine", func(b *testing.B) {
		l := mustNew(b, huge)
		var next atomic.Uint32
		b.RunParallel(func(pb *testing.PB) {
			a := netip.AddrFrom4([4]byte{10, 0, 0, byte(next.Add(1))})
			for pb.Next() {
				l.AllowAt(a, now)
			}
		})
	})
	b.Run("one-client", func(b *testing.B) {
		l, a := mustNew(b, huge), netip.MustParseAddr("192.0.2.1")
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				l.AllowAt(a, now)
			}
		})
	})
	b.Run("clients1k", func(b *testing.B) {
		l, as := mustNew(b, huge), benchAddrs(1000)
		var seed atomic.Uint64
		b.RunParallel(func(pb *testing.PB) {
			i := int(seed.Add(1) * 7919)
			for pb.Next() {
				l.AllowAt(as[i%len(as)], now)
				i++
			}
		})
	})
}

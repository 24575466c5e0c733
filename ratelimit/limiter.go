// Package ratelimit limits the query rate of each client prefix with a token
// bucket, and provides PrefixSet, a fast immutable set of IP prefixes for
// access lists.
//
// The limiter sits on the hot path of every query, so a known client costs
// one seeded hash, one uncontended shard lock and a few integer operations,
// with no allocation. Its state is bounded: at most Options.MaxClients
// buckets are tracked, the least recently seen are evicted beyond that, and
// buckets that have refilled (and so say nothing a fresh bucket would not)
// are dropped as Allow goes, without a background goroutine.
package ratelimit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"sync"
	"time"
)

// Defaults applied by New to zero fields of Options.
const (
	// DefaultIPv4Prefix groups IPv4 clients per address.
	DefaultIPv4Prefix = 32
	// DefaultIPv6Prefix groups IPv6 clients per /64, the usual
	// allocation to one LAN (a host can pick any address in it).
	DefaultIPv6Prefix = 64
	// DefaultMaxClients bounds the tracked buckets (about 6 MB when full).
	DefaultMaxClients = 100_000
)

// Options configures a Limiter.
type Options struct {
	// QPS is the sustained rate allowed per client prefix, in queries per
	// second. 0 disables limiting; negative, NaN or infinite is an error.
	QPS float64
	// Burst is the bucket size: how many queries a client that has been
	// quiet may send at once. 0 means one second's worth, ceil(QPS).
	Burst int
	// IPv4Prefix and IPv6Prefix are the prefix lengths that group clients
	// into one bucket (1..32 and 1..128). 0 means DefaultIPv4Prefix and
	// DefaultIPv6Prefix. IPv4-mapped IPv6 clients count as IPv4.
	IPv4Prefix, IPv6Prefix int
	// Exempt clients are never limited and use no bucket.
	Exempt []netip.Prefix
	// MaxClients bounds the number of tracked buckets, so that a flood of
	// spoofed sources cannot grow the state; 0 means DefaultMaxClients.
	// Beyond it the least recently seen bucket is evicted (its client then
	// starts again with a full bucket). The bound is split evenly among
	// internal shards, so eviction may begin slightly before MaxClients
	// buckets are tracked.
	MaxClients int
	// Now is the clock used by Allow; nil means time.Now. Tests inject one.
	Now func() time.Time
}

// Stats are a Limiter's state and counters since New (jurisdns_ratelimit_*
// on /metrics). The queries it limits are counted by the server
// (jurisdns_rate_limited_total), not here.
type Stats struct {
	// Evicted counts buckets dropped to stay within MaxClients before they
	// had refilled: a sign of a flood of distinct (likely spoofed) sources.
	Evicted uint64
	// Tracked is the number of buckets, as Len.
	Tracked int
}

// Limiter is a token-bucket rate limiter keyed by client prefix. It is safe
// for concurrent use. A nil *Limiter allows everything.
//
// Each bucket is kept as a GCRA "theoretical arrival time" (one int64 of
// nanoseconds), which is exactly a token bucket of Burst tokens refilled at
// QPS, in integer arithmetic.
type Limiter struct {
	disabled bool
	interval int64 // nanoseconds per token
	window   int64 // Burst * interval: how far tat may run ahead of now
	v4mask   uint64
	v6mask   u128
	exempt   *PrefixSet
	now      func() time.Time
	epoch    time.Time
	seed     [3]uint64
	shift    uint // shard = hash >> shift
	shards   []shard
}

// New returns a Limiter for opts, or an error if opts make no sense.
func New(opts Options) (*Limiter, error) {
	var errs []error
	if math.IsNaN(opts.QPS) || math.IsInf(opts.QPS, 0) || opts.QPS < 0 {
		errs = append(errs, fmt.Errorf("qps %v: want a finite number >= 0", opts.QPS))
	}
	if opts.Burst < 0 {
		errs = append(errs, fmt.Errorf("burst %d: want >= 0", opts.Burst))
	}
	if opts.IPv4Prefix < 0 || opts.IPv4Prefix > 32 {
		errs = append(errs, fmt.Errorf("ipv4 prefix %d: want 1..32 (0 for the default /%d)", opts.IPv4Prefix, DefaultIPv4Prefix))
	}
	if opts.IPv6Prefix < 0 || opts.IPv6Prefix > 128 {
		errs = append(errs, fmt.Errorf("ipv6 prefix %d: want 1..128 (0 for the default /%d)", opts.IPv6Prefix, DefaultIPv6Prefix))
	}
	if opts.MaxClients < 0 {
		errs = append(errs, fmt.Errorf("max clients %d: want >= 0", opts.MaxClients))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if opts.QPS == 0 {
		return &Limiter{disabled: true}, nil
	}
	interval := max(1, math.Round(1e9/opts.QPS))
	burst := opts.Burst
	if burst == 0 {
		burst = int(math.Ceil(min(opts.QPS, 1e9)))
	}
	// Keep window and max(tat, now)+interval far from overflow.
	if interval*float64(burst) > math.MaxInt64/4 {
		return nil, fmt.Errorf("qps %v with burst %d: the bucket takes too long to refill", opts.QPS, burst)
	}
	l := &Limiter{
		interval: int64(interval),
		window:   int64(interval) * int64(burst),
		exempt:   NewPrefixSet(opts.Exempt),
		now:      opts.Now,
		seed:     [3]uint64{rand.Uint64(), rand.Uint64(), rand.Uint64() | 1},
	}
	if l.exempt.Empty() {
		l.exempt = nil
	}
	if l.now == nil {
		l.now = time.Now
	}
	l.epoch = l.now()
	v4, v6 := opts.IPv4Prefix, opts.IPv6Prefix
	if v4 == 0 {
		v4 = DefaultIPv4Prefix
	}
	if v6 == 0 {
		v6 = DefaultIPv6Prefix
	}
	l.v4mask = uint64(mask32(v4))
	l.v6mask = mask128(v6)

	maxClients := opts.MaxClients
	if maxClients == 0 {
		maxClients = DefaultMaxClients
	}
	// Enough shards that cores rarely meet on a lock, few enough that each
	// holds a useful share of MaxClients (hash skew evicts early otherwise).
	n := 1
	for n < 8*runtime.GOMAXPROCS(0) && n < 1024 && maxClients/(2*n) >= 64 {
		n *= 2
	}
	l.shift = uint(64 - bits.TrailingZeros(uint(n)))
	l.shards = make([]shard, n)
	per := maxClients / n
	for i := range l.shards {
		l.shards[i].init(per)
	}
	return l, nil
}

// Allow reports whether a query from addr may be answered now, and takes a
// token from its bucket if so. Exempt clients, a nil Limiter and a disabled
// one (QPS 0) always get true. It is AllowAt(addr, Options.Now()); on the
// query path prefer AllowAt with the time already read for the query, since
// time.Now costs more than the rest of Allow (about 65 ns against 25 on the
// reference VM).
func (l *Limiter) Allow(addr netip.Addr) bool {
	if l == nil || l.disabled {
		return true
	}
	return l.AllowAt(addr, l.now())
}

// AllowAt is Allow at the given time, for callers that already read the
// clock for the query. Times should come from the same clock as
// Options.Now (time.Now by default); with time.Now the monotonic reading is
// used, so wall-clock steps do not disturb the buckets.
func (l *Limiter) AllowAt(addr netip.Addr, now time.Time) bool {
	if l == nil || l.disabled {
		return true
	}
	addr = addr.Unmap()
	if l.exempt != nil && l.exempt.contains(addr) {
		return true
	}
	k := l.key(addr)
	h := l.hash(k)
	t := int64(now.Sub(l.epoch))
	s := &l.shards[h>>l.shift]
	s.mu.Lock()
	ok := s.allow(l, k, uint32(h), t)
	s.mu.Unlock()
	return ok
}

// Len returns the number of buckets tracked.
func (l *Limiter) Len() int {
	if l == nil {
		return 0
	}
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += s.n
		s.mu.Unlock()
	}
	return n
}

// Stats returns the limiter's counters.
func (l *Limiter) Stats() Stats {
	var st Stats
	if l == nil {
		return st
	}
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		st.Evicted += s.evicted
		st.Tracked += s.n
		s.mu.Unlock()
	}
	return st
}

// Disabled reports whether the limiter allows everything (nil, or QPS 0).
func (l *Limiter) Disabled() bool { return l == nil || l.disabled }

// key returns the bucket key of an unmapped address: its prefix, as an
// IPv6 number with IPv4 in the ::ffff:0:0/96 form. No IPv6 prefix can take
// that form, since its addresses would be IPv4-mapped, which were unmapped.
func (l *Limiter) key(a netip.Addr) u128 {
	if a.Is4() {
		b := a.As4()
		return u128{0, 0xffff<<32 | uint64(binary.BigEndian.Uint32(b[:]))&l.v4mask}
	}
	x := u128From(a) // the zero Addr gives ::
	return u128{x.hi & l.v6mask.hi, x.lo & l.v6mask.lo}
}

// hash mixes k with the limiter's random seed (wyhash's multiply-fold), so
// that sources chosen to collide in one shard or probe run cannot be
// computed in advance.
func (l *Limiter) hash(k u128) uint64 {
	hi, lo := bits.Mul64(k.hi^l.seed[0], k.lo^l.seed[1])
	hi, lo = bits.Mul64(hi^lo, l.seed[2])
	return hi ^ lo
}

// none marks the absence of an entry in list links.
const none = -1

// entry is one bucket.
type entry struct {
	key        u128
	tat        int64 // GCRA theoretical arrival time; <= now means the bucket is full
	prev, next int32 // LRU list, most recent at head; next links the free list
	hash       uint32
}

// shard is an open-addressing hash table (linear probing, backward-shift
// deletion) over an arena of entries linked in LRU order. Its memory grows
// with the clients it has seen, up to its share of MaxClients, and never
// beyond.
type shard struct {
	mu    sync.Mutex
	slots []uint64 // 0 empty, else hash<<32 | (index+1); home slot is hash&mask
	mask  uint32
	ents  []entry
	free  int32 // free list of ents, through next
	head  int32
	tail  int32
	n     int
	cap   int
	ops   uint32
	maxSl int

	evicted uint64

	_ [64]byte // keep neighbouring shards' locks off this cache line
}

func (s *shard) init(capacity int) {
	s.cap = max(1, capacity)
	s.maxSl = 16
	for s.maxSl < 2*s.cap {
		s.maxSl *= 2
	}
	s.slots = make([]uint64, min(16, s.maxSl))
	s.mask = uint32(len(s.slots) - 1)
	s.free, s.head, s.tail = none, none, none
}

// reapEvery is how often (in calls, per shard, minus one) Allow looks for
// refilled buckets at the old end of the LRU list.
const reapEvery = 63

func (s *shard) allow(l *Limiter, k u128, h uint32, t int64) bool {
	s.ops++
	if s.ops&reapEvery == 0 {
		s.reap(t, 8)
	}
	i := s.find(k, h)
	if i < 0 {
		s.reap(t, 2)
		i = s.insert(k, h)
		s.ents[i].tat = t
	} else if i != s.head {
		s.unlink(i)
		s.pushFront(i)
	}
	e := &s.ents[i]
	tat := max(e.tat, t) + l.interval
	if tat-t > l.window {
		return false
	}
	e.tat = tat
	return true
}

// find returns the index of k's entry, or -1.
func (s *shard) find(k u128, h uint32) int32 {
	for j := h & s.mask; ; j = (j + 1) & s.mask {
		v := s.slots[j]
		if v == 0 {
			return none
		}
		if uint32(v>>32) == h {
			i := int32(uint32(v)) - 1
			if s.ents[i].key == k {
				return i
			}
		}
	}
}

// reap looks at up to limit buckets at the old end of the LRU list and
// removes those that have refilled by time t: forgetting them changes no
// answer.
func (s *shard) reap(t int64, limit int) {
	for i := s.tail; limit > 0 && i != none; limit-- {
		prev := s.ents[i].prev
		if s.ents[i].tat <= t {
			s.remove(i)
		}
		i = prev
	}
}

// insert adds an entry for k at the head of the LRU list, evicting the
// tail if the shard is full, and returns its index.
func (s *shard) insert(k u128, h uint32) int32 {
	if s.n >= s.cap {
		s.remove(s.tail)
		s.evicted++
	}
	if 2*(s.n+1) > len(s.slots) && len(s.slots) < s.maxSl {
		s.grow()
	}
	var i int32
	if s.free != none {
		i = s.free
		s.free = s.ents[i].next
	} else {
		if len(s.ents) == cap(s.ents) {
			ne := make([]entry, len(s.ents), min(s.cap, max(16, 2*cap(s.ents))))
			copy(ne, s.ents)
			s.ents = ne
		}
		i = int32(len(s.ents))
		s.ents = s.ents[:i+1]
	}
	s.ents[i] = entry{key: k, hash: h}
	s.place(i, h)
	s.pushFront(i)
	s.n++
	return i
}

// place puts entry i in the first free slot of its probe run.
func (s *shard) place(i int32, h uint32) {
	j := h & s.mask
	for s.slots[j] != 0 {
		j = (j + 1) & s.mask
	}
	s.slots[j] = uint64(h)<<32 | uint64(i+1)
}

// grow doubles the slot table.
func (s *shard) grow() {
	s.slots = make([]uint64, 2*len(s.slots))
	s.mask = uint32(len(s.slots) - 1)
	for i := s.head; i != none; i = s.ents[i].next {
		s.place(i, s.ents[i].hash)
	}
}

// remove deletes entry i from the table and the LRU list.
func (s *shard) remove(i int32) {
	want := uint64(s.ents[i].hash)<<32 | uint64(i+1)
	j := s.ents[i].hash & s.mask
	for s.slots[j] != want {
		j = (j + 1) & s.mask
	}
	// Backward-shift: pull later members of the run into the hole when
	// their home slot is not cyclically within (hole, their slot].
	for k := (j + 1) & s.mask; s.slots[k] != 0; k = (k + 1) & s.mask {
		home := uint32(s.slots[k]>>32) & s.mask
		if (k-home)&s.mask >= (k-j)&s.mask {
			s.slots[j] = s.slots[k]
			j = k
		}
	}
	s.slots[j] = 0
	s.unlink(i)
	s.ents[i] = entry{next: s.free}
	s.free = i
	s.n--
}

func (s *shard) unlink(i int32) {
	e := &s.ents[i]
	if e.prev != none {
		s.ents[e.prev].next = e.next
	} else {
		s.head = e.next
	}
	if e.next != none {
		s.ents[e.next].prev = e.prev
	} else {
		s.tail = e.prev
	}
}

func (s *shard) pushFront(i int32) {
	e := &s.ents[i]
	e.prev, e.next = none, s.head
	if s.head != none {
		s.ents[s.head].prev = i
	} else {
		s.tail = i
	}
	s.head = i
}

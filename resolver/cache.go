package resolver

import (
	"encoding/binary"
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/miekg/dns"
)

// Cache holds upstream answers as packed wire bytes, so a hit is a copy and
// a few in-place patches (ID, flags, question case, TTLs) with no unpack or
// pack. It is sharded golang-lru/v2 caches, safe for concurrent use, and
// survives reloads that keep the same upstreams.
//
// The key is (canonical name, type, DO, CD); the class is always IN (the
// edge refuses other classes).
type Cache struct {
	shards  [cacheShards]*lru.Cache[cacheKey, *entry]
	bounds  [cacheShards]shardBytes
	seed    maphash.Seed
	opts    CacheOptions
	onEvict func()
}

const cacheShards = 16

// shardBytes is the byte account of one shard: mu serializes the stores
// (and purges) of the shard, so a replaced entry is accounted exactly;
// bytes is also lowered by the eviction callback.
type shardBytes struct {
	mu    sync.Mutex
	bytes atomic.Int64
}

// DefaultCacheBytes is the byte bound of a cache whose options leave
// MaxBytes at 0 (cache.max_bytes in the default configuration).
const DefaultCacheBytes = 16 << 20

// entryOverhead approximates the memory of an entry beyond its buffer: the
// entry itself, its LRU list element and map slot.
const entryOverhead = 256

// CacheOptions configures a Cache.
type CacheOptions struct {
	// Size is the total number of entries.
	Size int
	// MaxBytes bounds the memory of the entries (wire bytes, offsets,
	// name and bookkeeping); 0 means DefaultCacheBytes.
	MaxBytes int64
	// MinTTL and MaxTTL clamp every record's TTL at store time.
	MinTTL, MaxTTL time.Duration
	// NegativeMaxTTL caps the lifetime of NXDOMAIN/NODATA answers.
	NegativeMaxTTL time.Duration
	// ServfailTTL is the lifetime of a cached SERVFAIL (0: not cached).
	ServfailTTL time.Duration
	// ServeStale keeps expired entries usable this long when every upstream
	// fails (RFC 8767).
	ServeStale time.Duration
	// OnEvict is called for every entry evicted for space.
	OnEvict func()
}

type cacheKey struct {
	h     uint64
	qtype uint16
	flags uint8
}

const (
	keyDO = 1 << iota
	keyCD
)

// entry is one cached answer. It is immutable once stored, apart from the
// hit counter and the prefetch flag.
type entry struct {
	name   string // canonical question name
	qtype  uint16
	flags  uint8
	msg    []byte // packed answer, ID 0, no OPT, question in canonical case
	qEnd   int    // end of the question section in msg
	ttls   []byte // offsets of every record's TTL, 2 bytes each (big endian)
	stored time.Time
	ttl    uint32 // lifetime in seconds
	rcode  int
	// cnames are the canonical targets of the CNAME/DNAME records in the
	// answer, checked against the policy on every hit.
	cnames []string

	// size is the memory the entry is accounted for (cache.max_bytes).
	size int64

	hits        atomic.Uint32
	prefetching atomic.Bool
}

// NewCache returns a cache; Size 0 returns nil (no caching).
func NewCache(opts CacheOptions) *Cache {
	if opts.Size <= 0 {
		return nil
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultCacheBytes
	}
	c := &Cache{seed: maphash.MakeSeed(), opts: opts, onEvict: opts.OnEvict}
	per := opts.Size / cacheShards
	if per < 1 {
		per = 1
	}
	for i := range c.shards {
		b := &c.bounds[i]
		s, err := lru.NewWithEvict[cacheKey, *entry](per, func(_ cacheKey, e *entry) {
			b.bytes.Add(-e.size)
			if c.onEvict != nil {
				c.onEvict()
			}
		})
		if err != nil {
			panic(err) // only for size <= 0, excluded above
		}
		c.shards[i] = s
	}
	return c
}

func (c *Cache) key(name string, qtype uint16, do, cd bool) cacheKey {
	k := cacheKey{h: maphash.String(c.seed, name), qtype: qtype}
	if do {
		k.flags |= keyDO
	}
	if cd {
		k.flags |= keyCD
	}
	return k
}

func (c *Cache) shard(k cacheKey) *lru.Cache[cacheKey, *entry] {
	return c.shards[k.h%cacheShards]
}

// Bytes returns the memory accounted to the cached entries.
func (c *Cache) Bytes() int64 {
	if c == nil {
		return 0
	}
	var n int64
	for i := range c.bounds {
		n += c.bounds[i].bytes.Load()
	}
	return n
}

// store adds e under k and evicts the least recently used entries of the
// shard while the shard is over its share of MaxBytes.
func (c *Cache) store(k cacheKey, e *entry) {
	i := k.h % cacheShards
	s, b := c.shards[i], &c.bounds[i]
	limit := c.opts.MaxBytes / cacheShards
	b.mu.Lock()
	defer b.mu.Unlock()
	if old, ok := s.Peek(k); ok {
		b.bytes.Add(-old.size) // Add replaces it without the callback
	}
	b.bytes.Add(e.size)
	s.Add(k, e)
	for b.bytes.Load() > limit && s.Len() > 1 {
		if _, _, ok := s.RemoveOldest(); !ok {
			break
		}
	}
}

// get returns the entry for the key, fresh or not. name must be canonical.
func (c *Cache) get(name string, qtype uint16, do, cd bool) *entry {
	if c == nil {
		return nil
	}
	k := c.key(name, qtype, do, cd)
	e, ok := c.shard(k).Get(k)
	if !ok || e.name != name {
		return nil
	}
	return e
}

// Len returns the number of cached entries.
func (c *Cache) Len() int {
	if c == nil {
		return 0
	}
	n := 0
	for _, s := range c.shards {
		n += s.Len()
	}
	return n
}

// Purge drops every entry.
func (c *Cache) Purge() {
	if c == nil {
		return
	}
	for i, s := range c.shards {
		c.bounds[i].mu.Lock()
		s.Purge()
		c.bounds[i].mu.Unlock()
	}
}

// age returns the whole seconds since the entry was stored.
func (e *entry) age(now time.Time) uint32 {
	d := now.Sub(e.stored)
	if d < 0 {
		return 0
	}
	return uint32(d / time.Second)
}

// fresh reports whether the entry may be served as is at now.
func (e *entry) fresh(now time.Time) bool { return e.age(now) < e.ttl }

// put stores an upstream answer for the request and returns the entry, or
// nil when the answer is not cacheable. It takes resp over: resp may have
// been changed (ID 0, canonical question name, OPT removed, TTLs clamped)
// even when put returns nil; all of that is what a reply gets anyway.
func (c *Cache) put(req *Request, resp *dns.Msg, now time.Time) *entry {
	if c == nil {
		return nil
	}
	e := c.newEntry(req, resp, now)
	if e == nil {
		return nil
	}
	k := c.key(e.name, e.qtype, req.DO, req.CD)
	c.store(k, e)
	return e
}

// newEntry packs resp for the cache, or returns nil when it must not be
// cached: truncated, no question, an rcode other than NOERROR/NXDOMAIN/
// SERVFAIL, a negative answer without SOA (RFC 2308 §5), or a lifetime of 0.
func (c *Cache) newEntry(req *Request, resp *dns.Msg, now time.Time) *entry {
	if resp.Truncated || len(resp.Question) != 1 {
		return nil
	}
	m := resp // put's caller hands it over: no copy
	m.Id = 0
	m.Question[0].Name = req.Name
	m.Compress = true
	// No OPT: the server appends its own for each client.
	extra := m.Extra[:0]
	for _, rr := range m.Extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			extra = append(extra, rr)
		}
	}
	m.Extra = extra

	var lifetime uint32
	switch {
	case m.Rcode == dns.RcodeServerFailure:
		if c.opts.ServfailTTL <= 0 {
			return nil
		}
		m.Answer, m.Ns, m.Extra = nil, nil, nil
		lifetime = uint32(c.opts.ServfailTTL / time.Second)
		if lifetime == 0 {
			lifetime = 1
		}
	case m.Rcode == dns.RcodeNameError || (m.Rcode == dns.RcodeSuccess && len(m.Answer) == 0):
		var soa *dns.SOA
		for _, rr := range m.Ns {
			if s, ok := rr.(*dns.SOA); ok {
				soa = s
				break
			}
		}
		if soa == nil {
			return nil
		}
		neg := min(soa.Hdr.Ttl, soa.Minttl)
		neg = c.clamp(neg)
		if mx := uint32(c.opts.NegativeMaxTTL / time.Second); mx > 0 && neg > mx {
			neg = mx
		}
		soa.Hdr.Ttl = neg
		lifetime = neg
		for _, rr := range append(append([]dns.RR{}, m.Ns...), m.Extra...) {
			if rr.Header().Ttl > neg {
				rr.Header().Ttl = neg
			}
		}
	case m.Rcode == dns.RcodeSuccess:
		lifetime = ^uint32(0)
		for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
			for _, rr := range sec {
				t := c.clamp(rr.Header().Ttl)
				rr.Header().Ttl = t
				lifetime = min(lifetime, t)
			}
		}
	default:
		return nil
	}
	if lifetime == 0 {
		return nil
	}
	// Packed into a scratch buffer: layout copies it into the entry's.
	sp := packScratch.Get().(*[]byte)
	defer packScratch.Put(sp)
	packed, err := m.PackBuffer((*sp)[:cap(*sp)]) // it packs into the buffer's length
	if err != nil {
		return nil
	}
	if cap(packed) > cap(*sp) && cap(packed) <= maxScratch {
		*sp = packed[:0] // keep a bigger buffer PackBuffer had to make
	}
	e := &entry{
		qtype:  req.Qtype,
		stored: now,
		ttl:    lifetime,
		rcode:  m.Rcode,
	}
	e.layout(packed, req.Name)
	if req.DO {
		e.flags |= keyDO
	}
	if req.CD {
		e.flags |= keyCD
	}
	if !e.index() {
		return nil
	}
	for _, rr := range m.Answer {
		switch v := rr.(type) {
		case *dns.CNAME:
			e.cnames = append(e.cnames, strings.ToLower(v.Target))
		case *dns.DNAME:
			e.cnames = append(e.cnames, strings.ToLower(v.Target))
		}
	}
	e.size = int64(len(e.msg)+len(e.ttls)+len(e.name)) + entryOverhead
	for _, n := range e.cnames {
		e.size += int64(len(n)) + 16
	}
	return e
}

// packScratch holds the buffers newEntry packs answers into.
var packScratch = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// maxScratch is the largest scratch buffer kept for reuse.
const maxScratch = 16 << 10

func (c *Cache) clamp(ttl uint32) uint32 {
	if mn := uint32(c.opts.MinTTL / time.Second); ttl < mn {
		ttl = mn
	}
	if mx := uint32(c.opts.MaxTTL / time.Second); mx > 0 && ttl > mx {
		ttl = mx
	}
	return ttl
}

// layout puts the packed answer, the offsets of its TTLs (filled in by
// index) and the name into one allocation: an entry is two objects (this
// buffer and the entry) for the garbage collector to mark, not five.
func (e *entry) layout(packed []byte, name string) {
	n := 0
	if len(packed) >= hdrLen {
		n = int(binary.BigEndian.Uint16(packed[6:])) + int(binary.BigEndian.Uint16(packed[8:])) + int(binary.BigEndian.Uint16(packed[10:]))
	}
	buf := make([]byte, len(packed)+2*n+len(name))
	copy(buf, packed)
	e.msg = buf[:len(packed):len(packed)]
	e.ttls = buf[len(packed) : len(packed)+2*n : len(packed)+2*n]
	if copy(buf[len(packed)+2*n:], name) > 0 {
		e.name = unsafe.String(&buf[len(packed)+2*n], len(name)) // never written again
	}
}

// index records the end of the question and the offset of every TTL (into
// e.ttls, sized by layout from the header's counts).
func (e *entry) index() bool {
	msg := e.msg
	if len(msg) < hdrLen {
		return false
	}
	off, err := skipName(msg, hdrLen)
	if err != nil || off+4 > len(msg) {
		return false
	}
	off += 4
	e.qEnd = off
	for i := 0; i < len(e.ttls); i += 2 {
		rr, err := readRR(msg, off)
		if err != nil {
			return false
		}
		binary.BigEndian.PutUint16(e.ttls[i:], uint16(rr.ttlOff))
		off = rr.end
	}
	return off == len(msg)
}

// appendReply writes the cached answer for a client query into out: the
// client's ID and question bytes (case preserved), reply flags, TTLs lowered
// by the entry's age (or set to staleTTL when stale is true), and an OPT
// when the client sent one.
func (e *entry) appendReply(out []byte, query []byte, q *question, now time.Time, staleTTL uint32, stale bool) []byte {
	out = append(out[:0], e.msg...)
	binary.BigEndian.PutUint16(out, q.id)
	// Reply flags: QR, opcode 0, RD and CD echoed, RA set, AA cleared,
	// AD only when the upstream set it and the client asked with AD or DO
	// (RFC 6840 §5.7), rcode from the entry.
	up := binary.BigEndian.Uint16(e.msg[2:])
	flags := uint16(flagQR|flagRA) | q.flags&(flagRD|flagCD) | up&0xF
	if up&flagAD != 0 && (q.do || q.flags&flagAD != 0) {
		flags |= flagAD
	}
	binary.BigEndian.PutUint16(out[2:], flags)
	copy(out[hdrLen:e.qEnd], query[hdrLen:q.qEnd])
	age := e.age(now)
	for i := 0; i < len(e.ttls); i += 2 {
		off := int(binary.BigEndian.Uint16(e.ttls[i:]))
		var t uint32
		if stale {
			t = staleTTL
		} else {
			t = binary.BigEndian.Uint32(out[off:])
			if t > age {
				t -= age
			} else {
				t = 0
			}
		}
		binary.BigEndian.PutUint32(out[off:], t)
	}
	if q.edns {
		out = appendOPT(out, maxUDPSize, q.do)
		ar := binary.BigEndian.Uint16(out[10:])
		binary.BigEndian.PutUint16(out[10:], ar+1)
	}
	return out
}

// reply returns the cached answer as a message for the slow path, built by
// the same byte patching as the fast path, with the client's question.
func (e *entry) reply(req *Request, now time.Time, stale bool) (*dns.Msg, error) {
	query := e.msg
	q := question{qEnd: e.qEnd}
	if req.Msg != nil {
		qm := dns.Msg{Question: req.Msg.Question}
		if qb, err := qm.Pack(); err == nil && len(qb) == e.qEnd {
			query = qb
		}
	}
	buf := e.appendReply(make([]byte, 0, len(e.msg)), query, &q, now, 30, stale)
	m := new(dns.Msg)
	if err := m.Unpack(buf); err != nil {
		return nil, err
	}
	// The server decides whether the client sees AD (RFC 6840 §5.7).
	m.AuthenticatedData = binary.BigEndian.Uint16(e.msg[2:])&flagAD != 0
	return m, nil
}

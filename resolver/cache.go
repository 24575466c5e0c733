package resolver

import (
	"encoding/binary"
	"hash/maphash"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/internal/dnsname"
)

// Cache holds upstream answers as packed wire bytes, so a hit is a copy and
// a few in-place patches (ID, flags, question case, TTLs) with no unpack or
// pack. It is safe for concurrent use and survives reloads that keep the
// same upstreams.
//
// The key is (canonical name, type, DO, CD); the class is always IN (the
// edge refuses other classes).
//
// # Storage the garbage collector does not scan
//
// A cache of 100,000 answers held as Go objects (an entry, its buffer, a
// list element and a map slot each) is a few hundred thousand pointers the
// GC marks in every cycle, and a miss-heavy load runs many cycles. Here
// nothing the cache holds per entry contains a pointer:
//
//   - Each shard keeps its answers as records in a ring of byte chunks (an
//     arena, like fastcache's): a 48-byte header (key, stored time,
//     lifetime, rcode, the state bits, the lengths), then the packed
//     answer, the offsets of its TTLs, the name and the CNAME/DNAME targets,
//     padded to 8 bytes. A record never crosses a chunk; the rest of a
//     chunk too small for the next record is a padding record.
//   - The index maps the key's 64-bit hash (of the name, the type and the
//     flags) to the record's offset in the ring: integers only, in an
//     open-addressing table of the shard's own (hashIndex), so the GC does
//     not look inside it. The name, type and flags
//     stored in the record are compared on every lookup, so a hash
//     collision is a miss, never a wrong answer.
//   - Positions only grow (a record at position p lives at p modulo the ring
//     size); head and tail are the oldest and the next position. A store
//     appends at the tail and first frees space at the head.
//
// Eviction is CLOCK (second chance) over the ring: a lookup sets the
// record's reference bit; the record at the head is moved to the tail once,
// its bit cleared, when it was referenced since it was last moved (at most
// maxMoves moves per store, so a store's cost stays bounded), and dropped
// otherwise. That approximates LRU without reordering on every hit, which
// a ring cannot do. A replaced record is dead: its space is reclaimed when
// the head reaches it.
//
// The bounds are exact: a shard's chunks (allocated as the tail first
// reaches each one, so a small cache stays small) add up to at most its
// share of MaxBytes (rounded down to whole chunks, whose size is a power of
// two), and a shard holds at most its share of Size entries.
// The index and the shards' fixed fields are outside MaxBytes (16 bytes a
// slot, 1.6 slots per entry of Size, allocated at the start). A MaxBytes under 1 MiB
// gets fewer shards, each at least 64 KiB. An answer whose record is larger
// than a chunk (64 KiB, less for a MaxBytes under 64 KiB) is not cached.
//
// A lookup copies the record into an entry the caller owns (load), under
// the shard's lock: the fast path reuses one entry per worker, so a hit
// allocates nothing, and what the caller holds stays valid whatever the
// cache evicts meanwhile.
type Cache struct {
	shards  []cacheShard
	seed    maphash.Seed
	opts    CacheOptions
	onEvict func()
	// epoch is the origin of the stored times in the records (a monotonic
	// reading when the clock has one).
	epoch time.Time
}

// Cache geometry: at most maxShards shards, each at least one chunk.
const (
	maxShards = 16
	maxChunk  = 64 << 10
	// maxMoves bounds the referenced records a store moves from the head
	// to the tail before it evicts regardless.
	maxMoves = 8
)

// cacheShard is one ring of records and its index, guarded by mu.
type cacheShard struct {
	mu sync.Mutex
	// index maps a key to the offset of its record in the ring: offsets
	// of the records between head and tail are distinct.
	index hashIndex
	// chunks is the ring: len(chunks) chunks of chunk bytes, each
	// allocated when the tail first reaches it.
	chunks     [][]byte
	chunk      int    // a power of two
	shift      uint   // log2(chunk)
	ring       uint64 // len(chunks) * chunk
	head, tail uint64 // positions: oldest record, next record
	maxEntries int
	// entries and live are the live records and their bytes (written under
	// mu, read by Len and Bytes without it).
	entries atomic.Int64
	live    atomic.Int64
	_       [64]byte // keep the next shard's lock off this cache line
}

// minCacheBytes is the smallest byte bound a cache takes (cache.max_bytes
// is validated to be at least that): one chunk that holds a large answer.
const minCacheBytes = 4096

// DefaultCacheBytes is the byte bound of a cache whose options leave
// MaxBytes at 0 (cache.max_bytes in the default configuration).
const DefaultCacheBytes = 16 << 20

// CacheOptions configures a Cache.
type CacheOptions struct {
	// Size is the total number of entries.
	Size int
	// MaxBytes bounds the arenas the answers are stored in (records:
	// header, wire bytes, TTL offsets, name and CNAME targets); 0 means
	// DefaultCacheBytes, less than 4096 means 4096.
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

// cacheKey is a key of the cache: h, the index's key, mixes the hash of the
// name with the type and the flags; the record holds all three and the
// name, which a lookup compares.
type cacheKey struct {
	h     uint64
	qtype uint16
	flags uint8
}

const (
	keyDO = 1 << iota
	keyCD
)

// entry is one cached answer, owned by whoever holds it: put returns a new
// one, load fills the caller's (reusing its buffer), get returns a new one.
// Nothing in it points into the cache.
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
	// answer, checked against the policy on every hit. In an entry filled
	// by load they point into buf: valid until the next load into it.
	cnames []string

	// buf holds msg, ttls and the CNAME targets of an entry read from the
	// cache; load reuses it.
	buf []byte
	// shard, key and pos (the offset in the ring) locate the entry's
	// record (nil shard: not stored), for claimPrefetch.
	shard *cacheShard
	key   cacheKey
	pos   uint64
	// seen reports that a lookup had found the record before the one that
	// filled this entry: the entry is popular enough to prefetch.
	seen bool
}

// NewCache returns a cache; Size 0 returns nil (no caching).
func NewCache(opts CacheOptions) *Cache {
	if opts.Size <= 0 {
		return nil
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultCacheBytes
	}
	opts.MaxBytes = max(opts.MaxBytes, minCacheBytes)
	n := maxShards
	// Fewer shards for a small budget (each holds a chunk at least) and
	// for fewer entries than shards (each holds one at least): the cache
	// never holds more than Size entries.
	for n > 1 && (opts.MaxBytes/int64(n) < maxChunk || opts.Size < n) {
		n /= 2
	}
	c := &Cache{shards: make([]cacheShard, n), seed: maphash.MakeSeed(), opts: opts, onEvict: opts.OnEvict, epoch: time.Now()}
	perBytes := opts.MaxBytes / int64(n)
	chunk := maxChunk
	for int64(chunk) > perBytes {
		chunk /= 2
	}
	chunks := int(perBytes / int64(chunk))
	per := max(opts.Size/n, 1)
	for i := range c.shards {
		s := &c.shards[i]
		s.index = newHashIndex(per)
		s.chunks = make([][]byte, chunks)
		s.chunk = chunk
		s.shift = uint(bits.TrailingZeros(uint(chunk)))
		s.ring = uint64(chunks) * uint64(chunk)
		s.maxEntries = per
	}
	return c
}

func (c *Cache) key(name string, qtype uint16, do, cd bool) cacheKey {
	k := cacheKey{qtype: qtype}
	if do {
		k.flags |= keyDO
	}
	if cd {
		k.flags |= keyCD
	}
	k.h = maphash.String(c.seed, name) ^ (uint64(qtype)<<8|uint64(k.flags))*0x9e3779b97f4a7c15
	return k
}

// shard is k's shard: from the hash's low 32 bits by a multiply and a
// shift, not a division (a tenth of a cache lookup); the index takes its
// slots from the high 32 bits (hashIndex.home).
func (c *Cache) shard(k cacheKey) *cacheShard {
	return &c.shards[uint64(uint32(k.h))*uint64(len(c.shards))>>32]
}

// Bytes returns the bytes of the live records (at most MaxBytes).
func (c *Cache) Bytes() int64 {
	if c == nil {
		return 0
	}
	var n int64
	for i := range c.shards {
		n += c.shards[i].live.Load()
	}
	return n
}

// Len returns the number of cached entries.
func (c *Cache) Len() int {
	if c == nil {
		return 0
	}
	var n int64
	for i := range c.shards {
		n += c.shards[i].entries.Load()
	}
	return int(n)
}

// Purge drops every entry and gives the arenas back to the runtime. An
// entry held from before the purge names an offset a new record may take;
// the one thing done with such an entry is the prefetch claim (claimPrefetch,
// endPrefetch), which then at worst sets or clears the refresh mark of that
// new record.
func (c *Cache) Purge() {
	if c == nil {
		return
	}
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		s.index.clear()
		clear(s.chunks)
		s.head = s.tail
		s.entries.Store(0)
		s.live.Store(0)
		s.mu.Unlock()
	}
}

// store writes e's record under k, evicting for space and for the entry
// bound, and records where it went in e. A record bigger than a chunk is
// not stored.
func (c *Cache) store(k cacheKey, e *entry) {
	s := c.shard(k)
	size := e.recordSize()
	stored := int64(e.stored.Sub(c.epoch))
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.index.get(k.h); ok {
		// The old record stays in the ring, dead, until the head reaches it.
		s.index.del(k.h)
		s.entries.Add(-1)
		s.live.Add(-int64(recordLen(s.at(old, recHdr))))
	}
	if size > s.chunk {
		return // not cached, and the answer it replaces is gone
	}
	moves := maxMoves
	for s.entries.Load() >= int64(s.maxEntries) && s.head != s.tail {
		s.evict(c, &moves)
	}
	off := s.off(s.alloc(c, size, &moves))
	e.marshal(s.at(off, size), k, stored)
	s.tail += uint64(size)
	s.index.set(k.h, off)
	s.entries.Add(1)
	s.live.Add(int64(size))
	e.shard, e.key, e.pos = s, k, off
}

// off returns the offset in the ring of position pos.
func (s *cacheShard) off(pos uint64) uint64 { return pos % s.ring }

// at returns n bytes of the ring at offset off (they must not cross a
// chunk), allocating the chunk on first use. The lookups take offsets
// from the index: no division on the hit path.
func (s *cacheShard) at(off uint64, n int) []byte {
	i := off >> s.shift
	o := int(off & uint64(s.chunk-1))
	ch := s.chunks[i]
	if ch == nil {
		ch = make([]byte, s.chunk)
		s.chunks[i] = ch
	}
	return ch[o : o+n : o+n]
}

// alloc makes room for a record of size bytes at the tail and returns its
// position: when the rest of the tail's chunk is too small it is filled
// with a padding record; then the head is evicted until the ring has room.
func (s *cacheShard) alloc(c *Cache, size int, moves *int) uint64 {
	for {
		rest := s.chunk - int(s.tail%uint64(s.chunk))
		need := min(rest, size) // the padding first when rest < size
		if s.tail+uint64(need)-s.head > s.ring {
			s.evict(c, moves) // the ring is not empty: need <= chunk <= ring
			continue
		}
		if rest < size {
			putPadding(s.at(s.off(s.tail), rest))
			s.tail += uint64(rest)
			continue
		}
		return s.tail
	}
}

// evict handles the record at the head: padding and dead records are
// skipped, a live one referenced since it was last moved is moved to the
// tail (while moves lasts and it fits the tail's chunk), any other is
// dropped. The ring must not be empty.
func (s *cacheShard) evict(c *Cache, moves *int) {
	head := s.off(s.head)
	hdr := s.at(head, 8) // a padding record may be just 8 bytes
	size := recordLen(hdr)
	if hdr[recKind] != kindEntry {
		s.head += uint64(size)
		return
	}
	hdr = s.at(head, recHdr)
	k := recordKey(hdr)
	if off, ok := s.index.get(k.h); !ok || off != head {
		s.head += uint64(size) // replaced: dead
		return
	}
	if hdr[recState]&stateRef != 0 && *moves > 0 && s.chunk-int(s.tail%uint64(s.chunk)) >= size {
		*moves--
		hdr[recState] &^= stateRef
		// The ring is never fuller than ring bytes, so the tail's size
		// bytes are free once the head moves past this record; copy
		// handles the overlap when they are the same bytes.
		tail := s.off(s.tail)
		copy(s.at(tail, size), s.at(head, size))
		s.index.set(k.h, tail)
		s.head += uint64(size)
		s.tail += uint64(size)
		return
	}
	s.index.del(k.h)
	s.entries.Add(-1)
	s.live.Add(-int64(size))
	s.head += uint64(size)
	if c.onEvict != nil {
		c.onEvict()
	}
}

// get returns a new entry holding the cached answer for the key, fresh or
// not, or nil. name must be canonical.
func (c *Cache) get(name string, qtype uint16, do, cd bool) *entry {
	return c.lookup(nil, name, qtype, do, cd)
}

// load fills dst with the cached answer for the key, fresh or not, and
// returns it, or returns nil (dst is then unspecified). name must be
// canonical; dst.name is name itself. A hit allocates nothing once dst's
// buffer has grown to the answers it holds.
func (c *Cache) load(dst *entry, name string, qtype uint16, do, cd bool) *entry {
	return c.lookup(dst, name, qtype, do, cd)
}

func (c *Cache) lookup(dst *entry, name string, qtype uint16, do, cd bool) *entry {
	if c == nil {
		return nil
	}
	k := c.key(name, qtype, do, cd)
	s := c.shard(k)
	s.mu.Lock()
	pos, ok := s.index.get(k.h)
	if !ok {
		s.mu.Unlock()
		return nil
	}
	rec := s.at(pos, recordLen(s.at(pos, recHdr)))
	if string(recordName(rec)) != name || recordKey(rec) != k {
		s.mu.Unlock()
		return nil // another key with the same hash
	}
	if dst == nil {
		dst = new(entry)
	}
	if !dst.unmarshal(rec, c.epoch) {
		s.mu.Unlock()
		return nil // not reached: the cache wrote the record
	}
	dst.seen = rec[recState]&stateSeen != 0
	rec[recState] |= stateRef | stateSeen
	s.mu.Unlock()
	dst.name = name
	dst.shard, dst.key, dst.pos = s, k, pos
	return dst
}

// claimPrefetch reports whether the caller should refresh e's answer now,
// and if so marks the refresh as running in the cached record: the record
// is still cached, an earlier lookup had found it (it is popular), less
// than a tenth of its lifetime of at least 10 s is left, and no refresh is
// running. Only that last check takes the shard's lock.
func (e *entry) claimPrefetch(now time.Time) bool {
	s := e.shard
	if s == nil || !e.seen || e.ttl < 10 {
		return false
	}
	if left := int64(e.ttl) - int64(e.age(now)); left*10 > int64(e.ttl) {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if pos, ok := s.index.get(e.key.h); !ok || pos != e.pos {
		return false // replaced, moved or evicted since
	}
	hdr := s.at(e.pos, recHdr)
	if hdr[recState]&statePrefetching != 0 {
		return false
	}
	hdr[recState] |= statePrefetching
	return true
}

// endPrefetch clears the mark of claimPrefetch when the refresh could not
// be started or stored no new answer; once a new answer replaced the
// record it does nothing.
func (e *entry) endPrefetch() {
	s := e.shard
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if pos, ok := s.index.get(e.key.h); ok && pos == e.pos {
		s.at(e.pos, recHdr)[recState] &^= statePrefetching
	}
}

// The record format (little endian header, then the body):
//
//	0  u32 record length, a multiple of 8 (header and body and padding)
//	4  u8  kind: kindEntry or kindPadding (a padding record is 8+ bytes,
//	       only its length and kind are written)
//	5  u8  key flags (keyDO, keyCD)
//	6  u8  state bits (stateRef, stateSeen, statePrefetching)
//	7  u8  rcode
//	8  u64 key hash
//	16 i64 stored, nanoseconds since the cache's epoch
//	24 u32 lifetime in seconds
//	28 u16 qtype
//	30 u16 length of the packed answer
//	32 u16 end of its question section
//	34 u16 number of TTL offsets
//	36 u16 name length
//	38 u16 length of the CNAME targets (each a u16 length, then the name)
//	40 8 bytes reserved (zero)
//	48 body: answer, TTL offsets (2 bytes each, big endian), name, targets
const (
	recLen      = 0
	recKind     = 4
	recFlags    = 5
	recState    = 6
	recRcode    = 7
	recHash     = 8
	recStored   = 16
	recTTL      = 24
	recQtype    = 28
	recMsgLen   = 30
	recQEnd     = 32
	recNTTL     = 34
	recNameLen  = 36
	recCNameLen = 38
	recHdr      = 48

	kindEntry   = 1
	kindPadding = 2

	stateRef         = 1 << 0 // found by a lookup since last moved (CLOCK)
	stateSeen        = 1 << 1 // found by a lookup since stored
	statePrefetching = 1 << 2 // a refresh is running
)

func recordLen(hdr []byte) int { return int(binary.LittleEndian.Uint32(hdr[recLen:])) }

func recordKey(hdr []byte) cacheKey {
	return cacheKey{h: binary.LittleEndian.Uint64(hdr[recHash:]), qtype: binary.LittleEndian.Uint16(hdr[recQtype:]), flags: hdr[recFlags]}
}

// recordName returns the name of a record the cache wrote.
func recordName(rec []byte) []byte {
	off := recHdr + int(binary.LittleEndian.Uint16(rec[recMsgLen:])) + 2*int(binary.LittleEndian.Uint16(rec[recNTTL:]))
	return rec[off : off+int(binary.LittleEndian.Uint16(rec[recNameLen:]))]
}

func putPadding(b []byte) {
	binary.LittleEndian.PutUint32(b[recLen:], uint32(len(b)))
	b[recKind] = kindPadding
}

// recordSize is the length of e's record.
func (e *entry) recordSize() int {
	n := recHdr + len(e.msg) + len(e.ttls) + len(e.name)
	for _, t := range e.cnames {
		n += 2 + len(t)
	}
	return (n + 7) &^ 7
}

// marshal writes e's record into rec (recordSize bytes): with no state
// bits set, stored at stored nanoseconds after the cache's epoch.
func (e *entry) marshal(rec []byte, k cacheKey, stored int64) {
	le := binary.LittleEndian
	le.PutUint32(rec[recLen:], uint32(len(rec)))
	rec[recKind] = kindEntry
	rec[recFlags] = k.flags
	rec[recState] = 0
	rec[recRcode] = uint8(e.rcode)
	le.PutUint64(rec[recHash:], k.h)
	le.PutUint64(rec[recStored:], uint64(stored))
	le.PutUint32(rec[recTTL:], e.ttl)
	le.PutUint16(rec[recQtype:], k.qtype)
	le.PutUint16(rec[recMsgLen:], uint16(len(e.msg)))
	le.PutUint16(rec[recQEnd:], uint16(e.qEnd))
	le.PutUint16(rec[recNTTL:], uint16(len(e.ttls)/2))
	le.PutUint16(rec[recNameLen:], uint16(len(e.name)))
	off := recHdr + copy(rec[recHdr:], e.msg)
	off += copy(rec[off:], e.ttls)
	off += copy(rec[off:], e.name)
	start := off
	for _, t := range e.cnames {
		le.PutUint16(rec[off:], uint16(len(t)))
		off += 2 + copy(rec[off+2:], t)
	}
	le.PutUint16(rec[recCNameLen:], uint16(off-start))
	clear(rec[recHdr-8 : recHdr])
	clear(rec[off:])
}

// unmarshal fills e from a record (e.name excepted), copying the answer,
// the TTL offsets and the CNAME targets into e.buf. It checks what the
// reply code relies on (lengths, the question's end, every TTL offset
// inside the answer) and reports false for a record that is not sound.
func (e *entry) unmarshal(rec []byte, epoch time.Time) bool {
	le := binary.LittleEndian
	if len(rec) < recHdr {
		return false
	}
	size := recordLen(rec)
	if size < recHdr || size > len(rec) || rec[recKind] != kindEntry {
		return false
	}
	msgLen := int(le.Uint16(rec[recMsgLen:]))
	qEnd := int(le.Uint16(rec[recQEnd:]))
	nTTL := int(le.Uint16(rec[recNTTL:]))
	nameLen := int(le.Uint16(rec[recNameLen:]))
	cnLen := int(le.Uint16(rec[recCNameLen:]))
	body := rec[recHdr:size]
	if msgLen+2*nTTL+nameLen+cnLen > len(body) || qEnd < hdrLen || qEnd > msgLen {
		return false
	}
	cn := body[msgLen+2*nTTL+nameLen : msgLen+2*nTTL+nameLen+cnLen]
	e.buf = append(append(e.buf[:0], body[:msgLen+2*nTTL]...), cn...)
	e.msg = e.buf[:msgLen:msgLen]
	e.ttls = e.buf[msgLen : msgLen+2*nTTL : msgLen+2*nTTL]
	for i := 0; i < len(e.ttls); i += 2 {
		if off := int(binary.BigEndian.Uint16(e.ttls[i:])); off < qEnd || off+4 > msgLen {
			return false
		}
	}
	e.cnames = e.cnames[:0]
	for cn = e.buf[msgLen+2*nTTL:]; len(cn) > 0; {
		if len(cn) < 2 || 2+int(le.Uint16(cn)) > len(cn) {
			return false
		}
		n := int(le.Uint16(cn))
		e.cnames = append(e.cnames, unsafe.String(unsafe.SliceData(cn[2:]), n))
		cn = cn[2+n:]
	}
	e.qEnd = qEnd
	e.qtype = le.Uint16(rec[recQtype:])
	e.flags = rec[recFlags]
	e.rcode = int(rec[recRcode])
	e.ttl = le.Uint32(rec[recTTL:])
	e.stored = epoch.Add(time.Duration(int64(le.Uint64(rec[recStored:]))))
	return true
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
		// The CNAMEs before an NXDOMAIN are positive data: clamped as a
		// positive answer's records are (cache.min_ttl, cache.max_ttl).
		for _, rr := range m.Answer {
			rr.Header().Ttl = c.clamp(rr.Header().Ttl)
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
			e.cnames = append(e.cnames, dnsname.Lower(v.Target))
		case *dns.DNAME:
			e.cnames = append(e.cnames, dnsname.Lower(v.Target))
		}
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

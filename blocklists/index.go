package blocklists

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"unsafe"
)

// Hit is one rule that covers a looked-up name.
type Hit struct {
	// Tag is the tag the rule was added with (a source, a jurisdiction...).
	Tag uint32
	// Kind of the rule.
	Kind Kind
	// Name is the rule's canonical name. It is a substring of the index's
	// storage: keeping it keeps the index alive.
	Name string
	// Depth is the number of labels between the queried name and the rule
	// name: 0 when they are equal, 1 for the parent, and so on.
	Depth int
}

// The arena is a list of chunks of at most 1 MiB holding one record per
// rule, in the order of the Add calls; a record never spans two chunks, so
// its offset is chunk<<chunkBits | position, and offsets grow in the order
// of the Add calls.
const (
	chunkBits  = 20
	chunkMax   = 1 << chunkBits
	chunkMask  = chunkMax - 1
	firstChunk = 4 << 10
	maxChunks  = 1 << (32 - chunkBits)
)

// A record is one rule: the length of its name (1 byte), its kind (1 byte),
// its tag (4 bytes, little-endian), then the name (lower case). In the
// first record of a name that has several rules, the tag field holds the
// position of the name's rules in Index.chains instead.
const recHeader = 6

// IndexBuilder collects rules for an Index. It is not safe for concurrent
// use.
type IndexBuilder struct {
	chunks [][]byte
	cur    []byte
	curCap int
	n      int // rules added
}

// NewIndexBuilder returns a builder sized for about sizeHint rules (0 if
// unknown). The hint only sizes the first arena chunk: the builder grows by
// chunks, without copying.
func NewIndexBuilder(sizeHint int) *IndexBuilder {
	b := &IndexBuilder{curCap: firstChunk}
	if sizeHint > 0 {
		b.curCap = min(max(sizeHint*(recHeader+24), firstChunk), chunkMax)
	}
	return b
}

// Add adds a rule. name should be canonical (from Parse or Canonical): Add
// only folds ASCII case and drops a trailing dot; it ignores an empty name
// and a name longer than 255 bytes. Add copies name. The same name may be
// added several times with different kinds or tags (the same domain in two
// jurisdictions): Lookup returns every one; repeating the same (name, kind,
// tag) adds nothing. Rules of kinds other than Suffix, Exact and Below never
// match.
func (b *IndexBuilder) Add(name string, kind Kind, tag uint32) {
	if n := len(name); n > 0 && name[n-1] == '.' {
		name = name[:n-1]
	}
	n := len(name)
	if n == 0 || n > 255 {
		return
	}
	if cap(b.cur) == 0 {
		b.cur = make([]byte, 0, b.curCap)
	}
	if len(b.cur)+recHeader+n > cap(b.cur) {
		b.chunks = append(b.chunks, b.cur)
		if len(b.chunks) >= maxChunks {
			panic("blocklists: index names over 4 GiB")
		}
		b.curCap = min(b.curCap*2, chunkMax)
		b.cur = make([]byte, 0, b.curCap)
	}
	b.cur = append(b.cur, byte(n), byte(kind))
	b.cur = binary.LittleEndian.AppendUint32(b.cur, tag)
	p := len(b.cur)
	b.cur = append(b.cur, name...)
	for i := p; i < len(b.cur); i++ {
		b.cur[i] = lower[b.cur[i]]
	}
	b.n++
}

// Len returns the number of rules added so far (repetitions included).
func (b *IndexBuilder) Len() int { return b.n }

// Build returns the index of the rules added so far and resets the builder.
func (b *IndexBuilder) Build() *Index {
	if len(b.cur) > 0 {
		b.chunks = append(b.chunks, b.cur)
	}
	ib := indexBuild{ix: &Index{n: b.n, seed: rand.Uint64()}, arena: b.chunks}
	*b = IndexBuilder{curCap: firstChunk}
	ib.build()
	return ib.ix
}

// Index is an immutable set of rules (name, kind, tag), safe for concurrent
// use. Lookup costs one hash-table probe per label of the queried name
// (skipping label counts no rule has), whatever the number of rules.
//
// Layout: the rules are records (name length, kind, tag, name) in an arena
// of strings (chunks of up to 1 MiB), in the order they were added. An
// open-addressing table (linear probing, load ≤ 0.5) has a slot for each
// distinct name, in two arrays: fps, 16 bits of which 14 of hash
// fingerprint and a flag, and offs, the arena offset of the name's first
// record. The flag says that the name has several rules: they are then
// listed, in the order they were added, in chains, which exists only if
// there are any. A name is hashed from its last byte to its first, so that
// Lookup gets the hash of every label suffix of the query in one pass; the
// hash seed is random per index. A miss reads only fps (2 bytes a slot), a
// hit one fingerprint, one offset and one record. About 38 bytes a rule for
// names of 20 bytes.
type Index struct {
	chunks    []string
	n         int         // records, repetitions included
	fps       []uint16    // the hash table: fingerprints, 0 in empty slots
	offs      []uint32    // the hash table: offsets of the names' first records
	chains    []chainRule // the rules of the names that have several
	heads     []uint32    // offsets of the records whose tag field points into chains, sorted
	dead      []uint64    // bit i: record i repeats an earlier (name, kind, tag)
	seed      uint64
	labelMask uint64 // bit k: some name has k labels (63: 63 or more)
	live      int
	touched   uint16 // keeps build's slot loads alive

	hashOnce sync.Once
	hash     [32]byte
}

// chainRule is one rule of a name that has several; last marks the last
// one of the name.
type chainRule struct {
	tag  uint32
	kind Kind
	last bool
}

const (
	fnvPrime = 1099511628211
	// slotSize is the size of a slot in bytes (fps and offs).
	slotSize = 6
)

// fingerprint is the part of a mixed hash a slot keeps in fps: 14 bits,
// then bit 1 set (a slot in use is not 0) and bit 0 clear (the chain flag).
func fingerprint(f uint64) uint16 { return uint16(f>>48)&^3 | 2 }

// mix is the murmur3 64-bit finalizer: the per-byte FNV step leaves the low
// bits poorly mixed.
func mix(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// slotOf maps a mixed hash to a table slot (multiply-shift range reduction).
func slotOf(f uint64, size int) int {
	return int((f & 0xffffffff) * uint64(size) >> 32)
}

// record returns the chunk and position of the record at off.
func (ix *Index) record(off uint32) (string, uint32) {
	return ix.chunks[off>>chunkBits], off & chunkMask
}

// name returns the name of the record at off.
func (ix *Index) name(off uint32) string {
	c, p := ix.record(off)
	return c[p+recHeader : p+recHeader+uint32(c[p])]
}

func recKind[S ~string | ~[]byte](c S, p uint32) Kind { return Kind(c[p+1]) }

func recTag[S ~string | ~[]byte](c S, p uint32) uint32 {
	_ = c[p+5]
	return uint32(c[p+2]) | uint32(c[p+3])<<8 | uint32(c[p+4])<<16 | uint32(c[p+5])<<24
}

// rule returns the kind and tag of the record at off.
func (ix *Index) rule(off uint32) (Kind, uint32) {
	c, p := ix.record(off)
	if _, head := slices.BinarySearch(ix.heads, off); head {
		r := ix.chains[recTag(c, p)]
		return r.kind, r.tag
	}
	return recKind(c, p), recTag(c, p)
}

// records calls fn with the offset, number and chunk position of every
// record, in the order they were added, until fn returns false.
func records[S ~string | ~[]byte](chunks []S, fn func(off uint32, i int, c S, p uint32) bool) {
	i := 0
	for k, c := range chunks {
		for p := uint32(0); p < uint32(len(c)); {
			if !fn(uint32(k)<<chunkBits|p, i, c, p) {
				return
			}
			i++
			p += recHeader + uint32(c[p])
		}
	}
}

func (ix *Index) isDead(i int) bool {
	return ix.dead != nil && ix.dead[i>>6]&(1<<(i&63)) != 0
}

// indexBuild is the state of Build: the index being built and its arena,
// still mutable.
type indexBuild struct {
	ix    *Index
	arena [][]byte
	dups  []dup
}

// dup is a record whose name is already in the table.
type dup struct {
	head, rec uint32 // offsets of the name's first record and of this one
	num       uint32 // number of this record
	slot      uint32 // the name's slot
}

func (b *indexBuild) name(off uint32) []byte {
	c, p := b.arena[off>>chunkBits], off&chunkMask
	return c[p+recHeader : p+recHeader+uint32(c[p])]
}

func (b *indexBuild) rule(off uint32) (Kind, uint32) {
	c, p := b.arena[off>>chunkBits], off&chunkMask
	return recKind(c, p), recTag(c, p)
}

func (b *indexBuild) build() {
	ix := b.ix
	if n := ix.n; n > 0 {
		// Load ≤ 0.5: a miss (the common case: most queries are not
		// blocked) then scans about 2.5 slots, against 6 at load 0.7, for
		// 3 more bytes a rule.
		size := 2*n + 1
		ix.fps = make([]uint16, size)
		ix.offs = make([]uint32, size)
		// Records go in by batches: the hashes of a batch, then a tight
		// loop loading each one's home slot (independent loads that wait
		// for memory together), then the inserts, which then mostly hit
		// the cache. At 1M rules this takes the table inserts from ~200 to
		// ~70 ms here.
		const batch = 16
		var (
			fs      [batch]uint64
			recs    [batch]uint32 // their offsets
			m       int
			first   int // number of the first record of the batch
			touched uint16
		)
		flush := func() {
			for j := range m {
				touched |= ix.fps[slotOf(fs[j], size)]
			}
			for j := range m {
				b.insert(recs[j], first+j, fs[j])
			}
			first += m
			m = 0
		}
		records(b.arena, func(off uint32, _ int, c []byte, p uint32) bool {
			name := c[p+recHeader : p+recHeader+uint32(c[p])]
			h, labels := ix.seed, 1
			for k := len(name) - 1; k >= 0; k-- {
				c := name[k]
				if c == '.' {
					labels++
				}
				h = (h ^ uint64(c)) * fnvPrime
			}
			ix.labelMask |= 1 << min(labels, 63)
			fs[m], recs[m] = mix(h), off
			if m++; m == batch {
				flush()
			}
			return true
		})
		flush()
		ix.touched = touched
		b.chain()
	}
	// The arena is final: it becomes strings, without copying.
	ix.chunks = make([]string, len(b.arena))
	for k, c := range b.arena {
		ix.chunks[k] = unsafe.String(unsafe.SliceData(c), len(c))
	}
}

// insert puts record off (number i), whose name has the mixed hash f, in
// the table, or notes it as a further rule of a name already there.
func (b *indexBuild) insert(off uint32, i int, f uint64) {
	ix := b.ix
	fp := fingerprint(f)
	size := len(ix.fps)
	for s := slotOf(f, size); ; {
		if ix.fps[s] == 0 {
			ix.fps[s], ix.offs[s] = fp, off
			ix.live++
			return
		}
		if head := ix.offs[s]; ix.fps[s]&^1 == fp && string(b.name(head)) == string(b.name(off)) {
			b.dups = append(b.dups, dup{head: head, rec: off, num: uint32(i), slot: uint32(s)})
			return
		}
		if s++; s == size {
			s = 0
		}
	}
}

// chain lists the rules of every name that has several in chains, in the
// order they were added, and points the name's slot and first record
// there. A rule that repeats an earlier one of the same name (same kind and
// tag) is dead: Each and Lookup skip it.
func (b *indexBuild) chain() {
	ix := b.ix
	if len(b.dups) == 0 {
		return
	}
	// Offsets grow in the order of the Add calls.
	slices.SortFunc(b.dups, func(x, y dup) int {
		if c := cmp.Compare(x.head, y.head); c != 0 {
			return c
		}
		return cmp.Compare(x.rec, y.rec)
	})
	for g := 0; g < len(b.dups); {
		head := b.dups[g].head
		e := g + 1
		for e < len(b.dups) && b.dups[e].head == head {
			e++
		}
		start := len(ix.chains)
		kind, tag := b.rule(head)
		ix.chains = append(ix.chains, chainRule{tag: tag, kind: kind})
		for _, d := range b.dups[g:e] {
			kind, tag := b.rule(d.rec)
			if slices.ContainsFunc(ix.chains[start:], func(r chainRule) bool { return r.kind == kind && r.tag == tag }) {
				if ix.dead == nil {
					ix.dead = make([]uint64, (ix.n+63)/64)
				}
				ix.dead[d.num>>6] |= 1 << (d.num & 63)
				continue
			}
			ix.chains = append(ix.chains, chainRule{tag: tag, kind: kind})
		}
		if rules := len(ix.chains) - start; rules == 1 { // only repetitions
			ix.chains = ix.chains[:start]
		} else {
			ix.live += rules - 1
			ix.chains[len(ix.chains)-1].last = true
			c, p := b.arena[head>>chunkBits], head&chunkMask
			binary.LittleEndian.PutUint32(c[p+2:], uint32(start))
			ix.fps[b.dups[g].slot] |= 1
			ix.heads = append(ix.heads, head)
		}
		g = e
	}
	ix.chains = slices.Clip(ix.chains)
	ix.heads = slices.Clip(ix.heads)
	b.dups = nil
}

// Len returns the number of distinct rules (name, kind, tag).
func (ix *Index) Len() int {
	if ix == nil {
		return 0
	}
	return ix.live
}

// SizeBytes estimates the memory the index holds.
func (ix *Index) SizeBytes() int {
	if ix == nil {
		return 0
	}
	n := len(ix.fps)*slotSize + len(ix.chains)*8 + len(ix.heads)*4 + len(ix.dead)*8
	for _, c := range ix.chunks {
		n += len(c)
	}
	return n
}

// Lookup appends to buf every rule covering qname and returns the extended
// buf: Suffix rules for qname and its ancestors, Exact rules for qname
// itself, Below rules for its ancestors. qname may have any case and one
// trailing dot; escapes are not interpreted (a "\." is a label separator).
// Hits come in order of decreasing Depth (the shortest rule name first), the
// rules of one name in the order they were added. Lookup does not allocate
// while buf has room:
//
//	var a [8]Hit
//	hits := ix.Lookup(q, a[:0])
func (ix *Index) Lookup(qname string, buf []Hit) []Hit {
	if ix == nil || ix.live == 0 {
		return buf
	}
	n := len(qname)
	if n > 0 && qname[n-1] == '.' {
		n--
	}
	if n == 0 {
		return buf
	}
	q := qname[:n]
	labels := 1 + strings.Count(q, ".")
	// The label suffixes to probe are gathered first and probed together
	// (probeAll): their first slots are random reads into a table of
	// megabytes, which the CPU overlaps when they do not wait on each
	// other.
	var ps [lookupBatch]probeAt
	np := 0
	h, k := ix.seed, 0
	for i := n - 1; i >= 0; i-- {
		c := q[i]
		if c == '.' {
			k++
			if ix.labelMask&(1<<min(k, 63)) != 0 {
				if np == len(ps) {
					buf = ix.probeAll(q, ps[:np], buf)
					np = 0
				}
				ps[np] = probeAt{f: mix(h), start: i + 1, depth: labels - k}
				np++
			}
		}
		h = (h ^ uint64(lower[c])) * fnvPrime
	}
	if ix.labelMask&(1<<min(labels, 63)) != 0 {
		if np == len(ps) {
			buf = ix.probeAll(q, ps[:np], buf)
			np = 0
		}
		ps[np] = probeAt{f: mix(h), start: 0, depth: 0}
		np++
	}
	return ix.probeAll(q, ps[:np], buf)
}

// lookupBatch is the number of label suffixes Lookup probes together.
const lookupBatch = 8

// probeAt is a label suffix of a Lookup query to probe: q[start:], its
// mixed hash f, its depth, and v, the fingerprint in its first slot.
type probeAt struct {
	f     uint64
	start int
	depth int
	v     uint16
}

// probeAll probes the suffixes ps of q in order and appends their hits.
// It first reads the first slot of every suffix, in a loop whose reads do
// not depend on each other, so that their cache misses overlap; the
// probes then start from those values.
func (ix *Index) probeAll(q string, ps []probeAt, buf []Hit) []Hit {
	fps := ix.fps
	for j := range ps {
		ps[j].v = fps[slotOf(ps[j].f, len(fps))]
	}
	for j := range ps {
		buf = ix.probe(ps[j].f, ps[j].v, q[ps[j].start:], ps[j].depth, buf)
	}
	return buf
}

// probe looks up the name whose mixed hash is f, v being the fingerprint
// in its first slot, and appends the hits of its rules that apply at
// depth.
func (ix *Index) probe(f uint64, v uint16, name string, depth int, buf []Hit) []Hit {
	fp := fingerprint(f)
	fps := ix.fps
	for s := slotOf(f, len(fps)); ; {
		if v&^1 == fp {
			off := ix.offs[s]
			c, p := ix.record(off)
			if int(c[p]) == len(name) && equalLower(c[p+recHeader:p+recHeader+uint32(len(name))], name) {
				return ix.hits(off, v&1 != 0, depth, buf)
			}
		} else if v == 0 { // fp is never 0
			return buf
		}
		if s++; s == len(fps) {
			s = 0
		}
		v = fps[s]
	}
}

// equalLower compares a lower-case stored name with a name in any case.
func equalLower(stored, q string) bool {
	for i := 0; i < len(stored); i++ {
		if stored[i] != lower[q[i]] {
			return false
		}
	}
	return true
}

// hits appends the hits of the rules of the name whose first record is at
// off that apply at depth; chained says that the name has several rules.
func (ix *Index) hits(off uint32, chained bool, depth int, buf []Hit) []Hit {
	c, p := ix.record(off)
	name := c[p+recHeader : p+recHeader+uint32(c[p])]
	if !chained {
		return appendHit(buf, recKind(c, p), recTag(c, p), name, depth)
	}
	for i := recTag(c, p); ; i++ {
		r := &ix.chains[i]
		buf = appendHit(buf, r.kind, r.tag, name, depth)
		if r.last {
			return buf
		}
	}
}

// appendHit appends the hit of a rule if it applies at depth.
func appendHit(buf []Hit, kind Kind, tag uint32, name string, depth int) []Hit {
	switch {
	case kind == Suffix, kind == Exact && depth == 0, kind == Below && depth > 0:
		buf = append(buf, Hit{Tag: tag, Kind: kind, Name: name, Depth: depth})
	}
	return buf
}

// Each calls fn for every distinct rule, in the order they were added, until
// fn returns false.
func (ix *Index) Each(fn func(name string, kind Kind, tag uint32) bool) {
	if ix == nil {
		return
	}
	heads := ix.heads
	records(ix.chunks, func(off uint32, i int, c string, p uint32) bool {
		if ix.isDead(i) {
			return true
		}
		kind, tag := recKind(c, p), recTag(c, p)
		if len(heads) > 0 && heads[0] == off {
			r := ix.chains[tag]
			kind, tag = r.kind, r.tag
			heads = heads[1:]
		}
		return fn(c[p+recHeader:p+recHeader+uint32(c[p])], kind, tag)
	})
}

// Hash returns a digest of the rule set, independent of the order of Add
// calls and of repetitions: the SHA-256 of the distinct rules sorted by
// (name, kind, tag), each written as one byte of name length, the name, one
// byte of kind and the tag in 4 bytes big-endian. It is computed on the first
// call (a sort: about half a second for a million rules) and then cached.
func (ix *Index) Hash() [32]byte {
	if ix == nil {
		return sha256.Sum256(nil)
	}
	ix.hashOnce.Do(ix.computeHash)
	return ix.hash
}

func (ix *Index) computeHash() {
	// Sort on the first 8 bytes of each name, kept beside the record's
	// offset (an in-cache key), and compare whole names only on ties.
	type keyed struct {
		prefix uint64
		off    uint32
	}
	order := make([]keyed, 0, ix.live)
	records(ix.chunks, func(off uint32, i int, c string, p uint32) bool {
		if !ix.isDead(i) {
			var b [8]byte
			copy(b[:], c[p+recHeader:p+recHeader+uint32(c[p])])
			order = append(order, keyed{binary.BigEndian.Uint64(b[:]), off})
		}
		return true
	})
	slices.SortFunc(order, func(a, b keyed) int {
		if a.prefix != b.prefix {
			return cmp.Compare(a.prefix, b.prefix)
		}
		if c := strings.Compare(ix.name(a.off), ix.name(b.off)); c != 0 {
			return c
		}
		ka, ta := ix.rule(a.off)
		kb, tb := ix.rule(b.off)
		if c := cmp.Compare(ka, kb); c != 0 {
			return c
		}
		return cmp.Compare(ta, tb)
	})
	d := sha256.New()
	buf := make([]byte, 0, 32<<10)
	for _, k := range order {
		name := ix.name(k.off)
		kind, tag := ix.rule(k.off)
		if len(buf) > cap(buf)-(1+255+1+4) {
			d.Write(buf)
			buf = buf[:0]
		}
		buf = append(buf, byte(len(name)))
		buf = append(buf, name...)
		buf = append(buf, byte(kind))
		buf = binary.BigEndian.AppendUint32(buf, tag)
	}
	d.Write(buf)
	d.Sum(ix.hash[:0])
}

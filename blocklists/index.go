package blocklists

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
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

// The name arena is a list of chunks of at most 1 MiB; a name never spans
// two chunks, so an offset is chunk<<chunkBits | position.
const (
	chunkBits  = 20
	chunkMax   = 1 << chunkBits
	firstChunk = 4 << 10
	maxChunks  = 1 << (32 - chunkBits)
)

// Entries are stored in chunks of 64Ki (768 KiB), so that a large builder
// grows without copying, whatever its size hint.
const (
	entryBits = 16
	entryMax  = 1 << entryBits
	entryMask = entryMax - 1
)

// entry is one rule of an index: 12 bytes.
type entry struct {
	off  uint32 // of the name in the arena
	tag  uint32
	n    uint8 // name length
	kind Kind
	dead bool // a repetition of an earlier (name, kind, tag)
}

// IndexBuilder collects rules for an Index. It is not safe for concurrent
// use.
type IndexBuilder struct {
	chunks  []string
	cur     strings.Builder
	curCap  int
	entries [][]entry // full chunks of entryMax, then the last one
	n       int       // rules added
}

// NewIndexBuilder returns a builder sized for about sizeHint rules (0 if
// unknown; a good hint avoids copying while the builder grows).
func NewIndexBuilder(sizeHint int) *IndexBuilder {
	b := &IndexBuilder{curCap: firstChunk}
	if sizeHint > 0 {
		b.entries = [][]entry{make([]entry, 0, min(sizeHint, entryMax))}
		b.curCap = min(max(sizeHint*24, firstChunk), chunkMax)
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
	if b.cur.Cap() == 0 {
		b.cur.Grow(b.curCap)
	}
	if b.cur.Len()+n > b.curCap {
		b.chunks = append(b.chunks, b.cur.String())
		if len(b.chunks) >= maxChunks {
			panic("blocklists: index names over 4 GiB")
		}
		b.curCap = min(b.curCap*2, chunkMax)
		b.cur = strings.Builder{}
		b.cur.Grow(b.curCap)
	}
	off := uint32(len(b.chunks))<<chunkBits | uint32(b.cur.Len())
	upper := false
	for i := 0; i < n; i++ {
		if name[i]-'A' < 26 {
			upper = true
			break
		}
	}
	if upper {
		for i := 0; i < n; i++ {
			b.cur.WriteByte(lower[name[i]])
		}
	} else {
		b.cur.WriteString(name)
	}
	last := len(b.entries) - 1
	switch {
	case last < 0: // no hint: start small, append grows the first chunk
		b.entries = [][]entry{make([]entry, 0, 16)}
		last = 0
	case len(b.entries[last]) == entryMax:
		b.entries = append(b.entries, make([]entry, 0, entryMax))
		last++
	}
	b.entries[last] = append(b.entries[last], entry{off: off, tag: tag, n: uint8(n), kind: kind})
	b.n++
}

// Len returns the number of rules added so far (repetitions included).
func (b *IndexBuilder) Len() int { return b.n }

// Build returns the index of the rules added so far and resets the builder.
func (b *IndexBuilder) Build() *Index {
	if b.cur.Len() > 0 {
		b.chunks = append(b.chunks, b.cur.String())
	}
	ix := &Index{chunks: b.chunks, entries: b.entries, n: b.n, seed: rand.Uint64()}
	*b = IndexBuilder{curCap: firstChunk}
	ix.build()
	return ix
}

// Index is an immutable set of rules (name, kind, tag), safe for concurrent
// use. Lookup costs one hash-table probe per label of the queried name
// (skipping label counts no rule has), whatever the number of rules.
//
// Layout: names live in an arena of strings (chunks of up to 1 MiB); rules
// in chunked arrays of 12-byte entries (arena offset, tag, name length,
// kind); an open-addressing table (linear probing, load ≤ 0.5) of 64-bit
// slots holds a 32-bit hash fingerprint and the index of the first rule of
// each distinct name; further rules of the same name are chained through
// next, which exists only if there are any. A name is hashed from its last
// byte to its first, so that Lookup gets the hash of every label suffix of
// the query in one pass; the hash seed is random per index. About 48 bytes
// a rule for names of 20 bytes.
type Index struct {
	chunks    []string
	entries   [][]entry
	n         int      // entries, repetitions included
	next      []uint32 // 1 + the next rule of the same name, 0 at the end
	table     []uint64 // fingerprint<<32 | 1 + entry index; 0 is empty
	seed      uint64
	labelMask uint64 // bit k: some name has k labels (63: 63 or more)
	live      int
	touched   uint64 // keeps build's slot loads alive

	hashOnce sync.Once
	hash     [32]byte
}

const (
	fnvPrime = 1099511628211
	fpMask   = 0xffffffff_00000000
)

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

func (ix *Index) entry(i uint32) *entry {
	return &ix.entries[i>>entryBits][i&entryMask]
}

func (ix *Index) name(e *entry) string {
	c := ix.chunks[e.off>>chunkBits]
	p := e.off & (chunkMax - 1)
	return c[p : p+uint32(e.n)]
}

func (ix *Index) build() {
	n := ix.n
	if n == 0 {
		return
	}
	// Load ≤ 0.5: a miss (the common case: most queries are not blocked)
	// then scans about 2.5 slots, against 6 at load 0.7, for 4 more bytes
	// a rule.
	size := 2*n + 1
	ix.table = make([]uint64, size)
	// Entries go in by batches: the hashes of a batch, then a tight loop
	// loading each one's home slot (independent loads that wait for memory
	// together), then the inserts, which then mostly hit the cache. At 1M
	// rules this takes the table inserts from ~200 to ~70 ms here.
	const batch = 16
	var fs [batch]uint64
	var touched uint64
	for base := uint32(0); base < uint32(n); base += batch {
		m := min(batch, uint32(n)-base)
		for j := range m {
			name := ix.name(ix.entry(base + j))
			h, labels := ix.seed, 1
			for k := len(name) - 1; k >= 0; k-- {
				c := name[k]
				if c == '.' {
					labels++
				}
				h = (h ^ uint64(c)) * fnvPrime
			}
			ix.labelMask |= 1 << min(labels, 63)
			fs[j] = mix(h)
		}
		for j := range m {
			touched |= ix.table[slotOf(fs[j], size)]
		}
		for j := range m {
			ix.insert(base+j, fs[j])
		}
	}
	ix.touched = touched
}

// insert puts rule i, whose name has the mixed hash f, in the table, or
// chains it to the rules of the same name.
func (ix *Index) insert(i uint32, f uint64) {
	fp := f & fpMask
	size := len(ix.table)
	for s := slotOf(f, size); ; {
		v := ix.table[s]
		if v == 0 {
			ix.table[s] = fp | uint64(i+1)
			ix.live++
			return
		}
		if v&fpMask == fp {
			if head := uint32(v) - 1; ix.name(ix.entry(head)) == ix.name(ix.entry(i)) {
				ix.chain(head, i)
				return
			}
		}
		if s++; s == size {
			s = 0
		}
	}
}

// chain appends rule i to the rules of the same name starting at head,
// unless one of them has the same kind and tag.
func (ix *Index) chain(head, i uint32) {
	e := ix.entry(i)
	k := head
	for {
		o := ix.entry(k)
		if o.kind == e.kind && o.tag == e.tag {
			e.dead = true
			return
		}
		if ix.next == nil || ix.next[k] == 0 {
			break
		}
		k = ix.next[k] - 1
	}
	if ix.next == nil {
		ix.next = make([]uint32, ix.n)
	}
	ix.next[k] = i + 1
	ix.live++
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
	n := ix.n*12 + len(ix.next)*4 + len(ix.table)*8
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
	h, k := ix.seed, 0
	for i := n - 1; i >= 0; i-- {
		c := q[i]
		if c == '.' {
			k++
			if ix.labelMask&(1<<min(k, 63)) != 0 {
				buf = ix.probe(h, q[i+1:], labels-k, buf)
			}
		}
		h = (h ^ uint64(lower[c])) * fnvPrime
	}
	if ix.labelMask&(1<<min(labels, 63)) != 0 {
		buf = ix.probe(h, q, 0, buf)
	}
	return buf
}

// probe looks up the name whose (unmixed) hash is h and appends the hits of
// its rules that apply at depth.
func (ix *Index) probe(h uint64, name string, depth int, buf []Hit) []Hit {
	f := mix(h)
	fp := f & fpMask
	size := len(ix.table)
	for s := slotOf(f, size); ; {
		v := ix.table[s]
		if v == 0 {
			return buf
		}
		if v&fpMask == fp {
			i := uint32(v) - 1
			if e := ix.entry(i); int(e.n) == len(name) && equalLower(ix.name(e), name) {
				return ix.hits(i, depth, buf)
			}
		}
		if s++; s == size {
			s = 0
		}
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

func (ix *Index) hits(i uint32, depth int, buf []Hit) []Hit {
	name := ix.name(ix.entry(i))
	for {
		e := ix.entry(i)
		switch {
		case e.kind == Suffix, e.kind == Exact && depth == 0, e.kind == Below && depth > 0:
			buf = append(buf, Hit{Tag: e.tag, Kind: e.kind, Name: name, Depth: depth})
		}
		if ix.next == nil || ix.next[i] == 0 {
			return buf
		}
		i = ix.next[i] - 1
	}
}

// Each calls fn for every distinct rule, in the order they were added, until
// fn returns false.
func (ix *Index) Each(fn func(name string, kind Kind, tag uint32) bool) {
	if ix == nil {
		return
	}
	for _, c := range ix.entries {
		for i := range c {
			e := &c[i]
			if e.dead {
				continue
			}
			if !fn(ix.name(e), e.kind, e.tag) {
				return
			}
		}
	}
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
	// Sort on the first 8 bytes of each name, kept beside the entry index
	// (an in-cache key), and compare whole names only on ties.
	type keyed struct {
		prefix uint64
		i      uint32
	}
	order := make([]keyed, 0, ix.live)
	for i := range uint32(ix.n) {
		if e := ix.entry(i); !e.dead {
			var p [8]byte
			copy(p[:], ix.name(e))
			order = append(order, keyed{binary.BigEndian.Uint64(p[:]), uint32(i)})
		}
	}
	slices.SortFunc(order, func(a, b keyed) int {
		if a.prefix != b.prefix {
			return cmp.Compare(a.prefix, b.prefix)
		}
		ea, eb := ix.entry(a.i), ix.entry(b.i)
		if c := strings.Compare(ix.name(ea), ix.name(eb)); c != 0 {
			return c
		}
		if c := cmp.Compare(ea.kind, eb.kind); c != 0 {
			return c
		}
		return cmp.Compare(ea.tag, eb.tag)
	})
	d := sha256.New()
	buf := make([]byte, 0, 32<<10)
	for _, k := range order {
		e := ix.entry(k.i)
		if len(buf) > cap(buf)-(1+255+1+4) {
			d.Write(buf)
			buf = buf[:0]
		}
		buf = append(buf, e.n)
		buf = append(buf, ix.name(e)...)
		buf = append(buf, byte(e.kind))
		buf = binary.BigEndian.AppendUint32(buf, e.tag)
	}
	d.Write(buf)
	d.Sum(ix.hash[:0])
}

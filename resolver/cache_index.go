package resolver

// hashIndex maps a cache key's 64-bit hash to its record's offset in a
// shard's ring: an open-addressing table of (hash, offset) pairs with
// linear probing and backward-shift deletion, sized once for the shard's
// most entries at a load of at most 5/8.
//
// A Go map did the same, but a cache under a miss-heavy load inserts and
// deletes all the time, and the map's lookups were 6% of a miss's CPU: a
// probe here reads one 16-byte slot (a pair shares a cache line), and a
// deletion leaves no tombstone for later lookups to step over. It holds no
// pointer, so the garbage collector does not scan it.
type hashIndex struct {
	slots []indexSlot
	n     int
}

// indexSlot is a pair; hash 0 marks a free slot (the hash 0 is stored as
// 1: a collision, which the cache's lookups tell apart by the record's
// name and key).
type indexSlot struct{ h, off uint64 }

// newHashIndex returns an index for at most n entries.
func newHashIndex(n int) hashIndex {
	return hashIndex{slots: make([]indexSlot, max(16, n*8/5+1))}
}

func indexHash(h uint64) uint64 {
	if h == 0 {
		return 1
	}
	return h
}

// home is the slot h's probe starts at: the top 32 bits of h scaled to
// the table (the shards take the low bits).
func (x *hashIndex) home(h uint64) int { return int((h >> 32) * uint64(len(x.slots)) >> 32) }

// next is the slot after i, wrapping around.
func (x *hashIndex) next(i int) int {
	if i++; i == len(x.slots) {
		return 0
	}
	return i
}

// get returns the offset stored for h.
func (x *hashIndex) get(h uint64) (uint64, bool) {
	h = indexHash(h)
	for i := x.home(h); ; i = x.next(i) {
		s := &x.slots[i]
		if s.h == h {
			return s.off, true
		}
		if s.h == 0 {
			return 0, false
		}
	}
}

// set stores off for h, replacing what was stored for it. The index must
// not be full (the cache never holds more entries than it was sized for).
func (x *hashIndex) set(h, off uint64) {
	h = indexHash(h)
	for i := x.home(h); ; i = x.next(i) {
		s := &x.slots[i]
		if s.h == h {
			s.off = off
			return
		}
		if s.h == 0 {
			*s = indexSlot{h, off}
			x.n++
			return
		}
	}
}

// del removes h, moving back the pairs after it in its run that may take
// its place, so that no probe ever has to step over a removed slot.
func (x *hashIndex) del(h uint64) {
	h = indexHash(h)
	i := x.home(h)
	for ; x.slots[i].h != h; i = x.next(i) {
		if x.slots[i].h == 0 {
			return
		}
	}
	x.n--
	for j := i; ; {
		j = x.next(j)
		s := x.slots[j]
		if s.h == 0 {
			x.slots[i] = indexSlot{}
			return
		}
		// s stays where it is when its home lies cyclically in (i, j]:
		// the hole at i is not on its probe path.
		k := x.home(s.h)
		if (i < j && i < k && k <= j) || (j < i && (i < k || k <= j)) {
			continue
		}
		x.slots[i] = s
		i = j
	}
}

// clear removes every pair.
func (x *hashIndex) clear() {
	clear(x.slots)
	x.n = 0
}

// len returns the number of pairs.
func (x *hashIndex) len() int { return x.n }

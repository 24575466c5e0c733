package resolver

import "math/bits"

// hashIndex maps a cache key's 64-bit hash to its record's offset in a
// shard's ring: an open-addressing table of (hash, offset) pairs with
// linear probing and backward-shift deletion, sized once for the shard's
// most entries at a load of at most one half.
//
// A Go map did the same, but a cache under a miss-heavy load inserts and
// deletes all the time, and the map's lookups were 6% of a miss's CPU: a
// probe here reads one 16-byte slot (a pair shares a cache line), and a
// deletion leaves no tombstone for later lookups to step over. It holds no
// pointer, so the garbage collector does not scan it.
type hashIndex struct {
	slots []indexSlot
	shift uint // 64 - log2(len(slots)): a hash's home slot is its top bits
	n     int
}

// indexSlot is a pair; hash 0 marks a free slot (the hash 0 is stored as
// 1: a collision, which the cache's lookups tell apart by the record's
// name and key).
type indexSlot struct{ h, off uint64 }

// newHashIndex returns an index for at most max entries.
func newHashIndex(max int) hashIndex {
	size := 16
	for size < 2*max {
		size *= 2
	}
	return hashIndex{slots: make([]indexSlot, size), shift: uint(64 - bits.TrailingZeros(uint(size)))}
}

func indexHash(h uint64) uint64 {
	if h == 0 {
		return 1
	}
	return h
}

// home is the slot h's probe starts at.
func (x *hashIndex) home(h uint64) int { return int(h >> x.shift) }

// get returns the offset stored for h.
func (x *hashIndex) get(h uint64) (uint64, bool) {
	h = indexHash(h)
	mask := len(x.slots) - 1
	for i := x.home(h); ; i = (i + 1) & mask {
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
	mask := len(x.slots) - 1
	for i := x.home(h); ; i = (i + 1) & mask {
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
	mask := len(x.slots) - 1
	i := x.home(h)
	for ; x.slots[i].h != h; i = (i + 1) & mask {
		if x.slots[i].h == 0 {
			return
		}
	}
	x.n--
	for j := i; ; {
		j = (j + 1) & mask
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

package resolver

import (
	"math/rand/v2"
	"testing"
)

// checkIndex compares x with want, the map it must equal, by lookups of
// every key and a count, and checks that every pair is reachable from its
// home slot without crossing a free slot.
func checkIndex(t *testing.T, x *hashIndex, want map[uint64]uint64) {
	t.Helper()
	if x.len() != len(want) {
		t.Fatalf("len %d, want %d", x.len(), len(want))
	}
	for h, off := range want {
		if got, ok := x.get(h); !ok || got != off {
			t.Fatalf("get(%#x) = %d, %v; want %d", h, got, ok, off)
		}
	}
	n := 0
	for i, s := range x.slots {
		if s.h == 0 {
			continue
		}
		n++
		for j := x.home(s.h); j != i; j = x.next(j) {
			if x.slots[j].h == 0 {
				t.Fatalf("slot %d (hash %#x) is cut off from its home %d by a free slot at %d", i, s.h, x.home(s.h), j)
			}
		}
	}
	if n != len(want) {
		t.Fatalf("%d slots in use, want %d", n, len(want))
	}
}

// TestHashIndex: random sets, replacements and deletions, with hashes
// crowded into a few home slots (long runs, wrapping around the end) and
// the hash 0, agree with a map.
func TestHashIndex(t *testing.T) {
	for _, crowd := range []bool{false, true} {
		r := rand.New(rand.NewPCG(1, 2))
		x := newHashIndex(100)
		want := map[uint64]uint64{}
		key := func() uint64 {
			if crowd {
				// Top bits: the home slots 0, 1 and the last two.
				homes := []uint64{0, 1, uint64(len(x.slots) - 2), uint64(len(x.slots) - 1)}
				return homeBits(&x, homes[r.IntN(4)]) | uint64(r.IntN(8))
			}
			return r.Uint64()
		}
		for i := range 20000 {
			h := key()
			switch op := r.IntN(3); {
			case op < 2 && len(want) < 100:
				x.set(h, uint64(i))
				want[indexHash(h)] = uint64(i)
			default:
				x.del(h)
				delete(want, indexHash(h))
			}
			if i%97 == 0 {
				checkIndex(t, &x, want)
			}
		}
		checkIndex(t, &x, want)
		x.clear()
		checkIndex(t, &x, map[uint64]uint64{})
	}
}

// FuzzHashIndex: any sequence of operations (3 bytes each: an op and a
// hash drawn from 16 crowded values) leaves the index equal to a map.
func FuzzHashIndex(f *testing.F) {
	f.Add([]byte{0, 1, 0, 0, 2, 0, 2, 1, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		x := newHashIndex(8)
		want := map[uint64]uint64{}
		for i := 0; i+3 <= len(ops); i += 3 {
			h := homeBits(&x, uint64(ops[i+1])%uint64(len(x.slots))) | uint64(ops[i+2]&3)
			if ops[i]&1 == 0 && len(want) < 8 {
				x.set(h, uint64(i))
				want[indexHash(h)] = uint64(i)
			} else {
				x.del(h)
				delete(want, indexHash(h))
			}
		}
		checkIndex(t, &x, want)
	})
}

// homeBits returns top bits of a hash whose home in x is slot i.
func homeBits(x *hashIndex, i uint64) uint64 {
	// The smallest top 32 bits t with t*len>>32 == i.
	n := uint64(len(x.slots))
	t := (i<<32 + n - 1) / n
	if x.home(t<<32) != int(i) {
		panic("homeBits")
	}
	return t << 32
}

package app

import (
	"io"
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"testing"
)

func TestAutoLimit(t *testing.T) {
	for _, tc := range []struct {
		base     uint64
		cacheMax int64
		want     int64
	}{
		{base: 50 << 20, cacheMax: 16 << 20, want: (50 + 16 + 24) << 20},
		{base: 50 << 20, cacheMax: 32 << 20, want: (50 + 32 + 32) << 20}, // the headroom grows with the cache
		{base: 1 << 20, cacheMax: 4096, want: memoryFloor},               // a small server gets the floor
		{base: 0, cacheMax: 0, want: memoryFloor},
		{base: math.MaxUint64, cacheMax: 1 << 30, want: math.MaxInt64/4 + 2<<30},
	} {
		if got := autoLimit(tc.base, tc.cacheMax); got != tc.want {
			t.Errorf("autoLimit(%d, %d) = %d, want %d", tc.base, tc.cacheMax, got, tc.want)
		}
	}
}

// TestMemoryBudget sets the process's limit (restored at the end): not
// parallel.
func TestMemoryBudget(t *testing.T) {
	orig := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(orig) })
	t.Setenv("GOMEMLIMIT", "1GiB") // restored at the end; unset below
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	// With GOMEMLIMIT in the environment the configuration is not applied.
	debug.SetMemoryLimit(math.MaxInt64)
	newMemoryBudget(true, 100<<20, 32<<20, log).settle()
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("with GOMEMLIMIT set: limit %d, want it untouched", got)
	}
	if err := os.Unsetenv("GOMEMLIMIT"); err != nil {
		t.Fatal(err)
	}

	// Off (not serve): untouched.
	newMemoryBudget(false, 100<<20, 32<<20, log).settle()
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("off: limit %d, want it untouched", got)
	}

	// Fixed.
	b := newMemoryBudget(true, 100<<20, 32<<20, log)
	b.settle()
	if got := debug.SetMemoryLimit(-1); got != 100<<20 {
		t.Errorf("fixed: limit %d, want %d", got, 100<<20)
	}
	b.lift()
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("lifted: limit %d, want none", got)
	}

	// Automatic: what is in use after the collection, plus the cache and
	// the headroom.
	b = newMemoryBudget(true, 0, 512<<20, log)
	b.settle()
	got := debug.SetMemoryLimit(-1)
	if lo := int64(2 * 512 << 20); got <= lo || got > lo+int64(inUse())+64<<20 {
		t.Errorf("automatic: limit %d, want a little over %d (in use now %d)", got, lo, inUse())
	}
}

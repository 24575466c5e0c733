package ratelimit

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// naiveRate is the obvious alternative, kept to show why the Limiter is
// hand-rolled: one mutex, a map keyed by prefix, an x/time/rate limiter per
// bucket (and no bound on the map).
type naiveRate struct {
	mu sync.Mutex
	m  map[netip.Prefix]*rate.Limiter
}

func (n *naiveRate) allow(a netip.Addr, now time.Time) bool {
	a = a.Unmap()
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	n.mu.Lock()
	l := n.m[p]
	if l == nil {
		l = rate.NewLimiter(1e9, 1<<40)
		n.m[p] = l
	}
	n.mu.Unlock()
	return l.AllowN(now, 1)
}

// BenchmarkCompare runs the Limiter and naiveRate side by side.
func BenchmarkCompare(b *testing.B) {
	v4 := netip.MustParseAddr("192.0.2.1")
	now := time.Now()
	b.Run("ours-known", func(b *testing.B) {
		l := mustNew(b, huge)
		for b.Loop() {
			l.AllowAt(v4, now)
		}
	})
	b.Run("xrate-known", func(b *testing.B) {
		n := &naiveRate{m: map[netip.Prefix]*rate.Limiter{}}
		for b.Loop() {
			n.allow(v4, now)
		}
	})
	as := benchAddrs(1000)
	b.Run("ours-1k", func(b *testing.B) {
		l := mustNew(b, huge)
		i := 0
		for b.Loop() {
			l.AllowAt(as[i%1000], now)
			i++
		}
	})
	b.Run("xrate-1k", func(b *testing.B) {
		n := &naiveRate{m: map[netip.Prefix]*rate.Limiter{}}
		i := 0
		for b.Loop() {
			n.allow(as[i%1000], now)
			i++
		}
	})
	b.Run("ours-par", func(b *testing.B) {
		l := mustNew(b, huge)
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				l.AllowAt(as[i%1000], now)
				i += 7
			}
		})
	})
	b.Run("xrate-par", func(b *testing.B) {
		n := &naiveRate{m: map[netip.Prefix]*rate.Limiter{}}
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				n.allow(as[i%1000], now)
				i += 7
			}
		})
	})
}

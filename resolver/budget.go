package resolver

import (
	"net/netip"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"
)

// budget bounds the queries on the slow path (those that may wait for an
// upstream) across every transport: at most max at once, and at most
// perClient of them for one client, so that a client flooding misses gets
// SERVFAIL while the others keep their share.
type budget struct {
	total  atomic.Int64
	shards [budgetShards]budgetShard
}

const budgetShards = 32

type budgetShard struct {
	mu sync.Mutex
	n  map[netip.Addr]int32
}

// budgetKey is the client a share is counted for: the address, an IPv6
// client as its /64 (one host usually holds a whole /64).
func budgetKey(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		p, err := a.Prefix(64)
		if err == nil {
			return p.Addr()
		}
	}
	return a
}

func (b *budget) shard(k netip.Addr) *budgetShard {
	var h uint32 = 2166136261
	for _, c := range k.As16() { // As16, not AsSlice: no allocation
		h = (h ^ uint32(c)) * 16777619
	}
	return &b.shards[h%budgetShards]
}

// acquire takes one slot for client; false when the total or the client's
// share is used up.
func (b *budget) acquire(client netip.Addr, max, perClient int) bool {
	if b.total.Add(1) > int64(max) {
		b.total.Add(-1)
		return false
	}
	k := budgetKey(client)
	sh := b.shard(k)
	sh.mu.Lock()
	if sh.n == nil {
		sh.n = make(map[netip.Addr]int32)
	}
	if int(sh.n[k]) >= perClient {
		sh.mu.Unlock()
		b.total.Add(-1)
		return false
	}
	sh.n[k]++
	sh.mu.Unlock()
	return true
}

// release gives back a slot taken by acquire for client.
func (b *budget) release(client netip.Addr) {
	k := budgetKey(client)
	sh := b.shard(k)
	sh.mu.Lock()
	if n := sh.n[k]; n <= 1 {
		delete(sh.n, k)
	} else {
		sh.n[k] = n - 1
	}
	sh.mu.Unlock()
	b.total.Add(-1)
}

// InFlight returns the number of queries on the slow path now.
func (s *Server) InFlight() int { return int(s.budget.total.Load()) }

// Memory returned to the OS after a flood: the Go runtime keeps the heap
// a burst grew (and the stacks of its goroutines) and gives it back only
// slowly. Every reliefPeriod the server looks at the heap memory that is
// free but still held from the OS; when more than reliefFree, and more than
// twice the live heap, is held (a burst is over: in steady state the free
// heap stays around the live heap, GOGC=100) and few queries are in flight,
// it returns it at once.
var reliefPeriod = 10 * time.Second // a variable for the tests

const reliefFree = 32 << 20

// relieve runs until quit is closed.
func (s *Server) relieve() {
	defer s.wg.Done()
	t := time.NewTicker(reliefPeriod)
	defer t.Stop()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/free:bytes"}, {Name: "/gc/heap/live:bytes"}}
	for {
		select {
		case <-s.quit:
			return
		case <-t.C:
		}
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 || sample[1].Value.Kind() != metrics.KindUint64 {
			return // not reported by this Go version
		}
		free, live := sample[0].Value.Uint64(), sample[1].Value.Uint64()
		if free < reliefFree || free < 2*live || s.InFlight() > 64 {
			continue
		}
		debug.FreeOSMemory()
		s.log.Debug("returned free memory to the OS after a burst", "free_bytes", free)
	}
}

package resolver

import (
	"net/netip"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"
)

func heapFree() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/free:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

var sink [][]byte

// TestRelieveReturnsFreeHeap: after a burst grew the heap and the garbage
// is collected, the server gives the free memory back to the OS (the Go
// runtime alone would keep it for minutes).
func TestRelieveReturnsFreeHeap(t *testing.T) {
	defer func(p time.Duration) { reliefPeriod = p }(reliefPeriod)
	reliefPeriod = 50 * time.Millisecond
	for i := 0; i < 96; i++ {
		sink = append(sink, make([]byte, 1<<20))
	}
	sink = nil
	runtime.GC()
	if heapFree() < reliefFree {
		t.Skip("the runtime returned the memory by itself")
	}
	s := NewServer(ServerOptions{})
	s.wg.Add(1)
	go s.relieve()
	defer func() { close(s.quit); s.wg.Wait() }()
	deadline := time.Now().Add(3 * time.Second)
	for heapFree() >= reliefFree {
		if time.Now().After(deadline) {
			t.Fatalf("%d MiB of free heap still held from the OS", heapFree()>>20)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestBudget: the total and the per-client share hold; an IPv6 client is
// its /64; release gives slots back.
func TestBudget(t *testing.T) {
	var b budget
	a := netip.MustParseAddr("192.0.2.1")
	c := netip.MustParseAddr("192.0.2.2")
	v6a := netip.MustParseAddr("2001:db8::1")
	v6b := netip.MustParseAddr("2001:db8::2") // same /64
	for i := 0; i < 2; i++ {
		if !b.acquire(a, 5, 2) {
			t.Fatalf("slot %d of a", i)
		}
	}
	if b.acquire(a, 5, 2) {
		t.Fatal("a got more than its share")
	}
	if !b.acquire(v6a, 5, 2) || !b.acquire(v6b, 5, 2) || b.acquire(v6a, 5, 2) {
		t.Fatal("an IPv6 /64 is one client")
	}
	if !b.acquire(c, 5, 2) || b.acquire(c, 5, 2) {
		t.Fatal("the total of 5 does not hold")
	}
	b.release(a)
	if !b.acquire(c, 5, 2) {
		t.Fatal("a released slot was not given back")
	}
	for _, x := range []netip.Addr{a, v6a, v6b, c, c} {
		b.release(x)
	}
	if b.total.Load() != 0 {
		t.Fatalf("total %d after every release", b.total.Load())
	}
	for i := range b.shards {
		if len(b.shards[i].n) != 0 {
			t.Fatalf("shard %d keeps %v", i, b.shards[i].n)
		}
	}
}

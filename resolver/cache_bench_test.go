package resolver

import (
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// cacheBenchAnswer is a typical forwarded answer: a CNAME and two addresses.
func cacheBenchAnswer(name string) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	m.Response = true
	for _, s := range []string{name + " 300 IN CNAME edge.cdn.example.", "edge.cdn.example. 60 IN A 192.0.2.1", "edge.cdn.example. 60 IN A 192.0.2.2"} {
		rr, err := dns.NewRR(s)
		if err != nil {
			panic(err)
		}
		m.Answer = append(m.Answer, rr)
	}
	return m
}

// BenchmarkCacheGet measures a lookup of a present entry (key hash, shard,
// LRU bump, name check).
func BenchmarkCacheGet(b *testing.B) {
	c := NewCache(CacheOptions{Size: 100_000, MaxTTL: time.Hour})
	now := time.Now()
	names := make([]string, 1000)
	for i := range names {
		names[i] = "host" + strconv.Itoa(i) + ".example."
		c.put(&Request{Name: names[i], Qtype: dns.TypeA}, cacheBenchAnswer(names[i]), now)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if c.get(names[i%len(names)], dns.TypeA, false, false) == nil {
			b.Fatal("miss")
		}
	}
}

// BenchmarkCachePut measures storing an upstream answer: copy, TTL
// clamping, pack, TTL index, LRU insert (evicting once full).
func BenchmarkCachePut(b *testing.B) {
	c := NewCache(CacheOptions{Size: 10_000, MaxTTL: time.Hour})
	now := time.Now()
	const n = 20_000 // twice the size: the steady state evicts
	reqs := make([]*Request, n)
	msgs := make([]*dns.Msg, n)
	for i := range reqs {
		name := "host" + strconv.Itoa(i) + ".example."
		reqs[i] = &Request{Name: name, Qtype: dns.TypeA}
		msgs[i] = cacheBenchAnswer(name)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if c.put(reqs[i%n], msgs[i%n], now) == nil {
			b.Fatal("not cached")
		}
	}
}

// BenchmarkCacheEntryMemory reports what a cached A answer keeps on the
// heap: bytes and objects (the GC marks each object) per entry, measured
// over 100,000 entries. ns/op means nothing here.
func BenchmarkCacheEntryMemory(b *testing.B) {
	const n = 100_000
	for i := 0; i < b.N; i++ {
		c := NewCache(CacheOptions{Size: n, MaxTTL: time.Hour})
		now := time.Now()
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		before, objs := ms.HeapAlloc, ms.HeapObjects
		for j := 0; j < n; j++ {
			name := "host" + strconv.Itoa(j) + ".bench.example."
			m := new(dns.Msg)
			m.SetQuestion(name, dns.TypeA)
			m.Response = true
			rr, _ := dns.NewRR(name + " 300 IN A 192.0.2.1")
			m.Answer = []dns.RR{rr}
			c.put(&Request{Name: name, Qtype: dns.TypeA}, m, now)
		}
		runtime.GC()
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(ms.HeapAlloc-before)/n, "bytes/entry")
		b.ReportMetric(float64(ms.HeapObjects-objs)/n, "objects/entry")
		runtime.KeepAlive(c)
	}
}

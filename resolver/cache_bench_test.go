package resolver

import (
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync/atomic"
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

// BenchmarkCacheGet measures a lookup of a present entry as the fast path
// makes it: key hash, shard, name check, the copy into the caller's entry.
func BenchmarkCacheGet(b *testing.B) {
	c := NewCache(CacheOptions{Size: 100_000, MaxTTL: time.Hour})
	now := time.Now()
	names := make([]string, 1000)
	for i := range names {
		names[i] = "host" + strconv.Itoa(i) + ".example."
		c.put(&Request{Name: names[i], Qtype: dns.TypeA}, cacheBenchAnswer(names[i]), now)
	}
	var e entry
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if c.load(&e, names[i%len(names)], dns.TypeA, false, false) == nil {
			b.Fatal("miss")
		}
	}
}

// BenchmarkCachePut measures storing an upstream answer: TTL clamping,
// pack, TTL index, the record written into the arena (evicting once full).
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
// heap: bytes and objects (the GC marks each object) per entry kept, after
// 100,000 stores into a cache of 100,000 entries and the default
// MaxBytes (entries: how many it kept). ns/op means nothing here.
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
		kept := float64(c.Len()) // what cache.max_bytes lets it keep
		b.ReportMetric(float64(ms.HeapAlloc-before)/kept, "bytes/entry")
		b.ReportMetric(float64(ms.HeapObjects-objs)/kept, "objects/entry")
		b.ReportMetric(kept, "entries")
		runtime.KeepAlive(c)
	}
}

// BenchmarkCacheGC reports what a full cache costs the garbage collector:
// 200,000 cached answers, then every goroutine (b.RunParallel) looks up
// cached names and allocates 512 bytes of short-lived garbage per lookup,
// as a query does, so collections run while the cache is read. It reports
// the GC's CPU time per lookup (gc-ns/op, from runtime/metrics), the
// collections per million lookups, and the time of a forced collection of
// the heap holding the cache (forced-gc-ms). ns/op is the lookup with the
// garbage; compare the GC figures, which scale with what the GC must scan.
func BenchmarkCacheGC(b *testing.B) {
	const n = 200_000
	c := NewCache(CacheOptions{Size: 2 * n, MaxBytes: 256 << 20, MaxTTL: time.Hour}) // room for all n
	now := time.Now()
	names := make([]string, n)
	for i := range names {
		names[i] = "host" + strconv.Itoa(i) + ".gc.example."
		c.put(&Request{Name: names[i], Qtype: dns.TypeA}, cacheBenchAnswer(names[i]), now)
	}
	if c.Len() != n {
		b.Fatalf("%d of %d entries cached", c.Len(), n)
	}
	runtime.GC()
	start := time.Now()
	const forced = 5
	for i := 0; i < forced; i++ {
		runtime.GC()
	}
	forcedMS := float64(time.Since(start).Microseconds()) / 1000 / forced
	samples := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}, {Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(samples)
	gc0, cyc0 := samples[0].Value.Float64(), samples[1].Value.Uint64()
	var seq atomic.Uint64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seq.Add(1) * 7919)
		var keep []byte
		var e entry
		for pb.Next() {
			i++
			if c.load(&e, names[i%n], dns.TypeA, false, false) == nil {
				panic("miss")
			}
			keep = make([]byte, 512)
		}
		runtime.KeepAlive(keep)
	})
	b.StopTimer()
	metrics.Read(samples)
	b.ReportMetric((samples[0].Value.Float64()-gc0)*1e9/float64(b.N), "gc-ns/op")
	b.ReportMetric(float64(samples[1].Value.Uint64()-cyc0)*1e6/float64(b.N), "gcs/Mop")
	b.ReportMetric(forcedMS, "forced-gc-ms")
	runtime.KeepAlive(c)
}

// BenchmarkCacheChurn measures what a miss costs the cache once it is full
// (a lookup that misses, a store that evicts, a lookup that hits) apart
// from packing the answer: the index and the ring under steady
// insert/delete churn, as a miss-heavy load makes it.
func BenchmarkCacheChurn(b *testing.B) {
	c := NewCache(CacheOptions{Size: 100_000, MaxTTL: time.Hour})
	now := time.Now()
	tmpl := c.newEntry(&Request{Name: "host.example.", Qtype: dns.TypeA}, cacheBenchAnswer("host.example."), now)
	const n = 400_000 // four times the size
	names := make([]string, n)
	for i := range names {
		names[i] = "host" + strconv.Itoa(i) + ".example."
	}
	var e entry
	for i := range 2 * 100_000 { // full, and churned once
		k := c.key(names[i], dns.TypeA, false, false)
		ne := *tmpl
		ne.name = names[i]
		c.store(k, &ne)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		name := names[i%n]
		c.load(&e, name, dns.TypeA, false, false)
		ne := *tmpl
		ne.name = name
		c.store(c.key(name, dns.TypeA, false, false), &ne)
		if c.load(&e, name, dns.TypeA, false, false) == nil {
			b.Fatal("not stored")
		}
	}
}

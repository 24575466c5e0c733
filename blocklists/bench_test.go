package blocklists

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// genDomains returns a domains list of n distinct names of 21 bytes on
// average (typical of public lists), with comments sprinkled in.
func genDomains(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	tlds := []string{"com", "net", "org", "io", "cn", "ru", "de", "xyz", "info", "co.uk"}
	subs := []string{"", "", "www.", "ads.", "cdn.", "api.", "t.", "img."}
	const letters = "abcdefghijklmnopqrstuvwxyz"
	var b bytes.Buffer
	b.Grow(n * 24)
	b.WriteString("# generated list\n")
	var word [16]byte
	for i := range n {
		if i%1000 == 0 {
			b.WriteString("# section\n")
		}
		b.WriteString(subs[r.IntN(len(subs))])
		w := word[:6+r.IntN(9)]
		for j := range w {
			w[j] = letters[r.IntN(len(letters))]
		}
		b.Write(w)
		b.WriteString(strconv.FormatUint(uint64(i), 36))
		b.WriteByte('.')
		b.WriteString(tlds[r.IntN(len(tlds))])
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// names returns the names of a generated list.
func genNames(n int) []string {
	var out []string
	_, err := Parse(bytes.NewReader(genDomains(n)), ParseOptions{}, func(r Rule) {
		out = append(out, strings.Clone(r.Name))
	})
	if err != nil {
		panic(err)
	}
	return out
}

func parseBuild(data []byte, hint int) *Index {
	b := NewIndexBuilder(hint)
	_, err := Parse(bytes.NewReader(data), ParseOptions{Source: "gen"}, func(r Rule) {
		b.Add(r.Name, r.Kind, 1)
	})
	if err != nil {
		panic(err)
	}
	return b.Build()
}

// cpuTime returns the user and system CPU time of the process: beside ns/op
// (wall time), it shows the cost on a machine shared with other jobs.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// threadCPU returns the CPU time of the calling OS thread (lock it first):
// on a busy machine it separates a lookup's cost from the time the thread
// waits for a core.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// heapObjects reads the bytes of live and not yet swept heap objects (what
// MemStats.HeapAlloc reports), without stopping the world.
func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// peakHeap runs fn once and returns the highest heap (sampled every 200 µs)
// above the heap before it, and the heap it leaves alive after a GC.
func peakHeap(fn func() any) (peak, retained uint64) {
	runtime.GC()
	base := heapObjects()
	done := make(chan struct{})
	var wg sync.WaitGroup
	var max uint64
	wg.Go(func() {
		t := time.NewTicker(200 * time.Microsecond)
		defer t.Stop()
		for {
			if h := heapObjects(); h > max {
				max = h
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	keep := fn()
	close(done)
	wg.Wait()
	if h := heapObjects(); h > max {
		max = h
	}
	runtime.GC()
	after := heapObjects()
	runtime.KeepAlive(keep)
	return max - base, after - base
}

// BenchmarkParse1M parses a generated 1,000,000-line domains list.
func BenchmarkParse1M(b *testing.B) {
	data := genDomains(1_000_000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	cpu0 := cpuTime()
	defer func() { b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N)/1e6, "cpu-ms/op") }()
	for b.Loop() {
		n := 0
		if _, err := Parse(bytes.NewReader(data), ParseOptions{}, func(Rule) { n++ }); err != nil || n != 1_000_000 {
			b.Fatal(err, n)
		}
	}
}

// BenchmarkLoad1M loads a generated 1,000,000-line domains list through
// the list loader (one parse, the rules kept, the SHA-256, the guards) and
// reads its rules back, as the policy does: compare with twice
// BenchmarkParse1M, what a URL list cost when the downloader and the
// policy each parsed it.
func BenchmarkLoad1M(b *testing.B) {
	data := genDomains(1_000_000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	cpu0 := cpuTime()
	defer func() { b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N)/1e6, "cpu-ms/op") }()
	g := Guards{MinEntries: 1000, MaxShrink: 0.5, MustContain: []string{"deepseek.com"}}
	for b.Loop() {
		l, err := Load(bytes.NewReader(data), ParseOptions{}, g, 1_000_000)
		var ge *GuardError
		if err != nil && !errors.As(err, &ge) {
			b.Fatal(err)
		}
		n := 0
		l.Rules.Each(func(Rule) { n++ })
		if n != 1_000_000 {
			b.Fatal(n)
		}
	}
}

// BenchmarkBuild1M parses a generated 1,000,000-line domains list from
// memory and builds its index: the load-time budget is 1 s and 64 MB.
// B/op counts every byte allocated by parse and build; peak-MB is the
// highest heap above the starting heap during one run, index-MB the heap the
// finished index keeps.
func BenchmarkBuild1M(b *testing.B) {
	const n = 1_000_000
	data := genDomains(n)
	b.ReportAllocs()
	var ix *Index
	cpu0 := cpuTime()
	for b.Loop() {
		ix = parseBuild(data, n)
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N)/1e6, "cpu-ms/op")
	if ix.Len() != n {
		b.Fatalf("Len %d", ix.Len())
	}
	b.StopTimer()
	peak, kept := peakHeap(func() any { return parseBuild(data, n) })
	runtime.KeepAlive(data)
	b.ReportMetric(float64(peak)/1e6, "peak-MB")
	b.ReportMetric(float64(kept)/1e6, "index-MB")
}

// BenchmarkBuild1MNoHint is BenchmarkBuild1M without a size hint: the
// builder's arrays grow as rules come.
func BenchmarkBuild1MNoHint(b *testing.B) {
	data := genDomains(1_000_000)
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		parseBuild(data, 0)
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N)/1e6, "cpu-ms/op")
}

// BenchmarkHash1M computes the digest of a 1,000,000-rule index.
func BenchmarkHash1M(b *testing.B) {
	names := genNames(1_000_000)
	bl := NewIndexBuilder(len(names))
	for _, n := range names {
		bl.Add(n, Suffix, 1)
	}
	ix := bl.Build()
	b.ReportAllocs()
	cpu0 := cpuTime()
	defer func() { b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N)/1e6, "cpu-ms/op") }()
	for b.Loop() {
		ix.hashOnce = sync.Once{}
		_ = ix.Hash()
	}
}

var lookupIndexes = map[int]*Index{}

func BenchmarkLookup(b *testing.B) {
	for _, size := range []int{10_000, 1_000_000} {
		names := genNames(size)
		ix := lookupIndexes[size]
		if ix == nil {
			bl := NewIndexBuilder(size)
			for _, n := range names {
				bl.Add(n, Suffix, 1)
			}
			ix = bl.Build()
			lookupIndexes[size] = ix
		}
		// 4096 queries spread over the list, so that the 1M case pays its
		// cache misses.
		r := rand.New(rand.NewPCG(3, 4))
		cases := []struct {
			name  string
			query func(string) string
			hits  int
		}{
			{name: "hit-depth0", query: func(n string) string { return n }, hits: 1},
			{name: "hit-depth2", query: func(n string) string { return "a.B." + n + "." }, hits: 1},
			{name: "miss", query: func(n string) string { return "www.not-" + n }, hits: 0},
		}
		for _, c := range cases {
			qs := make([]string, 4096)
			for i := range qs {
				qs[i] = c.query(names[r.IntN(len(names))])
			}
			b.Run(strconv.Itoa(size/1000)+"k/"+c.name, func(b *testing.B) {
				b.ReportAllocs()
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				i, t0 := 0, threadCPU()
				for b.Loop() {
					var a [8]Hit
					if hits := ix.Lookup(qs[i&4095], a[:0]); len(hits) != c.hits {
						b.Fatalf("%d hits for %q", len(hits), qs[i&4095])
					}
					i++
				}
				b.ReportMetric(float64(threadCPU()-t0)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

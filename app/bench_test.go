package app_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jurisdns/jurisdns/app"
	"github.com/jurisdns/jurisdns/config"
	"github.com/jurisdns/jurisdns/resolver/resolvertest"
)

// BenchmarkReload1M measures a reload of a jurisdiction of 1,000,000 list
// entries (a local file; every reload appends one entry): the time per
// reload (ns/op) and memory against the steady state, which is the live heap
// with that policy loaded (after a GC):
//
//   - steady-MB: live heap before the reloads;
//   - peak-heap-MB: the largest heap (live and not yet collected objects,
//     runtime/metrics /memory/classes/heap/objects:bytes) sampled every
//     millisecond during the reloads;
//   - peak-live-MB: the largest live heap the GC measured during the reloads
//     (/gc/heap/live:bytes): both policies and the build's working set;
//   - peak-heap/steady and peak-live/steady: the ratios;
//   - steady-rss-MB, peak-rss-MB: the process's resident memory before and
//     at its peak during the reloads (VmRSS, VmHWM reset first), on Linux.
//
// go test -run '^$' -bench BenchmarkReload1M -benchtime 5x ./app
func BenchmarkReload1M(b *testing.B) {
	const entries = 1_000_000
	dir := b.TempDir()
	list := filepath.Join(dir, "big.txt")
	f, err := os.Create(list)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	for i := range entries {
		fmt.Fprintf(w, "host%d.mirror%d.deepseek-clone.example\n", i, i%997)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	up := resolvertest.StartUpstream(b, resolvertest.Echo())
	cfgPath := filepath.Join(dir, "jurisdns.yaml")
	cfg := baseConfig(up.Addr()) + `default_jurisdictions: [big]
jurisdictions:
  - id: big
    tier: mandated
    sources: [{name: big, path: big.txt}]
`
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		b.Fatal(err)
	}
	a, err := newListening(app.Options{
		Load:   config.LoadOptions{Path: cfgPath, Env: []string{}},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Shutdown(context.Background())
	if got := a.Server().Runtime().Policy.Entries("big"); got != entries {
		b.Fatalf("%d entries loaded, want %d", got, entries)
	}

	samples := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/live:bytes"}}
	read := func() (heap, live uint64) {
		metrics.Read(samples)
		return samples[0].Value.Uint64(), samples[1].Value.Uint64()
	}
	runtime.GC()
	runtime.GC()
	steady, _ := read()
	steadyRSS, _ := rss()

	var peakHeap, peakLive, peakRSS uint64
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		af, err := os.OpenFile(list, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			b.Fatal(err)
		}
		fmt.Fprintf(af, "added%d.example\n", i)
		af.Close()
		runtime.GC()
		resetPeakRSS()
		stop, done := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			t := time.NewTicker(time.Millisecond)
			defer t.Stop()
			for {
				h, l := read()
				peakHeap, peakLive = max(peakHeap, h), max(peakLive, l)
				select {
				case <-stop:
					return
				case <-t.C:
				}
			}
		}()
		b.StartTimer()
		if err := a.Reload(ctx); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		runtime.GC() // measures the live heap while the old policy may still be referenced
		close(stop)
		<-done
		_, hwm := rss()
		peakRSS = max(peakRSS, hwm)
		b.StartTimer()
	}
	b.StopTimer()
	mb := func(n uint64) float64 { return float64(n) / (1 << 20) }
	b.ReportMetric(mb(steady), "steady-MB")
	b.ReportMetric(mb(peakHeap), "peak-heap-MB")
	b.ReportMetric(mb(peakLive), "peak-live-MB")
	b.ReportMetric(float64(peakHeap)/float64(steady), "peak-heap/steady")
	b.ReportMetric(float64(peakLive)/float64(steady), "peak-live/steady")
	if steadyRSS > 0 {
		b.ReportMetric(mb(steadyRSS), "steady-rss-MB")
		b.ReportMetric(mb(peakRSS), "peak-rss-MB")
	}
}

// rss returns VmRSS and VmHWM of the process (0 when unknown).
func rss() (cur, peak uint64) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		k, v, ok := strings.Cut(string(line), ":")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "VmRSS":
			cur = n << 10
		case "VmHWM":
			peak = n << 10
		}
	}
	return cur, peak
}

// resetPeakRSS resets VmHWM to the current RSS (Linux, clear_refs 5).
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

package policy

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/jurisdns/jurisdns/config"
	"github.com/jurisdns/jurisdns/spec"
)

// writeList writes n distinct names to dir/name, one per line.
func writeList(tb testing.TB, dir, name string, n int) string {
	tb.Helper()
	p := filepath.Join(dir, name)
	f, err := os.Create(p)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriter(f)
	for i := range n {
		fmt.Fprintf(w, "h%07d.zone%d.example\n", i, i%1000)
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	return p
}

// queries mixes blocked names, their subdomains and misses.
func queries(n int) []string {
	qs := make([]string, 0, 1024)
	for i := range 1024 {
		k := (i * 7919) % n
		switch i % 4 {
		case 0:
			qs = append(qs, fmt.Sprintf("h%07d.zone%d.example", k, k%1000))
		case 1:
			qs = append(qs, fmt.Sprintf("www.h%07d.zone%d.example.", k, k%1000))
		case 2:
			qs = append(qs, fmt.Sprintf("miss%d.example.org", i))
		default:
			qs = append(qs, "chat.deepseek.com")
		}
	}
	return qs
}

func benchMatch(b *testing.B, p *Policy, n int) {
	client := netip.MustParseAddr("10.1.2.3")
	qs := queries(n)
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		v := p.Match(qs[i&1023], p.ClientSet(client), testNow)
		_ = v
		i++
	}
}

func BenchmarkMatch(b *testing.B) {
	b.Run("10-jurisdictions", func(b *testing.B) {
		dir := b.TempDir()
		tiers := []string{"mandated", "local", "advisory"}
		cfg := &config.Config{}
		var ids []string
		for i := range 10 {
			id := fmt.Sprintf("j%d", i)
			ids = append(ids, id)
			writeList(b, dir, id+".txt", 1000*(i+1))
			j := config.Jurisdiction{
				JurisdictionAttrs: config.JurisdictionAttrs{ID: id, Tier: spec.Tier(tiers[i%3])},
				Sources:           []config.Source{{Name: id, Path: id + ".txt"}},
				Allow:             []string{fmt.Sprintf("h%07d.zone%d.example", i, i)},
			}
			if i == 9 {
				j.Mode = "report"
			}
			cfg.Jurisdictions = append(cfg.Jurisdictions, j)
		}
		cfg.Clients = []config.Client{{Name: "c", Subnets: []string{"10.0.0.0/8"}, Jurisdictions: ids}}
		p := build(b, cfg, BuildOptions{BaseDir: dir})
		benchMatch(b, p, 1000)
	})
	b.Run("1M-entries", func(b *testing.B) {
		dir := b.TempDir()
		writeList(b, dir, "big.txt", 1_000_000)
		cfg := &config.Config{
			Jurisdictions: []config.Jurisdiction{{JurisdictionAttrs: config.JurisdictionAttrs{ID: "big", Tier: "local"}, Sources: []config.Source{{Name: "big", Path: "big.txt"}}}},
			Clients:       []config.Client{{Name: "c", Subnets: []string{"10.0.0.0/8"}, Jurisdictions: []string{"big", "us-gov", "bypass"}}},
		}
		p := build(b, cfg, BuildOptions{BaseDir: dir})
		benchMatch(b, p, 1_000_000)
	})
}

// heapAfterBuild builds a policy with one 1M-entry user jurisdiction and
// returns it with the live heap it added, in MB.
func heapAfterBuild(tb testing.TB, dir string) (*Policy, float64) {
	cfg := &config.Config{
		Jurisdictions: []config.Jurisdiction{{JurisdictionAttrs: config.JurisdictionAttrs{ID: "big", Tier: "local"}, Sources: []config.Source{{Name: "big", Path: "big.txt"}}}},
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	p, err := Build(context.Background(), cfg, BuildOptions{BaseDir: dir})
	if err != nil {
		tb.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	return p, float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / (1 << 20)
}

func BenchmarkBuild1M(b *testing.B) {
	dir := b.TempDir()
	writeList(b, dir, "big.txt", 1_000_000)
	var mb float64
	for b.Loop() {
		var p *Policy
		p, mb = heapAfterBuild(b, dir)
		if p.Entries("big") != 1_000_000 {
			b.Fatal(p.Entries("big"))
		}
	}
	b.ReportMetric(mb, "heap-MB")
}

// TestHeap1M: a policy with 1M rules stays well under 64 MB of heap (about
// 44 MB: the process serving it must stay under 64 MB resident, runtime
// and binary included).
func TestHeap1M(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 1M-entry list")
	}
	dir := t.TempDir()
	writeList(t, dir, "big.txt", 1_000_000)
	p, mb := heapAfterBuild(t, dir)
	if p.Entries("big") != 1_000_000 {
		t.Fatalf("entries %d", p.Entries("big"))
	}
	index := float64(p.idx.SizeBytes()) / (1 << 20)
	t.Logf("heap of a 1M-entry policy: %.1f MB, of which the index %.1f MB", mb, index)
	if mb > 50 {
		t.Errorf("heap %.1f MB for 1M rules, want under 50 MB", mb)
	}
	// The policy's own share (rule table, jurisdictions, clients) stays
	// small: about 4 bytes a rule.
	if own := mb - index; own > 8 {
		t.Errorf("policy overhead %.1f MB for 1M rules, want under 8 MB", own)
	}
	runtime.KeepAlive(p)
}

// BenchmarkDiff1M compares two builds of a policy with one 1M-entry
// jurisdiction: unchanged (same hash: skipped) and with one rule added
// (every rule looked up in the other policy).
func BenchmarkDiff1M(b *testing.B) {
	dir := b.TempDir()
	writeList(b, dir, "big.txt", 1_000_000)
	old, _ := heapAfterBuild(b, dir)
	same, _ := heapAfterBuild(b, dir)
	f, err := os.OpenFile(filepath.Join(dir, "big.txt"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := f.WriteString("added-one.example\n"); err != nil {
		b.Fatal(err)
	}
	_ = f.Close()
	changed, _ := heapAfterBuild(b, dir)
	b.Run("unchanged", func(b *testing.B) {
		for b.Loop() {
			if d := Diff(old, same); len(d) != 0 {
				b.Fatal(d)
			}
		}
	})
	b.Run("one-added", func(b *testing.B) {
		for b.Loop() {
			if d := Diff(old, changed); d["big"] != (Change{Added: 1}) {
				b.Fatal(d)
			}
		}
	})
}

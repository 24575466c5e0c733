package transfer_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/config"
	"github.com/jurisdns/jurisdns/policy"
	"github.com/jurisdns/jurisdns/rpzout"
	"github.com/jurisdns/jurisdns/transfer"
)

// memNames is the size of the feed TestFeedMemory loads; JURISDNS_MEM_NAMES
// overrides it.
const memNames = 1_000_000

// memName is trigger i of the generated feed (owner without the zone).
func memName(i int) string {
	return "host" + strconv.Itoa(i) + "-" + strconv.FormatUint(uint64(i)*2654435761%1e9, 36) +
		".example" + strconv.Itoa(i%97) + ".com"
}

// memPrimary answers AXFR of rpz.mem. with n "CNAME ." triggers, made as
// they are sent (so that the primary, in this process, holds none of them).
func memPrimary(t *testing.T, n int) netip.AddrPort {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	soa, _ := dns.NewRR("rpz.mem. 60 IN SOA localhost. admin.rpz.mem. 1 3600 600 86400 60")
	srv := &dns.Server{Listener: l, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		ch := make(chan *dns.Envelope)
		go func() {
			defer close(ch)
			rrs := []dns.RR{soa}
			for i := range n {
				rrs = append(rrs, &dns.CNAME{Hdr: dns.RR_Header{Name: memName(i) + ".rpz.mem.", Rrtype: dns.TypeCNAME,
					Class: dns.ClassINET, Ttl: 60}, Target: "."})
				if len(rrs) == 500 {
					ch <- &dns.Envelope{RR: rrs}
					rrs = nil
				}
			}
			ch <- &dns.Envelope{RR: append(rrs, soa)}
		}()
		_ = new(dns.Transfer).Out(w, q, ch)
		_ = w.Close()
	})}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return netip.MustParseAddrPort(l.Addr().String())
}

// heapInuse is HeapInuse after two collections.
func heapInuse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// peakSampler records the largest heap seen until stopped.
type peakSampler struct {
	peak atomic.Uint64
	stop chan struct{}
	wg   sync.WaitGroup
}

func samplePeak() *peakSampler {
	p := &peakSampler{stop: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/unused:bytes"}}
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			if v := s[0].Value.Uint64() + s[1].Value.Uint64(); v > p.peak.Load() {
				p.peak.Store(v)
			}
			select {
			case <-p.stop:
				return
			case <-t.C:
			}
		}
	}()
	return p
}

func (p *peakSampler) done() uint64 {
	close(p.stop)
	p.wg.Wait()
	return p.peak.Load()
}

const mib = 1 << 20

// TestFeedMemory measures what a 1,000,000-name RPZ feed costs next to
// the same list loaded from a file: the heap in use (after GC) by the
// policy alone, and by the feed (its zone) plus the policy built from it,
// and the peak while loading. It is a measurement, run on demand:
//
//	JURISDNS_MEM=1 go test ./transfer/ -run TestFeedMemory -v
//
// and it fails when the feed costs more than 1.2× the file.
func TestFeedMemory(t *testing.T) {
	if os.Getenv("JURISDNS_MEM") == "" {
		t.Skip("a measurement: set JURISDNS_MEM=1 to run it (JURISDNS_MEM_NAMES sets the size)")
	}
	n := memNames
	if s := os.Getenv("JURISDNS_MEM_NAMES"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil {
			t.Fatal(err)
		}
		n = v
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "list.rpz")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	fmt.Fprintf(w, "$ORIGIN rpz.mem.\n@ 60 IN SOA localhost. admin 1 3600 600 86400 60\n")
	for i := range n {
		fmt.Fprintf(w, "%s 60 IN CNAME .\n", memName(i))
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	jur := func(src config.Source) *config.Config {
		return &config.Config{DefaultJurisdictions: []string{"mem"}, Jurisdictions: []config.Jurisdiction{
			{ID: "mem", Sources: []config.Source{src}}}}
	}
	ctx := context.Background()
	probe := memName(n/2) + "."

	// The list from a file.
	base := heapInuse()
	peak := samplePeak()
	start := time.Now()
	pol, err := policy.Build(ctx, jur(config.Source{Name: "file", Path: path, Format: "rpz"}), policy.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fileTook := time.Since(start)
	filePeak := peak.done()
	fileHeap := heapInuse() - base
	if !blocked(pol, probe) {
		t.Fatalf("%s not blocked by the file list", probe)
	}
	out := rpzout.New(nil, nil)
	before := heapInuse()
	out.Update(rpzout.Options{Suffix: "rpz.jurisdns."}, pol)
	outHeap := heapInuse() - before
	if s, ok := out.Serial("mem.rpz.jurisdns."); !ok || s == 0 {
		t.Fatal("rpz_out does not serve mem.rpz.jurisdns.")
	}
	runtime.KeepAlive(pol)
	runtime.KeepAlive(out)
	out.Close()
	pol, out = nil, nil

	// The same list by AXFR.
	addr := memPrimary(t, n)
	base = heapInuse()
	peak = samplePeak()
	start = time.Now()
	feed := transfer.New(transfer.Options{Name: "mem/feed", Zone: "rpz.mem.", Primaries: []netip.AddrPort{addr},
		CacheDir: filepath.Join(dir, "cache"), Timeout: time.Minute})
	if err := feed.Load(ctx); err != nil {
		t.Fatal(err)
	}
	xfrTook := time.Since(start)
	src := config.Source{Name: "feed", Transfer: &config.Transfer{Zone: "rpz.mem.", Primaries: []string{addr.String()}}}
	pol, err = policy.Build(ctx, jur(src), policy.BuildOptions{
		Transfer: func(context.Context, string, config.Source) ([]byte, *policy.TransferState, error) {
			text, serial, err := feed.TextSerial()
			return text, &policy.TransferState{Zone: "rpz.mem.", Serial: serial}, err
		}})
	if err != nil {
		t.Fatal(err)
	}
	feedTook := time.Since(start)
	feedPeak := peak.done()
	feedHeap := heapInuse() - base
	if !blocked(pol, probe) {
		t.Fatalf("%s not blocked by the feed", probe)
	}
	if st := feed.Status(); st.Records != n {
		t.Fatalf("feed has %d records, want %d", st.Records, n)
	}
	runtime.KeepAlive(pol)
	runtime.KeepAlive(feed)

	ratio := float64(feedHeap) / float64(fileHeap)
	t.Logf("%d names: file list: heap %.1f MiB (peak %.1f MiB), built in %s", n, float64(fileHeap)/mib, float64(filePeak)/mib, fileTook.Round(time.Millisecond))
	t.Logf("%d names: feed: heap %.1f MiB (peak %.1f MiB), AXFR and cache in %s, in force in %s", n, float64(feedHeap)/mib, float64(feedPeak)/mib,
		xfrTook.Round(time.Millisecond), feedTook.Round(time.Millisecond))
	t.Logf("feed/file heap ratio %.2f (target ≤ 1.2); rpz_out's copy of the zone: %.1f MiB", ratio, float64(outHeap)/mib)
	if ratio > 1.2 {
		t.Errorf("the feed takes %.2f× the heap of the same list from a file, want ≤ 1.2", ratio)
	}
}

func blocked(pol *policy.Policy, name string) bool {
	return pol.Match(name, pol.DefaultClientSet(), time.Now()).Decision == policy.DecisionBlock
}

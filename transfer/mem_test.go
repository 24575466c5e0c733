package transfer_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
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
// the same list loaded from a file, each loaded in a process of its own
// (this test binary run again): the resident set (VmRSS after the load,
// VmHWM its peak), the heap in use after GC (the policy alone; the feed's
// zone plus the policy built from it) and the heap's peak while loading.
// It is a measurement, run on demand:
//
//	JURISDNS_MEM=1 go test ./transfer/ -run TestFeedMemory -v
//
// (JURISDNS_MEM_PPROF=DIR writes each case's heap profile in DIR)
// and it fails when the feed's resident set is more than 1.2× the file's.
func TestFeedMemory(t *testing.T) {
	if c := os.Getenv("JURISDNS_MEM_CASE"); c != "" {
		memCase(t, c)
		return
	}
	if os.Getenv("JURISDNS_MEM") == "" {
		t.Skip("a measurement: set JURISDNS_MEM=1 to run it (JURISDNS_MEM_NAMES sets the size)")
	}
	res := map[string]map[string]float64{}
	for _, c := range []string{"file", "feed"} {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestFeedMemory$", "-test.v")
		cmd.Env = append(os.Environ(), "JURISDNS_MEM_CASE="+c)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", c, err, out)
		}
		res[c] = map[string]float64{}
		for _, l := range strings.Split(string(out), "\n") {
			_, l, ok := strings.Cut(l, "memcase ")
			if !ok {
				continue
			}
			t.Logf("%s: %s", c, l)
			for _, f := range strings.Fields(l) {
				k, v, _ := strings.Cut(f, "=")
				x, err := strconv.ParseFloat(strings.TrimRight(v, "MiBs"), 64)
				if err == nil {
					res[c][k] = x
				}
			}
		}
		if res[c]["rss"] == 0 {
			t.Fatalf("%s: no measurement in\n%s", c, out)
		}
	}
	rss := res["feed"]["rss"] / res["file"]["rss"]
	t.Logf("feed/file: RSS %.2f (target ≤ 1.2), RSS peak %.2f, heap %.2f, heap peak %.2f", rss,
		res["feed"]["rss_peak"]/res["file"]["rss_peak"], res["feed"]["heap"]/res["file"]["heap"],
		res["feed"]["heap_peak"]/res["file"]["heap_peak"])
	if rss > 1.2 {
		t.Errorf("the feed's resident set is %.2f× the same list's from a file, want ≤ 1.2", rss)
	}
}

// memCase loads the list one way (file, feed) and prints what it cost.
func memCase(t *testing.T, c string) {
	n := memNames
	if s := os.Getenv("JURISDNS_MEM_NAMES"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil {
			t.Fatal(err)
		}
		n = v
	}
	dir := t.TempDir()
	jur := func(src config.Source) *config.Config {
		return &config.Config{DefaultJurisdictions: []string{"mem"}, Jurisdictions: []config.Jurisdiction{
			{JurisdictionAttrs: config.JurisdictionAttrs{ID: "mem"}, Sources: []config.Source{src}}}}
	}
	ctx := context.Background()
	probe := memName(n/2) + "."
	var addr netip.AddrPort
	var path string
	if c == "file" {
		path = filepath.Join(dir, "list.rpz")
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
	} else {
		addr = memPrimary(t, n)
	}
	base := heapInuse()
	peak := samplePeak()
	start := time.Now()
	var feed *transfer.Feed
	var pol *policy.Policy
	var err error
	extra := ""
	if c == "file" {
		pol, err = policy.Build(ctx, jur(config.Source{Name: "file", Path: path, Format: "rpz"}), policy.BuildOptions{})
	} else {
		feed = transfer.New(transfer.Options{Name: "mem/feed", Zone: "rpz.mem.", Primaries: []netip.AddrPort{addr},
			CacheDir: filepath.Join(dir, "cache"), Timeout: time.Minute})
		if err := feed.Load(ctx); err != nil {
			t.Fatal(err)
		}
		extra = fmt.Sprintf(" axfr_and_cache=%.3fs", time.Since(start).Seconds())
		src := config.Source{Name: "feed", Transfer: &config.Transfer{Zone: "rpz.mem.", Primaries: []string{addr.String()}}}
		pol, err = policy.Build(ctx, jur(src), policy.BuildOptions{
			Transfer: func(context.Context, string, config.Source) (io.ReadCloser, *policy.TransferState, error) {
				text, serial, err := feed.Open()
				return text, &policy.TransferState{Zone: "rpz.mem.", Serial: serial}, err
			}})
	}
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	heapPeak := peak.done()
	heap := heapInuse() - base
	rss, hwm := procStatus(t, "VmRSS"), procStatus(t, "VmHWM")
	if !blocked(pol, probe) {
		t.Fatalf("%s not blocked", probe)
	}
	if feed != nil {
		if st := feed.Status(); st.Records != n {
			t.Fatalf("feed has %d records, want %d", st.Records, n)
		}
	} else {
		// What rpz_out adds when it serves the jurisdiction.
		out := rpzout.New(nil, nil)
		before := heapInuse()
		out.Update(rpzout.Options{Suffix: "rpz.jurisdns."}, pol)
		extra = fmt.Sprintf(" rpz_out_heap=%.1fMiB", float64(heapInuse()-before)/mib)
		if s, ok := out.Serial("mem.rpz.jurisdns."); !ok || s == 0 {
			t.Fatal("rpz_out does not serve mem.rpz.jurisdns.")
		}
		runtime.KeepAlive(out)
		out.Close()
	}
	if dir := os.Getenv("JURISDNS_MEM_PPROF"); dir != "" {
		// go tool pprof -sample_index=inuse_space DIR/heap-feed.pprof
		f, err := os.Create(filepath.Join(dir, "heap-"+c+".pprof"))
		if err != nil {
			t.Fatal(err)
		}
		runtime.GC()
		if err := pprof.WriteHeapProfile(f); err != nil {
			t.Fatal(err)
		}
		_ = f.Close()
	}
	runtime.KeepAlive(pol)
	runtime.KeepAlive(feed)
	fmt.Printf("memcase names=%d in_force=%.3fs rss=%.1fMiB rss_peak=%.1fMiB heap=%.1fMiB heap_peak=%.1fMiB%s\n",
		n, took.Seconds(), rss, hwm, float64(heap)/mib, float64(heapPeak)/mib, extra)
}

// procStatus is a memory field of /proc/self/status, in MiB.
func procStatus(t *testing.T, field string) float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb / 1024
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}

func blocked(pol *policy.Policy, name string) bool {
	return pol.Match(name, pol.DefaultClientSet(), time.Now()).Decision == policy.DecisionBlock
}

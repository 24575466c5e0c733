package resolver

import (
	"bytes"
	"net/netip"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/dnstap"
	"github.com/jurisdns/jurisdns/dnstap/dnstaptest"
)

// recordingLogger keeps a copy of the last query event, as dnstap does.
type recordingLogger struct {
	n               int
	ev              QueryEvent
	query, response []byte
	rule, name      string
	pol             bool
}

func (l *recordingLogger) Query(ev *QueryEvent) {
	l.n++
	l.ev = *ev
	l.query = append(l.query[:0], ev.Query...)
	l.response = append(l.response[:0], ev.Response...)
	l.pol = ev.Policy != nil
	if l.pol {
		l.rule, l.name = string([]byte(ev.Policy.Rule)), string([]byte(ev.Policy.Name))
		l.ev.Policy = nil
	}
	l.ev.Query, l.ev.Response = nil, nil
}

// TestQueryEventsCarryTheWire: on every path (fast hit, fast block, miss,
// slow over TCP, policy drop) the query logger gets the query as received,
// the reply as sent, the client's port and the policy hit of a block.
func TestQueryEventsCarryTheWire(t *testing.T) {
	s := newInProcess(t)
	l := &recordingLogger{}
	s.qlog = l
	client := netip.MustParseAddrPort("127.0.0.1:5353")
	w := newWorker()
	check := func(what string, pkt, out []byte, blocked bool, rule, name string) {
		t.Helper()
		if l.n == 0 {
			t.Fatalf("%s: no query event", what)
		}
		if !bytes.Equal(l.query, pkt) || !bytes.Equal(l.response, out) || l.ev.Port != 5353 || l.ev.Client != client.Addr() {
			t.Errorf("%s: event query %x response %x port %d, want %x %x 5353", what, l.query, l.response, l.ev.Port, pkt, out)
		}
		if l.ev.Blocked != blocked || l.pol != (rule != "") || l.rule != rule || l.name != name {
			t.Errorf("%s: blocked %v policy %v rule %q name %q, want %v %q %q", what, l.ev.Blocked, l.pol, l.rule, l.name, blocked, rule, name)
		}
		l.n = 0
	}

	// Miss, then hit.
	pkt := packQuery("www.example.com.", dns.TypeA, true)
	if _, ok := s.fast(w, s.Runtime(), pkt, client); ok || w.missUp == nil {
		t.Fatal("a cold cache answered on the fast path")
	}
	out := s.missUDP(w, append([]byte(nil), pkt...), client, s.Runtime(), w.missUp)
	check("miss", pkt, out, false, "", "")
	out, ok := s.fast(w, s.Runtime(), pkt, client)
	if !ok {
		t.Fatal("no fast-path hit")
	}
	check("hit", pkt, out, false, "", "")

	// A block on the fast path and on the slow path (TCP).
	pkt = packQuery("Chat.DeepSeek.com.", dns.TypeA, true)
	if out, ok = s.fast(w, s.Runtime(), pkt, client); !ok {
		t.Fatal("block not on the fast path")
	}
	check("fast block", pkt, out, true, "deepseek.com", "chat.deepseek.com.")
	out = s.slow(append([]byte(nil), pkt...), client, TCP)
	check("slow block", pkt, out, true, "deepseek.com", "chat.deepseek.com.")
	if l.ev.Proto != TCP {
		t.Errorf("slow block over TCP logged as %v", l.ev.Proto)
	}

	// The fast path does not allocate for a hit with the logger on.
	pkt = packQuery("www.example.com.", dns.TypeA, true)
	if allocs := testing.AllocsPerRun(100, func() { s.fast(w, s.Runtime(), pkt, client) }); allocs != 0 {
		t.Errorf("%.1f allocations per logged hit, want 0", allocs)
	}
}

// TestNoQueryLoggerNoAllocations: with neither the query log nor dnstap,
// a cache hit and a block on the fast path allocate nothing.
func TestNoQueryLoggerNoAllocations(t *testing.T) {
	s := newInProcess(t)
	client := netip.MustParseAddrPort("127.0.0.1:5353")
	w := newWorker()
	hit := packQuery("www.example.com.", dns.TypeA, true)
	s.slow(append([]byte(nil), hit...), client, UDP)
	block := packQuery("chat.deepseek.com.", dns.TypeA, true)
	for _, pkt := range [][]byte{hit, block} {
		if _, ok := s.fast(w, s.Runtime(), pkt, client); !ok {
			t.Fatal("not answered on the fast path")
		}
		if allocs := testing.AllocsPerRun(100, func() { s.fast(w, s.Runtime(), pkt, client) }); allocs != 0 {
			t.Errorf("%.1f allocations per fast-path answer without a query logger, want 0", allocs)
		}
	}
}

// tapLogger hands query events to a dnstap writer as the app's sink does.
type tapLogger struct{ w *dnstap.Writer }

func (l tapLogger) Query(ev *QueryEvent) {
	l.w.Log(&dnstap.Event{Protocol: dnstap.UDP, Client: netip.AddrPortFrom(ev.Client, ev.Port),
		QueryTime: ev.Time.Add(-ev.Duration), ResponseTime: ev.Time, Query: ev.Query, Response: ev.Response})
}

// BenchmarkCacheHitDnstap is BenchmarkCacheHit with every answer sent as
// dnstap to a collector (in this process) that throws it away. The loop
// pauses every 256 queries, as a read loop does when it waits for packets,
// so that the writer and the collector run: read cpu-ns/op (the CPU time of
// the whole process per query), not ns/op. BenchmarkCacheHit reports the
// same metric for comparison.
func BenchmarkCacheHitDnstap(b *testing.B) {
	sock := filepath.Join(b.TempDir(), "tap.sock")
	dnstaptest.StartDiscardCollector(b, sock)
	w := dnstap.New(dnstap.Options{Network: "unix", Address: sock, Client: true, Identity: "bench"})
	defer w.Close()
	for !w.Connected() {
		time.Sleep(time.Millisecond)
	}
	benchHits(b, tapLogger{w})
	b.ReportMetric(float64(w.Stats().Dropped.Load())/float64(b.N), "dropped/op")
}

// BenchmarkCacheHitPaused is the baseline of BenchmarkCacheHitDnstap.
func BenchmarkCacheHitPaused(b *testing.B) { benchHits(b, nil) }

func benchHits(b *testing.B, l QueryLogger) {
	s := newInProcess(b)
	s.qlog = l
	client := netip.MustParseAddrPort("127.0.0.1:5353")
	pkt := packQuery("www.example.com.", dns.TypeA, true)
	wk := newWorker()
	s.slow(append([]byte(nil), pkt...), client, UDP)
	b.ReportAllocs()
	var r0, r1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &r0)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, ok := s.fast(wk, s.Runtime(), pkt, client); !ok {
			b.Fatal("miss")
		}
		if i%256 == 255 {
			time.Sleep(time.Microsecond)
		}
	}
	b.StopTimer()
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &r1)
	cpu := time.Duration(r1.Utime.Nano() + r1.Stime.Nano() - r0.Utime.Nano() - r0.Stime.Nano())
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
}

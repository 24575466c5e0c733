package resolver

import (
	"context"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/config"
	"github.com/jurisdns/jurisdns/policy"
)

// stubUpstream answers every query with one A record, without a socket, so
// the wire handler can be fuzzed and benchmarked in-process.
type stubUpstream struct{}

func (stubUpstream) Exchange(_ context.Context, m *dns.Msg) (*dns.Msg, error) {
	r := new(dns.Msg)
	r.SetReply(m)
	r.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: m.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300}, A: []byte{192, 0, 2, 1}}}
	return r, nil
}

func newInProcess(tb testing.TB) *Server {
	tb.Helper()
	return newInProcessAt(tb, nil)
}

// newInProcessAt is newInProcess with the clock now (nil: time.Now).
func newInProcessAt(tb testing.TB, now func() time.Time) *Server {
	tb.Helper()
	cfg, err := config.Load(config.LoadOptions{Env: []string{}})
	if err != nil {
		tb.Fatal(err)
	}
	pol, err := policy.Build(context.Background(), cfg, policy.BuildOptions{BaseDir: tb.TempDir()})
	if err != nil {
		tb.Fatal(err)
	}
	s := NewServer(ServerOptions{Cache: NewCache(CacheOptions{Size: 1000, MaxTTL: time.Hour, ServfailTTL: time.Second, ServeStale: time.Hour}), Now: now})
	rt, err := s.NewRuntime(cfg, pol, stubUpstream{}, []string{"stub"})
	if err != nil {
		tb.Fatal(err)
	}
	s.Swap(rt)
	return s
}

// packQuery is a packed query for name and qtype, with an OPT (1232 bytes,
// no DO) when edns is set.
func packQuery(name string, qtype uint16, edns bool) []byte {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	if edns {
		m.SetEdns0(1232, false)
	}
	pkt, err := m.Pack()
	if err != nil {
		panic(err)
	}
	return pkt
}

func newWorker() *worker {
	return &worker{in: make([]byte, 65535), out: make([]byte, 0, 4096), name: make([]byte, 0, 256)}
}

// handle answers pkt as the UDP loop and its workers do, in this
// goroutine: the fast path, else the miss path when fast found the query
// missable, else the slow path.
func handle(s *Server, w *worker, pkt []byte, client netip.AddrPort) []byte {
	if out, ok := s.fast(w, s.Runtime(), pkt, client); ok {
		return out
	}
	if up := w.missUp; up != nil {
		return s.missUDP(w, append([]byte(nil), pkt...), client, s.Runtime(), up)
	}
	return s.slow(append([]byte(nil), pkt...), client, UDP)
}

// FuzzWireHandler feeds arbitrary packets to the fast and the slow path:
// never a panic, and any reply parses and keeps the query's ID.
func FuzzWireHandler(f *testing.F) {
	for _, seed := range []func(*dns.Msg){
		func(m *dns.Msg) {},
		func(m *dns.Msg) { m.SetEdns0(1232, true) },
		func(m *dns.Msg) { m.Opcode = dns.OpcodeNotify },
		func(m *dns.Msg) { m.Question[0].Qclass = dns.ClassCHAOS },
		func(m *dns.Msg) { m.Question = append(m.Question, m.Question[0]) },
		func(m *dns.Msg) { m.SetEdns0(512, false); m.IsEdns0().SetVersion(1) },
		func(m *dns.Msg) { m.Question[0].Name = "chat.deepseek.com." },
		func(m *dns.Msg) { m.Response = true },
	} {
		m := new(dns.Msg)
		m.SetQuestion("www.example.com.", dns.TypeA)
		seed(m)
		b, _ := m.Pack()
		f.Add(b)
	}
	f.Add([]byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 0x0c, 0, 1, 0, 1})
	s := newInProcess(f)
	client := netip.MustParseAddrPort("127.0.0.1:5353")
	f.Fuzz(func(t *testing.T, pkt []byte) {
		w := newWorker()
		for i := 0; i < 2; i++ { // the second round may hit the cache
			out := handle(s, w, pkt, client)
			if out == nil {
				continue
			}
			r := new(dns.Msg)
			if err := r.Unpack(out); err != nil {
				if len(out) < hdrLen {
					t.Fatalf("reply of %d bytes", len(out))
				}
				continue // a FORMERR header-only reply to garbage still has a header
			}
			if r.Id != uint16(pkt[0])<<8|uint16(pkt[1]) {
				t.Fatalf("reply ID %d, query ID %x", r.Id, pkt[:2])
			}
			if !r.Response {
				t.Fatal("reply without QR")
			}
		}
	})
}

// FuzzParseQuery checks the fast-path parser against miekg/dns: whenever
// the fast path accepts a packet, miekg must parse the same question.
func FuzzParseQuery(f *testing.F) {
	m := new(dns.Msg)
	m.SetQuestion("Www.Example.COM.", dns.TypeAAAA)
	m.SetEdns0(1232, true)
	b, _ := m.Pack()
	f.Add(b)
	f.Fuzz(func(t *testing.T, pkt []byte) {
		q, canon, ok := parseQuery(pkt, make([]byte, 0, 256))
		if !ok {
			return
		}
		var full dns.Msg
		if err := full.Unpack(pkt); err != nil {
			t.Fatalf("fast path accepted what miekg rejects: %v", err)
		}
		if len(full.Question) != 1 || full.Question[0].Qtype != q.qtype {
			t.Fatalf("question mismatch: %v vs %+v", full.Question, q)
		}
		if got := dns.CanonicalName(full.Question[0].Name); got != string(canon) {
			t.Fatalf("canonical %q, miekg %q", canon, got)
		}
	})
}

// BenchmarkCacheHit measures the fast path of a cache hit (no socket).
func BenchmarkCacheHit(b *testing.B) {
	s := newInProcess(b)
	client := netip.MustParseAddrPort("127.0.0.1:5353")
	pkt := packQuery("www.example.com.", dns.TypeA, true)
	w := newWorker()
	if out := s.slow(append([]byte(nil), pkt...), client, UDP); out == nil {
		b.Fatal("no answer")
	}
	if _, ok := s.fast(w, s.Runtime(), pkt, client); !ok {
		b.Fatal("not a fast-path hit")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, ok := s.fast(w, s.Runtime(), pkt, client); !ok {
			b.Fatal("miss")
		}
	}
}

// TestFastPathTaken makes sure the fast path really answers cache hits and
// blocked names (the byte-equality tests would pass trivially otherwise).
func TestFastPathTaken(t *testing.T) {
	s := newInProcess(t)
	client := netip.MustParseAddrPort("127.0.0.1:5353")
	w := newWorker()
	for _, tc := range []struct {
		name string
		edns bool
	}{{"chat.deepseek.com.", true}, {"DeepSeek.COM.", false}, {"use-application-dns.net.", true}, {"_dns.resolver.arpa.", true}} {
		pkt := packQuery(tc.name, dns.TypeA, tc.edns)
		if _, ok := s.fast(w, s.Runtime(), pkt, client); !ok {
			t.Errorf("%s: blocked name not answered by the fast path", tc.name)
		}
	}
	pkt := packQuery("www.example.com.", dns.TypeA, false)
	if _, ok := s.fast(w, s.Runtime(), pkt, client); ok {
		t.Fatal("a cold cache answered on the fast path")
	}
	if w.missUp == nil {
		t.Fatal("a plain cache miss was not found missable")
	}
	if out := s.missUDP(w, append([]byte(nil), pkt...), client, s.Runtime(), w.missUp); out == nil {
		t.Fatal("the miss path sent nothing")
	}
	if _, ok := s.fast(w, s.Runtime(), pkt, client); !ok {
		t.Error("cache hit not answered by the fast path")
	}
	// Not missable: what the forwarder never sees.
	for _, q := range []struct {
		name  string
		qtype uint16
	}{{"localhost.", dns.TypeA}, {"www.example.com.", dns.TypeANY}, {"chat.deepseek.com.", dns.TypeAAAA}} {
		pkt := packQuery(q.name, q.qtype, false)
		if _, ok := s.fast(w, s.Runtime(), pkt, client); !ok && w.missUp != nil {
			t.Errorf("%s %s: missable", q.name, dns.TypeToString[q.qtype])
		}
	}
}

// BenchmarkBlockedSlow measures a blocked name on the full path (no socket).
func BenchmarkBlockedSlow(b *testing.B) {
	s := newInProcess(b)
	client := netip.MustParseAddrPort("127.0.0.1:5353")
	pkt := packQuery("chat.deepseek.com.", dns.TypeA, true)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if out := s.slow(pkt, client, UDP); out == nil {
			b.Fatal("no answer")
		}
	}
}

// BenchmarkBlocked measures a blocked name on the fast path (no socket).
func BenchmarkBlocked(b *testing.B) {
	s := newInProcess(b)
	client := netip.MustParseAddrPort("127.0.0.1:5353")
	pkt := packQuery("chat.deepseek.com.", dns.TypeA, true)
	w := newWorker()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, ok := s.fast(w, s.Runtime(), pkt, client); !ok {
			b.Fatal("not on the fast path")
		}
	}
}

// BenchmarkMissUDP measures the UDP miss path (fast checks, then missUDP)
// of a cache miss to an in-process upstream. The names cycle through four
// times the cache size, so every query misses and every store evicts.
func BenchmarkMissUDP(b *testing.B) {
	s := newInProcess(b)
	client := netip.MustParseAddrPort("127.0.0.1:5353")
	pkts := make([][]byte, 4000)
	for i := range pkts {
		pkts[i] = packQuery("host"+strconv.Itoa(i)+".example.com.", dns.TypeA, true)
	}
	w := newWorker()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		pkt := pkts[i%len(pkts)]
		if _, ok := s.fast(w, s.Runtime(), pkt, client); ok || w.missUp == nil {
			b.Fatal("not a miss")
		}
		if out := s.missUDP(w, pkt, client, s.Runtime(), w.missUp); out == nil {
			b.Fatal("no answer")
		}
	}
}

// BenchmarkForwardMiss measures the full path of a cache miss to an
// in-process upstream.
func BenchmarkForwardMiss(b *testing.B) {
	s := newInProcess(b)
	s.cache = nil
	client := netip.MustParseAddrPort("127.0.0.1:5353")
	pkt := packQuery("www.example.com.", dns.TypeA, false)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if out := s.slow(pkt, client, UDP); out == nil {
			b.Fatal("no answer")
		}
	}
}

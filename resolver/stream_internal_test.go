package resolver

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// protoCounter counts answers per transport.
type protoCounter struct {
	nopObserver
	answered [4]int
}

func (o *protoCounter) Answered(p Proto, _ uint16, _ int) { o.answered[p]++ }

// TestStreamFastPathTaken: over TCP, DoT and DoH a cache hit and a block
// are answered by the wire fast path (the byte comparisons with the slow
// path would pass trivially otherwise), equal to the slow path's answer
// over the same transport, counted and logged with that transport, and
// without allocating.
func TestStreamFastPathTaken(t *testing.T) {
	s := newInProcess(t)
	l := &recordingLogger{}
	obs := &protoCounter{}
	s.qlog, s.obs = l, obs
	client := netip.MustParseAddrPort("127.0.0.1:5353")
	hit := packQuery("www.example.com.", dns.TypeA, true)
	if out := s.slow(append([]byte(nil), hit...), client, UDP); out == nil {
		t.Fatal("no answer")
	}
	block := packQuery("Chat.DeepSeek.com.", dns.TypeAAAA, true)
	w := newStreamWorker()
	for _, proto := range []Proto{TCP, DoT, DoH} {
		for _, pkt := range [][]byte{hit, block} {
			l.n, obs.answered = 0, [4]int{}
			out, ok := s.fastAnswer(w, s.Runtime(), pkt, client, proto)
			if !ok {
				t.Fatalf("%v: %x not answered on the fast path", proto, pkt)
			}
			out = append([]byte(nil), out...)
			if l.n != 1 || l.ev.Proto != proto || obs.answered[proto] != 1 {
				t.Errorf("%v: %d query events with proto %v, %v answers, want 1 %v", proto, l.n, l.ev.Proto, obs.answered, proto)
			}
			if padded := proto != TCP; padded != (len(out)%paddingBlock == 0) {
				t.Errorf("%v: reply of %d bytes", proto, len(out))
			}
			if slow := s.SlowAnswer(pkt, client, proto); !bytes.Equal(out, slow) {
				t.Errorf("%v: fast %x\nslow %x", proto, out, slow)
			}
		}
	}
	// An answer bigger than a UDP client may take: the UDP fast path leaves
	// it to the full path (which truncates it), a stream's answers it whole.
	big := new(dns.Msg)
	big.SetQuestion("big.example.com.", dns.TypeA)
	big.Response = true
	for i := range 60 {
		big.Answer = append(big.Answer, &dns.A{Hdr: dns.RR_Header{Name: "big.example.com.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300},
			A: []byte{192, 0, 2, byte(i)}})
	}
	s.cache.put(&Request{Name: "big.example.com.", Qtype: dns.TypeA}, big, s.now())
	bigQuery := packQuery("big.example.com.", dns.TypeA, false)
	if _, ok := s.fast(newWorker(), s.Runtime(), bigQuery, client); ok {
		t.Error("the UDP fast path answered an answer over 512 bytes")
	}
	for _, proto := range []Proto{TCP, DoT} {
		out, ok := s.fastAnswer(w, s.Runtime(), bigQuery, client, proto)
		if !ok || len(out) < 60*16 || out[2]&0x02 != 0 {
			t.Errorf("%v: big answer on the fast path: %v, %d bytes", proto, ok, len(out))
		}
	}
	s.qlog = nil
	for _, pkt := range [][]byte{hit, block} {
		if allocs := testing.AllocsPerRun(100, func() { s.fastAnswer(w, s.Runtime(), pkt, client, DoT) }); allocs != 0 {
			t.Errorf("%.1f allocations per DoT fast-path answer, want 0", allocs)
		}
	}
}

// FuzzStreamFastMatchesSlow feeds arbitrary queries to the wire fast path
// of each stream transport: whenever it answers, the answer is byte for
// byte the full path's over that transport.
func FuzzStreamFastMatchesSlow(f *testing.F) {
	for _, name := range []string{"www.example.com.", "Chat.DeepSeek.COM.", "x.Null.Example.", "_dns.resolver.arpa.", "localhost."} {
		for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeTXT} {
			f.Add(packQuery(name, qt, true), uint8(DoT))
			f.Add(packQuery(name, qt, false), uint8(TCP))
		}
	}
	clock := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	s := newInProcessAt(f, func() time.Time { return clock })
	client := netip.MustParseAddrPort("127.0.0.1:5353")
	f.Fuzz(func(t *testing.T, pkt []byte, p uint8) {
		proto := []Proto{TCP, DoT, DoH}[int(p)%3]
		w := newStreamWorker()
		for range 2 { // the second round may hit the cache the slow path filled
			out, ok := s.fastAnswer(w, s.Runtime(), pkt, client, proto)
			if !ok {
				s.SlowAnswer(pkt, client, proto)
				continue
			}
			out = append([]byte(nil), out...)
			if slow := s.SlowAnswer(pkt, client, proto); !bytes.Equal(out, slow) {
				t.Fatalf("%v: fast %x\nslow %x", proto, out, slow)
			}
		}
	})
}

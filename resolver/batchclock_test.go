package resolver

import (
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestFastPathBatchClock checks that a worker's batch time (set once per
// recvmmsg batch by the batched UDP loop) is the time the fast path
// answers at: the TTL of a cache hit counts down from it, and an entry
// stale at it is not answered, whatever the server's clock says.
func TestFastPathBatchClock(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	s := newInProcessAt(t, func() time.Time { return t0 })
	client := netip.MustParseAddrPort("127.0.0.1:5353")
	pkt := packQuery("www.example.com.", dns.TypeA, true)
	if out := s.slow(append([]byte(nil), pkt...), client, UDP); out == nil {
		t.Fatal("no answer to warm the cache")
	}
	w := newWorker()
	ttlAt := func(at time.Time) (uint32, bool) {
		t.Helper()
		w.batchNow = at
		out, ok := s.fast(w, s.Runtime(), pkt, client)
		if !ok {
			return 0, false
		}
		m := new(dns.Msg)
		if err := m.Unpack(out); err != nil || len(m.Answer) != 1 {
			t.Fatalf("fast answer %v: %v", m, err)
		}
		return m.Answer[0].Header().Ttl, true
	}
	if ttl, ok := ttlAt(time.Time{}); !ok || ttl != 300 {
		t.Fatalf("without a batch time: TTL %d (answered %v), want 300 at the server's clock", ttl, ok)
	}
	if ttl, ok := ttlAt(t0.Add(100 * time.Second)); !ok || ttl != 200 {
		t.Fatalf("batch time 100 s later: TTL %d (answered %v), want 200", ttl, ok)
	}
	if _, ok := ttlAt(t0.Add(10 * time.Minute)); ok {
		t.Fatal("an entry stale at the batch time was answered by the fast path")
	}
}

package resolver

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/miekg/dns"
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
	if _, ok := s.fast(w, pkt, client); ok || w.missable == nil {
		t.Fatal("a cold cache answered on the fast path")
	}
	out := s.missUDP(w, append([]byte(nil), pkt...), client, w.missable)
	check("miss", pkt, out, false, "", "")
	out, ok := s.fast(w, pkt, client)
	if !ok {
		t.Fatal("no fast-path hit")
	}
	check("hit", pkt, out, false, "", "")

	// A block on the fast path and on the slow path (TCP).
	pkt = packQuery("Chat.DeepSeek.com.", dns.TypeA, true)
	if out, ok = s.fast(w, pkt, client); !ok {
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
	if allocs := testing.AllocsPerRun(100, func() { s.fast(w, pkt, client) }); allocs != 0 {
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
		if _, ok := s.fast(w, pkt, client); !ok {
			t.Fatal("not answered on the fast path")
		}
		if allocs := testing.AllocsPerRun(100, func() { s.fast(w, pkt, client) }); allocs != 0 {
			t.Errorf("%.1f allocations per fast-path answer without a query logger, want 0", allocs)
		}
	}
}

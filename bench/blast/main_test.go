package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// startServer runs a miekg/dns UDP server on 127.0.0.1:0 with h.
func startServer(t *testing.T, h dns.HandlerFunc) string {
	t.Helper()
	started := make(chan struct{})
	srv := &dns.Server{Addr: "127.0.0.1:0", Net: "udp", Handler: h, NotifyStartedFunc: func() { close(started) }}
	go func() { _ = srv.ListenAndServe() }()
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("server did not start")
	}
	t.Cleanup(func() { _ = srv.Shutdown() })
	return srv.PacketConn.LocalAddr().String()
}

func queryFile(t *testing.T, lines ...string) [][]byte {
	t.Helper()
	p := filepath.Join(t.TempDir(), "q.txt")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	qs, err := readQueries(p, true)
	if err != nil {
		t.Fatal(err)
	}
	return qs
}

func answer(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg).SetReply(r)
	_ = w.WriteMsg(m)
}

// TestBlastCountsEveryAnswer: against a server that answers everything,
// every query sent is answered once, none lost, none mismatched, and the
// server saw as many queries as blast counts.
func TestBlastCountsEveryAnswer(t *testing.T) {
	var seen atomic.Int64
	addr := startServer(t, func(w dns.ResponseWriter, r *dns.Msg) { seen.Add(1); answer(w, r) })
	r, err := run(context.Background(), options{server: addr, queries: queryFile(t, "a.example A", "b.example AAAA", "c.example TXT"),
		duration: 300 * time.Millisecond, sockets: 2, outstanding: 16, batch: 8, timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if r.sent == 0 || r.answered != r.sent || r.lost != 0 || r.mismatched != 0 || int64(r.sent) != seen.Load() {
		t.Fatalf("%v; server saw %d: want every query answered", r, seen.Load())
	}
	if !strings.Contains(r.String(), "lost=0 mismatched=0") {
		t.Errorf("result line %q", r.String())
	}
}

// TestBlastLostAndMismatched: queries the server ignores are lost after the
// timeout; answers with the wrong question are mismatched, not answered.
func TestBlastLostAndMismatched(t *testing.T) {
	addr := startServer(t, func(w dns.ResponseWriter, r *dns.Msg) {
		switch r.Question[0].Name {
		case "drop.example.":
		case "wrong.example.":
			m := new(dns.Msg).SetReply(r)
			m.Question[0].Name = "other.example."
			_ = w.WriteMsg(m)
		default:
			answer(w, r)
		}
	})
	r, err := run(context.Background(), options{server: addr, queries: queryFile(t, "ok.example", "drop.example", "wrong.example"),
		duration: 200 * time.Millisecond, sockets: 1, outstanding: 6, batch: 3, timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r.answered == 0 || r.lost == 0 || r.mismatched == 0 || r.answered+r.lost != r.sent {
		t.Fatalf("%v: want answered, lost and mismatched, answered+lost = sent", r)
	}
}

func TestReadQueriesErrors(t *testing.T) {
	p := filepath.Join(t.TempDir(), "q.txt")
	_ = os.WriteFile(p, []byte("a.example A\nb.example NOPE\n"), 0o644)
	if _, err := readQueries(p, false); err == nil || !strings.Contains(err.Error(), "q.txt:2") {
		t.Fatalf("err = %v, want the file:line of the bad type", err)
	}
}

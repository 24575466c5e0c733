package app_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// upstreamConns counts the connections a test server accepted and those still
// open.
type upstreamConns struct {
	accepted atomic.Int64
	open     atomic.Int64
}

// upstreamConnsListener counts the TCP connections under a TLS listener.
type upstreamConnsListener struct {
	net.Listener
	n *upstreamConns
}

func (l upstreamConnsListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.n.accepted.Add(1)
	l.n.open.Add(1)
	return &upstreamConn{Conn: c, n: l.n}, nil
}

type upstreamConn struct {
	net.Conn
	n    *upstreamConns
	once atomic.Bool
}

func (c *upstreamConn) Close() error {
	if !c.once.Swap(true) {
		c.n.open.Add(-1)
	}
	return c.Conn.Close()
}

// upstreamAnswerA answers every A query with 192.0.2.7.
func upstreamAnswerA(q *dns.Msg) *dns.Msg {
	r := new(dns.Msg)
	r.SetReply(q)
	if q.Question[0].Qtype == dns.TypeA {
		r.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300}, A: net.IPv4(192, 0, 2, 7)}}
	}
	return r
}

// startUpstreamDoH serves DNS over HTTPS (RFC 8484, POST) on 127.0.0.1 with the
// httptest certificate (valid for the IP 127.0.0.1).
func startUpstreamDoH(t *testing.T) (*httptest.Server, *upstreamConns) {
	t.Helper()
	n := &upstreamConns{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		q := new(dns.Msg)
		if err != nil || q.Unpack(body) != nil || len(q.Question) != 1 {
			http.Error(w, "bad query", http.StatusBadRequest)
			return
		}
		out, err := upstreamAnswerA(q).Pack()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/dns-message")
		_, _ = w.Write(out)
	}))
	srv.EnableHTTP2 = true
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			n.accepted.Add(1)
			n.open.Add(1)
		case http.StateClosed, http.StateHijacked:
			n.open.Add(-1)
		}
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, n
}

// startUpstreamDoT serves DNS over TLS (RFC 7858) on 127.0.0.1 with cert.
func startUpstreamDoT(t *testing.T, cert tls.Certificate) (string, *upstreamConns) {
	t.Helper()
	n := &upstreamConns{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tl := tls.NewListener(upstreamConnsListener{Listener: l, n: n}, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	srv := &dns.Server{Listener: tl, Net: "tcp-tls",
		Handler:     dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) { _ = w.WriteMsg(upstreamAnswerA(q)) }),
		IdleTimeout: func() time.Duration { return time.Minute }, // the test, not the server, decides when to close
	}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return l.Addr().String(), n
}

// openFiles counts the process's open file descriptors.
func openFiles(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// connCloseWait bounds the wait for connections and goroutines to go away. It
// is asserted on, so it must stay well below the upstreams' idle timeout
// (20s), which would close leaked connections too.
const connCloseWait = 5 * time.Second

// settleCounts waits (polling, up to connCloseWait) until goroutines and open file
// descriptors are at most the given numbers, and returns the last counts.
func settleCounts(t *testing.T, maxG, maxFD int) (int, int) {
	t.Helper()
	deadline := time.Now().Add(connCloseWait)
	for {
		g, fd := runtime.NumGoroutine(), openFiles(t)
		if (g <= maxG && fd <= maxFD) || time.Now().After(deadline) {
			return g, fd
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestGenerationsDoNotLeak: 100 config reloads and 100 list refreshes, each
// followed by a query that goes to a DoT and a DoH upstream (strategy
// parallel asks both), leave goroutines and open file descriptors where
// they were: the retired runtimes are closed, and the upstream group,
// unchanged by every rebuild, is taken over with its connections (the DoT
// and the DoH server each saw at most a couple of connections, not one
// per rebuild). Shutdown closes the connections of the last runtime.
func TestGenerationsDoNotLeak(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("counts file descriptors in /proc/self/fd")
	}
	doh, dohConns := startUpstreamDoH(t)
	dotAddr, dotConns := startUpstreamDoT(t, doh.TLS.Certificates[0])
	roots := x509.NewCertPool()
	roots.AddCert(doh.Certificate())
	ls := newETagServer(t, remoteList(3))

	e := newEnv(t, nil)
	e.opts.UpstreamRootCAs = roots
	e.opts.HTTPClient = ls.Client()
	e.opts.DownloadBackoff = noBackoff
	cacheDir := filepath.Join(e.dir, "cache")
	config := func(gen int) {
		e.write("jurisdns.yaml", fmt.Sprintf(`listen: ["127.0.0.1:0"]
admin: "127.0.0.1:0"
upstreams:
  servers: ["tls://%s", "%s/dns-query"]
  strategy: parallel
  timeout: 5s
  try_timeout: 5s
server: {udp_workers: 1, shutdown_timeout: 20s}
cache: {prefetch: false}
lists: {cache_dir: %q}
default_jurisdictions: [remote, local]
jurisdictions:
  - id: remote
    sources: [{name: r, url: "%s/list.txt"}]
  - id: local
    sources: [{name: l, inline: ["gen%d.example"]}]
`, dotAddr, doh.URL, cacheDir, ls.URL, gen))
	}
	config(0)
	a := e.start()
	ctx := context.Background()
	query := func(what string, i int) {
		t.Helper()
		m := e.query("udp", fmt.Sprintf("q%s%d.example", what, i), dns.TypeA)
		wantRcode(t, fmt.Sprintf("%s %d", what, i), m, dns.RcodeSuccess)
		if len(m.Answer) != 1 {
			t.Fatalf("%s %d: %d answers, want the upstreams' one", what, i, len(m.Answer))
		}
	}
	// Warm up: the connections and the servers' goroutines exist.
	for i := 0; i < 3; i++ {
		if err := a.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		query("warm", i)
	}
	g0, fd0 := runtime.NumGoroutine(), openFiles(t)
	dot0, doh0 := dotConns.accepted.Load(), dohConns.accepted.Load()

	const n = 100
	for i := 1; i <= n; i++ {
		config(i)
		if err := a.Reload(ctx); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		wantRcode(t, "new inline list", e.query("udp", fmt.Sprintf("gen%d.example", i), dns.TypeA), dns.RcodeNameError)
		query("reload", i)
		if err := a.Refresh(ctx); err != nil {
			t.Fatalf("refresh %d: %v", i, err)
		}
		query("refresh", i)
	}
	// A few goroutines and descriptors come and go (the last query's, the
	// admin server's); a leak is one or more per rebuild, hundreds here.
	const slack = 10
	if g, fd := settleCounts(t, g0+slack, fd0+slack); g > g0+slack || fd > fd0+slack {
		t.Errorf("after %d reloads and %d refreshes: %d goroutines (were %d), %d open files (were %d)", n, n, g, g0, fd, fd0)
	}
	if d := dotConns.accepted.Load() - dot0; d > 2 {
		t.Errorf("the DoT server accepted %d connections during %d rebuilds; the unchanged upstream group should keep its connections", d, 2*n)
	}
	if d := dohConns.accepted.Load() - doh0; d > 2 {
		t.Errorf("the DoH server accepted %d connections during %d rebuilds; the unchanged upstream group should keep its connections", d, 2*n)
	}

	// A changed upstream configuration builds a new group and closes the
	// old one (its connections) once the old runtime is retired.
	openDoT := dotConns.open.Load()
	if openDoT == 0 {
		t.Fatal("no DoT connection open before the upstream change")
	}
	if err := os.WriteFile(e.cfg, []byte(fmt.Sprintf(`listen: ["127.0.0.1:0"]
admin: "127.0.0.1:0"
upstreams: {servers: ["%s/dns-query"], timeout: 5s, try_timeout: 5s}
server: {udp_workers: 1, shutdown_timeout: 20s}
lists: {cache_dir: %q}
default_jurisdictions: [remote]
jurisdictions:
  - id: remote
    sources: [{name: r, url: "%s/list.txt"}]
`, doh.URL, cacheDir, ls.URL)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	query("doh-only", 0)
	waitNoConns(t, "DoT connections after the DoT upstream left the configuration", &dotConns.open)

	if err := a.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	waitNoConns(t, "DoH connections after Shutdown", &dohConns.open)
}

// waitNoConns waits (up to connCloseWait) until n is 0.
func waitNoConns(t *testing.T, what string, n *atomic.Int64) {
	t.Helper()
	deadline := time.Now().Add(connCloseWait)
	for n.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d still open", what, n.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

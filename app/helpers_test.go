package app_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/app"
	"github.com/jurisdns/jurisdns/config"
	"github.com/jurisdns/jurisdns/resolver/resolvertest"
)

// waitLimit bounds every wait for an event, so that a broken test fails
// instead of hanging. It is never what a test asserts on.
const waitLimit = 30 * time.Second

// logRecord is one captured log line.
type logRecord struct {
	Level slog.Level
	Msg   string
	Attrs map[string]string
}

func (r logRecord) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %q", r.Level, r.Msg)
	for k, v := range r.Attrs {
		fmt.Fprintf(&b, " %s=%q", k, v)
	}
	return b.String()
}

// logs captures the App's log records so that tests can wait for events
// (a reload finished, a refresh ran) and assert on what was logged.
type logs struct {
	mu      sync.Mutex
	recs    []logRecord
	changed chan struct{} // closed and replaced at every record
	t       testing.TB
}

func newLogs(t testing.TB) *logs { return &logs{changed: make(chan struct{}), t: t} }

func (l *logs) logger() *slog.Logger { return slog.New(&logHandler{l: l}) }

func (l *logs) add(r logRecord) {
	l.mu.Lock()
	l.recs = append(l.recs, r)
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
	if testing.Verbose() {
		l.t.Log(r.String())
	}
}

// mark returns the position of the next record, for waitFrom.
func (l *logs) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.recs)
}

// count returns how many records from position from have message msg.
func (l *logs) count(from int, msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.recs[from:] {
		if r.Msg == msg {
			n++
		}
	}
	return n
}

// find returns the records from position from that match.
func (l *logs) find(from int, match func(logRecord) bool) []logRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []logRecord
	for _, r := range l.recs[from:] {
		if match(r) {
			out = append(out, r)
		}
	}
	return out
}

// waitFrom waits for the n-th record with message msg from position from
// and returns it.
func (l *logs) waitFrom(t testing.TB, from int, msg string, n int) logRecord {
	t.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		seen := 0
		for _, r := range l.recs[from:] {
			if r.Msg == msg {
				seen++
				if seen == n {
					l.mu.Unlock()
					return r
				}
			}
		}
		ch := l.changed
		l.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("no log record %q (#%d) within %s", msg, n, waitLimit)
		}
	}
}

type logHandler struct {
	l     *logs
	attrs []slog.Attr
	group string
}

func (h *logHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *logHandler) Handle(_ context.Context, r slog.Record) error {
	rec := logRecord{Level: r.Level, Msg: r.Message, Attrs: map[string]string{}}
	for _, a := range h.attrs {
		rec.Attrs[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool {
		rec.Attrs[h.group+a.Key] = a.Value.String()
		return true
	})
	h.l.add(rec)
	return nil
}

func (h *logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	n := *h
	n.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	return &n
}

func (h *logHandler) WithGroup(name string) slog.Handler {
	n := *h
	n.group = h.group + name + "."
	return &n
}

// env is one App under test with its files.
type env struct {
	t     *testing.T
	dir   string
	cfg   string // config file path
	app   *app.App
	logs  *logs
	up    *resolvertest.Upstream
	opts  app.Options
	dns   string // UDP/TCP address
	admin string // admin base URL
}

// baseConfig is the part of every test configuration that ties the App to
// 127.0.0.1 only: listeners and admin on port 0, the test upstream, no rate
// limit, one UDP worker.
func baseConfig(upstream string) string {
	return fmt.Sprintf(`listen: ["127.0.0.1:0"]
admin: "127.0.0.1:0"
upstreams: {servers: ["%s"], timeout: 5s, try_timeout: 5s}
server: {udp_workers: 1, shutdown_timeout: 20s}
cache: {prefetch: false}
`, upstream)
}

// newEnv starts an upstream (h, or resolvertest.Echo) and writes nothing
// yet; call start with the rest of the configuration.
func newEnv(t *testing.T, h dns.Handler) *env {
	t.Helper()
	if h == nil {
		h = resolvertest.Echo()
	}
	e := &env{t: t, dir: t.TempDir(), logs: newLogs(t)}
	e.up = resolvertest.StartUpstream(t, h)
	e.cfg = filepath.Join(e.dir, "jurisdns.yaml")
	return e
}

// write writes a file under the env's directory.
func (e *env) write(name, content string) string {
	e.t.Helper()
	p := filepath.Join(e.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// config writes the configuration file: the base plus rest.
func (e *env) config(rest string) {
	e.t.Helper()
	e.write("jurisdns.yaml", baseConfig(e.up.Addr())+rest)
}

// options are the App options of the env (config file, empty environment,
// captured logs).
func (e *env) options() app.Options {
	o := e.opts
	o.Load = config.LoadOptions{Path: e.cfg, Env: []string{}}
	o.Logger = e.logs.logger()
	return o
}

// start creates and starts the App and stops it when the test ends.
func (e *env) start() *app.App {
	e.t.Helper()
	a, err := newListening(e.options())
	if err != nil {
		e.t.Fatalf("app.New: %v", err)
	}
	if err := a.Start(); err != nil {
		e.t.Fatalf("Start: %v", err)
	}
	e.t.Cleanup(func() {
		if err := a.Shutdown(context.Background()); err != nil {
			e.t.Errorf("Shutdown: %v", err)
		}
	})
	e.app = a
	e.dns = a.DNSAddrs()[0]
	e.admin = "http://" + a.AdminAddr()
	return a
}

// query sends one query from 127.0.0.1 and returns the reply.
func (e *env) query(network, name string, qtype uint16) *dns.Msg {
	e.t.Helper()
	return resolvertest.Query(e.t, e.dns, network, name, qtype, resolvertest.EDNS(1232, false))
}

// queryFrom sends one query from the local address src (a 127/8 address).
func (e *env) queryFrom(src, network, name string, qtype uint16) *dns.Msg {
	e.t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.SetEdns0(1232, false)
	var la net.Addr = &net.UDPAddr{IP: net.ParseIP(src)}
	if network == "tcp" {
		la = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	c := &dns.Client{Net: network, Timeout: 5 * time.Second, Dialer: &net.Dialer{LocalAddr: la, Timeout: 5 * time.Second}}
	r, _, err := c.Exchange(m, e.dns)
	if err != nil {
		e.t.Fatalf("query %s from %s: %v", name, src, err)
	}
	return r
}

// get fetches an admin path and returns status and body.
func (e *env) get(path string) (int, string) {
	e.t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}
	defer c.CloseIdleConnections() // a test that counts goroutines polls metrics
	resp, err := c.Get(e.admin + path)
	if err != nil {
		e.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, string(b)
}

// metric returns the sum of the samples of metric name (with the
// jurisdns_ prefix) whose labels include every pair of labels ("k=v"),
// from a scrape of /metrics.
func (e *env) metric(name string, labels ...string) float64 {
	e.t.Helper()
	code, body := e.get("/metrics")
	if code != http.StatusOK {
		e.t.Fatalf("/metrics: %d", code)
	}
	return metricValue(e.t, body, "jurisdns_"+name, labels...)
}

func metricValue(t testing.TB, body, name string, labels ...string) float64 {
	t.Helper()
	var sum float64
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		series, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		metric, lbls, _ := strings.Cut(series, "{")
		if metric != name {
			continue
		}
		match := true
		for _, l := range labels {
			k, v, _ := strings.Cut(l, "=")
			if !strings.Contains(lbls, k+`="`+v+`"`) {
				match = false
				break
			}
		}
		if !match {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		sum += f
	}
	return sum
}

// ede returns the first EDE option of m, or nil.
func ede(m *dns.Msg) *dns.EDNS0_EDE {
	if opt := m.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if e, ok := o.(*dns.EDNS0_EDE); ok {
				return e
			}
		}
	}
	return nil
}

func rcode(m *dns.Msg) string { return dns.RcodeToString[m.Rcode] }

// wantRcode fails the test unless m has rcode.
func wantRcode(t testing.TB, what string, m *dns.Msg, want int) {
	t.Helper()
	if m.Rcode != want {
		t.Fatalf("%s: rcode %s, want %s\n%v", what, rcode(m), dns.RcodeToString[want], m)
	}
}

type appT = app.App

var appNew = newListening

// newListening is app.New, tried again when binding the listeners failed
// with EADDRINUSE: resolver.Server.Listen binds TCP on the port the kernel
// picked for UDP (port 0), which an outgoing TCP connection of another test
// may hold (see the report of issue 4).
func newListening(o app.Options) (*app.App, error) {
	for i := 0; ; i++ {
		a, err := app.New(o)
		if err == nil || i == 10 || !errors.Is(err, syscall.EADDRINUSE) {
			return a, err
		}
	}
}

const slogError = slog.LevelError

// newListServer serves h over HTTPS on 127.0.0.1 until the test ends; its
// Client() trusts it.
func newListServer(t testing.TB, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// listServer serves one list at /list.txt with an ETag, answering 304 to
// a matching If-None-Match; status, when set, replaces the answer.
type listServer struct {
	*httptest.Server
	mu       sync.Mutex
	body     string
	etag     string
	status   int
	requests int
	notMod   int    // 304 answers
	lastINM  string // If-None-Match of the last request
}

func newETagServer(t testing.TB, body string) *listServer {
	t.Helper()
	ls := &listServer{}
	ls.set(body)
	ls.Server = newListServer(t, func(w http.ResponseWriter, r *http.Request) {
		ls.mu.Lock()
		defer ls.mu.Unlock()
		ls.requests++
		ls.lastINM = r.Header.Get("If-None-Match")
		if ls.status != 0 {
			w.WriteHeader(ls.status)
			return
		}
		w.Header().Set("ETag", ls.etag)
		if ls.lastINM == ls.etag {
			ls.notMod++
			w.WriteHeader(http.StatusNotModified)
			return
		}
		_, _ = io.WriteString(w, ls.body)
	})
	return ls
}

// set changes the list (and its ETag).
func (ls *listServer) set(body string) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.body = body
	sum := sha256.Sum256([]byte(body))
	ls.etag = `"` + hex.EncodeToString(sum[:8]) + `"`
}

func (ls *listServer) setStatus(code int) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.status = code
}

func (ls *listServer) stats() (requests, notModified int, lastINM string) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return ls.requests, ls.notMod, ls.lastINM
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

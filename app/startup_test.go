package app_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// hangingListServer serves a list over HTTPS on 127.0.0.1 until hang is
// called; from then on it accepts every request and never answers it,
// until the test ends.
type hangingListServer struct {
	*listServer
	mu      sync.Mutex
	hanging bool
	started chan struct{} // a request arrived while hanging
	release chan struct{}
}

func newHangingListServer(t *testing.T, body string) *hangingListServer {
	t.Helper()
	h := &hangingListServer{started: make(chan struct{}, 16), release: make(chan struct{})}
	h.listServer = &listServer{}
	h.listServer.set(body)
	inner := newETagServer(t, body) // only for its handler's behaviour
	h.listServer.Server = newListServer(t, func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		hanging := h.hanging
		h.mu.Unlock()
		if hanging {
			h.started <- struct{}{}
			<-h.release
			return
		}
		inner.Config.Handler.ServeHTTP(w, r)
	})
	t.Cleanup(func() { close(h.release) }) // runs before the servers' Close
	return h
}

func (h *hangingListServer) hang() {
	h.mu.Lock()
	h.hanging = true
	h.mu.Unlock()
}

// TestStartupNeverWaitsOnListServer: with a last good copy in
// lists.cache_dir, a list server that accepts connections and never
// answers does not delay the start: DNS and admin listen, and the cached
// rules are enforced, within two seconds, although one download may take
// lists.timeout (30s) per attempt and lists.deadline (60s) in all. /readyz
// is 200 and names the source as not current while its download hangs in
// the background; Shutdown does not wait for it either.
func TestStartupNeverWaitsOnListServer(t *testing.T) {
	e := newEnv(t, nil)
	ls := newHangingListServer(t, remoteList(4, "cached-list.example"))
	e.opts.HTTPClient = ls.Client()
	cache := filepath.Join(e.dir, "cache")
	e.config(remoteConfig(ls.URL, cache, "") + "  - {id: other, on_load_failure: fail_closed, sources: [{name: o, url: \"" + ls.URL + "/other.txt\"}]}\n")
	first := e.start()
	if err := first.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	ls.hang()
	start := time.Now()
	a, err := newListening(e.options())
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	e.app, e.dns, e.admin = a, a.DNSAddrs()[0], "http://"+a.AdminAddr()
	wantRcode(t, "listed in the cached copy", e.query("udp", "www.cached-list.example", dns.TypeA), dns.RcodeNameError)
	code, body := e.get("/readyz")
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("start to serving took %v; want under 2s with a cached copy", took)
	}
	if code != http.StatusOK ||
		!strings.Contains(body, "remote/r: using the last good copy from ") || !strings.Contains(body, "first download in progress") {
		t.Errorf("/readyz = %d %s; want 200 naming remote/r as served from its last good copy", code, body)
	}
	if got := e.metric("reload_last_successful"); got != 1 {
		t.Errorf("reload_last_successful = %v on a fresh server, want 1 (the start-up load)", got)
	}
	select {
	case <-ls.started: // the background download reached the server
	case <-time.After(waitLimit):
		t.Fatal("no background download after the start")
	}
	stopped := time.Now()
	if err := a.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(stopped); took > 2*time.Second {
		t.Errorf("Shutdown took %v with a download hanging; want it cancelled", took)
	}
}

// TestStartupWithoutCopy: a source with no last good copy is handled by
// its jurisdiction's on_load_failure at once: fail_closed gives its
// clients SERVFAIL and /readyz (503: the jurisdiction is mandated) says the
// first download is in progress; when it arrives in the background the
// list applies and /readyz is 200. Under last_known_good there is nothing
// to keep, so the start waits for the download (see TestURLSourceUpdates).
func TestStartupWithoutCopy(t *testing.T) {
	e := newEnv(t, nil)
	gate := make(chan struct{})
	srv := newListServer(t, func(w http.ResponseWriter, _ *http.Request) {
		<-gate
		_, _ = io.WriteString(w, "strict-banned.example\n")
	})
	e.opts.HTTPClient = srv.Client()
	e.config(fmt.Sprintf(strictConfig, "mandated", "fail_closed", srv.URL))
	from := e.logs.mark()
	e.start()
	wantRcode(t, "before the first download", e.queryFrom("127.0.0.2", "udp", "anything.example", dns.TypeA), dns.RcodeServerFailure)
	code, body := e.get("/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "jurisdiction strict not loaded") ||
		!strings.Contains(body, "strict/s: no copy yet; first download in progress") {
		t.Errorf("/readyz = %d %s; want 503, strict not loaded, first download in progress", code, body)
	}
	close(gate)
	e.logs.waitFrom(t, from, "lists refreshed", 1)
	wantRcode(t, "after the first download", e.queryFrom("127.0.0.2", "udp", "strict-banned.example", dns.TypeA), dns.RcodeNameError)
	wantRcode(t, "after the first download, unlisted", e.queryFrom("127.0.0.2", "udp", "anything.example", dns.TypeA), dns.RcodeSuccess)
	if code, body := e.get("/readyz"); code != http.StatusOK || strings.Contains(body, "not_current") {
		t.Errorf("/readyz after the download = %d %s, want 200 with every source current", code, body)
	}
}

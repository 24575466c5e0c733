package app_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func noBackoff(int) time.Duration { return 0 }

// remoteList is a list of n entries: deepseek.com, the given names, and
// fillers up to n.
func remoteList(n int, names ...string) string {
	all := append([]string{"deepseek.com"}, names...)
	for i := len(all); i < n; i++ {
		all = append(all, fmt.Sprintf("filler%d.example", i))
	}
	return listOf(all)
}

func remoteConfig(url, cacheDir, extra string) string {
	return fmt.Sprintf(`lists: {cache_dir: %q}
default_jurisdictions: [remote]
jurisdictions:
  - id: remote
    sources:
      - {name: r, url: "%s/list.txt", min_entries: 2, max_shrink: 0.5, must_contain: [deepseek.com]%s}
`, cacheDir, url, extra)
}

// TestURLSourceUpdates: a URL list is loaded at startup; a refresh sends a
// conditional GET and gets 304; a changed list applies; an update that
// shrinks too much, one without a must_contain name, and a 500 are rejected
// and the previous list stays enforced; every rejection is counted.
func TestURLSourceUpdates(t *testing.T) {
	e := newEnv(t, nil)
	ls := newETagServer(t, remoteList(10, "v1.example"))
	e.opts.HTTPClient = ls.Client()
	e.opts.DownloadBackoff = noBackoff
	e.config(remoteConfig(ls.URL, filepath.Join(e.dir, "cache"), ""))
	a := e.start()
	ctx := context.Background()

	wantRcode(t, "v1", e.query("udp", "www.v1.example", dns.TypeA), dns.RcodeNameError)
	wantRcode(t, "deepseek", e.query("udp", "chat.deepseek.com", dns.TypeA), dns.RcodeNameError)
	req0, notMod0, _ := ls.stats() // 1, or more when the listeners had to be bound again
	fetches := func() map[string]float64 {
		out := map[string]float64{}
		for _, r := range []string{"downloaded", "not_modified", "cache", "error"} {
			out[r] = e.metric("list_fetches_total", "jurisdiction=remote", "source=r", "result="+r)
		}
		out["rejected"] = e.metric("list_fetch_rejected_total", "jurisdiction=remote", "source=r")
		out["retries"] = e.metric("list_fetch_retries_total", "jurisdiction=remote", "source=r")
		return out
	}
	fetch0 := fetches()
	if fetch0["downloaded"] < 1 {
		t.Errorf("list_fetches_total{result=downloaded} = %v after the start, want >= 1", fetch0["downloaded"])
	}

	// Unchanged: a conditional GET answered 304.
	if err := a.Refresh(ctx); err != nil {
		t.Fatalf("Refresh (304): %v", err)
	}
	req, notMod, inm := ls.stats()
	if req != req0+1 || notMod != notMod0+1 || inm == "" {
		t.Fatalf("a refresh: %d requests, %d answered 304, If-None-Match %q; want 1, 1, the ETag", req-req0, notMod-notMod0, inm)
	}
	wantRcode(t, "v1 after 304", e.query("udp", "www.v1.example", dns.TypeA), dns.RcodeNameError)

	// Changed: the new list applies once Refresh returns.
	ls.set(remoteList(10, "v1.example", "v2.example"))
	if err := a.Refresh(ctx); err != nil {
		t.Fatalf("Refresh (changed): %v", err)
	}
	wantRcode(t, "v2", e.query("udp", "www.v2.example", dns.TypeA), dns.RcodeNameError)
	if got := e.metric("list_entries", "jurisdiction=remote"); got != 10 {
		t.Errorf("list_entries{remote} = %v, want 10", got)
	}

	rejected := []struct {
		name   string
		update func()
		newRR  string // a name only the rejected update blocks
	}{
		{"shrinks by more than max_shrink", func() { ls.set(remoteList(2, "v3.example")) }, "v3.example"},
		{"misses a must_contain name", func() { ls.set(listOf([]string{"v4.example", "a.example", "b.example"})) }, "v4.example"},
		{"HTTP 500", func() { ls.setStatus(http.StatusInternalServerError) }, ""},
	}
	for _, tc := range rejected {
		failures := e.metric("list_refresh_failures_total", "jurisdiction=remote")
		tc.update()
		err := a.Refresh(ctx)
		if err == nil || !strings.Contains(err.Error(), "remote/r") {
			t.Errorf("%s: Refresh = %v, want an error naming remote/r", tc.name, err)
		}
		if tc.newRR != "" {
			wantRcode(t, tc.name+": name of the rejected list", e.query("udp", "www."+tc.newRR, dns.TypeA), dns.RcodeSuccess)
		}
		wantRcode(t, tc.name+": previous list", e.query("tcp", "www.v2.example", dns.TypeA), dns.RcodeNameError)
		if got := e.metric("list_refresh_failures_total", "jurisdiction=remote"); got != failures+1 {
			t.Errorf("%s: list_refresh_failures_total %v, want %v", tc.name, got, failures+1)
		}
	}
	// The downloader's counters per source: v2 downloaded, one 304, the
	// shrink and the must_contain miss rejected (the cached copy served),
	// the 500 retried three times.
	fetch1 := fetches()
	for k, want := range map[string]float64{"downloaded": 1, "not_modified": 1, "rejected": 2, "retries": 3} {
		if got := fetch1[k] - fetch0[k]; got != want {
			t.Errorf("list fetch counter %s: +%v during the refreshes, want +%v", k, got, want)
		}
	}
	if got := fetch1["cache"] + fetch1["error"] - fetch0["cache"] - fetch0["error"]; got != 3 {
		t.Errorf("list_fetches_total{result=cache|error}: +%v during the refreshes, want +3", got)
	}
	if got := e.metric("list_source_entries", "jurisdiction=remote", "source=r"); got != 10 {
		t.Errorf("list_source_entries{remote,r} = %v, want 10", got)
	}
	if got := e.metric("list_source_last_success_timestamp_seconds", "jurisdiction=remote", "source=r"); got <= 0 {
		t.Errorf("list_source_last_success_timestamp_seconds{remote,r} = %v", got)
	}
	// startup, 304, v2, shrink, must_contain, and the 500 with 3 retries
	if req, _, _ := ls.stats(); req != req0+1+1+1+1+4 {
		t.Errorf("%d requests after startup, want 8 (the 500 retried three times)", req-req0)
	}
}

// TestURLSourcePinMismatch: without a cache directory, an update whose body
// no longer matches the sha256 pin is rejected and the previous rules stay
// enforced (last_known_good from the running policy).
func TestURLSourcePinMismatch(t *testing.T) {
	e := newEnv(t, nil)
	good := remoteList(4, "pinned.example")
	ls := newETagServer(t, good)
	e.opts.HTTPClient = ls.Client()
	e.opts.DownloadBackoff = noBackoff
	e.config(remoteConfig(ls.URL, "", ", sha256: "+sha256Hex(good)))
	a := e.start()
	from := e.logs.mark()

	ls.set(good + "evil.example\n")
	if err := a.Refresh(context.Background()); err == nil {
		t.Fatal("Refresh accepted a body that fails the pin")
	}
	wantRcode(t, "pinned", e.query("udp", "pinned.example", dns.TypeA), dns.RcodeNameError)
	wantRcode(t, "changed body", e.query("udp", "evil.example", dns.TypeA), dns.RcodeSuccess)
	if len(e.logs.find(from, func(r logRecord) bool { return strings.Contains(r.Msg, "last known good") })) == 0 {
		t.Error("rejected update not logged as keeping the last known good rules")
	}
	if got := e.metric("list_refresh_failures_total", "jurisdiction=remote"); got != 1 {
		t.Errorf("list_refresh_failures_total = %v, want 1", got)
	}
}

// TestURLSourceCacheAtStartup: at startup the last good copy in cache_dir
// is served at once; the background download that follows fails (HTTP
// 500), is counted, and /readyz names the source as not current, serving
// the cached copy, until a refresh succeeds.
func TestURLSourceCacheAtStartup(t *testing.T) {
	e := newEnv(t, nil)
	ls := newETagServer(t, remoteList(4, "cached-list.example"))
	e.opts.HTTPClient = ls.Client()
	e.opts.DownloadBackoff = noBackoff
	e.config(remoteConfig(ls.URL, filepath.Join(e.dir, "cache"), ""))
	first := e.start()
	if err := first.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	ls.setStatus(http.StatusInternalServerError)
	from := e.logs.mark()
	a := e.start()
	wantRcode(t, "from the cached copy", e.query("udp", "cached-list.example", dns.TypeA), dns.RcodeNameError)
	e.logs.waitFrom(t, from, "refresh failed", 1) // the background download at start
	if len(e.logs.find(from, func(r logRecord) bool { return strings.Contains(r.Msg, "last good copy") })) == 0 {
		t.Error("use of the cached copy not logged")
	}
	if got := e.metric("list_refresh_failures_total", "jurisdiction=remote"); got != 1 {
		t.Errorf("list_refresh_failures_total = %v, want 1", got)
	}
	code, body := e.get("/readyz")
	if code != http.StatusOK || !strings.Contains(body, `"not_current":["remote/r: update failed; using the last good copy from `) ||
		strings.Contains(body, "HTTP 500") || strings.Contains(body, ls.URL) {
		t.Errorf("/readyz = %d %s; want 200 naming remote/r as not current, without the error (it may name the URL)", code, body)
	}
	if _, body := e.get("/api/status"); !strings.Contains(body, "remote/r: update failed; using the last good copy from ") ||
		!strings.Contains(body, "HTTP 500") {
		t.Errorf("/api/status not_current lacks the error:\n%s", body)
	}
	ls.setStatus(0)
	if err := a.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if code, body := e.get("/readyz"); code != http.StatusOK || strings.Contains(body, "not_current") {
		t.Errorf("/readyz after a good refresh = %d %s; want 200 with every source current", code, body)
	}
}

const strictConfig = `lists: {timeout: 300ms, max_size: 1024}
clients:
  - {name: strict-net, subnets: [127.0.0.2/32], jurisdictions: [strict]}
default_jurisdictions: []
jurisdictions:
  - id: strict
    title: Strict mandate
    tier: %s
    on_load_failure: %s
    sources: [{name: s, url: "%s/list.txt"}]
`

// TestFailClosed: a fail_closed jurisdiction whose URL fails with no cached
// copy gives its clients SERVFAIL with EDE 14 (Not Ready) saying the policy
// is not loaded, while other clients resolve; /readyz is 503 naming it
// (it is mandated). A refresh that loads it makes everything normal.
func TestFailClosed(t *testing.T) {
	closed := httptest.NewTLSServer(http.NotFoundHandler())
	closed.Close() // nothing listens there any more
	cases := []struct {
		name    string
		handler http.HandlerFunc // nil: the closed server
	}{
		{"unreachable", nil},
		{"too large", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(make([]byte, 4096)) }},
		{"too slow", nil},
		{"HTTP 500, then recovers", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			e.opts.DownloadBackoff = noBackoff
			url := closed.URL
			var ls *listServer
			if tc.name == "too slow" {
				// Headers and a first line, then nothing until the test
				// ends: every attempt runs out of lists.timeout.
				release := make(chan struct{})
				tc.handler = func(w http.ResponseWriter, _ *http.Request) {
					_, _ = w.Write([]byte("strict-banned.example\n"))
					w.(http.Flusher).Flush()
					<-release
				}
				defer close(release) // before the server's Close waits for the handler
			}
			switch {
			case tc.handler != nil:
				srv := newListServer(t, tc.handler)
				url = srv.URL
				e.opts.HTTPClient = srv.Client()
			case strings.HasPrefix(tc.name, "HTTP 500"):
				ls = newETagServer(t, "strict-banned.example\n")
				ls.setStatus(http.StatusInternalServerError)
				url = ls.URL
				e.opts.HTTPClient = ls.Client()
			}
			e.config(fmt.Sprintf(strictConfig, "mandated", "fail_closed", url))
			a := e.start()

			r := e.queryFrom("127.0.0.2", "udp", "anything.example", dns.TypeA)
			wantRcode(t, "strict client", r, dns.RcodeServerFailure)
			x := ede(r)
			if x == nil || x.InfoCode != dns.ExtendedErrorCodeNotReady || !strings.Contains(x.ExtraText, "strict: policy not loaded") {
				t.Errorf("strict client: EDE %v, want 14 saying strict is not loaded", x)
			}
			wantRcode(t, "strict client over TCP", e.queryFrom("127.0.0.2", "tcp", "anything.example", dns.TypeA), dns.RcodeServerFailure)
			wantRcode(t, "default client", e.query("udp", "anything.example", dns.TypeA), dns.RcodeSuccess)

			code, body := e.get("/readyz")
			if code != http.StatusServiceUnavailable || !strings.Contains(body, "jurisdiction strict not loaded") {
				t.Errorf("/readyz = %d %s, want 503 naming strict", code, body)
			}
			if ls == nil {
				return
			}
			ls.setStatus(0)
			if err := a.Refresh(context.Background()); err != nil {
				t.Fatalf("Refresh: %v", err)
			}
			wantRcode(t, "after recovery", e.queryFrom("127.0.0.2", "udp", "anything.example", dns.TypeA), dns.RcodeSuccess)
			wantRcode(t, "after recovery, listed", e.queryFrom("127.0.0.2", "udp", "strict-banned.example", dns.TypeA), dns.RcodeNameError)
			if code, body := e.get("/readyz"); code != http.StatusOK {
				t.Errorf("/readyz after recovery = %d %s, want 200", code, body)
			}
		})
	}
}

// TestFailOpen: a fail_open jurisdiction whose URL fails leaves its clients
// unfiltered, and says so loudly (error level).
func TestFailOpen(t *testing.T) {
	e := newEnv(t, nil)
	e.opts.DownloadBackoff = noBackoff
	ls := newETagServer(t, "strict-banned.example\n")
	ls.setStatus(http.StatusInternalServerError)
	e.opts.HTTPClient = ls.Client()
	e.config(fmt.Sprintf(strictConfig, "local", "fail_open", ls.URL))
	e.start()
	wantRcode(t, "fail_open client", e.queryFrom("127.0.0.2", "udp", "strict-banned.example", dns.TypeA), dns.RcodeSuccess)
	loud := e.logs.find(0, func(r logRecord) bool {
		return r.Level == slogError && strings.Contains(r.Msg, "NOT ENFORCED") && r.Attrs["jurisdiction"] == "strict"
	})
	if len(loud) == 0 {
		t.Error("fail_open not logged at error level")
	}
	if code, _ := e.get("/readyz"); code != http.StatusOK {
		t.Errorf("/readyz = %d, want 200 (strict is not mandated)", code)
	}
}

// fakeTimer hands the refresher's timers to the test.
type fakeTimer struct {
	waits chan time.Duration
	fire  chan time.Time
}

func newFakeTimer() *fakeTimer {
	return &fakeTimer{waits: make(chan time.Duration, 16), fire: make(chan time.Time)}
}

func (f *fakeTimer) timer(d time.Duration) (<-chan time.Time, func() bool) {
	f.waits <- d
	return f.fire, func() bool { return true }
}

func (f *fakeTimer) wait(t *testing.T) time.Duration {
	t.Helper()
	select {
	case d := <-f.waits:
		return d
	case <-time.After(waitLimit):
		t.Fatal("the refresher did not start a timer")
		return 0
	}
}

// TestPeriodicRefresh: with URL sources the refresher runs with the
// shortest refresh period (jittered); at each tick the sources whose
// period has come are fetched and the new list applies without a SIGHUP,
// the others are taken from the cache. Shutdown stops it. Without URL
// sources no refresher runs.
func TestPeriodicRefresh(t *testing.T) {
	e := newEnv(t, nil)
	fast := newETagServer(t, remoteList(3, "fast-v1.example"))
	slow := newETagServer(t, remoteList(3, "slow-v1.example"))
	var mu sync.Mutex
	now := time.Now()
	e.opts.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	ft := newFakeTimer()
	e.opts.RefreshTimer = ft.timer
	e.opts.HTTPClient = fast.Client() // the same test certificate for both
	e.opts.DownloadBackoff = noBackoff
	e.config(fmt.Sprintf(`lists: {cache_dir: %q}
default_jurisdictions: [remote]
jurisdictions:
  - id: remote
    sources:
      - {name: fast, url: "%s/list.txt", refresh: 1h}
      - {name: slow, url: "%s/list.txt"}
`, filepath.Join(e.dir, "cache"), fast.URL, slow.URL))
	a := e.start()
	fast0, _, _ := fast.stats() // 1, or more when the listeners had to be bound again
	slow0, _, _ := slow.stats()

	if d := ft.wait(t); d < 54*time.Minute || d > 66*time.Minute {
		t.Errorf("first wait %s, want 1h ±10%%", d)
	}
	fast.set(remoteList(3, "fast-v2.example"))
	slow.set(remoteList(3, "slow-v2.example"))
	advance(61 * time.Minute)
	from := e.logs.mark()
	ft.fire <- now
	e.logs.waitFrom(t, from, "lists refreshed", 1)
	ft.wait(t) // the refresher is waiting again

	wantRcode(t, "fast source refreshed", e.query("udp", "fast-v2.example", dns.TypeA), dns.RcodeNameError)
	wantRcode(t, "slow source not due", e.query("udp", "slow-v2.example", dns.TypeA), dns.RcodeSuccess)
	wantRcode(t, "slow source from the cache", e.query("udp", "slow-v1.example", dns.TypeA), dns.RcodeNameError)
	if req, _, _ := fast.stats(); req != fast0+1 {
		t.Errorf("fast source: %d requests at the tick, want 1", req-fast0)
	}
	if req, _, _ := slow.stats(); req != slow0 {
		t.Errorf("slow source: %d requests at the tick, want none (not due: 24h)", req-slow0)
	}

	// A day later both are due.
	advance(24 * time.Hour)
	from = e.logs.mark()
	ft.fire <- now
	e.logs.waitFrom(t, from, "lists refreshed", 1)
	ft.wait(t)
	wantRcode(t, "slow source refreshed", e.query("udp", "slow-v2.example", dns.TypeA), dns.RcodeNameError)

	if err := a.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-ft.waits:
		t.Errorf("a timer (%s) was started after Shutdown", d)
	default:
	}

	// No URL sources: no refresher.
	e2 := newEnv(t, nil)
	e2.write("list.txt", "blocked.example\n")
	e2.config(acmeConfig)
	ft2 := newFakeTimer()
	e2.opts.RefreshTimer = ft2.timer
	e2.start()
	if n := len(e2.logs.find(0, func(r logRecord) bool { return r.Msg == "periodic refresh of url list sources" })); n != 0 {
		t.Error("a refresher was started without URL sources")
	}
}

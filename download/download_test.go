package download

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jurisdns/jurisdns/blocklists"
)

func hexSum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestFetchConditionalGET(t *testing.T) {
	tests := []struct {
		name    string
		etag    string
		modTime time.Time
		// wantINM and wantIMS are the validators the second request must carry.
		wantINM, wantIMS string
	}{
		{name: "etag", etag: `"v1"`, wantINM: `"v1"`},
		{name: "last-modified", modTime: epoch.Add(-48 * time.Hour), wantIMS: epoch.Add(-48 * time.Hour).Format(http.TimeFormat)},
		{name: "both", etag: `"v1"`, modTime: epoch.Add(-48 * time.Hour), wantINM: `"v1"`, wantIMS: epoch.Add(-48 * time.Hour).Format(http.TimeFormat)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := makeList(10, true)
			srv := newListServer(t, true, body)
			srv.set(func(s *listServer) { s.etag, s.modTime = tt.etag, tt.modTime })
			dir := t.TempDir()
			h := newHarness(t, dir, srv.ts.Client())
			src := Source{Name: "deepseek-core", URL: srv.ts.URL + "/list.txt"}
			ctx := context.Background()

			first, err := h.Fetch(ctx, src, parseLines)
			if err != nil {
				t.Fatalf("first Fetch: %v", err)
			}
			if first.From != FromNetwork || string(first.Body) != body || first.Entries != 10 || first.Stale {
				t.Fatalf("first Fetch = From %q, Entries %d, Stale %v; want network, 10, fresh", first.From, first.Entries, first.Stale)
			}
			if first.SHA256 != hexSum(body) || first.ETag != tt.etag || first.Source != src.Name {
				t.Errorf("first Fetch: SHA256 %s, ETag %q, Source %q", first.SHA256, first.ETag, first.Source)
			}

			// The same Fetcher, then a new one on the same cache directory
			// (a restart): both must revalidate and get a 304.
			restarted := newHarness(t, dir, srv.ts.Client())
			restarted.clock = epoch.Add(24 * time.Hour)
			for i, f := range []*harness{h, restarted} {
				res, err := f.Fetch(ctx, src, parseLines)
				if err != nil {
					t.Fatalf("revalidation %d: %v", i, err)
				}
				if res.From != FromNotModified || string(res.Body) != body || res.Entries != 10 || res.Stale {
					t.Fatalf("revalidation %d = From %q, Entries %d, Stale %v; want not-modified", i, res.From, res.Entries, res.Stale)
				}
				if !res.FetchedAt.Equal(first.FetchedAt) || !res.CheckedAt.After(first.CheckedAt) {
					t.Errorf("revalidation %d: FetchedAt %v (want %v), CheckedAt %v (want later than %v)",
						i, res.FetchedAt, first.FetchedAt, res.CheckedAt, first.CheckedAt)
				}
			}
			requests, notMod, inm, ims := srv.stats()
			if requests != 3 || notMod != 2 {
				t.Fatalf("server saw %d requests, served %d 304s; want 3 and 2", requests, notMod)
			}
			for i := 1; i < 3; i++ {
				if inm[i] != tt.wantINM || ims[i] != tt.wantIMS {
					t.Errorf("request %d: If-None-Match %q, If-Modified-Since %q; want %q, %q", i, inm[i], ims[i], tt.wantINM, tt.wantIMS)
				}
			}
			if inm[0] != "" || ims[0] != "" {
				t.Errorf("first request was conditional: %q %q", inm[0], ims[0])
			}

			// A changed list is downloaded again.
			changed := makeList(12, true)
			srv.set(func(s *listServer) {
				s.body = changed
				if s.etag != "" {
					s.etag = `"v2"`
				}
				if !s.modTime.IsZero() {
					s.modTime = s.modTime.Add(time.Hour)
				}
			})
			res, err := h.Fetch(ctx, src, parseLines)
			if err != nil || res.From != FromNetwork || string(res.Body) != changed || res.Entries != 12 {
				t.Fatalf("after change: From %q, Entries %d, err %v; want network, 12", res.From, res.Entries, err)
			}
			if st := h.Stats()[src.Name]; st.Fetches != 3 || st.Network != 2 || st.NotModified != 1 || st.Entries != 12 {
				t.Errorf("Stats = %+v", st)
			}
		})
	}
}

func TestFetchRetriesThenSucceeds(t *testing.T) {
	body := makeList(5, true)
	srv := newListServer(t, true, body)
	srv.set(func(s *listServer) { s.failures = []int{500, 503} })
	h := newHarness(t, t.TempDir(), srv.ts.Client())

	res, err := h.Fetch(context.Background(), Source{Name: "s", URL: srv.ts.URL}, parseLines)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if res.From != FromNetwork || string(res.Body) != body {
		t.Errorf("From %q, body %q", res.From, res.Body)
	}
	if requests, _, _, _ := srv.stats(); requests != 3 {
		t.Errorf("server saw %d requests, want 3", requests)
	}
	if got := h.backoffCalls(); !reflect.DeepEqual(got, []int{1, 2}) {
		t.Errorf("Backoff called with %v, want [1 2]", got)
	}
	if !reflect.DeepEqual(h.sleeps, []time.Duration{time.Second, 2 * time.Second}) {
		t.Errorf("slept %v, want the Backoff durations [1s 2s]", h.sleeps)
	}
	if st := h.Stats()["s"]; st.Retries != 2 || st.Network != 1 {
		t.Errorf("Stats = %+v", st)
	}
}

// TestFetchFailures seeds the cache with a good list, makes the server fail,
// and checks the outcome with the cache (the last good copy, stale) and
// without (an error).
func TestFetchFailures(t *testing.T) {
	tests := []struct {
		name         string
		mode         string
		status       int
		src          func(*Source)
		wantAttempts int // attempts of the failing fetch
		wantErr      func(error) bool
		wantText     string
	}{
		{
			name: "500 forever", mode: "status", status: 500, wantAttempts: 1 + DefaultRetries,
			wantErr:  func(err error) bool { var se *StatusError; return errors.As(err, &se) && se.StatusCode == 500 },
			wantText: "attempt 4 of 4: HTTP 500 Internal Server Error",
		},
		{
			name: "404 is not retried", mode: "status", status: 404, wantAttempts: 1,
			wantErr:  func(err error) bool { var se *StatusError; return errors.As(err, &se) && se.StatusCode == 404 },
			wantText: "attempt 1 of 4: HTTP 404 Not Found",
		},
		{
			name: "429 is retried", mode: "status", status: 429, src: func(s *Source) { s.Retries = 1 }, wantAttempts: 2,
			wantErr: func(err error) bool { var se *StatusError; return errors.As(err, &se) && se.StatusCode == 429 },
		},
		{
			name: "slow response times out", mode: "slow", src: func(s *Source) { s.Timeout = 20 * time.Millisecond; s.Retries = 1 },
			wantAttempts: 2,
			wantErr:      func(err error) bool { return errors.Is(err, context.DeadlineExceeded) },
			wantText:     "timed out after 20ms",
		},
		{
			name: "Content-Length over the default cap", mode: "huge-length", wantAttempts: 1,
			wantErr:  func(err error) bool { return errors.Is(err, ErrTooLarge) },
			wantText: "exceeds the 64 MiB cap",
		},
		{
			name: "streamed body over the cap", mode: "huge-chunked", src: func(s *Source) { s.MaxSize = 1 << 20 }, wantAttempts: 1,
			wantErr:  func(err error) bool { return errors.Is(err, ErrTooLarge) },
			wantText: "body exceeds the 1 MiB cap",
		},
	}
	for _, tt := range tests {
		for _, withCache := range []bool{true, false} {
			name := tt.name + "/no cache"
			if withCache {
				name = tt.name + "/cache"
			}
			t.Run(name, func(t *testing.T) {
				body := makeList(10, true)
				srv := newListServer(t, true, body)
				h := newHarness(t, t.TempDir(), srv.ts.Client())
				src := Source{Name: "core", URL: srv.ts.URL + "/l"}
				ctx := context.Background()
				if withCache {
					if _, err := h.Fetch(ctx, src, parseLines); err != nil {
						t.Fatalf("seeding Fetch: %v", err)
					}
				}
				if tt.src != nil {
					tt.src(&src) // for the failing fetch only: a 20ms timeout would fail the seeding too
				}
				h.mu.Lock()
				h.backoffs = nil
				h.mu.Unlock()
				before, _, _, _ := srv.stats()
				srv.set(func(s *listServer) { s.mode, s.status = tt.mode, tt.status })

				res, err := h.Fetch(ctx, src, parseLines)
				after, _, _, _ := srv.stats()
				// A timed-out attempt may end before its request reaches
				// the handler, so count requests only for the others.
				if got := after - before; tt.mode != "slow" && got != tt.wantAttempts {
					t.Errorf("failing fetch made %d requests, want %d", got, tt.wantAttempts)
				}
				if got := len(h.backoffCalls()); got != tt.wantAttempts-1 {
					t.Errorf("failing fetch retried %d times, want %d", got, tt.wantAttempts-1)
				}
				failure := err
				if withCache {
					if err != nil {
						t.Fatalf("Fetch with a cached copy: %v", err)
					}
					if res.From != FromCache || !res.Stale || string(res.Body) != body || res.Entries != 10 {
						t.Fatalf("Fetch = From %q, Stale %v, Entries %d; want the stale cached copy", res.From, res.Stale, res.Entries)
					}
					failure = res.Err
					if !strings.Contains(h.logs.String(), "using the last good copy") {
						t.Errorf("fallback not logged:\n%s", h.logs)
					}
				} else if err == nil {
					t.Fatalf("Fetch without a cached copy succeeded: From %q", res.From)
				}
				if failure == nil || !tt.wantErr(failure) {
					t.Fatalf("failure %v is not the expected kind", failure)
				}
				if !strings.Contains(failure.Error(), tt.wantText) || !strings.Contains(failure.Error(), `source "core"`) ||
					!strings.Contains(failure.Error(), srv.ts.URL) {
					t.Errorf("error %q lacks %q, the source name or the URL", failure, tt.wantText)
				}
				st := h.Stats()["core"]
				if withCache && st.Cache != 1 || !withCache && st.Errors != 1 {
					t.Errorf("Stats = %+v", st)
				}
			})
		}
	}
}

// TestFetchRejections seeds a good list, serves a bad update and checks that
// it is rejected by the list loader's guards (or a parse error), counted,
// logged, and that the cache files stay untouched.
func TestFetchRejections(t *testing.T) {
	good := makeList(10, true)
	pin := strings.ToUpper(hexSum(good))
	tests := []struct {
		name     string
		src      Source // Name and URL are filled in
		guards   *blocklists.Guards
		update   string
		wantText string
		accept   bool // the update passes instead
	}{
		{name: "sha256 pin", src: Source{SHA256: pin}, guards: &blocklists.Guards{SHA256: pin}, update: makeList(10, true) + "new.example\n",
			wantText: "does not match the pinned " + hexSum(good)},
		{name: "shrink beyond max_shrink", guards: &blocklists.Guards{MaxShrink: 0.3}, update: makeList(6, true),
			wantText: "6 entries, shrunk from 10 by more than max_shrink 0.3"},
		{name: "shrink within max_shrink", guards: &blocklists.Guards{MaxShrink: 0.3}, update: makeList(7, true), accept: true},
		{name: "must_contain missing", guards: &blocklists.Guards{MustContain: []string{"deepseek.com", "ai1.example"}},
			update: makeList(12, false), wantText: "must_contain deepseek.com: not blocked by this source"},
		{name: "must_contain present", guards: &blocklists.Guards{MustContain: []string{"deepseek.com", "ai1.example"}},
			update: makeList(12, true), accept: true},
		{name: "min_entries", guards: &blocklists.Guards{MinEntries: 5}, update: makeList(4, true),
			wantText: "4 entries, fewer than min_entries 5"},
		{name: "empty body", guards: &blocklists.Guards{}, update: "",
			wantText: "no entries (an empty list is rejected unless the source sets allow_empty: true)"},
		{name: "parse error", update: "deepseek.com\nnot a name\n", wantText: `line 2: not a name: "not a name"`},
	}
	for _, tt := range tests {
		for _, withCache := range []bool{true, false} {
			name := tt.name + "/no cache dir"
			if withCache {
				name = tt.name + "/cache dir"
			}
			t.Run(name, func(t *testing.T) {
				srv := newListServer(t, true, good)
				dir := ""
				if withCache {
					dir = t.TempDir()
				}
				h := newHarness(t, dir, srv.ts.Client())
				src := tt.src
				src.Name, src.URL = "core", srv.ts.URL
				accept := parseLines
				if tt.guards != nil {
					accept = guarded(*tt.guards)
				}
				ctx := context.Background()
				if _, err := h.Fetch(ctx, src, accept); err != nil {
					t.Fatalf("seeding Fetch: %v", err)
				}
				before := snapshot(t, dir)
				srv.set(func(s *listServer) { s.body = tt.update })

				res, err := h.Fetch(ctx, src, accept)
				if tt.accept {
					if err != nil || res.From != FromNetwork || string(res.Body) != tt.update {
						t.Fatalf("update not accepted: From %q, err %v", res.From, err)
					}
					return
				}
				rejection := err
				if withCache {
					if err != nil {
						t.Fatalf("Fetch: %v", err)
					}
					if res.From != FromCache || !res.Stale || string(res.Body) != good || res.Entries != 10 {
						t.Fatalf("Fetch = From %q, Stale %v, Entries %d; want the stale previous copy", res.From, res.Stale, res.Entries)
					}
					rejection = res.Err
				}
				var rej *RejectedError
				if !errors.As(rejection, &rej) {
					t.Fatalf("got %v (%T), want a *RejectedError", rejection, rejection)
				}
				var guard *blocklists.GuardError
				if (tt.name == "parse error") == errors.As(rej, &guard) || rej.Unwrap() == nil {
					t.Errorf("RejectedError.Unwrap() = %v (%T)", rej.Unwrap(), rej.Unwrap())
				}
				if rej.Source != "core" || rej.URL != srv.ts.URL || !strings.Contains(rej.Reason, tt.wantText) {
					t.Errorf("RejectedError = %+v; want reason containing %q", rej, tt.wantText)
				}
				if got := snapshot(t, dir); !reflect.DeepEqual(got, before) {
					t.Errorf("cache directory changed by a rejected update:\nbefore %v\nafter  %v", before, got)
				}
				if st := h.Stats()["core"]; st.Rejected != 1 {
					t.Errorf("Stats.Rejected = %d, want 1", st.Rejected)
				}
				if !strings.Contains(h.logs.String(), "list update rejected") {
					t.Errorf("rejection not logged:\n%s", h.logs)
				}
				// The previous copy is still the one revalidated and served.
				srv.set(func(s *listServer) { s.body = good })
				if res, err := h.Fetch(ctx, src, accept); err != nil || string(res.Body) != good {
					t.Errorf("after restoring the list: %v", err)
				}
			})
		}
	}
}

func TestFetchFirstDownloadRejected(t *testing.T) {
	srv := newListServer(t, true, makeList(3, true))
	h := newHarness(t, t.TempDir(), srv.ts.Client())
	_, err := h.Fetch(context.Background(), Source{Name: "s", URL: srv.ts.URL}, guarded(blocklists.Guards{MinEntries: 100}))
	var rej *RejectedError
	if !errors.As(err, &rej) {
		t.Fatalf("err = %v, want a *RejectedError", err)
	}
	if files := snapshot(t, h.dir); len(files) != 0 {
		t.Errorf("rejected first download wrote %v", files)
	}
	if st := h.Stats()["s"]; st.Errors != 1 || st.Rejected != 1 {
		t.Errorf("Stats = %+v", st)
	}
}

func TestFetchSchemesAndRedirects(t *testing.T) {
	plain := newListServer(t, false, makeList(3, true))
	secure := newListServer(t, true, makeList(3, true))
	redirector := newListServer(t, true, "")
	redirector.set(func(s *listServer) { s.mode, s.location = "redirect", plain.ts.URL+"/l" })
	client := secure.ts.Client() // trusts every httptest TLS server's certificate

	tests := []struct {
		name     string
		src      Source
		wantErr  string // empty: success
		wantSent int    // requests that reached the plain server
	}{
		{name: "http refused", src: Source{URL: plain.ts.URL}, wantErr: "plain http:// needs allow_http"},
		{name: "http allowed", src: Source{URL: plain.ts.URL, AllowHTTP: true}, wantSent: 1},
		{name: "https", src: Source{URL: secure.ts.URL}},
		{name: "ftp refused", src: Source{URL: "ftp://127.0.0.1/list"}, wantErr: `scheme "ftp" not supported`},
		{name: "file refused", src: Source{URL: "file:///etc/passwd"}, wantErr: `scheme "file" not supported`},
		{name: "redirect to http refused", src: Source{URL: redirector.ts.URL}, wantErr: "redirect refused to " + plain.ts.URL},
		{name: "redirect to http allowed", src: Source{URL: redirector.ts.URL, AllowHTTP: true}, wantSent: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, t.TempDir(), client)
			before, _, _, _ := plain.stats()
			tt.src.Name = "s"
			res, err := h.Fetch(context.Background(), tt.src, parseLines)
			after, _, _, _ := plain.stats()
			if after-before != tt.wantSent {
				t.Errorf("plain server got %d requests, want %d", after-before, tt.wantSent)
			}
			if tt.wantErr == "" {
				if err != nil || res.From != FromNetwork || res.Entries != 3 {
					t.Fatalf("Fetch: From %q, err %v", res.From, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			}
			if calls := h.backoffCalls(); len(calls) != 0 {
				t.Errorf("a refused scheme was retried: %v", calls)
			}
		})
	}
}

func TestFetchTLSNeedsTrustedCertificate(t *testing.T) {
	srv := newListServer(t, true, makeList(3, true))
	h := newHarness(t, "", nil) // the default client does not trust the test certificate
	_, err := h.Fetch(context.Background(), Source{Name: "s", URL: srv.ts.URL}, parseLines)
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("err = %v, want a certificate error", err)
	}
	if calls := h.backoffCalls(); len(calls) != 0 {
		t.Errorf("a certificate error was retried: %v", calls)
	}
}

func TestFetchRedactsCredentials(t *testing.T) {
	srv := newListServer(t, true, "")
	srv.set(func(s *listServer) { s.mode, s.status = "status", 500 })
	u, err := url.Parse(srv.ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword("user", "s3cret")
	h := newHarness(t, t.TempDir(), srv.ts.Client())
	_, err = h.Fetch(context.Background(), Source{Name: "s", URL: u.String(), Retries: -1}, parseLines)
	if err == nil {
		t.Fatal("Fetch succeeded against a failing server")
	}
	for what, text := range map[string]string{"error": err.Error(), "log": h.logs.String()} {
		if strings.Contains(text, "s3cret") {
			t.Errorf("%s leaks the password: %s", what, text)
		}
	}
	if requests, _, _, _ := srv.stats(); requests != 1 {
		t.Errorf("Retries -1: server saw %d requests, want 1", requests)
	}
}

func TestSourceValidate(t *testing.T) {
	tests := []struct {
		name    string
		src     Source
		wantErr string
	}{
		{name: "ok", src: Source{Name: "a", URL: "https://lists.example/a.txt", SHA256: strings.Repeat("Ab", 32)}},
		{name: "no name", src: Source{URL: "https://lists.example/a.txt"}, wantErr: "has no name"},
		{name: "bad pin", src: Source{Name: "a", URL: "https://lists.example/a", SHA256: "abc"}, wantErr: "not 64 hex digits"},
		{name: "negative", src: Source{Name: "a", URL: "https://lists.example/a", Timeout: -1}, wantErr: "must not be negative"},
		{name: "no host", src: Source{Name: "a", URL: "https:///a"}, wantErr: "no host"},
		{name: "bad URL", src: Source{Name: "a", URL: "https://[::1"}, wantErr: "bad URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.src.Validate()
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("Validate() = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestFetchNeedsAccept(t *testing.T) {
	h := newHarness(t, "", nil)
	if _, err := h.Fetch(context.Background(), Source{Name: "s", URL: "https://127.0.0.1/"}, nil); err == nil {
		t.Fatal("Fetch with a nil Accept succeeded")
	}
}

func TestFetchConcurrent(t *testing.T) {
	srv := newListServer(t, true, makeList(10, true))
	srv.set(func(s *listServer) { s.etag = `"x"` })
	h := newHarness(t, t.TempDir(), srv.ts.Client())
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Go(func() {
			src := Source{Name: []string{"a", "b"}[i%2], URL: srv.ts.URL}
			res, err := h.Fetch(context.Background(), src, guarded(blocklists.Guards{MaxShrink: 0.1, MinEntries: 10}))
			if err == nil && res.Entries != 10 {
				err = errors.New("wrong entry count")
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st := h.Stats()
	if st["a"].Network != 1 || st["b"].Network != 1 || st["a"].NotModified != 7 || st["b"].NotModified != 7 {
		t.Errorf("Stats = %+v; want one download and seven 304s per source", st)
	}
}

func TestFormatSize(t *testing.T) {
	for n, want := range map[int64]string{64 << 20: "64 MiB", 1 << 30: "1 GiB", 2048: "2 KiB", 1536: "1536 bytes", 1000: "1000 bytes"} {
		if got := formatSize(n); got != want {
			t.Errorf("formatSize(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestDefaultBackoffAndSleep(t *testing.T) {
	for attempt, max := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 5: 16 * time.Second, 6: 30 * time.Second, 50: 30 * time.Second} {
		for range 100 {
			if d := defaultBackoff(attempt); d < max/2 || d > max {
				t.Fatalf("defaultBackoff(%d) = %v, want within [%v, %v]", attempt, d, max/2, max)
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := sleepCtx(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("sleepCtx on a cancelled context = %v", err)
	}
	if err := sleepCtx(context.Background(), 0); err != nil {
		t.Errorf("sleepCtx(0) = %v", err)
	}
}

// TestFetchCacheWriteFailure: an accepted list is returned even when the
// cache directory cannot be written; the failure is logged.
func TestFetchCacheWriteFailure(t *testing.T) {
	srv := newListServer(t, true, makeList(3, true))
	notADir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notADir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, notADir, srv.ts.Client())
	res, err := h.Fetch(context.Background(), Source{Name: "s", URL: srv.ts.URL}, parseLines)
	if err != nil || res.From != FromNetwork || res.Entries != 3 {
		t.Fatalf("Fetch: From %q, err %v", res.From, err)
	}
	if !strings.Contains(h.logs.String(), "could not save the list to the cache") {
		t.Errorf("cache write failure not logged:\n%s", h.logs)
	}
}

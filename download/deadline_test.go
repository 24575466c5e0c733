package download

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// silentServer accepts TCP connections on 127.0.0.1 and never answers: the
// list server that hangs a download until its timeout.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return "http://" + ln.Addr().String() + "/list.txt"
}

// TestFetchDeadlineBoundsAllAttempts: against a server that never answers,
// four attempts of a 300ms timeout with real waits between them would take
// well over a second; the deadline of 700ms ends the whole fetch, which
// falls back to the cached copy (or fails without one) and says why.
func TestFetchDeadlineBoundsAllAttempts(t *testing.T) {
	for _, withCache := range []bool{true, false} {
		name := "no cache"
		if withCache {
			name = "cache"
		}
		t.Run(name, func(t *testing.T) {
			body := makeList(5, true)
			good := newListServer(t, false, body)
			dir := t.TempDir()
			var mu sync.Mutex
			var reports []Progress
			f := New(Options{
				CacheDir: dir,
				Client:   &http.Client{},
				Backoff:  func(int) time.Duration { return 150 * time.Millisecond },
				Progress: func(p Progress) { mu.Lock(); reports = append(reports, p); mu.Unlock() },
			})
			src := Source{Name: "core", URL: silentServer(t), AllowHTTP: true, Timeout: 300 * time.Millisecond, Deadline: 700 * time.Millisecond}
			if withCache {
				// Seed the cache entry of src through a server that answers.
				seed := src
				seed.URL = good.ts.URL + "/list.txt"
				if _, err := f.Fetch(context.Background(), seed, parseLines); err != nil {
					t.Fatal(err)
				}
				copyCache(t, f, seed, src)
			}
			mu.Lock()
			reports = nil
			mu.Unlock()

			start := time.Now()
			res, err := f.Fetch(context.Background(), src, parseLines)
			took := time.Since(start)
			if took > 1500*time.Millisecond {
				t.Errorf("Fetch took %v; the deadline is 700ms", took)
			}
			failure := err
			if withCache {
				if err != nil || !res.Stale || string(res.Body) != body {
					t.Fatalf("Fetch = stale %v, err %v; want the cached copy", res.Stale, err)
				}
				failure = res.Err
			} else if err == nil {
				t.Fatal("Fetch without a cached copy succeeded")
			}
			if !errors.Is(failure, context.DeadlineExceeded) || !strings.Contains(failure.Error(), "deadline of 700ms for all attempts") {
				t.Errorf("failure = %v; want the deadline for all attempts named", failure)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(reports) < 2 || reports[0].Attempt != 1 || reports[0].Attempts != 1+DefaultRetries || !reports[len(reports)-1].Done {
				t.Fatalf("progress reports = %+v; want attempt 1 of 4 first and Done last", reports)
			}
			retried := false
			for _, r := range reports {
				retried = retried || r.RetryIn > 0 && r.Err != nil
				if r.Answered {
					t.Errorf("a silent server reported as answered: %+v", r)
				}
			}
			if !retried {
				t.Errorf("no progress report of a retry wait: %+v", reports)
			}
		})
	}
}

// copyCache makes the cache entry of from serve as the one of to (a source
// whose server went silent after its first download).
func copyCache(t *testing.T, f *Fetcher, from, to Source) {
	t.Helper()
	res, ok := f.Cached(from)
	if !ok {
		t.Fatal("no cached copy to copy")
	}
	to = to.withDefaults()
	u, _ := to.check()
	m := meta{Version: metaVersion, Name: to.Name, URL: u.Redacted(), SHA256: res.SHA256, Size: int64(len(res.Body)),
		Entries: res.Entries, FetchedAt: res.FetchedAt, CheckedAt: res.CheckedAt}
	if err := f.writeCache(cacheKey(to), m, res.Body); err != nil {
		t.Fatal(err)
	}
}

// TestFetchRetryNotStartedPastDeadline: a backoff longer than what is left
// of the deadline ends the fetch at once instead of sleeping past it.
func TestFetchRetryNotStartedPastDeadline(t *testing.T) {
	srv := newListServer(t, true, makeList(3, true))
	srv.set(func(s *listServer) { s.mode, s.status = "status", 503 })
	slept := false
	f := New(Options{
		Client:  srv.ts.Client(),
		Backoff: func(int) time.Duration { return time.Hour },
		Sleep:   func(context.Context, time.Duration) error { slept = true; return nil },
	})
	_, err := f.Fetch(context.Background(), Source{Name: "s", URL: srv.ts.URL, Deadline: time.Minute}, parseLines)
	if err == nil || slept {
		t.Fatalf("err %v, slept %v; want an error without a sleep", err, slept)
	}
	if !strings.Contains(err.Error(), "attempt 1 of 4") || !strings.Contains(err.Error(), "would pass the deadline of 1m0s") ||
		!errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v", err)
	}
	var se *StatusError
	if !errors.As(err, &se) || se.StatusCode != 503 {
		t.Errorf("err %v does not carry the 503", err)
	}
}

// TestFetchProgressCountsBytes: a body larger than one read is reported
// with its length and a final Done.
func TestFetchProgressCountsBytes(t *testing.T) {
	body := makeList(20000, true)
	srv := newListServer(t, true, body)
	var last Progress
	n := 0
	f := New(Options{Client: srv.ts.Client(), Progress: func(p Progress) { last = p; n++ }})
	if _, err := f.Fetch(context.Background(), Source{Name: "s", URL: srv.ts.URL}, parseLines); err != nil {
		t.Fatal(err)
	}
	if !last.Done || last.Err != nil || !last.Answered || last.Bytes != int64(len(body)) || last.Total != int64(len(body)) || n < 3 {
		t.Errorf("last progress = %+v after %d reports; want Done with %d bytes of %d", last, n, len(body), len(body))
	}
}

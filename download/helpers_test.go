package download

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jurisdns/jurisdns/blocklists"
)

// listServer serves one list with http.ServeContent (so ETag and
// Last-Modified preconditions follow net/http), or fails as its mode says.
type listServer struct {
	t  *testing.T
	ts *httptest.Server

	mu       sync.Mutex
	body     string
	etag     string    // sent when set
	modTime  time.Time // Last-Modified when not zero
	mode     string    // "", "status", "slow", "huge-length", "huge-chunked", "redirect"
	status   int       // for mode "status"
	failures []int     // statuses served first, one per request, before the mode applies
	location string    // for mode "redirect"
	requests int
	notMod   int      // 304s served
	inm, ims []string // If-None-Match and If-Modified-Since received
	done     chan struct{}
}

func newListServer(t *testing.T, tlsServer bool, body string) *listServer {
	t.Helper()
	s := &listServer{t: t, body: body, done: make(chan struct{})}
	s.ts = httptest.NewUnstartedServer(s)
	// TLS handshakes cut short by failing or timed-out clients are expected.
	s.ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	if tlsServer {
		s.ts.StartTLS()
	} else {
		s.ts.Start()
	}
	t.Cleanup(func() {
		close(s.done) // unblocks a slow handler whatever the client did
		s.ts.Close()
	})
	return s
}

func (s *listServer) set(update func(s *listServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	update(s)
}

func (s *listServer) stats() (requests, notModified int, inm, ims []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests, s.notMod, append([]string(nil), s.inm...), append([]string(nil), s.ims...)
}

func (s *listServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	s.inm = append(s.inm, r.Header.Get("If-None-Match"))
	s.ims = append(s.ims, r.Header.Get("If-Modified-Since"))
	if len(s.failures) > 0 {
		code := s.failures[0]
		s.failures = s.failures[1:]
		s.mu.Unlock()
		http.Error(w, "injected failure", code)
		return
	}
	body, etag, modTime, mode, status, location := s.body, s.etag, s.modTime, s.mode, s.status, s.location
	s.mu.Unlock()

	switch mode {
	case "status":
		http.Error(w, "injected failure", status)
		return
	case "slow":
		// Never answer: abort the connection without a response once the
		// client gives up (returning would send an empty 200 that can race
		// the client's cancellation).
		select {
		case <-r.Context().Done():
		case <-s.done:
		}
		panic(http.ErrAbortHandler)
	case "huge-length":
		w.Header().Set("Content-Length", strconv.Itoa(DefaultMaxSize+1))
		w.WriteHeader(http.StatusOK)
		return
	case "huge-chunked":
		chunk := bytes.Repeat([]byte("a.example\n"), 1000)
		for range 300 { // 3 MB, no Content-Length
			if _, err := w.Write(chunk); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
		return
	case "redirect":
		http.Redirect(w, r, location, http.StatusFound)
		return
	}
	if etag != "" {
		w.Header().Set("ETag", etag)
	}
	rec := &statusRecorder{ResponseWriter: w}
	http.ServeContent(rec, r, "", modTime, strings.NewReader(body))
	if rec.code == http.StatusNotModified {
		s.mu.Lock()
		s.notMod++
		s.mu.Unlock()
	}
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

// syncBuffer collects log output from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// harness is a Fetcher with a stepping clock, instant recorded backoff and
// captured logs.
type harness struct {
	*Fetcher
	dir  string
	logs *syncBuffer

	mu       sync.Mutex
	clock    time.Time
	backoffs []int
	sleeps   []time.Duration
}

var epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newHarness(t *testing.T, dir string, client *http.Client) *harness {
	t.Helper()
	h := &harness{dir: dir, logs: new(syncBuffer), clock: epoch}
	h.Fetcher = New(Options{
		CacheDir: dir,
		Client:   client,
		Logger:   slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now: func() time.Time {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.clock = h.clock.Add(time.Hour)
			return h.clock
		},
		Backoff: func(attempt int) time.Duration {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.backoffs = append(h.backoffs, attempt)
			return time.Duration(attempt) * time.Second
		},
		Sleep: func(ctx context.Context, d time.Duration) error {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.sleeps = append(h.sleeps, d)
			return ctx.Err()
		},
	})
	return h
}

func (h *harness) backoffCalls() []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]int(nil), h.backoffs...)
}

// parseLines is an Accept for one name per line ('#' comments) without
// guards; a line with a space is a parse error.
func parseLines(body []byte, _ int) (int, error) {
	set := make(map[string]bool)
	for i, line := range strings.Split(string(body), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.ContainsAny(line, " \t") {
			return 0, fmt.Errorf("line %d: not a name: %q", i+1, line)
		}
		set[line] = true
	}
	return len(set), nil
}

// guarded is the Accept the program passes: the list loader
// (blocklists.Load) parses a domains list and checks g, with the baseline
// Fetch gives.
func guarded(g blocklists.Guards) Accept {
	return func(body []byte, baseline int) (int, error) {
		l, err := blocklists.Load(bytes.NewReader(body), blocklists.ParseOptions{Source: "test"}, g, baseline)
		if err != nil {
			return 0, err
		}
		return l.Stats.Rules, nil
	}
}

// makeList returns a list of n names, the first deepseek.com when deepseek.
func makeList(n int, deepseek bool) string {
	var b strings.Builder
	b.WriteString("# test list\n")
	for i := range n {
		if i == 0 && deepseek {
			b.WriteString("deepseek.com\n")
			continue
		}
		fmt.Fprintf(&b, "ai%d.example\n", i)
	}
	return b.String()
}

// snapshot reads every file of dir (nil when dir does not exist).
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]string)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(b)
	}
	return out
}

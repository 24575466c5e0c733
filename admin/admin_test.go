package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/jurisdns/jurisdns/metrics"
)

// start creates and starts a server on 127.0.0.1:0 and shuts it down at the
// end of the test.
func start(t *testing.T, opts Options) *Server {
	t.Helper()
	opts.Addr = "127.0.0.1:0"
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := s.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return s
}

type response struct {
	status int
	header http.Header
	body   string
}

func get(t *testing.T, s *Server, path string, header map[string]string) response {
	t.Helper()
	return do(t, http.MethodGet, "http://"+s.Addr()+path, header)
}

func do(t *testing.T, method, url string, header map[string]string) response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, string(b)}
}

func writeToken(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestHealthz(t *testing.T) {
	t.Parallel()
	s := start(t, Options{})
	r := get(t, s, "/healthz", nil)
	if r.status != http.StatusOK || r.body != "ok" {
		t.Fatalf("GET /healthz = %d %q, want 200 \"ok\"", r.status, r.body)
	}
	if r := do(t, http.MethodPost, "http://"+s.Addr()+"/healthz", nil); r.status != http.StatusMethodNotAllowed {
		t.Fatalf("POST /healthz = %d, want 405", r.status)
	}
	if r := do(t, http.MethodHead, "http://"+s.Addr()+"/healthz", nil); r.status != http.StatusOK {
		t.Fatalf("HEAD /healthz = %d, want 200", r.status)
	}
	if r := get(t, s, "/nope", nil); r.status != http.StatusNotFound {
		t.Fatalf("GET /nope = %d, want 404", r.status)
	}
}

func TestReadyz(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		ready       func() (bool, []string)
		wantStatus  int
		wantReady   bool
		wantMissing []string
	}{
		{name: "nil func is ready", ready: nil, wantStatus: 200, wantReady: true},
		{name: "ready", ready: func() (bool, []string) { return true, nil }, wantStatus: 200, wantReady: true},
		{name: "not ready", ready: func() (bool, []string) { return false, []string{"au-gov", "us-gov"} },
			wantStatus: 503, wantMissing: []string{"au-gov", "us-gov"}},
		{name: "not ready without reason", ready: func() (bool, []string) { return false, nil },
			wantStatus: 503, wantMissing: []string{"unknown"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := start(t, Options{Ready: tc.ready})
			r := get(t, s, "/readyz", nil)
			if r.status != tc.wantStatus {
				t.Fatalf("status = %d, want %d (body %s)", r.status, tc.wantStatus, r.body)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			var got struct {
				Ready   *bool    `json:"ready"`
				Missing []string `json:"missing"`
			}
			if err := json.Unmarshal([]byte(r.body), &got); err != nil {
				t.Fatalf("body %q: %v", r.body, err)
			}
			if got.Ready == nil || *got.Ready != tc.wantReady || strings.Join(got.Missing, ",") != strings.Join(tc.wantMissing, ",") {
				t.Fatalf("body = %s, want ready=%v missing=%v", r.body, tc.wantReady, tc.wantMissing)
			}
			if tc.wantReady && strings.TrimSpace(r.body) != `{"ready":true}` {
				t.Fatalf("body = %q, want {\"ready\":true}", r.body)
			}
		})
	}
}

// Degraded keeps /readyz at 200 and says what is degraded; not ready
// still wins (503); draining shows only "shutting down".
func TestReadyzDegraded(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	ready, degraded := true, []string{"enforcement log not writing"}
	s := start(t, Options{
		Ready: func() (bool, []string) {
			mu.Lock()
			defer mu.Unlock()
			if ready {
				return true, nil
			}
			return false, []string{"enforcement log not writing"}
		},
		Degraded: func() []string { mu.Lock(); defer mu.Unlock(); return degraded },
	})
	want := func(status int, body string) {
		t.Helper()
		r := get(t, s, "/readyz", nil)
		if r.status != status || strings.TrimSpace(r.body) != body {
			t.Fatalf("/readyz = %d %s, want %d %s", r.status, r.body, status, body)
		}
	}
	want(200, `{"ready":true,"status":"degraded","degraded":["enforcement log not writing"]}`)
	mu.Lock()
	ready = false
	mu.Unlock()
	want(503, `{"ready":false,"missing":["enforcement log not writing"],"status":"degraded","degraded":["enforcement log not writing"]}`)
	mu.Lock()
	ready, degraded = true, nil
	mu.Unlock()
	want(200, `{"ready":true}`)
	mu.Lock()
	degraded = []string{"x"}
	mu.Unlock()
	s.SetDraining()
	want(503, `{"ready":false,"missing":["shutting down"]}`)
}

func TestReadyzFollowsReadyFunc(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	missing := []string{"au-gov"}
	s := start(t, Options{Ready: func() (bool, []string) {
		mu.Lock()
		defer mu.Unlock()
		return len(missing) == 0, missing
	}})
	if r := get(t, s, "/readyz", nil); r.status != 503 {
		t.Fatalf("before load: %d", r.status)
	}
	mu.Lock()
	missing = nil
	mu.Unlock()
	if r := get(t, s, "/readyz", nil); r.status != 200 {
		t.Fatalf("after load: %d %s", r.status, r.body)
	}
}

// TestReadyzNotCurrent: sources that are not current are listed whether
// the server is ready or not, and not while draining.
func TestReadyzNotCurrent(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	ready := true
	s := start(t, Options{
		Ready: func() (bool, []string) {
			mu.Lock()
			defer mu.Unlock()
			return ready, []string{"jurisdiction x not loaded"}
		},
		NotCurrent: func() []string { return []string{"corp/list: using the last good copy from 2026-12-01T00:00:00Z"} },
	})
	want := `"not_current":["corp/list: using the last good copy from 2026-12-01T00:00:00Z"]`
	if r := get(t, s, "/readyz", nil); r.status != 200 || strings.TrimSpace(r.body) != `{"ready":true,`+want+`}` {
		t.Errorf("ready: %d %s", r.status, r.body)
	}
	mu.Lock()
	ready = false
	mu.Unlock()
	if r := get(t, s, "/readyz", nil); r.status != 503 || !strings.Contains(r.body, `"missing":["jurisdiction x not loaded"],`+want) {
		t.Errorf("not ready: %d %s", r.status, r.body)
	}
	s.SetDraining()
	if r := get(t, s, "/readyz", nil); r.status != 503 || strings.Contains(r.body, "not_current") {
		t.Errorf("draining: %d %s", r.status, r.body)
	}
}

func TestDraining(t *testing.T) {
	t.Parallel()
	s := start(t, Options{Ready: func() (bool, []string) { return true, nil }})
	if r := get(t, s, "/readyz", nil); r.status != 200 {
		t.Fatalf("before draining: %d", r.status)
	}
	s.SetDraining()
	for range 2 {
		r := get(t, s, "/readyz", nil)
		if r.status != http.StatusServiceUnavailable || strings.TrimSpace(r.body) != `{"ready":false,"missing":["shutting down"]}` {
			t.Fatalf("draining: %d %q", r.status, r.body)
		}
	}
	if r := get(t, s, "/healthz", nil); r.status != 200 {
		t.Fatalf("healthz while draining: %d", r.status)
	}
}

func TestMetricsScrape(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	s := start(t, Options{Metrics: m.Handler()})
	before := get(t, s, "/metrics", nil)
	if before.status != 200 || !strings.Contains(before.body, "\njurisdns_rate_limited_total 0\n") {
		t.Fatalf("first scrape: %d, lacks jurisdns_rate_limited_total 0", before.status)
	}
	m.RateLimited()
	m.RateLimited()
	m.PolicyHit("au-gov", "nxdomain", "enforce")
	after := get(t, s, "/metrics", nil)
	for _, want := range []string{
		"\njurisdns_rate_limited_total 2\n",
		"\njurisdns_policy_hits_total{action=\"nxdomain\",jurisdiction=\"au-gov\",mode=\"enforce\"} 1\n",
	} {
		if !strings.Contains(after.body, want) {
			t.Errorf("second scrape lacks %q", strings.TrimSpace(want))
		}
	}
}

func TestNoMetricsHandler(t *testing.T) {
	t.Parallel()
	s := start(t, Options{})
	if r := get(t, s, "/metrics", nil); r.status != http.StatusNotFound {
		t.Fatalf("GET /metrics without handler = %d, want 404", r.status)
	}
}

func TestToken(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	m.CacheHit()
	s := start(t, Options{
		Metrics:   m.Handler(),
		TokenFile: writeToken(t, "s3cret-token\n"),
		Ready:     func() (bool, []string) { return false, []string{"au-gov"} },
	})
	s.Handle("GET /status", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "status page")
	}))

	tests := []struct {
		name   string
		path   string
		auth   string
		status int
	}{
		{"metrics without token", "/metrics", "", 401},
		{"metrics wrong token", "/metrics", "Bearer wrong", 401},
		{"metrics token prefix", "/metrics", "Bearer s3cret", 401},
		{"metrics token longer", "/metrics", "Bearer s3cret-token2", 401},
		{"basic scheme", "/metrics", "Basic s3cret-token", 401},
		{"metrics token without scheme", "/metrics", "s3cret-token", 401},
		{"metrics with token", "/metrics", "Bearer s3cret-token", 200},
		{"scheme case-insensitive", "/metrics", "bearer s3cret-token", 200},
		{"added page without token", "/status", "", 401},
		{"added page with token", "/status", "Bearer s3cret-token", 200},
		{"unknown path without token", "/nope", "", 401},
		{"unknown path with token", "/nope", "Bearer s3cret-token", 404},
		{"path trick without token", "/healthz/../metrics", "", 401},
		{"healthz open", "/healthz", "", 200},
		{"healthz open with wrong token", "/healthz", "Bearer wrong", 200},
		{"readyz open", "/readyz", "", 503},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := map[string]string{}
			if tc.auth != "" {
				h["Authorization"] = tc.auth
			}
			r := get(t, s, tc.path, h)
			if r.status != tc.status {
				t.Fatalf("GET %s (%q) = %d, want %d", tc.path, tc.auth, r.status, tc.status)
			}
			switch r.status {
			case 401:
				if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("401 without WWW-Authenticate: Bearer")
				}
				if strings.Contains(r.body, "jurisdns_") || strings.Contains(r.body, "status page") {
					t.Errorf("401 leaked the page: %q", r.body)
				}
			case 200:
				if tc.path == "/metrics" && !strings.Contains(r.body, "\njurisdns_cache_hits_total 1\n") {
					t.Errorf("metrics body lacks jurisdns_cache_hits_total 1")
				}
			}
		})
	}
}

func TestTokenCRLF(t *testing.T) {
	t.Parallel()
	s := start(t, Options{Metrics: http.NotFoundHandler(), TokenFile: writeToken(t, "abc\r\n")})
	s.Handle("GET /x", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	if r := get(t, s, "/x", map[string]string{"Authorization": "Bearer abc"}); r.status != 200 {
		t.Fatalf("token from CRLF file: %d", r.status)
	}
}

func TestBadTokenFile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		path func(t *testing.T) string
		want string
	}{
		{"missing", func(t *testing.T) string { return filepath.Join(t.TempDir(), "absent") }, "no such file"},
		{"empty", func(t *testing.T) string { return writeToken(t, "") }, "empty"},
		{"only newline", func(t *testing.T) string { return writeToken(t, "\n") }, "empty"},
		{"two lines", func(t *testing.T) string { return writeToken(t, "abc\ndef\n") }, "whitespace"},
		{"trailing space", func(t *testing.T) string { return writeToken(t, "abc \n") }, "whitespace"},
		{"two trailing newlines", func(t *testing.T) string { return writeToken(t, "abc\n\n") }, "whitespace"},
		{"too large", func(t *testing.T) string { return writeToken(t, strings.Repeat("a", 5000)) }, "larger"},
		{"directory", func(t *testing.T) string { return t.TempDir() }, "token file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := New(Options{Addr: "127.0.0.1:0", TokenFile: tc.path(t)})
			if err == nil {
				s.Shutdown(context.Background())
				t.Fatal("New accepted a bad token file")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestNewRequiresAddr(t *testing.T) {
	t.Parallel()
	if _, err := New(Options{}); err == nil {
		t.Fatal("New accepted an empty address")
	}
}

func TestLifecycle(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	var logMu sync.Mutex
	s, err := New(Options{Addr: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &logMu}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if s.Addr() != "" {
		t.Fatalf("Addr before Start = %q", s.Addr())
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown before Start: %v", err)
	}
	if err := s.Start(); err == nil {
		t.Fatal("Start after Shutdown succeeded")
	}

	s, err = New(Options{Addr: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &logMu}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	addr := s.Addr()
	if !strings.HasPrefix(addr, "127.0.0.1:") || strings.HasSuffix(addr, ":0") {
		t.Fatalf("Addr = %q, want 127.0.0.1 with a real port", addr)
	}
	if err := s.Start(); err == nil {
		t.Fatal("second Start succeeded")
	}
	if r := get(t, s, "/healthz", nil); r.status != 200 {
		t.Fatalf("healthz: %d", r.status)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := CheckHealth(t.Context(), "http://"+addr+"/healthz"); err == nil {
		t.Fatal("server still answers after Shutdown")
	}
	logMu.Lock()
	defer logMu.Unlock()
	if !strings.Contains(logs.String(), "admin server listening") {
		t.Fatalf("no listening log line in %q", logs.String())
	}

	// A busy address is reported by Start.
	other := start(t, Options{})
	s2, err := New(Options{Addr: other.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Start(); err == nil {
		s2.Shutdown(context.Background())
		t.Fatal("Start on a busy address succeeded")
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestCheckHealth(t *testing.T) {
	t.Parallel()
	notReady := func() (bool, []string) { return false, []string{"au-gov"} }
	s := start(t, Options{Ready: notReady, TokenFile: writeToken(t, "tok"), Metrics: http.NotFoundHandler()})
	base := "http://" + s.Addr()

	if err := CheckHealth(t.Context(), base+"/healthz"); err != nil {
		t.Fatalf("healthz: %v", err)
	}
	err := CheckHealth(t.Context(), base+"/readyz")
	if err == nil || !strings.Contains(err.Error(), "503") || strings.Contains(err.Error(), "au-gov") {
		t.Fatalf("readyz not ready: err = %v, want 503 without details (no token sent)", err)
	}
	if err := CheckHealth(t.Context(), base+"/metrics"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("metrics without token: err = %v, want 401", err)
	}
	if err := CheckHealth(t.Context(), "://bad"); err == nil {
		t.Fatal("bad URL accepted")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := CheckHealth(ctx, base+"/healthz"); err == nil {
		t.Fatal("canceled context accepted")
	}

	s.SetDraining()
	if err := CheckHealth(t.Context(), base+"/readyz"); err == nil || !strings.Contains(err.Error(), "shutting down") {
		t.Fatalf("draining: err = %v", err)
	}
}

func TestCheckHealthNoRedirect(t *testing.T) {
	t.Parallel()
	s := start(t, Options{})
	s.Handle("GET /moved", http.RedirectHandler("/healthz", http.StatusFound))
	if err := CheckHealth(t.Context(), "http://"+s.Addr()+"/moved"); err == nil || !strings.Contains(err.Error(), "302") {
		t.Fatalf("redirect: err = %v, want 302 error", err)
	}
}

// TestReadyzDetailsNeedToken: with a token, /readyz stays open (status
// code) but names what is missing only to callers with the token.
func TestReadyzDetailsNeedToken(t *testing.T) {
	t.Parallel()
	s := start(t, Options{
		TokenFile: writeToken(t, "s3cret-token\n"),
		Ready: func() (bool, []string) {
			return false, []string{"jurisdiction au-gov source https://REDACTED@lists.example/ai.txt?REDACTED: timeout"}
		},
	})
	r := get(t, s, "/readyz", nil)
	if r.status != 503 || strings.Contains(r.body, "au-gov") || strings.Contains(r.body, "lists.example") {
		t.Errorf("/readyz without the token: %d %q, want 503 without details", r.status, r.body)
	}
	r = get(t, s, "/readyz", map[string]string{"Authorization": "Bearer s3cret-token"})
	if r.status != 503 || !strings.Contains(r.body, "au-gov") {
		t.Errorf("/readyz with the token: %d %q, want 503 naming what is missing", r.status, r.body)
	}
}

// Package admin is the resolver's admin HTTP server: liveness (/healthz),
// readiness (/readyz, which also lists the list sources that are not
// current), Prometheus metrics (/metrics), and any page another package
// adds with Handle.
//
// It is meant for loopback (the default address is 127.0.0.1:8053). An
// optional bearer token protects every path except /healthz and /readyz, which
// stay open for probes (with a token, /readyz tells an unauthenticated caller
// only whether the server is ready, not what is missing).
package admin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
)

// DefaultAddr is the usual address of the admin server.
const DefaultAddr = "127.0.0.1:8053"

// Limits of the HTTP server.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 60 * time.Second
	maxHeaderBytes    = 16 << 10
	maxTokenFileBytes = 4 << 10
)

// drainingReason is what /readyz reports as missing once SetDraining was called.
const drainingReason = "shutting down"

// Options configure a Server.
type Options struct {
	// Addr is the TCP address to listen on, e.g. "127.0.0.1:8053", or
	// "127.0.0.1:0" for a free port. Required.
	Addr string
	// Metrics serves /metrics, usually promhttp.HandlerFor(reg, ...). When
	// nil, /metrics is not served.
	Metrics http.Handler
	// Ready reports whether the resolver is ready to serve and, if not, what
	// is missing (e.g. jurisdictions not loaded yet). It is called on every
	// /readyz request and must be safe for concurrent use. When nil, the
	// server is always ready (until SetDraining).
	Ready func() (ready bool, missing []string)
	// NotCurrent lists what /readyz reports as not_current, ready or not:
	// sources served from a last good copy or not loaded yet, each with
	// why. It must be safe for concurrent use; nil reports nothing.
	NotCurrent func() []string
	// Degraded reports what works only in part while the server is still
	// ready (e.g. the enforcement log cannot be written). /readyz then
	// answers 200 with "status": "degraded" and the list. It is called on
	// every /readyz request; nil means never degraded.
	Degraded func() []string
	// Logger receives the server's log lines. When nil, nothing is logged.
	Logger *slog.Logger
	// TokenFile, when set, names a file holding a bearer token. Every path
	// except /healthz and /readyz then requires "Authorization: Bearer
	// <token>". The file is read once, by New; a trailing newline is trimmed;
	// an empty token or one containing spaces or control characters is an
	// error.
	TokenFile string
}

// Server is the admin HTTP server. Create it with New, add pages with Handle,
// then Start it.
type Server struct {
	addr     string
	log      *slog.Logger
	ready    func() (bool, []string)
	current  func() []string
	degraded func() []string
	mux      *http.ServeMux
	tokenSum *[sha256.Size]byte // nil: no authentication
	draining atomic.Bool

	mu       sync.Mutex
	srv      *http.Server
	ln       net.Listener
	done     chan struct{} // closed when Serve returned
	shutdown bool
}

// New validates opts, reads the token file if any, and returns a Server that
// is not listening yet.
func New(opts Options) (*Server, error) {
	if opts.Addr == "" {
		return nil, errors.New("admin: empty listen address")
	}
	s := &Server{
		addr:     opts.Addr,
		log:      opts.Logger,
		ready:    opts.Ready,
		degraded: opts.Degraded,
		current:  opts.NotCurrent,
		mux:      http.NewServeMux(),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if opts.TokenFile != "" {
		tok, err := readToken(opts.TokenFile)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(tok)
		s.tokenSum = &sum
	}
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	if opts.Metrics != nil {
		s.mux.Handle("GET /metrics", opts.Metrics)
	}
	return s, nil
}

func readToken(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("admin: token file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxTokenFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("admin: token file %s: %w", path, err)
	}
	if len(b) > maxTokenFileBytes {
		return nil, fmt.Errorf("admin: token file %s: larger than %d bytes", path, maxTokenFileBytes)
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	if len(b) == 0 {
		return nil, fmt.Errorf("admin: token file %s is empty", path)
	}
	if i := bytes.IndexFunc(b, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }); i >= 0 {
		return nil, fmt.Errorf("admin: token file %s: token contains whitespace or a control character at byte %d", path, i)
	}
	return b, nil
}

// Handle registers h for pattern (http.ServeMux syntax, e.g. "GET /status").
// Call it before Start. Pages added this way are behind the bearer token when
// one is configured. Like http.ServeMux, it panics on a conflicting pattern.
func (s *Server) Handle(pattern string, h http.Handler) {
	s.mux.Handle(pattern, h)
}

// Start listens on the configured address and serves in the background. It
// returns once the listener is open, so Addr is valid when it returns nil.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil || s.shutdown {
		return errors.New("admin: server already started")
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("admin: listen: %w", err)
	}
	s.srv = &http.Server{
		Handler:           s.authenticate(s.mux),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.ln = ln
	s.done = make(chan struct{})
	if s.tokenSum == nil && !isLoopback(ln.Addr()) {
		s.log.Warn("admin server listens beyond loopback without a token", "addr", ln.Addr().String())
	}
	s.log.Info("admin server listening", "addr", ln.Addr().String(), "token", s.tokenSum != nil)
	go func(srv *http.Server, done chan struct{}) {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("admin server stopped", "err", err)
		}
	}(s.srv, s.done)
	return nil
}

func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// Addr returns the address the server listens on (with the real port when the
// configured one was 0), or "" before Start.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// SetDraining makes /readyz answer 503 with missing ["shutting down"] from now
// on, so load balancers stop sending traffic before the listeners close.
func (s *Server) SetDraining() {
	s.draining.Store(true)
}

// Shutdown stops the server gracefully: it closes the listener and waits for
// active requests until ctx is done. It is a no-op before Start. A server
// cannot be started again after Shutdown.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	srv, done := s.srv, s.done
	s.shutdown = true
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	err := srv.Shutdown(ctx)
	if err != nil {
		srv.Close()
	}
	<-done
	return err
}

// authenticate requires the bearer token, when one is configured, on every
// path except /healthz and /readyz.
func (s *Server) authenticate(next http.Handler) http.Handler {
	if s.tokenSum == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
			next.ServeHTTP(w, r)
			return
		}
		if !s.tokenOK(r.Header.Get("Authorization")) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="jurisdns admin"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// tokenOK reports whether header is "Bearer <token>" with the configured
// token. Hashing both sides first makes the comparison constant-time whatever
// the length of the presented token.
func (s *Server) tokenOK(header string) bool {
	scheme, tok, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	sum := sha256.Sum256([]byte(strings.TrimLeft(tok, " ")))
	return subtle.ConstantTimeCompare(sum[:], s.tokenSum[:]) == 1
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = io.WriteString(w, "ok")
}

type readiness struct {
	Ready   bool     `json:"ready"`
	Missing []string `json:"missing,omitempty"`
	// Status is "degraded" when Degraded lists something, else omitted.
	Status   string   `json:"status,omitempty"`
	Degraded []string `json:"degraded,omitempty"`
	// NotCurrent: sources served from a last good copy, or not loaded
	// yet, while their download is retried (they do not make the server
	// unready by themselves).
	NotCurrent []string `json:"not_current,omitempty"`
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	st := readiness{Ready: true}
	switch {
	case s.draining.Load():
		st = readiness{Missing: []string{drainingReason}}
	case s.ready != nil:
		ok, missing := s.ready()
		if !ok {
			if len(missing) == 0 {
				missing = []string{"unknown"}
			}
			st = readiness{Missing: missing}
		}
	}
	if s.degraded != nil && !s.draining.Load() {
		if d := s.degraded(); len(d) > 0 {
			st.Status, st.Degraded = "degraded", d
		}
	}
	if s.current != nil && !s.draining.Load() {
		st.NotCurrent = s.current()
	}
	if s.tokenSum != nil && !s.draining.Load() && !s.tokenOK(r.Header.Get("Authorization")) {
		// With a token, /readyz stays open to probes but says only
		// whether the server is ready (and degraded): what is missing,
		// degraded or not current (jurisdictions, list sources) is for
		// callers with the token.
		st.Missing, st.Degraded, st.NotCurrent = nil, nil, nil
	}
	body, err := json.Marshal(st)
	if err != nil { // cannot happen for this type
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if st.Ready {
		w.WriteHeader(http.StatusOK)
	} else {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_, _ = w.Write(append(body, '\n'))
}

// CheckHealth GETs url (e.g. "http://127.0.0.1:8053/healthz") and returns nil
// if the answer is 2xx. Otherwise the error names the status and the start of
// the body (for /readyz, what is missing). Redirects are not followed and no
// proxy is used.
func CheckHealth(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("health check: %w", err)
	}
	client := &http.Client{
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("health check: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		msg := strings.TrimSpace(string(body))
		if msg == "" {
			return fmt.Errorf("health check %s: %s", url, resp.Status)
		}
		return fmt.Errorf("health check %s: %s: %s", url, resp.Status, msg)
	}
	return nil
}

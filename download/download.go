// Package download fetches block list sources from URLs, safely.
//
// A [Fetcher] downloads one [Source] at a time over HTTPS (plain HTTP only
// when the source allows it, also across redirects), with a timeout per
// attempt and a deadline for all of them, a size cap, retries with backoff
// for transient failures
// (network errors, timeouts, 5xx, 408, 429; not 4xx, certificate errors,
// an oversized body or a refused redirect) and conditional GET (ETag,
// Last-Modified). Every body is checked before it is accepted, by the
// caller's [Accept] function (the list loader, blocklists.Load: the pin, the
// parse and the guards). Only an accepted body replaces the last good copy,
// which is kept atomically in the cache directory with a JSON sidecar of
// metadata, and is used when the URL is unreachable or an update is
// rejected.
//
// The package knows neither list formats nor guards: the caller passes an
// [Accept] function. [Refresher] and [NextRefresh] run a callback on a
// jittered period.
package download

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/jurisdns/jurisdns/spec"
)

// Defaults applied to a zero field of a [Source].
const (
	DefaultTimeout  = 30 * time.Second
	DefaultDeadline = 2 * time.Minute
	DefaultMaxSize  = 64 << 20
	DefaultRetries  = 3
)

// Values of [Result.From].
const (
	// FromNetwork: the body was downloaded now and accepted.
	FromNetwork = "network"
	// FromNotModified: the server answered 304 and the cached copy is current.
	FromNotModified = "not-modified"
	// FromCache: the last good copy from the cache directory, without a
	// confirmation from the server (see [Result.Stale]).
	FromCache = "cache"
)

// Source is one list to download.
type Source struct {
	// Name identifies the source in logs, errors and the cache.
	Name string
	// URL is https://… (or http://… with AllowHTTP).
	URL string
	// AllowHTTP permits plain http:// for this source, also as a redirect
	// target. Without it only https:// is fetched.
	AllowHTTP bool
	// SHA256 is the source's pin, if any: the hex SHA-256 its body must
	// have. Fetch does not check it (the Accept function does); a cached
	// copy with another SHA-256 is not offered, neither by Cached nor as
	// the base of a conditional GET, so a changed pin gets a new body.
	SHA256 string
	// Timeout bounds one attempt, body included; 0 means DefaultTimeout.
	Timeout time.Duration
	// Deadline bounds the whole fetch: every attempt and every wait
	// between them. An attempt gets what is left of it when that is less
	// than Timeout, and no retry starts whose backoff would pass it. 0
	// means DefaultDeadline.
	Deadline time.Duration
	// MaxSize caps the (decoded) body in bytes; 0 means DefaultMaxSize.
	MaxSize int64
	// Retries is the number of retries after a failed first attempt;
	// 0 means DefaultRetries and a negative value means none.
	Retries int
}

// NoBaseline is the baseline Fetch passes to Accept when there is no last
// good copy to compare with: the last good copy itself, or a first
// download.
const NoBaseline = -1

// Accept checks a body: it returns the number of entries of the list, or
// an error, which rejects the body. baseline is the entry count of the last
// good copy of the source (what an update may not shrink too far from), or
// NoBaseline.
//
// Fetch calls it on every body it returns, so that the caller keeps what it
// parsed in the closure instead of parsing Result.Body again: when Fetch
// returns a nil error, the last call of accept it made returned no error and
// was on Result.Body. Fetch may call accept more than once (a rejected
// update, then the cached copy), never twice on one body.
type Accept func(body []byte, baseline int) (entries int, err error)

// Result is a list that Fetch or Cached returns.
type Result struct {
	// Source is the name of the source.
	Source string
	// Body is the list. Callers must not modify it.
	Body []byte
	// Entries is the number of entries the Accept function counted (for Cached,
	// as recorded when the body was accepted).
	Entries int
	// From is FromNetwork, FromNotModified or FromCache.
	From string
	// ETag and LastModified are the validators the server sent with Body.
	ETag, LastModified string
	// FetchedAt is when Body was downloaded.
	FetchedAt time.Time
	// CheckedAt is when the server last confirmed Body (200 or 304).
	CheckedAt time.Time
	// SHA256 is the hex SHA-256 of Body.
	SHA256 string
	// Stale is set when the update failed or was rejected and Body is the
	// last good copy from the cache directory; Err says why.
	Stale bool
	// Err is the failure behind a Stale result (a *RejectedError, a
	// *StatusError, ErrTooLarge, a timeout, …); nil otherwise.
	Err error
}

// RejectedError is an update refused by the Accept function. The previous
// good copy is kept.
type RejectedError struct {
	// Source is the source name and URL its URL (credentials redacted).
	Source, URL string
	// Reason says which check failed.
	Reason string
	// Err is the Accept function's error.
	Err error
}

// Error implements error.
func (e *RejectedError) Error() string {
	return fmt.Sprintf("download: source %q (%s): update rejected: %s", e.Source, e.URL, e.Reason)
}

// Unwrap returns the Accept function's error.
func (e *RejectedError) Unwrap() error { return e.Err }

// StatusError is an HTTP response with a status other than 200 (or 304 to a
// conditional request).
type StatusError struct {
	// StatusCode is the HTTP status code and Status its text ("404 Not Found").
	StatusCode int
	Status     string
}

// Error implements error.
func (e *StatusError) Error() string { return "HTTP " + e.Status }

// ErrTooLarge is wrapped by the error of a body larger than the source's
// MaxSize.
var ErrTooLarge = errors.New("response too large")

// errRedirect marks a redirect refused by the scheme policy (not retried).
var errRedirect = errors.New("redirect refused")

// Options configure a Fetcher. Every field is optional.
type Options struct {
	// CacheDir keeps the last good copy of every source; empty means no
	// disk cache (the Fetcher then only remembers entry counts in memory,
	// for MaxShrink).
	CacheDir string
	// Client does the requests; nil means a client on a clone of
	// http.DefaultTransport. Inject one to trust a test server's
	// certificate. Its CheckRedirect is wrapped to enforce the source's
	// scheme policy.
	Client *http.Client
	// Logger receives warnings about failures, rejections and the cache;
	// nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Backoff is the wait before retry number attempt (1, 2, …); nil means
	// exponential from 1s, capped at 30s, with jitter.
	Backoff func(attempt int) time.Duration
	// Sleep waits d or until ctx is done; nil means a timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// UserAgent is sent with every request; empty means "jurisdns".
	UserAgent string
	// Progress, when set, is told about every attempt as it starts, the
	// bytes of a body as they arrive (at most every ProgressInterval), a
	// wait before a retry, and the end of the download. Command-line
	// tools use it to show a long download; it must not block.
	Progress func(Progress)
}

// ProgressInterval is the least time between two Progress reports of the
// bytes of one body.
const ProgressInterval = 500 * time.Millisecond

// Progress is one report of a download in flight (see Options.Progress).
type Progress struct {
	// Source is the source name and URL its URL (credentials redacted).
	Source, URL string
	// Attempt is the attempt under way (1, 2, …) out of Attempts.
	Attempt, Attempts int
	// Answered: the server sent the headers of a body. Bytes of it were
	// received so far; Total is its Content-Length, or -1 when the server
	// did not say.
	Answered     bool
	Bytes, Total int64
	// Elapsed since the fetch started; Deadline is its bound.
	Elapsed, Deadline time.Duration
	// RetryIn is set while waiting before the next attempt; Err is the
	// failure of the attempt that is retried (or, with Done, the failure
	// of the download).
	RetryIn time.Duration
	Err     error
	// Done: the download ended (Err nil: a body or a 304 arrived).
	Done bool
}

// Fetcher downloads sources. It is safe for concurrent use; fetches that
// share a cache entry (same name and URL) are serialized.
type Fetcher struct {
	dir     string
	client  *http.Client
	log     *slog.Logger
	now     func() time.Time
	backoff func(int) time.Duration
	sleep   func(context.Context, time.Duration) error
	ua      string
	prog    func(Progress)

	mu    sync.Mutex
	locks map[string]*sync.Mutex
	mem   map[string]int // key → entries of the last accepted body, without CacheDir
	stats map[string]*SourceStats
}

// SourceStats counts the fetches of one source.
type SourceStats struct {
	// Fetches counts calls of Fetch; each ends in exactly one of Network,
	// NotModified, Cache (stale copy used) or Errors.
	Fetches, Network, NotModified, Cache, Errors uint64
	// Rejected counts updates refused by the Accept function.
	Rejected uint64
	// Retries counts retried attempts.
	Retries uint64
	// Entries is the entry count of the last list returned.
	Entries int
	// LastSuccess is when the server last confirmed the list (200 or 304).
	LastSuccess time.Time
}

// New returns a Fetcher.
func New(opts Options) *Fetcher {
	f := &Fetcher{
		dir:     opts.CacheDir,
		log:     opts.Logger,
		now:     opts.Now,
		backoff: opts.Backoff,
		sleep:   opts.Sleep,
		ua:      opts.UserAgent,
		prog:    opts.Progress,
		locks:   make(map[string]*sync.Mutex),
		mem:     make(map[string]int),
		stats:   make(map[string]*SourceStats),
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	if f.now == nil {
		f.now = time.Now
	}
	if f.backoff == nil {
		f.backoff = defaultBackoff
	}
	if f.sleep == nil {
		f.sleep = sleepCtx
	}
	if f.ua == "" {
		f.ua = "jurisdns"
	}
	var c http.Client
	if opts.Client != nil {
		c = *opts.Client
	} else {
		c.Transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	c.CheckRedirect = checkRedirect(c.CheckRedirect)
	f.client = &c
	return f
}

func defaultBackoff(attempt int) time.Duration {
	d := 30 * time.Second
	if attempt >= 1 && attempt <= 5 {
		d = time.Second << (attempt - 1)
	}
	return d/2 + rand.N(d/2+1)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type allowHTTPKey struct{}

// checkRedirect refuses redirects to a scheme the source does not allow,
// then defers to next (or to the default limit of 10 redirects).
func checkRedirect(next func(*http.Request, []*http.Request) error) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		allowHTTP, _ := req.Context().Value(allowHTTPKey{}).(bool)
		if err := checkScheme(req.URL, allowHTTP); err != nil {
			return fmt.Errorf("%w to %s: %v", errRedirect, spec.RedactURL(req.URL.String()), err)
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return fmt.Errorf("%w: stopped after 10 redirects", errRedirect)
		}
		return nil
	}
}

func checkScheme(u *url.URL, allowHTTP bool) error {
	switch u.Scheme {
	case "https":
	case "http":
		if !allowHTTP {
			return errors.New("plain http:// needs allow_http")
		}
	default:
		return fmt.Errorf("scheme %q not supported (https:// only)", u.Scheme)
	}
	if u.Host == "" {
		return errors.New("no host")
	}
	return nil
}

// Validate reports the first problem with the source's fields: a missing
// name, a URL that is not https:// (or http:// with AllowHTTP), a malformed
// pin, or a negative bound.
func (s Source) Validate() error {
	_, err := s.check()
	return err
}

func (s Source) check() (*url.URL, error) {
	if s.Name == "" {
		return nil, fmt.Errorf("download: source with URL %q has no name", spec.RedactURL(s.URL))
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("download: source %q (%s): %s", s.Name, spec.RedactURL(s.URL), fmt.Sprintf(format, args...))
	}
	u, err := url.Parse(s.URL)
	if err != nil {
		return nil, fail("bad URL: %v", err)
	}
	if err := checkScheme(u, s.AllowHTTP); err != nil {
		return nil, fail("%v", err)
	}
	if s.SHA256 != "" && !isHexSHA256(strings.ToLower(s.SHA256)) {
		return nil, fail("sha256 pin %q is not 64 hex digits", s.SHA256)
	}
	if s.Timeout < 0 || s.Deadline < 0 || s.MaxSize < 0 {
		return nil, fail("timeout, deadline and max_size must not be negative")
	}
	return u, nil
}

func (s Source) withDefaults() Source {
	if s.Timeout == 0 {
		s.Timeout = DefaultTimeout
	}
	if s.Deadline == 0 {
		s.Deadline = DefaultDeadline
	}
	if s.MaxSize == 0 {
		s.MaxSize = DefaultMaxSize
	}
	if s.Retries == 0 {
		s.Retries = DefaultRetries
	} else if s.Retries < 0 {
		s.Retries = 0
	}
	s.SHA256 = strings.ToLower(s.SHA256)
	return s
}

// oldRedact is the form cache metadata written before query strings were
// redacted holds (the password only); such a cache still matches.
func oldRedact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparsable URL>"
	}
	return u.Redacted()
}

func isHexSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func sum256(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// Fetch downloads src, checks it and returns the list to use.
//
// A nil error means Result holds a usable list: a new body (FromNetwork), the
// cached body confirmed by a 304 (FromNotModified), or — when the download
// failed after its retries or the update was rejected — the last good copy
// from the cache directory (FromCache, Stale set, Err saying why). Every
// failure and rejection is logged and counted either way.
//
// A non-nil error means there is nothing to use: the source is invalid, or
// the update failed and there is no usable cached copy (no CacheDir, none
// stored yet, corrupt, or refused by accept). A refused update is then a
// *RejectedError (errors.As). A caller that already holds a list keeps it
// in both cases.
//
// Only a body that accept accepts is written to the cache; a rejected one
// leaves the cached copy untouched.
func (f *Fetcher) Fetch(ctx context.Context, src Source, accept Accept) (Result, error) {
	src = src.withDefaults()
	u, err := src.check()
	if err == nil && accept == nil {
		err = fmt.Errorf("download: source %q (%s): no Accept function", src.Name, spec.RedactURL(u.String()))
	}
	if err != nil {
		f.count(src.Name, func(s *SourceStats) { s.Fetches++; s.Errors++ })
		return Result{}, err
	}
	key := cacheKey(src)
	unlock := f.lock(key)
	defer unlock()
	log := f.log.With("source", src.Name, "url", spec.RedactURL(u.String()))

	prev, baseline := f.previous(src, key, log)
	res, ferr := f.update(ctx, src, u, key, prev, baseline, accept, log)
	if ferr == nil {
		f.count(src.Name, func(s *SourceStats) {
			s.Fetches++
			if res.From == FromNetwork {
				s.Network++
			} else {
				s.NotModified++
			}
			s.Entries = res.Entries
			s.LastSuccess = res.CheckedAt
		})
		return res, nil
	}
	var rej *RejectedError
	rejected := errors.As(ferr, &rej)
	// The cached copy is checked again unless it was just checked: after
	// a 304, or when the refused body is the cached one (a server without
	// validators; accept refuses it for a reason other than max_shrink,
	// which it cannot fail against its own entry count).
	if prev != nil && res.From != FromNotModified && !(rejected && res.SHA256 == prev.meta.SHA256) {
		res, cerr := f.useCached(src, u, prev, accept)
		if cerr == nil {
			res.Stale, res.Err = true, ferr
			log.Warn("list update failed; using the last good copy",
				"err", ferr, "cached_sha256", res.SHA256, "fetched_at", res.FetchedAt)
			f.count(src.Name, func(s *SourceStats) {
				s.Fetches++
				s.Cache++
				s.Entries = res.Entries
				if rejected {
					s.Rejected++
				}
			})
			return res, nil
		}
		log.Warn("the last good copy is unusable", "err", cerr)
	}
	log.Error("list update failed and no good copy is available", "err", ferr)
	f.count(src.Name, func(s *SourceStats) {
		s.Fetches++
		s.Errors++
		if rejected {
			s.Rejected++
		}
	})
	return Result{}, ferr
}

// update downloads and checks one body. On a failure after a 304 it returns
// a Result whose From is FromNotModified, and on a rejection one with the
// SHA256 of the refused body, so that Fetch does not check the same cached
// copy twice.
func (f *Fetcher) update(ctx context.Context, src Source, u *url.URL, key string, prev *cached,
	baseline int, accept Accept, log *slog.Logger) (Result, error) {
	resp, err := f.download(ctx, src, u, prev, log)
	if err != nil {
		return Result{}, err
	}
	now := f.now()
	if resp.notModified {
		res, err := f.useCached(src, u, prev, accept)
		if err != nil {
			return Result{From: FromNotModified}, err
		}
		m := prev.meta
		if resp.etag != "" {
			m.ETag = resp.etag
		}
		if resp.lastModified != "" {
			m.LastModified = resp.lastModified
		}
		m.CheckedAt = now
		if f.dir != "" {
			if err := f.writeMeta(key, m); err != nil {
				log.Warn("could not update the cache metadata", "err", err)
			}
		}
		res.From, res.ETag, res.LastModified, res.CheckedAt = FromNotModified, m.ETag, m.LastModified, now
		return res, nil
	}

	sum := sum256(resp.body)
	entries, err := checkBody(src, u, resp.body, accept, baseline)
	if err != nil {
		log.Warn("list update rejected; keeping the previous copy", "err", err, "sha256", sum)
		return Result{SHA256: sum}, err
	}
	m := meta{
		Version:      metaVersion,
		Name:         src.Name,
		URL:          spec.RedactURL(u.String()),
		ETag:         resp.etag,
		LastModified: resp.lastModified,
		SHA256:       sum,
		Size:         int64(len(resp.body)),
		Entries:      entries,
		FetchedAt:    now,
		CheckedAt:    now,
	}
	if f.dir != "" {
		if err := f.writeCache(key, m, resp.body); err != nil {
			log.Error("could not save the list to the cache", "err", err)
		}
	} else {
		f.mu.Lock()
		f.mem[key] = entries
		f.mu.Unlock()
	}
	log.Info("list downloaded", "entries", entries, "bytes", len(resp.body), "sha256", sum)
	return m.result(resp.body, FromNetwork), nil
}

// checkBody hands body to accept, with the baseline for max_shrink (or
// NoBaseline). It returns the entry count or a *RejectedError.
func checkBody(src Source, u *url.URL, body []byte, accept Accept, baseline int) (int, error) {
	entries, err := accept(body, baseline)
	if err != nil {
		return 0, &RejectedError{Source: src.Name, URL: spec.RedactURL(u.String()), Reason: err.Error(), Err: err}
	}
	return entries, nil
}

// useCached has accept check the cached copy again (the configuration may
// have changed since it was accepted), without a baseline: max_shrink does
// not apply to the last good copy itself.
func (f *Fetcher) useCached(src Source, u *url.URL, c *cached, accept Accept) (Result, error) {
	entries, err := checkBody(src, u, c.body, accept, NoBaseline)
	if err != nil {
		var rej *RejectedError
		if errors.As(err, &rej) {
			rej.Reason = "cached copy: " + rej.Reason
		}
		return Result{}, err
	}
	res := c.meta.result(c.body, FromCache)
	res.Entries = entries
	return res, nil
}

type response struct {
	notModified        bool
	body               []byte
	etag, lastModified string
}

// download does the attempts: the first and up to src.Retries retries of a
// transient failure, all within src.Deadline.
func (f *Fetcher) download(ctx context.Context, src Source, u *url.URL, prev *cached, log *slog.Logger) (*response, error) {
	attempts := src.Retries + 1
	start := time.Now()
	dctx, cancel := context.WithTimeout(ctx, src.Deadline)
	defer cancel()
	p := progress{f: f, p: Progress{Source: src.Name, URL: spec.RedactURL(u.String()), Attempts: attempts, Deadline: src.Deadline, Total: -1}, start: start}
	fail := func(i int, err error) (*response, error) {
		err = fmt.Errorf("download: source %q (%s): attempt %d of %d: %w", src.Name, spec.RedactURL(u.String()), i, attempts, err)
		p.done(err)
		return nil, err
	}
	for i := 1; ; i++ {
		p.attempt(i)
		resp, err := f.attempt(dctx, src, u, prev, &p)
		if err == nil {
			p.done(nil)
			return resp, nil
		}
		if ctx.Err() == nil && dctx.Err() != nil {
			return fail(i, &deadlineError{after: src.Deadline, err: err})
		}
		if !retryable(err) || i >= attempts || ctx.Err() != nil {
			return fail(i, err)
		}
		d := f.backoff(i)
		if left := src.Deadline - time.Since(start); d >= left {
			return fail(i, &deadlineError{after: src.Deadline, err: err, retryIn: d})
		}
		log.Warn("download attempt failed; retrying", "attempt", i, "attempts", attempts, "retry_in", d, "err", err)
		f.count(src.Name, func(s *SourceStats) { s.Retries++ })
		p.retry(d, err)
		if serr := f.sleep(dctx, d); serr != nil {
			if ctx.Err() == nil && dctx.Err() != nil {
				return fail(i, &deadlineError{after: src.Deadline, err: err})
			}
			return fail(i, fmt.Errorf("%w (retry abandoned: %v)", err, serr))
		}
	}
}

// deadlineError is a download that ran out of its Deadline, in an attempt
// or because the next retry would have passed it; it matches
// context.DeadlineExceeded.
type deadlineError struct {
	after   time.Duration
	retryIn time.Duration // the retry given up, if that is why
	err     error         // the last attempt's
}

func (e *deadlineError) Error() string {
	if e.retryIn > 0 {
		return fmt.Sprintf("%v; no retry: waiting %s would pass the deadline of %s for all attempts", e.err, e.retryIn.Round(time.Millisecond), e.after)
	}
	return fmt.Sprintf("deadline of %s for all attempts passed: %v", e.after, e.err)
}
func (e *deadlineError) Unwrap() []error { return []error{e.err, context.DeadlineExceeded} }

// progress reports one download to Options.Progress (a no-op without it).
type progress struct {
	f     *Fetcher
	p     Progress
	start time.Time
	last  time.Time // of the last report of bytes
}

func (p *progress) report() {
	p.p.Elapsed = time.Since(p.start)
	p.f.prog(p.p)
}

func (p *progress) attempt(i int) {
	if p.f.prog == nil {
		return
	}
	p.p.Attempt, p.p.Answered, p.p.Bytes, p.p.Total, p.p.RetryIn, p.p.Err = i, false, 0, -1, 0, nil
	p.report()
}

func (p *progress) retry(d time.Duration, err error) {
	if p.f.prog == nil {
		return
	}
	p.p.RetryIn, p.p.Err = d, err
	p.report()
}

func (p *progress) done(err error) {
	if p.f.prog == nil {
		return
	}
	p.p.RetryIn, p.p.Err, p.p.Done = 0, err, true
	p.report()
}

// body wraps a response body to report the bytes as they arrive.
func (p *progress) body(r io.Reader, total int64) io.Reader {
	if p == nil || p.f.prog == nil {
		return r
	}
	p.p.Answered, p.p.Total = true, total
	p.last = time.Now()
	p.report()
	return &progressReader{r: r, p: p}
}

type progressReader struct {
	r io.Reader
	p *progress
}

func (r *progressReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	first := r.p.p.Bytes == 0 && n > 0
	r.p.p.Bytes += int64(n)
	if now := time.Now(); first || now.Sub(r.p.last) >= ProgressInterval {
		r.p.last = now
		r.p.report()
	}
	return n, err
}

func retryable(err error) bool {
	var se *StatusError
	if errors.As(err, &se) {
		return se.StatusCode >= 500 || se.StatusCode == http.StatusRequestTimeout || se.StatusCode == http.StatusTooManyRequests
	}
	var cert *tls.CertificateVerificationError
	return !errors.Is(err, ErrTooLarge) && !errors.Is(err, errRedirect) && !errors.As(err, &cert)
}

func (f *Fetcher) attempt(ctx context.Context, src Source, u *url.URL, prev *cached, p *progress) (*response, error) {
	actx, cancel := context.WithTimeout(ctx, src.Timeout)
	defer cancel()
	resp, err := f.get(context.WithValue(actx, allowHTTPKey{}, src.AllowHTTP), src, u, prev, p)
	if err != nil && ctx.Err() == nil && errors.Is(actx.Err(), context.DeadlineExceeded) {
		return nil, &timeoutError{after: src.Timeout, err: err}
	}
	return resp, err
}

// timeoutError is an attempt that ran out of its Timeout; it matches
// context.DeadlineExceeded whatever stage (dial, TLS, headers, body) the
// underlying error comes from.
type timeoutError struct {
	after time.Duration
	err   error
}

func (e *timeoutError) Error() string   { return fmt.Sprintf("timed out after %s: %v", e.after, e.err) }
func (e *timeoutError) Unwrap() []error { return []error{e.err, context.DeadlineExceeded} }

func (f *Fetcher) get(ctx context.Context, src Source, u *url.URL, prev *cached, p *progress) (*response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", f.ua)
	if prev != nil {
		if prev.meta.ETag != "" {
			req.Header.Set("If-None-Match", prev.meta.ETag)
		}
		if prev.meta.LastModified != "" {
			req.Header.Set("If-Modified-Since", prev.meta.LastModified)
		}
	}
	resp, err := f.client.Do(req)
	if err != nil {
		// net/http names the URL in its error with the query string
		// (and only the password masked): show it redacted.
		var ue *url.Error
		if errors.As(err, &ue) {
			ue.URL = spec.RedactURL(ue.URL)
		}
		return nil, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified && prev != nil:
		return &response{notModified: true, etag: resp.Header.Get("ETag"), lastModified: resp.Header.Get("Last-Modified")}, nil
	case resp.StatusCode != http.StatusOK:
		// Drain a little so that the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, &StatusError{StatusCode: resp.StatusCode, Status: resp.Status}
	}
	if resp.ContentLength > src.MaxSize {
		return nil, fmt.Errorf("%w: Content-Length %d exceeds the %s cap", ErrTooLarge, resp.ContentLength, formatSize(src.MaxSize))
	}
	body, err := io.ReadAll(io.LimitReader(p.body(resp.Body, resp.ContentLength), src.MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading body: %w", err)
	}
	if int64(len(body)) > src.MaxSize {
		return nil, fmt.Errorf("%w: body exceeds the %s cap", ErrTooLarge, formatSize(src.MaxSize))
	}
	return &response{body: body, etag: resp.Header.Get("ETag"), lastModified: resp.Header.Get("Last-Modified")}, nil
}

// formatSize writes n in the largest binary unit that divides it.
func formatSize(n int64) string {
	for _, u := range []struct {
		div  int64
		name string
	}{{1 << 30, "GiB"}, {1 << 20, "MiB"}, {1 << 10, "KiB"}} {
		if n >= u.div && n%u.div == 0 {
			return fmt.Sprintf("%d %s", n/u.div, u.name)
		}
	}
	return fmt.Sprintf("%d bytes", n)
}

func (f *Fetcher) lock(key string) func() {
	f.mu.Lock()
	l := f.locks[key]
	if l == nil {
		l = new(sync.Mutex)
		f.locks[key] = l
	}
	f.mu.Unlock()
	l.Lock()
	return l.Unlock
}

func (f *Fetcher) count(name string, update func(*SourceStats)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.stats[name]
	if s == nil {
		s = new(SourceStats)
		f.stats[name] = s
	}
	update(s)
}

// Stats returns a copy of the counters of every source fetched so far, by
// source name.
func (f *Fetcher) Stats() map[string]SourceStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]SourceStats, len(f.stats))
	for name, s := range f.stats {
		out[name] = *s
	}
	return out
}

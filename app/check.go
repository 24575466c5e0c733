package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jurisdns/jurisdns/config"
	"github.com/jurisdns/jurisdns/download"
	"github.com/jurisdns/jurisdns/metrics"
	"github.com/jurisdns/jurisdns/policy"
	"github.com/jurisdns/jurisdns/resolver"
)

// PolicyOptions configure BuildPolicyWith.
type PolicyOptions struct {
	// Notes receives one line each for a list served from its last good
	// copy (its download failed or was rejected) and for the progress of
	// a download that takes a while; nil discards them. The command-line
	// tools pass stderr.
	Notes io.Writer
	// ProgressEvery is the period of the progress lines of a download in
	// flight; 0 means 2s.
	ProgressEvery time.Duration
	// Offline takes URL sources from their last good copy in
	// lists.cache_dir without any request; a source with no copy is
	// checked as an empty list, with a note.
	Offline bool
	// HTTPClient and DownloadBackoff are as in Options (tests).
	HTTPClient      *http.Client
	DownloadBackoff func(attempt int) time.Duration

	// note, when set, also receives the notes (Validate keeps them as
	// warnings).
	note func(string)
}

func (o PolicyOptions) app() *App {
	return &App{log: slogDiscard(), now: time.Now, metrics: metrics.New(),
		opts:     Options{HTTPClient: o.HTTPClient, DownloadBackoff: o.DownloadBackoff},
		fetchers: map[string]*download.Fetcher{}, checked: map[string]time.Time{}, offline: o.Offline}
}

// BuildPolicy builds the policy of cfg as serve would, for the check,
// lists and validate commands. URL sources are downloaded (each within
// lists.deadline), falling back to the last good copy in lists.cache_dir.
func BuildPolicy(ctx context.Context, cfg *config.Config) (*policy.Policy, error) {
	return BuildPolicyWith(ctx, cfg, PolicyOptions{})
}

// BuildPolicyWith is BuildPolicy that reports to o.Notes the lists served
// from their last good copy ("using the last good copy from <time>") and
// the progress of long downloads.
func BuildPolicyWith(ctx context.Context, cfg *config.Config, o PolicyOptions) (*policy.Policy, error) {
	a := o.app()
	if o.Notes != nil {
		pp := newProgressPrinter(o.Notes, o.ProgressEvery)
		defer pp.stop()
		a.note = pp.line
		a.progress = pp.update
	}
	if o.note != nil {
		print := a.note
		a.note = func(s string) {
			o.note(s)
			if print != nil {
				print(s)
			}
		}
	}
	return policy.Build(ctx, cfg, policy.BuildOptions{BaseDir: baseDir(cfg), Fetch: a.fetch(cfg), Transfer: a.transferSource(cfg), Logger: a.log})
}

// progressPrinter writes the progress of the downloads in flight: a retry
// as it is scheduled, and a line for each download running for at least
// the period, then every 2.5 periods (2s, then every 5s by default), so
// that a slow or silent list server does not look like a hang.
type progressPrinter struct {
	w      io.Writer
	every  time.Duration
	mu     sync.Mutex
	flight map[string]*flight
	done   chan struct{}
	wg     sync.WaitGroup
}

type flight struct {
	start   time.Time
	printed time.Time // of the last progress line
	last    download.Progress
}

func newProgressPrinter(w io.Writer, every time.Duration) *progressPrinter {
	if every <= 0 {
		every = 2 * time.Second
	}
	p := &progressPrinter{w: w, every: every, flight: map[string]*flight{}, done: make(chan struct{})}
	p.wg.Add(1)
	go p.run()
	return p
}

func (p *progressPrinter) line(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintln(p.w, s)
}

func (p *progressPrinter) update(pr download.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.flight[pr.Source]
	if f == nil {
		f = &flight{start: time.Now()}
		p.flight[pr.Source] = f
	}
	f.last = pr
	switch {
	case pr.Done:
		if pr.Err == nil && time.Since(f.start) >= p.every {
			fmt.Fprintf(p.w, "list %s: downloaded %s in %s\n", pr.Source, bytesText(pr.Bytes, -1), time.Since(f.start).Round(100*time.Millisecond))
		}
		delete(p.flight, pr.Source)
	case pr.Err != nil: // a failed attempt, retried after RetryIn
		fmt.Fprintf(p.w, "list %s: attempt %d of %d failed (%v); retrying in %s\n",
			pr.Source, pr.Attempt, pr.Attempts, pr.Err, pr.RetryIn.Round(100*time.Millisecond))
	}
}

func (p *progressPrinter) run() {
	defer p.wg.Done()
	t := time.NewTicker(p.every / 4)
	defer t.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-t.C:
		}
		p.mu.Lock()
		names := make([]string, 0, len(p.flight))
		for n := range p.flight {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			f := p.flight[n]
			el := time.Since(f.start)
			if el < p.every || !f.printed.IsZero() && time.Since(f.printed) < p.every*5/2 {
				continue
			}
			f.printed = time.Now()
			pr := f.last
			got := "no answer yet"
			if pr.Answered {
				got = bytesText(pr.Bytes, pr.Total)
			}
			fmt.Fprintf(p.w, "list %s: downloading from %s: attempt %d of %d, %s, %s so far (gives up after %s)\n",
				n, pr.URL, pr.Attempt, pr.Attempts, got, el.Round(100*time.Millisecond), pr.Deadline)
		}
		p.mu.Unlock()
	}
}

func (p *progressPrinter) stop() {
	close(p.done)
	p.wg.Wait()
}

// bytesText writes n bytes (of total, when known) for people.
func bytesText(n, total int64) string {
	f := func(b int64) string {
		switch {
		case b >= 1<<20:
			return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
		case b >= 1<<10:
			return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
		}
		return fmt.Sprintf("%d bytes", b)
	}
	if total > 0 {
		return f(n) + " of " + f(total)
	}
	return f(n)
}

// ValidateResult is what Validate found.
type ValidateResult struct {
	// Config is nil when the configuration could not be read or parsed;
	// Policy is nil when it could not be built.
	Config *config.Config
	Policy *policy.Policy
	// Problems are what serve or a reload would refuse: the
	// configuration's own (with key paths), the upstreams, the zones, the
	// list sources that fail to load. Detail lines start with spaces.
	Problems []string
	// Warnings are what serve accepts but an operator wants to know: the
	// bad lines that are skipped (file:line).
	Warnings []string
	// Notes say which URL sources were checked from their last good copy
	// or not at all (offline, no copy yet); they went to
	// PolicyOptions.Notes as they happened.
	Notes []string
}

// Validate loads the configuration and checks everything serve would
// build from it, reporting every problem at once. A configuration that
// cannot be read or parsed stops there; one that fails validation is
// still checked as far as it can be.
func Validate(ctx context.Context, opts config.LoadOptions, o PolicyOptions) ValidateResult {
	var r ValidateResult
	cfg, err := config.Load(opts)
	if err != nil {
		r.Problems = errLines(err)
		return r
	}
	r.Config = cfg
	var problems []string
	if err := cfg.Validate(); err != nil {
		problems = append(problems, errLines(err)...)
	}
	// What the later checks find about a key validation already named
	// (an upstream, say) is the same problem in other words.
	named := map[string]bool{}
	for _, p := range problems {
		if k, _, ok := strings.Cut(p, ": "); ok {
			named[k] = true
		}
	}
	later := len(problems)
	// Build the runtime as serve does (upstreams, zones, policy, access
	// and rate limits) on a server of its own, and close it.
	var notes []string
	o.note = func(s string) { notes = append(notes, s) }
	pol, err := buildSafely(ctx, cfg, o)
	if err != nil {
		problems = append(problems, errLines(err)...)
	}
	r.Policy = pol
	// The certificate of DoT and DoH, as a start and a reload check it.
	tlsWarnings, terr := CheckTLS(cfg, time.Now())
	if terr != nil {
		problems = append(problems, errLines(terr)...)
	}
	r.Warnings = append(r.Warnings, tlsWarnings...)
	if pol != nil {
		failed, bad := sourceProblems(cfg, pol)
		problems = append(problems, failed...)
		r.Warnings = append(r.Warnings, bad...)
	}
	r.Notes = notes
	out := problems[:later]
	for _, p := range problems[later:] {
		if k, _, ok := strings.Cut(p, ": "); ok && named[k] {
			continue
		}
		out = append(out, p)
	}
	r.Problems = dedupe(out)
	return r
}

// buildSafely builds the runtime of cfg as serve would, on a server of
// its own, and returns its policy (also when the rest of the build failed).
// The configuration may have failed validation and the builders are not
// meant for one, so a panic becomes a problem instead of a crash.
func buildSafely(ctx context.Context, cfg *config.Config, o PolicyOptions) (pol *policy.Policy, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("the rest could not be checked with this configuration (fix the problems above first): %v", r)
		}
	}()
	srv := resolver.NewServer(resolver.ServerOptions{Logger: slogDiscard()})
	rt, err := srv.Build(ctx, cfg, resolver.BuildOptions{
		Policy: func(ctx context.Context, _ *policy.Policy) (*policy.Policy, error) {
			var perr error
			pol, perr = BuildPolicyWith(ctx, cfg, o)
			return pol, perr
		},
		BaseDir: baseDir(cfg),
		Logger:  slogDiscard(),
	})
	if rt != nil {
		_ = rt.Close()
	}
	return pol, err
}

// sourceProblems lists, for every source of pol, its load failure
// (failed) and its bad lines: the first ones policy keeps, and how many in
// all (bad).
func sourceProblems(cfg *config.Config, pol *policy.Policy) (failed, bad []string) {
	for _, j := range pol.Jurisdictions() {
		for _, s := range j.Sources {
			key := sourceKey(cfg, j.ID, s)
			if s.Err != "" {
				failed = append(failed, fmt.Sprintf("%s: %s", key, s.Err))
				continue // its bad lines are in the error
			}
			if s.Bad == 0 {
				continue
			}
			bad = append(bad, fmt.Sprintf("%s: %d bad %s, skipped (the rest of the list loads)", key, s.Bad, plural(s.Bad, "line", "lines")))
			for _, le := range s.Errors {
				bad = append(bad, "  "+le.Error())
			}
			if more := s.Bad - len(s.Errors); more > 0 {
				bad = append(bad, fmt.Sprintf("  … and %d more", more))
			}
		}
	}
	return failed, bad
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// errLines splits a (joined) error into its lines.
func errLines(err error) []string {
	var out []string
	for _, e := range flatten(err) {
		for _, line := range strings.Split(e.Error(), "\n") {
			if strings.TrimSpace(line) != "" {
				out = append(out, line)
			}
		}
	}
	return out
}

// dedupe drops repeated problems (validation and the builder may both
// report one), keeping the first occurrence.
func dedupe(in []string) []string {
	seen := map[string]bool{}
	out := in[:0]
	for _, s := range in {
		if seen[s] && !strings.HasPrefix(s, "  ") {
			continue
		}
		seen[s] = true
		out = append(out, s)
	}
	return slices.Clip(out)
}

// offlineCopy is fetch for validate --offline: the last good copy, else
// policy.ErrNotChecked (the source adds nothing and is not guarded), each
// with a note.
func (a *App) offlineCopy(f *download.Fetcher, ds download.Source) ([]byte, error) {
	if res, ok := f.Cached(ds); ok {
		a.notef("list %s: offline: checked the last good copy from %s", ds.Name, res.FetchedAt.UTC().Format(time.RFC3339))
		return res.Body, nil
	}
	a.notef("list %s: offline: no last good copy in lists.cache_dir yet, not checked (serve downloads it)", ds.Name)
	return nil, policy.ErrNotChecked
}

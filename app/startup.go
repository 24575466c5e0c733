package app

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jurisdns/jurisdns/config"
	"github.com/jurisdns/jurisdns/download"
)

// Start-up never waits on a list server. New builds the first runtime with
// every URL source taken from its last good copy in lists.cache_dir; a
// source without one is handled by its jurisdiction's on_load_failure
// (fail_closed: its clients get SERVFAIL, fail_open: not enforced) until
// its first download, except under last_known_good, where there is nothing
// to keep and New downloads it (bounded by lists.deadline). Start then
// refreshes those sources in the background at once, and /readyz lists the
// sources that are not current until they are.

// startupRun marks the build of New, passed to fetch through the context.
type startupRun struct {
	pending atomic.Bool // some source awaits its first download
}

type startupKey struct{}

func startupOf(ctx context.Context) *startupRun {
	r, _ := ctx.Value(startupKey{}).(*startupRun)
	return r
}

// fromCacheAtStartup answers fetch during New for a URL source: its last
// good copy (the source is then pending), or, with no copy, an error that
// the jurisdiction's on_load_failure handles (pending too). done is false
// for a source under last_known_good without a copy, which fetch downloads
// now.
func (a *App) fromCacheAtStartup(cfg *config.Config, st *startupRun, f *download.Fetcher, j, name string, ds download.Source) (body []byte, done bool, err error) {
	key := j + "/" + name
	if res, ok := f.Cached(ds); ok {
		st.pending.Store(true)
		when := res.FetchedAt.UTC().Format(time.RFC3339)
		a.sources.set(key, "using the last good copy from "+when+"; first download in progress", nil)
		if !res.CheckedAt.IsZero() {
			a.metrics.ListRefreshed(j, res.CheckedAt) // when its server last confirmed it
		}
		a.log.Info("url list: serving the last good copy; downloading it in the background",
			"jurisdiction", j, "source", name, "fetched_at", when)
		return res.Body, true, nil
	}
	olf := onLoadFailureOf(cfg, j)
	if olf == "last_known_good" {
		a.log.Warn("url list: no last good copy in lists.cache_dir and on_load_failure last_known_good: downloading it before serving",
			"jurisdiction", j, "source", name, "deadline", cfg.ListDeadline())
		return nil, false, nil
	}
	st.pending.Store(true)
	a.sources.set(key, "no copy yet; first download in progress (on_load_failure "+olf+" applies until it ends)", nil)
	return nil, true, errors.New("no last good copy in lists.cache_dir yet: first download in progress")
}

// onLoadFailureOf is the on_load_failure the configuration gives
// jurisdiction j; "" (an override that leaves it to the shipped data, or the
// default) counts as last_known_good.
func onLoadFailureOf(cfg *config.Config, j string) string {
	olf := ""
	for _, jc := range cfg.Jurisdictions {
		if jc.ID == j {
			olf = string(jc.OnLoadFailure)
		}
	}
	if olf == "" {
		return "last_known_good"
	}
	return olf
}

// sourceStates remembers the URL sources that are not current: served
// from a last good copy (at start-up, or after a failed update), or with
// no list at all. /readyz lists them.
type sourceStates struct {
	mu sync.Mutex
	m  map[string]sourceState // by "jurisdiction/source"
}

// sourceState is why a source is not current: a short reason, and the
// error behind it, if any (which may name the URL: only the token-protected
// API shows it, not /readyz).
type sourceState struct {
	why string
	err error
}

func (s *sourceStates) set(key, why string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]sourceState{}
	}
	s.m[key] = sourceState{why, err}
}

func (s *sourceStates) current(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
}

// prune forgets the sources cfg no longer has.
func (s *sourceStates) prune(cfg *config.Config) {
	keep := map[string]bool{}
	for _, j := range cfg.Jurisdictions {
		for _, src := range j.Sources {
			if src.URL != "" {
				keep[strings.TrimSpace(j.ID)+"/"+sourceName(src)] = true
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.m {
		if !keep[k] {
			delete(s.m, k)
		}
	}
}

// list returns "jurisdiction/source: why" for every source not current,
// sorted; with detail, followed by ": " and the error.
func (s *sourceStates) list(detail bool) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.m))
	for k, st := range s.m {
		line := k + ": " + st.why
		if detail && st.err != nil {
			line += ": " + st.err.Error()
		}
		out = append(out, line)
	}
	slices.Sort(out)
	return out
}

// NotCurrent lists the URL sources that are not current ("jurisdiction/
// source: why"): /readyz, open to probes without the admin token, reports
// them as not_current.
func (a *App) NotCurrent() []string { return a.sources.list(false) }

// NotCurrentDetail is NotCurrent with the error behind each reason: the
// status API and the reload report, behind the admin token, show it.
func (a *App) NotCurrentDetail() []string { return a.sources.list(true) }

// notef tells the note hook (the command-line tools), if any, one note at
// a time.
func (a *App) notef(format string, args ...any) {
	if a.note != nil {
		a.listMu.Lock()
		defer a.listMu.Unlock()
		a.note(fmt.Sprintf(format, args...))
	}
}

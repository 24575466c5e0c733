package app

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jurisdns/jurisdns/config"
	"github.com/jurisdns/jurisdns/download"
)

// refreshJitter varies each wait of the list refresher by ±10%, so that many
// resolvers started together do not hit a list server at the same moment.
const refreshJitter = 0.1

// refreshState is the periodic refresh of URL sources: one
// download.Refresher whose period is the shortest refresh period of the
// configured URL sources (a source's refresh, else lists.refresh). Each
// tick rebuilds the runtime with the current configuration, as Reload does,
// fetching the sources that are due.
type refreshState struct {
	mu     sync.Mutex
	period time.Duration // of the running refresher; 0: none
	closed bool          // Shutdown stopped it for good
	// immediate: the next refresher started refreshes at once (New
	// served some sources from their last good copy).
	immediate bool
	cancel    context.CancelFunc // stops it
	wg        sync.WaitGroup     // every refresher goroutine started
}

// refreshPeriod is the shortest refresh period of the URL sources of cfg,
// or 0 when it has none.
func refreshPeriod(cfg *config.Config) time.Duration {
	var p time.Duration
	for _, j := range cfg.Jurisdictions {
		for _, s := range j.Sources {
			if s.URL == "" {
				continue
			}
			if d := sourcePeriod(cfg, s); d > 0 && (p == 0 || d < p) {
				p = d
			}
		}
	}
	return p
}

// sourcePeriod is the refresh period of a URL source.
func sourcePeriod(cfg *config.Config, s config.Source) time.Duration {
	if s.Refresh > 0 {
		return s.Refresh
	}
	return cfg.Lists.Refresh
}

// syncRefresher makes the running refresher match cfg: started when cfg has
// URL sources, restarted when their shortest period changed, stopped when
// there are none. It never waits for the old refresher (which may be
// waiting for reloadMu, held by the caller); Shutdown does.
func (a *App) syncRefresher(cfg *config.Config) {
	period := refreshPeriod(cfg)
	r := &a.refresh
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || period == r.period {
		return
	}
	if r.cancel != nil {
		r.cancel()
		r.cancel = nil
	}
	r.period = period
	if period == 0 {
		a.log.Info("no url list sources: periodic refresh off")
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	rf := &download.Refresher{
		Period:    period,
		Jitter:    refreshJitter,
		Refresh:   func(ctx context.Context) error { return a.refreshLists(ctx, false) },
		Timer:     a.opts.RefreshTimer,
		Logger:    a.log,
		Immediate: r.immediate,
	}
	r.immediate = false
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		if err := rf.Run(ctx); err != nil {
			a.log.Error("list refresher stopped", "err", err)
		}
	}()
	a.log.Info("periodic refresh of url list sources", "period", period, "jitter", refreshJitter)
}

// stopRefresher stops the refresher for good and waits for it (and for a
// refresh in progress, whose downloads its context cancels).
func (a *App) stopRefresher() {
	r := &a.refresh
	r.mu.Lock()
	r.closed = true
	if r.cancel != nil {
		r.cancel()
		r.cancel = nil
	}
	r.period = 0
	r.mu.Unlock()
	r.wg.Wait()
}

// Refresh downloads every URL source again now (conditional GET against the
// cached copy) and rebuilds the runtime with the current configuration,
// the path of Reload without re-reading the configuration file. A source
// whose update fails or is rejected keeps its previous list (the cached
// copy, or the previous rules under last_known_good); Refresh then still
// swaps in the rebuilt runtime and returns an error naming those sources. If
// the rebuild itself fails, nothing changes. The periodic refresher does the
// same for the sources that are due.
func (a *App) Refresh(ctx context.Context) error { return a.refreshLists(ctx, true) }

func (a *App) refreshLists(ctx context.Context, all bool) error {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	start := time.Now()
	cfg := a.cfg
	run := &refreshRun{now: a.now(), slack: refreshPeriod(cfg) / 2, all: all}
	if err := a.rebuild(context.WithValue(ctx, refreshRunKey{}, run), cfg, "refresh", start); err != nil {
		if ctx.Err() == nil {
			for _, e := range flatten(err) {
				a.log.Error("list refresh failed; still serving the previous lists", "err", e)
			}
		}
		return err
	}
	if len(run.failed) > 0 { // policy.Build waited for every fetch
		slices.Sort(run.failed)
		return fmt.Errorf("list refresh: kept the previous list of %s", strings.Join(run.failed, ", "))
	}
	return nil
}

// refreshRun is one refresh, passed to fetch through the build context.
type refreshRun struct {
	now    time.Time
	slack  time.Duration // half the refresher's period
	all    bool          // every source is due
	mu     sync.Mutex
	failed []string // sources whose update failed (fetches run in parallel)
}

type refreshRunKey struct{}

func refreshRunOf(ctx context.Context) *refreshRun {
	r, _ := ctx.Value(refreshRunKey{}).(*refreshRun)
	return r
}

// due reports whether a source last confirmed by its server at last, with
// refresh period period, is to be fetched in this run. The refresher ticks
// at the shortest period; a source with a longer one is fetched at the first
// tick within half a tick of its own period.
func (r *refreshRun) due(last time.Time, period time.Duration) bool {
	return r.all || last.IsZero() || r.now.Sub(last) >= period-r.slack
}

// fail notes a source whose update failed; r may be nil (not a refresh).
func (r *refreshRun) fail(jurisdiction, source string, _ error) {
	if r != nil {
		r.mu.Lock()
		r.failed = append(r.failed, jurisdiction+"/"+source)
		r.mu.Unlock()
	}
}

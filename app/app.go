// Package app wires jurisdns together: configuration, policy, upstreams,
// cache, DNS server, admin HTTP, metrics and the enforcement log; and it
// runs the lifecycle: start, SIGHUP reload, SIGTERM drain. cmd/jurisdns is
// a thin CLI over it, and tests drive it directly.
package app

import (
	"cmp"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/admin"
	"github.com/jurisdns/jurisdns/audit"
	"github.com/jurisdns/jurisdns/config"
	"github.com/jurisdns/jurisdns/download"
	"github.com/jurisdns/jurisdns/metrics"
	"github.com/jurisdns/jurisdns/policy"
	"github.com/jurisdns/jurisdns/resolver"
	"github.com/jurisdns/jurisdns/rpzout"
	"github.com/jurisdns/jurisdns/spec"
	"github.com/jurisdns/jurisdns/status"
	"github.com/jurisdns/jurisdns/upstream"
	"github.com/jurisdns/jurisdns/zones"
)

// Version is the version jurisdns reports (start line, metrics, status
// page): the one set at build time (-ldflags "-X
// github.com/jurisdns/jurisdns/app.Version=…"), else the module version of
// the build info (see Build).
var Version = "dev"

// Options configure an App.
type Options struct {
	// Load says where the configuration comes from.
	Load config.LoadOptions
	// Logger overrides the logger built from the configuration (tests).
	Logger *slog.Logger
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
	// ResolvConf is read for default upstreams; "" means /etc/resolv.conf.
	ResolvConf string
	// HTTPClient downloads URL list sources; nil means the downloader's
	// own client. Tests inject one that trusts an httptest TLS server.
	HTTPClient *http.Client
	// DownloadBackoff is the wait before download retry number attempt;
	// nil means the downloader's exponential backoff (1s … 30s).
	DownloadBackoff func(attempt int) time.Duration
	// UpstreamRootCAs verifies tls:// and https:// upstreams; nil means
	// the system's roots. Tests trust their own CA.
	UpstreamRootCAs *x509.CertPool
	// RefreshTimer replaces time.NewTimer in the periodic refresh of URL
	// sources (tests fire it at will); see download.Refresher.Timer.
	RefreshTimer func(d time.Duration) (<-chan time.Time, func() bool)
	// MemoryLimit sets the process's soft memory limit from
	// server.memory_limit after every policy build (jurisdns serve). It is
	// process-wide: tests that run several Apps leave it off.
	MemoryLimit bool
}

// App is one running jurisdns.
type App struct {
	status  *status.Status
	opts    Options
	log     *slog.Logger
	now     func() time.Time
	metrics *metrics.Metrics
	server  *resolver.Server
	enc     *resolver.Encrypted // DoT and DoH (no listener when neither is configured)
	admin   *admin.Server
	audit   *audit.Writer
	qlog    *queryLogSink
	tap     *dnstapSink // nil when dnstap was off at start
	memory  *memoryBudget

	reloadMu   sync.Mutex // serializes reloads and refreshes
	cfg        *config.Config
	boot       *config.Config               // the configuration New started with
	fetchers   map[string]*download.Fetcher // by lists.cache_dir; written under reloadMu and fetchersMu
	fetchersMu sync.Mutex                   // lets a scrape read fetchers without waiting for a reload
	checked    map[string]time.Time         // URL source → last confirmed by its server; under listMu
	listMu     sync.Mutex                   // the bookkeeping of URL sources fetched in parallel: checked, notes
	refresh    refreshState                 // the periodic refresh of URL sources
	feeds      feeds                        // RPZ sources pulled by zone transfer (transfer.go)
	rpzOut     *rpzout.Server               // jurisdictions served as RPZ zones (transfer.go)
	rpzStop    context.CancelFunc           // stops watchRPZDates
	rpzWG      sync.WaitGroup
	sources    sourceStates // URL sources that are not current

	// note and progress, when set (the check, lists and validate
	// commands), are told about a list served from its last good copy
	// and about the downloads in flight.
	note     func(string)
	progress func(download.Progress)
	offline  bool // URL sources from the cache only (validate --offline)

	runMu    sync.Mutex // guards stopping and the shutdown result
	stopping bool
	stopped  chan struct{} // closed when Shutdown finished
	stopErr  error
}

// LoadConfig loads and validates the configuration.
func LoadConfig(opts config.LoadOptions) (*config.Config, error) {
	cfg, err := config.Load(opts)
	if err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// warnUnknownEnv logs, once at start, every JURISDNS_* variable that names
// no key and is not a platform's link variable, and counts both kinds. Such
// variables never stop the server (`jurisdns validate --strict-env` refuses
// them).
func warnUnknownEnv(log *slog.Logger, m *metrics.Metrics, cfg *config.Config) {
	warn := cfg.EnvWarnings()
	for _, n := range warn {
		log.Warn(n.String())
	}
	m.SetUnknownEnv(len(cfg.UnknownEnv)-len(warn), len(warn))
}

// NewLogger builds the logger the configuration asks for.
func NewLogger(cfg *config.Config, w *os.File) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	ho := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == spec.LogJSON {
		return slog.New(slog.NewJSONHandler(w, ho))
	}
	return slog.New(slog.NewTextHandler(w, ho))
}

// New loads the configuration, builds the policy and runtime and binds the
// listeners. Nothing is served until Start.
func New(opts Options) (*App, error) {
	cfg, err := LoadConfig(opts.Load)
	if err != nil {
		return nil, err
	}
	a := &App{opts: opts, log: opts.Logger, now: opts.Now, cfg: cfg, boot: cfg,
		fetchers: map[string]*download.Fetcher{}, checked: map[string]time.Time{}, stopped: make(chan struct{})}
	if a.log == nil {
		a.log = NewLogger(cfg, os.Stderr)
	}
	if a.now == nil {
		a.now = time.Now
	}
	a.metrics = metrics.New()
	a.metrics.SetBuildInfo(Version)
	a.memory = newMemoryBudget(opts.MemoryLimit, cfg.Server.MemoryLimit, cfg.Cache.MaxBytes, a.log)
	warnUnknownEnv(a.log, a.metrics, cfg)
	if cfg.Audit.Path != "" {
		w, err := a.openAudit(cfg)
		if err != nil {
			return nil, err
		}
		a.audit = w
	}
	if cfg.Audit.QueryLog != "" {
		l, err := audit.OpenQueryLog(audit.Options{Path: cfg.Audit.QueryLog, MaxSize: cfg.Audit.MaxSize, MaxFiles: cfg.Audit.MaxFiles, Logger: a.log, Now: a.now})
		if err != nil {
			a.closeAudit()
			return nil, fmt.Errorf("audit.query_log: %w", err)
		}
		a.qlog = newQueryLogSink(l, string(cfg.Audit.ClientPrivacy), a.metrics, a.now)
	}
	if cfg.Dnstap.Enabled() {
		a.tap = newDnstapSink(cfg.Dnstap, a.log, a.metrics)
	}
	cache := resolver.NewCache(resolver.CacheOptions{
		Size:           cfg.Cache.Size,
		MaxBytes:       cfg.Cache.MaxBytes,
		MinTTL:         cfg.Cache.MinTTL,
		MaxTTL:         cfg.Cache.MaxTTL,
		NegativeMaxTTL: cfg.Cache.NegativeMaxTTL,
		ServfailTTL:    cfg.Cache.ServfailTTL,
		ServeStale:     cfg.Cache.ServeStale,
		OnEvict:        a.metrics.CacheEviction,
	})
	a.status = status.New(status.Options{
		Policy: func() *policy.Policy {
			if rt := a.server.Runtime(); rt != nil {
				return rt.Policy
			}
			return nil
		},
		Now: a.now, Privacy: string(cfg.Audit.ClientPrivacy), Version: Version, NotCurrent: a.NotCurrentDetail,
		Audit: a.auditState,
	})
	a.server = resolver.NewServer(resolver.ServerOptions{
		Cache:       cache,
		Logger:      a.log,
		Now:         a.now,
		Observer:    observer{a.metrics, a.status},
		Auditor:     auditors(policyHits{a.metrics}, a.auditor(cfg), a.status),
		QueryLogger: queryLoggers(a.qlog, a.tap),
	})
	// DoT and DoH are bound first: DDR answers name their ports.
	if a.enc, err = a.listenEncrypted(cfg); err != nil {
		a.closeAudit()
		return nil, err
	}
	st := &startupRun{}
	rt, err := a.build(context.WithValue(context.Background(), startupKey{}, st), cfg)
	if err != nil {
		a.closeEncrypted()
		a.closeAudit()
		return nil, err
	}
	a.refresh.immediate = st.pending.Load()
	a.server.Swap(rt)
	a.server.SetNotify(a.notify)
	a.rpzOut = rpzout.New(a.log, a.now)
	a.server.SetXfr(a.serveRPZ)
	a.syncFeeds()
	// The start-up build is the first successful load: the reload gauges
	// say so, rather than "never succeeded".
	a.metrics.Loaded(a.now())
	if err := a.server.Listen(cfg.Listen, cfg.Server.UDPWorkers, cfg.Server.MaxTCPConnections); err != nil {
		a.closeEncrypted()
		_ = rt.Close() // nothing was served: no query to wait for
		a.closeAudit()
		return nil, err
	}
	a.warnTLS(cfg)
	if cfg.Admin != "" {
		srv, err := admin.New(admin.Options{
			Addr:       cfg.Admin,
			Metrics:    a.metrics.Handler(),
			Ready:      a.ready,
			Degraded:   a.degraded,
			NotCurrent: a.NotCurrent,
			Logger:     a.log,
			TokenFile:  cfg.AdminAuth.TokenFile,
			Pprof:      cfg.AdminPprof,
		})
		if err != nil {
			a.closeEncrypted()
			_ = a.server.Shutdown(context.Background())
			a.closeAudit()
			return nil, fmt.Errorf("admin: %w", err)
		}
		srv.Handle("/", a.status.Handler())
		srv.Handle("POST /api/reload", a.reloadHandler())
		a.admin = srv
	}
	a.publish(rt, nil)
	a.memory.settle()
	return a, nil
}

// releaseMemory collects the garbage of a policy build (the parser's and
// builder's working set, a replaced or rejected policy) and returns the
// freed pages to the operating system at once. Without it the runtime keeps
// them resident: its background scavenger only returns memory beyond about
// 110% of the GC's heap goal, which is twice the live heap (GOGC=100). With
// a 1M-name list that is some 10 MB at startup, and the whole previous
// policy (40-50 MB) after a reload. It costs one full GC (a few ms: the
// policy holds almost no pointers), off the query path: queries keep being
// served while it runs. The price is that the next reload's build touches
// fresh pages again.
func releaseMemory() { debug.FreeOSMemory() }

func (a *App) closeAudit() {
	if a.audit != nil {
		_ = a.audit.Close()
	}
	if a.qlog != nil {
		_ = a.qlog.Close()
	}
	if a.tap != nil {
		_ = a.tap.Close()
	}
}

// build compiles cfg into a runtime (resolver.Server.Build): the server
// assembles it and takes over the parts of the current runtime whose
// configuration did not change; the App supplies the list side, the policy,
// built with the verified downloader, the zone transfer client and the
// current policy for last_known_good.
func (a *App) build(ctx context.Context, cfg *config.Config) (*resolver.Runtime, error) {
	if _, err := rpzOutOptions(cfg); err != nil { // a secret file that cannot be read
		return nil, err
	}
	opts, certErr := a.buildOptions(ctx, cfg, func(ctx context.Context, prev *policy.Policy) (*policy.Policy, error) {
		return policy.Build(ctx, cfg, policy.BuildOptions{BaseDir: baseDir(cfg), Fetch: a.fetch(cfg), Transfer: a.transferSource(cfg),
			Logger: a.log, Previous: prev})
	})
	rt, err := a.server.Build(ctx, cfg, opts)
	if certErr != nil {
		if rt != nil {
			_ = rt.Close() // never installed
		}
		return nil, errors.Join(err, certErr)
	}
	return rt, err
}

// buildOptions are the options of a Build of the App's server for cfg, with
// pol building the policy. The error is the certificate's (DoT and DoH): a
// problem with it is reported with every other problem of the build.
func (a *App) buildOptions(ctx context.Context, cfg *config.Config, pol func(context.Context, *policy.Policy) (*policy.Policy, error)) (resolver.BuildOptions, error) {
	cert, certErr := a.certificate(ctx, cfg, a.server.Runtime())
	var ddr []zones.DDREndpoint
	if certErr == nil {
		ddr = a.ddrEndpoints(ctx, cfg)
	}
	return resolver.BuildOptions{
		Policy:      pol,
		BaseDir:     baseDir(cfg),
		ResolvConf:  a.opts.ResolvConf,
		Logger:      a.log,
		Observe:     a.observeUpstream,
		RootCAs:     a.opts.UpstreamRootCAs,
		Certificate: cert,
		DDR:         ddr,
		Wrap:        a.tap.upstreamWrapper(),
		OnDrop:      a.metrics.UpstreamReplyDropped,
	}, certErr
}

func baseDir(cfg *config.Config) string {
	if cfg.Source == "" || cfg.Source == "embedded default" {
		wd, _ := os.Getwd()
		return wd
	}
	return filepath.Dir(cfg.Source)
}

// fetch downloads URL sources with the verified downloader: HTTPS (plain
// HTTP only with allow_http), timeout, size cap, retries with backoff,
// conditional GET against the last good copy in lists.cache_dir. Every
// body goes to accept, the list loader of policy.Build (blocklists.Load:
// the one parse, the pin and the guards), before the downloader takes it. A
// failed or rejected update falls back to the cached copy; with no usable
// copy the error goes to policy.Build, whose on_load_failure decides
// (last_known_good keeps the previous rules). Either way the failure is
// logged and counted. During a periodic refresh a source whose own refresh
// period has not come yet is taken from the cache without a request. fetch
// runs inside policy.Build, under reloadMu, for several sources at once.
func (a *App) fetch(cfg *config.Config) func(ctx context.Context, j string, src config.Source, accept func([]byte, int) (int, error)) error {
	f := a.fetcherFor(cfg.Lists.CacheDir)
	return func(ctx context.Context, j string, src config.Source, accept func([]byte, int) (int, error)) error {
		ds := downloadSource(cfg, j, src)
		name := sourceName(src)
		key := ds.Name + "\x00" + ds.URL
		if st := startupOf(ctx); st != nil {
			if body, done, err := a.fromCacheAtStartup(cfg, st, f, j, name, ds); done {
				return acceptCopy(body, err, accept)
			}
		}
		if a.offline {
			body, err := a.offlineCopy(f, ds)
			return acceptCopy(body, err, accept)
		}
		run := refreshRunOf(ctx)
		a.listMu.Lock()
		last := a.checked[key]
		a.listMu.Unlock()
		if run != nil && !run.due(last, sourcePeriod(cfg, src)) {
			if res, ok := f.Cached(ds); ok {
				return acceptCopy(res.Body, nil, accept)
			}
		}
		res, err := f.Fetch(ctx, ds, download.Accept(accept))
		if ctx.Err() != nil {
			// Shutting down (or a cancelled reload): nothing is swapped
			// in, and the download did not fail on its own.
			return ctx.Err()
		}
		if err != nil {
			a.metrics.ListRefreshFailed(j, name)
			run.fail(j, name, err)
			a.sources.set(ds.Name, "download failed, no last good copy", err)
			a.notef("list %s: download failed and no last good copy: %v", ds.Name, err)
			return err
		}
		if res.Stale {
			a.metrics.ListRefreshFailed(j, name)
			run.fail(j, name, res.Err)
			when := res.FetchedAt.UTC().Format(time.RFC3339)
			a.sources.set(ds.Name, "update failed; using the last good copy from "+when, res.Err)
			a.log.Warn("list update failed or rejected; using the last good copy from the cache",
				"jurisdiction", j, "source", name, "fetched_at", res.FetchedAt, "err", res.Err)
			a.notef("list %s: using the last good copy from %s (update failed: %v)", ds.Name, when, res.Err)
			return nil
		}
		a.listMu.Lock()
		a.checked[key] = a.now()
		a.listMu.Unlock()
		a.sources.current(ds.Name)
		a.metrics.ListRefreshed(j, a.now())
		return nil
	}
}

// acceptCopy hands a last good copy taken without a request to accept (as
// the last good copy itself, it has no max_shrink baseline), or returns err.
func acceptCopy(body []byte, err error, accept func([]byte, int) (int, error)) error {
	if err != nil {
		return err
	}
	_, err = accept(body, download.NoBaseline)
	return err
}

// fetcherFor returns the downloader for a cache directory (a reload may
// change lists.cache_dir). The caller holds reloadMu.
func (a *App) fetcherFor(dir string) *download.Fetcher {
	if f := a.fetchers[dir]; f != nil {
		return f
	}
	f := download.New(download.Options{
		CacheDir: dir,
		Client:   a.opts.HTTPClient,
		Logger:   a.log,
		Now:      a.now,
		Backoff:  a.opts.DownloadBackoff,
		Progress: a.progress,
	})
	a.fetchersMu.Lock()
	a.fetchers[dir] = f
	a.fetchersMu.Unlock()
	return f
}

// listSourceStates are the downloaders' counters per URL source, for
// /metrics at scrape time: summed over the downloaders of every cache
// directory used since the start (a reload may change lists.cache_dir),
// with the entries of the one that confirmed the list last.
func (a *App) listSourceStates() []metrics.ListSourceState {
	a.fetchersMu.Lock()
	fs := make([]*download.Fetcher, 0, len(a.fetchers))
	for _, f := range a.fetchers {
		fs = append(fs, f)
	}
	a.fetchersMu.Unlock()
	merged := map[string]*download.SourceStats{}
	for _, f := range fs {
		for name, s := range f.Stats() {
			m := merged[name]
			if m == nil {
				merged[name] = &s
				continue
			}
			m.Network += s.Network
			m.NotModified += s.NotModified
			m.Cache += s.Cache
			m.Errors += s.Errors
			m.Rejected += s.Rejected
			m.Retries += s.Retries
			if s.LastSuccess.After(m.LastSuccess) {
				m.LastSuccess, m.Entries = s.LastSuccess, s.Entries
			}
		}
	}
	out := make([]metrics.ListSourceState, 0, len(merged))
	for name, s := range merged {
		j, src, ok := strings.Cut(name, "/") // downloadSource names a source "jurisdiction/source"
		if !ok {
			j, src = "", name
		}
		out = append(out, metrics.ListSourceState{
			Jurisdiction: j, Source: src,
			Downloaded: s.Network, NotModified: s.NotModified, Cache: s.Cache, Errors: s.Errors,
			Rejected: s.Rejected, Retries: s.Retries, Entries: s.Entries, LastSuccess: s.LastSuccess,
		})
	}
	slices.SortFunc(out, func(x, y metrics.ListSourceState) int {
		return cmp.Or(strings.Compare(x.Jurisdiction, y.Jurisdiction), strings.Compare(x.Source, y.Source))
	})
	return out
}

// downloadSource describes a URL source of jurisdiction j to the downloader.
func downloadSource(cfg *config.Config, j string, src config.Source) download.Source {
	return download.Source{
		Name:      j + "/" + sourceName(src),
		URL:       src.URL,
		AllowHTTP: src.AllowHTTP,
		SHA256:    src.SHA256,
		Timeout:   cfg.Lists.Timeout,
		Deadline:  cfg.ListDeadline(),
		MaxSize:   cfg.Lists.MaxSize,
	}
}

// sourceName is the name policy gives a user source: its name, else its
// file name, URL (redacted: it names the source in logs and metric labels)
// or "inline".
func sourceName(src config.Source) string {
	switch {
	case src.Name != "":
		return src.Name
	case src.Path != "":
		return filepath.Base(src.Path)
	case src.URL != "":
		return spec.RedactURL(src.URL)
	}
	return "inline"
}

// Start serves DNS and the admin listener, starts the periodic refresh of
// URL sources (when there are any) and logs the one start line.
func (a *App) Start() error {
	a.server.Serve()
	if a.enc != nil {
		a.enc.Serve()
	}
	if a.admin != nil {
		if err := a.admin.Start(); err != nil {
			return fmt.Errorf("admin: %w", err)
		}
	}
	rt := a.server.Runtime()
	a.syncRefresher(rt.Config)
	ctx, stop := context.WithCancel(context.Background())
	a.rpzStop = stop
	a.rpzWG.Add(1)
	go func() { defer a.rpzWG.Done(); a.watchRPZDates(ctx) }()
	attrs := []any{"listen", a.server.Addrs(), "upstreams", rt.Upstreams, "config", rt.Config.Source,
		"policy", shortHash(rt.Policy.Hash()), "version", Version}
	if rt.Config.Encrypted() {
		attrs = append(attrs, "dot", a.enc.DoTAddrs(), "doh", a.enc.DoHAddrs(), "ddr", rt.Config.DDR)
	}
	if a.admin != nil {
		attrs = append(attrs, "admin", a.admin.Addr())
	}
	a.log.Info("jurisdns started", attrs...)
	return nil
}

// EncryptedAddrs returns the bound DoT and DoH addresses (none when they
// are off).
func (a *App) EncryptedAddrs() (dot, doh []string) {
	if a.enc == nil {
		return nil, nil
	}
	return a.enc.DoTAddrs(), a.enc.DoHAddrs()
}

// DNSAddrs returns the bound DNS addresses.
func (a *App) DNSAddrs() []string { return a.server.Addrs() }

// AdminAddr returns the bound admin address, or "".
func (a *App) AdminAddr() string {
	if a.admin == nil {
		return ""
	}
	return a.admin.Addr()
}

// Server returns the DNS server.
func (a *App) Server() *resolver.Server { return a.server }

// Metrics returns the metrics.
func (a *App) Metrics() *metrics.Metrics { return a.metrics }

// Reload re-reads the configuration file and every list source, builds a
// new runtime off the hot path and swaps it in only if all of it succeeded:
// the configuration is valid, every local list (path or inline) loads, and
// every URL source yields a list (a download that fails is handled by its
// jurisdiction's on_load_failure: the cached copy or the previous rules for
// last_known_good). On error nothing changes: every problem is logged with
// its key path or file:line, reloads_total{result="failed"} counts it, and
// the next reload starts afresh. Queries in flight finish on the runtime
// they started with; the new rules apply to every query that arrives after
// Reload returns. Reloads and list refreshes are serialized.
func (a *App) Reload(ctx context.Context) error {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	return a.reloadLocked(ctx)
}

// reloadLocked is Reload; the caller holds reloadMu.
func (a *App) reloadLocked(ctx context.Context) error {
	start := time.Now()
	cfg, err := LoadConfig(a.opts.Load)
	if err == nil {
		err = a.rebuild(ctx, cfg, "reload", start)
	}
	if err != nil {
		a.metrics.Reload(false, a.now())
		for _, e := range flatten(err) {
			a.log.Error("reload failed; still serving the previous configuration", "err", e)
		}
		return err
	}
	a.metrics.Reload(true, a.now())
	return nil
}

// rebuild builds the runtime of cfg (reusing the current one's lists for
// last_known_good) and, only if that fully succeeded, swaps it in, empties
// the cache when the upstreams changed, publishes the gauges and logs one
// line: policy hash, entries per jurisdiction with the rules added and
// removed, time taken. On error it changes nothing. The caller holds
// reloadMu.
func (a *App) rebuild(ctx context.Context, cfg *config.Config, trigger string, start time.Time) error {
	// Once the old policy (or, on error, the new one) is garbage, give its
	// memory back and set the memory limit again (deferred first, so it
	// runs last).
	defer a.memory.settle()
	// While the old and the new policy are both alive, collect garbage
	// sooner: the peak stays close to old + new instead of twice that. The
	// memory limit is lifted meanwhile: it was set for one policy.
	defer debug.SetGCPercent(debug.SetGCPercent(25))
	a.memory.lift()
	// A reload binds the DoT and DoH addresses it adds first: DDR answers
	// name their ports, and one that cannot be bound fails the reload.
	var listeners *resolver.ListenerChange
	if trigger == "reload" {
		var err error
		if ctx, listeners, err = a.prepareListeners(ctx, cfg); err != nil {
			return err
		}
	}
	rt, err := a.build(ctx, cfg)
	if err != nil {
		listeners.Abort()
		return err
	}
	err = localSourceErrors(cfg, rt.Policy)
	if err == nil {
		err = ctx.Err() // shutting down: do not swap a half-refreshed policy
	}
	if err != nil {
		listeners.Abort()
		a.forgetPending()
		if rt != nil {
			_ = rt.Close() // never installed; the parts it took over stay open
		}
		return err
	}
	if trigger == "reload" {
		for _, key := range restartKeys(a.boot, cfg) {
			a.log.Warn("setting changed: restart jurisdns to apply it (a reload does not)", "key", key)
		}
		a.warnTLS(cfg)
	}
	// Swap retires the old runtime: closed once its queries are done.
	old := a.server.Swap(rt)
	// The listeners change once the runtime whose certificate and DDR
	// answers go with them is in place.
	a.commitListeners(cfg, listeners)
	a.syncFeeds()
	if !slices.Equal(rt.Upstreams, old.Upstreams) {
		a.server.Cache().Purge()
		a.log.Info("upstreams changed: cache emptied", "upstreams", rt.Upstreams)
	}
	a.cfg = cfg
	a.applyDnstap(cfg)
	a.publish(rt, old)
	var diff map[string]policy.Change
	if rt.Policy.Hash() != old.Policy.Hash() { // Diff looks up every rule of both
		diff = policy.Diff(old.Policy, rt.Policy)
	}
	var parts []string
	for _, j := range rt.Policy.Jurisdictions() {
		d := diff[j.ID]
		parts = append(parts, fmt.Sprintf("%s=%d(+%d/-%d)", j.ID, rt.Policy.Entries(j.ID), d.Added, d.Removed))
	}
	msg := "reloaded"
	if trigger != "reload" {
		msg = "lists refreshed"
	}
	a.log.Info(msg, "policy", shortHash(rt.Policy.Hash()), "entries", strings.Join(parts, " "),
		"took", time.Since(start).Round(time.Millisecond))
	a.syncRefresher(cfg)
	return nil
}

// publish updates the gauges that describe the current runtime.
func (a *App) publish(rt, _ *resolver.Runtime) {
	a.status.Published(rt.Policy, a.now())
	if a.rpzOut != nil {
		a.publishRPZ(rt.Config, rt.Policy)
	}
	a.sources.prune(rt.Config)
	a.metrics.SetPolicyHash(rt.Policy.Hash())
	var expiry time.Time
	if c := rt.Certificate(); c != nil && c.Leaf != nil {
		expiry = c.Leaf.NotAfter
	}
	a.metrics.SetCertificateExpiry(expiry)
	for _, j := range rt.Policy.Jurisdictions() {
		a.metrics.SetListEntries(j.ID, rt.Policy.Entries(j.ID))
	}
	a.metrics.CacheSource(a.server.Cache().Len, a.server.Cache().Bytes)
	a.metrics.ServerSource(a.server.InFlight, a.server.TCPConnections)
	a.metrics.UpstreamSocketSource(upstream.UDPSockets)
	a.metrics.UpstreamInflightSource(upstream.UDPInflight)
	a.metrics.AnswerQueueSource(resolver.QueuedAnswers)
	a.metrics.SetRateLimitState(func() metrics.RateLimitState {
		st := a.server.RateLimitStats()
		return metrics.RateLimitState{Clients: st.Tracked, Evicted: st.Evicted}
	})
	a.metrics.SetListSourceState(a.listSourceStates)
}

func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// ready reports readiness for /readyz: every mandated jurisdiction in use
// must be loaded.
func (a *App) ready() (bool, []string) {
	rt := a.server.Runtime()
	inUse := map[*policy.Jurisdiction]bool{}
	for _, cs := range append(rt.Policy.Clients(), rt.Policy.DefaultClientSet()) {
		if cs == nil {
			continue
		}
		for _, j := range cs.Jurisdictions {
			inUse[j] = true
		}
	}
	var missing []string
	for _, j := range rt.Policy.Jurisdictions() {
		if inUse[j] && j.Tier == policy.TierMandated && !j.Loaded {
			missing = append(missing, "jurisdiction "+j.ID+" not loaded: "+j.LoadError)
		}
	}
	missing = append(missing, a.auditMissing()...)
	return len(missing) == 0, missing
}

// Shutdown drains: readiness goes 503 first, the list refresher stops,
// the listeners close, in-flight queries finish (up to
// server.shutdown_timeout or ctx), then the enforcement log and the query
// log write out their queues and close. Calling it again waits for the
// first call and returns its result.
func (a *App) Shutdown(ctx context.Context) error {
	a.runMu.Lock()
	if a.stopping {
		a.runMu.Unlock()
		<-a.stopped
		return a.stopErr
	}
	a.stopping = true
	a.runMu.Unlock()

	if a.admin != nil {
		a.admin.SetDraining()
	}
	a.log.Info("draining: readiness reports 503; closing the listeners")
	a.stopRefresher()
	a.stopFeeds()
	if a.rpzStop != nil {
		a.rpzStop()
		a.rpzWG.Wait()
	}
	defer a.rpzOut.Close()
	timeout := a.server.Runtime().Config.Server.ShutdownTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var err error
	if a.enc != nil {
		err = a.enc.Shutdown(ctx) // before the server: it waits for the same queries
	}
	if serr := a.server.Shutdown(ctx); err == nil {
		err = serr
	}
	if err != nil {
		a.log.Warn("in-flight queries did not finish in time", "err", err)
	}
	if a.admin != nil {
		if aerr := a.admin.Shutdown(ctx); err == nil {
			err = aerr
		}
	}
	if a.audit != nil {
		if cerr := a.audit.Close(); err == nil {
			err = cerr
		}
	}
	if a.qlog != nil {
		if cerr := a.qlog.Close(); err == nil {
			err = cerr
		}
	}
	if a.tap != nil {
		_ = a.tap.Close()
	}
	a.log.Info("jurisdns stopped")
	a.stopErr = err
	close(a.stopped)
	return err
}

// Run serves until ctx ends or a SIGINT/SIGTERM arrives on sigs, then
// drains (Shutdown). SIGHUP reloads. Reloads run one at a time in their own
// goroutine: a SIGHUP during a reload queues one more (the file may have
// changed after it was read) and further ones collapse into it, so a burst
// of SIGHUPs does not pile up work; SIGTERM cancels a reload in progress.
func (a *App) Run(ctx context.Context, sigs <-chan os.Signal) error {
	sigs, stopWatch, err := a.WatchConfig(sigs, a.boot.Server.WatchConfig)
	if err != nil {
		_ = a.Shutdown(context.Background())
		return err
	}
	defer stopWatch()
	rctx, cancel := context.WithCancel(ctx)
	pending := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-rctx.Done():
				return
			case <-pending:
				_ = a.Reload(rctx)
			}
		}
	}()
	stop := func() error {
		cancel()
		// A reload sees the cancellation (downloads, local list reads);
		// one stuck in something that cannot be cancelled does not hold
		// up SIGTERM past server.shutdown_timeout.
		// The reload's wait and the drain share the one timeout.
		wait := a.server.Runtime().Config.Server.ShutdownTimeout
		if wait <= 0 {
			wait = 5 * time.Second
		}
		sctx, scancel := context.WithTimeout(context.Background(), wait)
		defer scancel()
		select {
		case <-done:
		case <-sctx.Done():
			a.log.Warn("a reload is still running after server.shutdown_timeout; shutting down without waiting for it")
		}
		return a.Shutdown(sctx)
	}
	for {
		select {
		case <-ctx.Done():
			return stop()
		case sig := <-sigs:
			if isHUP(sig) {
				select {
				case pending <- struct{}{}:
					a.log.Info("SIGHUP received: reloading")
				default:
					a.log.Info("SIGHUP received: a reload is already queued")
				}
				continue
			}
			a.log.Info("signal received; draining", "signal", sig.String())
			return stop()
		}
	}
}

// observeUpstream feeds upstream tries into the metrics.
func (a *App) observeUpstream(name string, d time.Duration, err error) {
	a.metrics.UpstreamDuration(name, d)
	if err != nil && !errors.Is(err, context.Canceled) {
		kind := "network"
		if errors.Is(err, context.DeadlineExceeded) {
			kind = "timeout"
		} else if errors.Is(err, upstream.ErrMismatch) {
			kind = "mismatch"
		}
		a.metrics.UpstreamError(name, kind)
	}
}

// auditor returns the enforcement-log sink, or nil when the log is off.
func (a *App) auditor(cfg *config.Config) policy.Auditor {
	if a.audit == nil {
		return nil
	}
	return &auditSink{w: a.audit, privacy: string(cfg.Audit.ClientPrivacy), salt: privacySalt(string(cfg.Audit.ClientPrivacy)), m: a.metrics}
}

type auditSink struct {
	w       *audit.Writer
	privacy string
	salt    []byte
	m       *metrics.Metrics
}

func (s *auditSink) PolicyEvent(ev *policy.Event) {
	ok := s.w.Log(audit.Record{
		Time:         ev.Time,
		Client:       audit.ClientString(ev.Client, s.privacy, s.salt),
		Name:         strings.Clone(ev.Name),      // ev's strings are valid only during the call
		Type:         dns.Type(ev.Qtype).String(), // TYPE<n> for a type without a name, as the query log and the status page
		Jurisdiction: ev.Jurisdiction.ID,
		Tier:         string(ev.Jurisdiction.Tier.Spec()),
		Instrument:   ev.Instrument,
		Rule:         strings.Clone(ev.Rule),
		Source:       ev.Source,
		Line:         ev.Line,
		PolicyHash:   ev.PolicyHash,
		Action:       ev.Action,
		Mode:         ev.Mode,
	})
	if !ok {
		s.m.AuditDropped()
	}
}

// observer adapts metrics (and the status page's query counters) to
// resolver.Observer.
type observer struct {
	m  *metrics.Metrics
	st *status.Status
}

// Answered counts an answer: the resolver, the metrics and the status page
// share one transport enum (spec.Transport).
func (o observer) Answered(p resolver.Proto, qtype uint16, rcode int) {
	o.m.QueryAnswered(p, qtype, rcode)
	o.st.Answered(p)
}
func (o observer) CacheHit()             { o.m.CacheHit() }
func (o observer) CacheMiss()            { o.m.CacheMiss() }
func (o observer) CacheStale()           { o.m.CacheStale() }
func (o observer) Refused(reason string) { o.m.Refused(reason) }
func (o observer) Dropped(reason string) { o.m.Dropped(reason) }
func (o observer) Overloaded()           { o.m.Dropped("overload") }
func (o observer) RateLimited()          { o.m.RateLimited() }

func slogDiscard() *slog.Logger { return slog.New(slog.DiscardHandler) }

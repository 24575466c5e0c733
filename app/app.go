// Package app wires jurisdns together: configuration, policy, upstreams,
// cache, DNS server, admin HTTP, metrics and the enforcement log; and it
// runs the lifecycle: start, SIGHUP reload, SIGTERM drain. cmd/jurisdns is
// a thin CLI over it, and tests drive it directly.
package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"github.com/spf13/pflag"

	"github.com/jurisdns/jurisdns/admin"
	"github.com/jurisdns/jurisdns/audit"
	"github.com/jurisdns/jurisdns/blocklists"
	"github.com/jurisdns/jurisdns/config"
	"github.com/jurisdns/jurisdns/download"
	"github.com/jurisdns/jurisdns/metrics"
	"github.com/jurisdns/jurisdns/policy"
	"github.com/jurisdns/jurisdns/resolver"
	"github.com/jurisdns/jurisdns/upstream"
)

// Version is set at build time (-ldflags "-X github.com/jurisdns/jurisdns/app.Version=…").
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
}

// App is one running jurisdns.
type App struct {
	opts    Options
	log     *slog.Logger
	now     func() time.Time
	metrics *metrics.Metrics
	server  *resolver.Server
	admin   *admin.Server
	audit   *audit.Writer
	fetcher *download.Fetcher

	reloadMu sync.Mutex // serializes reloads
	cfg      *config.Config
	listen   []string
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

// NewLogger builds the logger the configuration asks for.
func NewLogger(cfg *config.Config, w *os.File) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	ho := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "json" {
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
	a := &App{opts: opts, log: opts.Logger, now: opts.Now, cfg: cfg, listen: cfg.Listen}
	if a.log == nil {
		a.log = NewLogger(cfg, os.Stderr)
	}
	if a.now == nil {
		a.now = time.Now
	}
	a.metrics = metrics.New()
	a.metrics.SetBuildInfo(Version)
	a.fetcher = download.New(download.Options{CacheDir: cfg.Lists.CacheDir, Logger: a.log})
	if cfg.Audit.Path != "" {
		w, err := audit.Open(audit.Options{Path: cfg.Audit.Path, MaxSize: cfg.Audit.MaxSize, MaxFiles: cfg.Audit.MaxFiles, Logger: a.log, Now: a.now})
		if err != nil {
			return nil, fmt.Errorf("audit.path: %w", err)
		}
		a.audit = w
	}
	cache := resolver.NewCache(resolver.CacheOptions{
		Size:           cfg.Cache.Size,
		MinTTL:         cfg.Cache.MinTTL,
		MaxTTL:         cfg.Cache.MaxTTL,
		NegativeMaxTTL: cfg.Cache.NegativeMaxTTL,
		ServfailTTL:    cfg.Cache.ServfailTTL,
		ServeStale:     cfg.Cache.ServeStale,
		OnEvict:        a.metrics.CacheEviction,
	})
	a.server = resolver.NewServer(resolver.ServerOptions{
		Cache:    cache,
		Logger:   a.log,
		Now:      a.now,
		Observer: observer{a.metrics},
		Auditor:  a.auditor(cfg),
	})
	rt, err := a.build(context.Background(), cfg, nil)
	if err != nil {
		a.closeAudit()
		return nil, err
	}
	a.server.Swap(rt)
	if err := a.server.Listen(cfg.Listen, cfg.Server.UDPWorkers, cfg.Server.MaxTCPConnections); err != nil {
		a.closeAudit()
		return nil, err
	}
	if cfg.Admin != "" {
		srv, err := admin.New(admin.Options{
			Addr:      cfg.Admin,
			Metrics:   a.metrics.Handler(),
			Ready:     a.ready,
			Logger:    a.log,
			TokenFile: cfg.AdminAuth.TokenFile,
		})
		if err != nil {
			_ = a.server.Shutdown(context.Background())
			a.closeAudit()
			return nil, fmt.Errorf("admin: %w", err)
		}
		a.admin = srv
	}
	a.publish(rt, nil)
	return a, nil
}

func (a *App) closeAudit() {
	if a.audit != nil {
		_ = a.audit.Close()
	}
}

// build compiles cfg into a runtime: upstreams, policy (reusing prev's lists
// for last_known_good), chain.
func (a *App) build(ctx context.Context, cfg *config.Config, prev *resolver.Runtime) (*resolver.Runtime, error) {
	servers := cfg.Upstreams.Servers
	if len(servers) == 0 {
		rc := a.opts.ResolvConf
		if rc == "" {
			rc = "/etc/resolv.conf"
		}
		var err error
		if servers, err = upstream.DefaultServers(rc, cfg.Listen); err != nil {
			return nil, fmt.Errorf("upstreams.servers: empty, and no usable default: %w", err)
		}
	}
	var ups []upstream.Upstream
	var errs []error
	for i, s := range servers {
		u, err := upstream.Parse(s, upstream.Options{Timeout: cfg.Upstreams.TryTimeout})
		if err != nil {
			errs = append(errs, fmt.Errorf("upstreams.servers[%d]: %w", i, err))
			continue
		}
		ups = append(ups, u)
	}
	var group *upstream.Group
	if len(errs) == 0 {
		var err error
		group, err = upstream.NewGroup(ups, upstream.GroupOptions{
			Strategy:   cfg.Upstreams.Strategy,
			Timeout:    cfg.Upstreams.Timeout,
			TryTimeout: cfg.Upstreams.TryTimeout,
			Logger:     a.log,
			Observe:    a.observeUpstream,
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("upstreams: %w", err))
		}
	}
	bo := policy.BuildOptions{BaseDir: baseDir(cfg), Fetch: a.fetch(cfg), Logger: a.log}
	if prev != nil {
		bo.Previous = prev.Policy
	}
	pol, err := policy.Build(ctx, cfg, bo)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return a.server.NewRuntime(cfg, pol, group, group.Upstreams())
}

func baseDir(cfg *config.Config) string {
	if cfg.Source == "" || cfg.Source == "embedded default" {
		wd, _ := os.Getwd()
		return wd
	}
	return filepath.Dir(cfg.Source)
}

// fetch downloads URL sources with the verified downloader.
func (a *App) fetch(cfg *config.Config) func(ctx context.Context, j string, src config.Source) ([]byte, error) {
	return func(ctx context.Context, j string, src config.Source) ([]byte, error) {
		ds := download.Source{
			Name:      j + "/" + src.Name,
			URL:       src.URL,
			AllowHTTP: src.AllowHTTP,
			SHA256:    src.SHA256,
			Timeout:   cfg.Lists.Timeout,
			MaxSize:   cfg.Lists.MaxSize,
			Guards:    download.Guards{MinEntries: src.MinEntries, MaxShrink: src.MaxShrink, MustContain: src.MustContain},
		}
		parse := func(body []byte) (int, func(string) bool, error) {
			b := blocklists.NewIndexBuilder(0)
			st, err := blocklists.Parse(bytes.NewReader(body), blocklists.ParseOptions{Source: ds.Name, Format: blocklists.Format(src.Format), Match: matchKind(src.Match)}, func(r blocklists.Rule) {
				b.Add(r.Name, r.Kind, 0)
			})
			if err != nil {
				return 0, nil, err
			}
			ix := b.Build()
			return st.Rules, func(name string) bool {
				var buf [4]blocklists.Hit
				return len(ix.Lookup(name, buf[:0])) > 0
			}, nil
		}
		res, err := a.fetcher.Fetch(ctx, ds, parse)
		if err != nil {
			a.metrics.ListRefreshFailed(j, src.Name)
			if res.Body != nil {
				a.log.Warn("list update rejected; keeping the last good copy", "jurisdiction", j, "source", src.Name, "err", err)
				return res.Body, nil
			}
			return nil, err
		}
		if res.Stale {
			a.metrics.ListRefreshFailed(j, src.Name)
			a.log.Warn("list download failed; using the cached copy", "jurisdiction", j, "source", src.Name, "err", res.Err)
		} else {
			a.metrics.ListRefreshed(j, a.now())
		}
		return res.Body, nil
	}
}

func matchKind(s string) blocklists.Kind {
	if s == "exact" {
		return blocklists.Exact
	}
	return blocklists.Suffix
}

// Start serves DNS and the admin listener and logs the one start line.
func (a *App) Start() error {
	a.server.Serve()
	if a.admin != nil {
		if err := a.admin.Start(); err != nil {
			return fmt.Errorf("admin: %w", err)
		}
	}
	rt := a.server.Runtime()
	attrs := []any{"listen", a.server.Addrs(), "upstreams", rt.Upstreams, "config", a.cfg.Source,
		"policy", shortHash(rt.Policy.Hash()), "version", Version}
	if a.admin != nil {
		attrs = append(attrs, "admin", a.admin.Addr())
	}
	a.log.Info("jurisdns started", attrs...)
	return nil
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

// Reload re-reads the configuration and every list, builds a new runtime
// off the hot path and swaps it in only if all of it succeeded. On error
// nothing changes. Reloads are serialized.
func (a *App) Reload(ctx context.Context) error {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	start := time.Now()
	old := a.server.Runtime()
	cfg, err := LoadConfig(a.opts.Load)
	var rt *resolver.Runtime
	if err == nil {
		rt, err = a.build(ctx, cfg, old)
	}
	if err != nil {
		a.metrics.Reload(false, a.now())
		for _, e := range flatten(err) {
			a.log.Error("reload failed; still serving the previous configuration", "err", e)
		}
		return err
	}
	if !slices.Equal(cfg.Listen, a.listen) {
		a.log.Warn("listen addresses changed: restart jurisdns to apply", "configured", cfg.Listen, "serving", a.listen)
	}
	a.server.Swap(rt)
	if !slices.Equal(rt.Upstreams, old.Upstreams) {
		a.server.Cache().Purge()
	}
	a.cfg = cfg
	a.metrics.Reload(true, a.now())
	a.publish(rt, old)
	diff := policy.Diff(old.Policy, rt.Policy)
	var parts []string
	for _, j := range rt.Policy.Jurisdictions() {
		d := diff[j.ID]
		parts = append(parts, fmt.Sprintf("%s=%d(+%d/-%d)", j.ID, rt.Policy.Entries(j.ID), d.Added, d.Removed))
	}
	a.log.Info("reloaded", "policy", shortHash(rt.Policy.Hash()), "entries", strings.Join(parts, " "),
		"took", time.Since(start).Round(time.Millisecond))
	return nil
}

// publish updates the gauges that describe the current runtime.
func (a *App) publish(rt, _ *resolver.Runtime) {
	a.metrics.SetPolicyHash(rt.Policy.Hash())
	for _, j := range rt.Policy.Jurisdictions() {
		a.metrics.SetListEntries(j.ID, rt.Policy.Entries(j.ID))
	}
	a.metrics.SetCacheSize(a.server.Cache().Len())
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
	return len(missing) == 0, missing
}

// Shutdown drains: readiness goes 503, listeners close, in-flight queries
// finish (up to server.shutdown_timeout), the audit queue is flushed.
func (a *App) Shutdown(ctx context.Context) error {
	if a.admin != nil {
		a.admin.SetDraining()
	}
	timeout := a.cfg.Server.ShutdownTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := a.server.Shutdown(ctx)
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
	a.log.Info("jurisdns stopped")
	return err
}

// Run serves until ctx ends or a SIGINT/SIGTERM arrives on sigs; SIGHUP
// reloads. One goroutine handles the signals, so reloads are serialized and
// a burst of SIGHUPs collapses into the reloads the channel holds.
func (a *App) Run(ctx context.Context, sigs <-chan os.Signal) error {
	for {
		select {
		case <-ctx.Done():
			return a.Shutdown(context.Background())
		case sig := <-sigs:
			if isHUP(sig) {
				_ = a.Reload(ctx)
				continue
			}
			a.log.Info("signal received; draining", "signal", sig.String())
			return a.Shutdown(context.Background())
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
func (a *App) auditor(cfg *config.Config) resolver.Auditor {
	if a.audit == nil {
		return nil
	}
	return &auditSink{w: a.audit, privacy: cfg.Audit.ClientPrivacy, m: a.metrics}
}

type auditSink struct {
	w       *audit.Writer
	privacy string
	m       *metrics.Metrics
}

func (s *auditSink) PolicyEvent(ev *resolver.PolicyEvent) {
	ok := s.w.Log(audit.Record{
		Time:         ev.Time,
		Client:       audit.ClientString(ev.Client, s.privacy, nil),
		Name:         ev.Name,
		Type:         dns.TypeToString[ev.Qtype],
		Jurisdiction: ev.Jurisdiction.ID,
		Tier:         ev.Jurisdiction.Tier.String(),
		Instrument:   ev.Jurisdiction.Instrument,
		Rule:         ev.Rule,
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

// observer adapts metrics to resolver.Observer.
type observer struct{ m *metrics.Metrics }

func (o observer) Answered(p resolver.Proto, qtype uint16, rcode int) {
	mp := metrics.ProtoUDP
	if p == resolver.TCP {
		mp = metrics.ProtoTCP
	}
	o.m.QueryAnswered(mp, qtype, rcode)
}
func (o observer) CacheHit()                             { o.m.CacheHit() }
func (o observer) CacheMiss()                            { o.m.CacheMiss() }
func (o observer) CacheStale()                           { o.m.CacheStale() }
func (o observer) PolicyHit(j, action, mode string)      { o.m.PolicyHit(j, action, mode) }
func (o observer) Refused(reason string)                 { o.m.Refused(reason) }
func (o observer) Dropped(reason string)                 { o.m.Dropped(reason) }
func (o observer) Overloaded()                           { o.m.Dropped("overload") }
func (o observer) Upstream(string, time.Duration, error) {}

// RegisterFlags adds the serve flags to fs.
func RegisterFlags(fs *pflag.FlagSet) { config.RegisterFlags(fs) }

// BuildPolicy builds the policy of cfg as serve would, for the check,
// lists and validate commands.
func BuildPolicy(ctx context.Context, cfg *config.Config) (*policy.Policy, error) {
	a := &App{log: slogDiscard(), now: time.Now, metrics: metrics.New()}
	a.fetcher = download.New(download.Options{CacheDir: cfg.Lists.CacheDir, Logger: a.log})
	return policy.Build(ctx, cfg, policy.BuildOptions{BaseDir: baseDir(cfg), Fetch: a.fetch(cfg), Logger: a.log})
}

func slogDiscard() *slog.Logger { return slog.New(slog.DiscardHandler) }

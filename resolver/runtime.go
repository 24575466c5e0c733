package resolver

import (
	"crypto/tls"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jurisdns/jurisdns/internal/dnsname"
	"github.com/jurisdns/jurisdns/policy"
	"github.com/jurisdns/jurisdns/ratelimit"
	"github.com/jurisdns/jurisdns/spec"
	"github.com/jurisdns/jurisdns/zones"
)

// Runtime is everything a query needs, built from one configuration: one
// generation. It is never modified after it was built; a reload builds a
// new one (Build) and swaps it in (Server.Swap), which retires the old one.
//
// A generation's life: Build takes over the parts of the current runtime
// whose configuration did not change (upstream groups with their
// connections and health state, the zones, the rate limiter) and builds
// the rest; a failed Build releases what it took and built. Swap installs
// the new runtime and retires the old one: the old one is closed once the
// queries that use it have finished, at the latest after its query
// timeout. Closing releases its upstream groups; a group that a newer
// runtime took over stays open until the last runtime holding it is
// closed. Server.Shutdown closes the current runtime.
type Runtime struct {
	// Config the runtime was built from.
	Config *spec.Config
	// Policy is the compiled jurisdictions, lists and client mapping.
	Policy *policy.Policy
	// HealthName is answered with TXT "ok" before the policy (see classify).
	HealthName string
	// QueryTimeout bounds the resolution of one query.
	QueryTimeout time.Duration
	// TCPIdleTimeout closes idle TCP connections.
	TCPIdleTimeout time.Duration
	// AccessDrop drops (instead of refusing) clients outside access.allow.
	AccessDrop bool
	// Upstreams names the default upstreams (a change empties the cache).
	Upstreams []string
	// Zones holds the local zones and conditional forwards.
	Zones *zones.Table

	specials *zones.Specials
	// up forwards everything no conditional forward covers; forwards maps
	// a conditional forward's zone name to its upstreams.
	up       *part
	forwards map[string]*part
	// zonesKey says what Zones was loaded from (see zonesKey), for reuse.
	zonesKey string
	// cert is what DoT and DoH present (nil when they are off).
	cert *tls.Certificate

	serial uint32
	// blockSOAs are the SOA records of the block answers, precomputed
	// for the fast path (see blockSOA).
	blockSOAs []blockSOA
	// maxInflight, maxInflightPerClient and maxTCPPerClient are the
	// server.* bounds (read per query, so a reload changes them).
	maxInflight          int
	maxInflightPerClient int
	maxTCPPerClient      int
	acl                  *ratelimit.PrefixSet
	limiter              *ratelimit.Limiter
	limitTruncate        bool
	prefetch             bool
	fwd                  *forwarder

	life lifecycle
}

// lifecycle counts the queries that use a runtime's upstreams and closes
// the runtime once it is retired and none is left.
type lifecycle struct {
	active  atomic.Int64 // queries between enter and leave
	retired atomic.Bool

	mu     sync.Mutex
	timer  *time.Timer   // the latest close after retire
	closed chan struct{} // closed by close
	done   bool
	err    error
}

// parts are the parts a runtime holds a reference to (see part).
func (rt *Runtime) parts() []*part {
	ps := []*part{rt.up}
	for _, p := range rt.forwards {
		ps = append(ps, p)
	}
	return ps
}

// enter registers a query that will use rt's upstreams; false when rt is
// retired, and the query must take the current runtime instead (see
// Server.acquire). Every successful enter is paired with one leave.
func (rt *Runtime) enter() bool {
	rt.life.active.Add(1)
	// Retire stores retired before it reads active; enter adds to active
	// before it reads retired. So either retire sees this query and waits
	// for it, or the query sees retired and backs off.
	if rt.life.retired.Load() {
		rt.leave()
		return false
	}
	return true
}

// leave ends what enter began; the last query of a retired runtime closes
// it.
func (rt *Runtime) leave() {
	if rt.life.active.Add(-1) == 0 && rt.life.retired.Load() {
		_ = rt.Close()
	}
}

// retire marks rt as replaced: no query may enter it any more, and it is
// closed when the last query in it leaves, or after its query timeout at
// the latest (every query that entered before has met its deadline by
// then). Retiring twice is harmless.
func (rt *Runtime) retire() {
	if rt.life.retired.Swap(true) {
		return
	}
	if rt.life.active.Load() == 0 {
		_ = rt.Close()
		return
	}
	rt.life.mu.Lock()
	if !rt.life.done {
		rt.life.timer = time.AfterFunc(rt.QueryTimeout, func() { _ = rt.Close() })
	}
	rt.life.mu.Unlock()
}

// Close releases the runtime's upstream groups at once: each is closed
// (its DoT and DoH connections and its pooled UDP sockets) unless a newer
// runtime took it over. Call it directly only for a runtime that was never
// installed with Swap (a build that a later check refused); an installed
// runtime is closed by its retirement. Close is idempotent and returns the
// first call's result.
func (rt *Runtime) Close() error {
	rt.life.mu.Lock()
	defer rt.life.mu.Unlock()
	if rt.life.done {
		return rt.life.err
	}
	rt.life.done = true
	rt.life.retired.Store(true)
	if rt.life.timer != nil {
		rt.life.timer.Stop()
	}
	rt.life.err = releaseAll(rt.parts())
	close(rt.life.closed)
	return rt.life.err
}

// Closed is closed when the runtime has been closed.
func (rt *Runtime) Closed() <-chan struct{} { return rt.life.closed }

// NewRuntime builds the runtime for cfg and pol, forwarding through up
// (named by upstreams, for logs and the cache-survival rule). The runtime
// owns up: closing it closes up when up is an io.Closer.
func (s *Server) NewRuntime(cfg *spec.Config, pol *policy.Policy, up Exchanger, upstreams []string) (*Runtime, error) {
	return s.assemble(cfg, pol, newPart("", up, upstreams), nil, nil, "", encryptedParts{})
}

// encryptedParts are what a runtime needs for DoT, DoH and DDR: the
// certificate and the endpoints DDR designates.
type encryptedParts struct {
	cert *tls.Certificate
	ddr  []zones.DDREndpoint
}

// assemble builds a runtime from its parts, taking over the references to
// up and forwards: on error it releases them.
func (s *Server) assemble(cfg *spec.Config, pol *policy.Policy, up *part, forwards map[string]*part, tbl *zones.Table, zkey string, enc encryptedParts) (rt *Runtime, err error) {
	rt = &Runtime{
		Zones:          tbl,
		zonesKey:       zkey,
		specials:       zones.NewSpecials(tbl, zones.SpecialOptions{ForwardSingleLabel: !cfg.Server.BlockSingleLabel}),
		cert:           enc.cert,
		up:             up,
		forwards:       forwards,
		Config:         cfg,
		Policy:         pol,
		HealthName:     dnsname.Lower(cfg.Server.HealthName),
		QueryTimeout:   cfg.Upstreams.Timeout,
		TCPIdleTimeout: cfg.Server.TCPIdleTimeout,
		AccessDrop:     cfg.Access.Action == spec.AccessDrop,
		Upstreams:      up.names,
		prefetch:       cfg.Cache.Prefetch && s.cache != nil,
		life:           lifecycle{closed: make(chan struct{})},
	}
	// An error return sets rt to nil before this runs: release the parts
	// of the runtime being built, not of rt.
	built := rt
	defer func() {
		if err != nil {
			_ = releaseAll(built.parts())
			rt = nil
		}
	}()
	if len(enc.ddr) > 0 {
		ddr, derr := ddrRecords(enc.cert, enc.ddr)
		if derr != nil {
			return nil, derr
		}
		rt.specials = zones.NewSpecials(tbl, zones.SpecialOptions{ForwardSingleLabel: !cfg.Server.BlockSingleLabel, DDR: ddr})
	}
	rt.serial = pol.Serial()
	rt.blockSOAs = blockSOAs(pol, rt.serial)
	if rt.HealthName != "" && !strings.HasSuffix(rt.HealthName, ".") {
		rt.HealthName += "."
	}
	if rt.QueryTimeout <= 0 {
		rt.QueryTimeout = 2 * time.Second
	}
	if rt.TCPIdleTimeout <= 0 {
		rt.TCPIdleTimeout = 10 * time.Second
	}
	rt.maxInflight = orDefault(cfg.Server.MaxInflight, maxInflight)
	rt.maxInflightPerClient = min(orDefault(cfg.Server.MaxInflightPerClient, maxInflightPerClient), rt.maxInflight)
	rt.maxTCPPerClient = orDefault(cfg.Server.MaxTCPPerClient, maxTCPPerClient)
	allow, err := ratelimit.ParsePrefixes(cfg.Access.Allow)
	if err != nil {
		return nil, fmt.Errorf("access.allow: %w", err)
	}
	rt.acl = ratelimit.NewPrefixSet(allow)
	if err := s.rateLimiter(rt, cfg.Access.RateLimit); err != nil {
		return nil, err
	}
	rt.fwd = &forwarder{rt: rt, cache: s.cache, obs: s.obs, now: s.now, stale: cfg.Cache.ServeStale, prefetch: rt.prefetch}
	return rt, nil
}

// orDefault returns n, or def when n is not positive (a configuration
// built in code rather than loaded).
func orDefault(n, def int) int {
	if n <= 0 {
		return def
	}
	return n
}

// allowed reports whether addr may query (access.allow).
func (rt *Runtime) allowed(addr netip.Addr) bool { return rt.acl.Contains(addr) }

// rateLimiter gives rt the per-client limiter of rl: the current runtime's
// when the settings did not change (a reload must not reset every bucket),
// else a new one; nil when limiting is off.
func (s *Server) rateLimiter(rt *Runtime, rl spec.RateLimit) error {
	rt.limitTruncate = rl.Action == spec.RateLimitTruncate
	if rl.QPS <= 0 {
		return nil
	}
	if prev := s.rt.Load(); prev != nil && prev.limiter != nil && reflect.DeepEqual(prev.Config.Access.RateLimit, rl) {
		rt.limiter = prev.limiter
		return nil
	}
	exempt, err := ratelimit.ParsePrefixes(rl.Exempt)
	if err != nil {
		return fmt.Errorf("access.rate_limit.exempt: %w", err)
	}
	lim, err := ratelimit.New(ratelimit.Options{QPS: rl.QPS, Burst: rl.Burst, IPv4Prefix: rl.IPv4Prefix, IPv6Prefix: rl.IPv6Prefix, Exempt: exempt, Now: s.now})
	if err != nil {
		return fmt.Errorf("access.rate_limit: %w", err)
	}
	rt.limiter = lim
	return nil
}

// forwardTo returns the upstreams for a name that zones.Table.Find placed
// under the conditional forward f (nil: none): f's, else the default ones.
func (rt *Runtime) forwardTo(f *zones.Forward) Exchanger {
	if f != nil {
		if p := rt.forwards[f.Name]; p != nil {
			return p.up
		}
	}
	return rt.up.up
}

// upstreamFor returns the upstreams for a name: the longest conditional
// forward that covers it, else the default upstreams.
func (rt *Runtime) upstreamFor(name string) Exchanger {
	_, f := rt.Zones.Find(name)
	return rt.forwardTo(f)
}

package resolver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"reflect"
	"strings"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sync/singleflight"

	"github.com/jurisdns/jurisdns/config"
	"github.com/jurisdns/jurisdns/policy"
	"github.com/jurisdns/jurisdns/ratelimit"
	"github.com/jurisdns/jurisdns/zones"
)

// Runtime is everything a query needs, built from one configuration. It is
// never modified after NewRuntime; a reload builds a new one and swaps it in.
type Runtime struct {
	// Config the runtime was built from.
	Config *config.Config
	// Policy is the compiled jurisdictions, lists and client mapping.
	Policy *policy.Policy
	// Chain resolves queries that pass the edge checks.
	Chain Handler
	// HealthName is answered with TXT "ok" without touching the chain.
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
	forwards map[string]Exchanger
	// cert is what DoT and DoH present (nil when they are off).
	cert *tls.Certificate

	serial        uint32
	acl           *ratelimit.PrefixSet
	limiter       *ratelimit.Limiter
	limitTruncate bool
	prefetch      bool
	fwd           *forwarder
}

// NewRuntime builds the runtime for cfg and pol, forwarding through up
// (named by upstreams, for logs and the cache-survival rule).
func (s *Server) NewRuntime(cfg *config.Config, pol *policy.Policy, up Exchanger, upstreams []string) (*Runtime, error) {
	return s.BuildRuntime(RuntimeOptions{Config: cfg, Policy: pol, Upstream: up, Upstreams: upstreams})
}

// RuntimeOptions are the parts of a runtime built outside the resolver.
type RuntimeOptions struct {
	Config *config.Config
	Policy *policy.Policy
	// Upstream forwards everything no conditional zone covers.
	Upstream Exchanger
	// Upstreams names the default upstreams.
	Upstreams []string
	// Zones holds the local zones and conditional forwards (nil: none).
	Zones *zones.Table
	// Forwards maps a conditional forward's zone name to its upstreams.
	Forwards map[string]Exchanger
	// Certificate is presented by DoT and DoH (see LoadCertificate); nil
	// when neither is served.
	Certificate *tls.Certificate
	// DDR lists the encrypted endpoints answered for _dns.resolver.arpa
	// SVCB (RFC 9462); empty turns DDR off. It needs a Certificate with a
	// DNS name, the records' target.
	DDR []zones.DDREndpoint
}

// BuildRuntime builds a runtime from its parts.
func (s *Server) BuildRuntime(o RuntimeOptions) (*Runtime, error) {
	cfg, pol, up, upstreams := o.Config, o.Policy, o.Upstream, o.Upstreams
	ddr, err := ddrRecords(o.Certificate, o.DDR)
	if err != nil {
		return nil, err
	}
	rt := &Runtime{
		Zones:          o.Zones,
		specials:       zones.NewSpecials(o.Zones, zones.SpecialOptions{ForwardSingleLabel: !cfg.Server.BlockSingleLabel, DDR: ddr}),
		cert:           o.Certificate,
		forwards:       o.Forwards,
		Config:         cfg,
		Policy:         pol,
		HealthName:     strings.ToLower(cfg.Server.HealthName),
		QueryTimeout:   cfg.Upstreams.Timeout,
		TCPIdleTimeout: cfg.Server.TCPIdleTimeout,
		AccessDrop:     cfg.Access.Action == "drop",
		Upstreams:      upstreams,
		prefetch:       cfg.Cache.Prefetch && s.cache != nil,
	}
	rt.serial = pol.Serial()
	if rt.HealthName != "" && !strings.HasSuffix(rt.HealthName, ".") {
		rt.HealthName += "."
	}
	if rt.QueryTimeout <= 0 {
		rt.QueryTimeout = 2 * time.Second
	}
	if rt.TCPIdleTimeout <= 0 {
		rt.TCPIdleTimeout = 10 * time.Second
	}
	allow, err := ratelimit.ParsePrefixes(cfg.Access.Allow)
	if err != nil {
		return nil, fmt.Errorf("access.allow: %w", err)
	}
	rt.acl = ratelimit.NewPrefixSet(allow)
	if err := s.rateLimiter(rt, cfg.Access.RateLimit); err != nil {
		return nil, err
	}
	for name, f := range o.Forwards {
		if f == nil {
			return nil, fmt.Errorf("zones: forward %s has no upstreams", name)
		}
	}
	rt.fwd = &forwarder{s: s, rt: rt, up: up, sf: new(singleflight.Group), stale: cfg.Cache.ServeStale, prefetch: rt.prefetch}
	// Policy comes before the special names so that a policy rule on a
	// special name (the bypass bundle's _dns.resolver.arpa) keeps its EDE;
	// DDR comes before policy: that rule is for a resolver without
	// encrypted endpoints.
	rt.Chain = Chain(rt.fwd, s.health(rt), rt.ddr, s.policyMiddleware(rt), rt.specialNames, minimalANY, rt.localZones)
	return rt, nil
}

// allowed reports whether addr may query (access.allow).
func (rt *Runtime) allowed(addr netip.Addr) bool { return rt.acl.Contains(addr) }

// rateLimiter gives rt the per-client limiter of rl: the previous runtime's
// when the settings did not change (a reload must not reset every bucket),
// else a new one; nil when limiting is off.
func (s *Server) rateLimiter(rt *Runtime, rl config.RateLimit) error {
	rt.limitTruncate = rl.Action == "truncate"
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

// special reports whether a query is answered by the special-names link
// (RFC 6761/6303/9462); such queries never take the fast path.
func (rt *Runtime) special(name string, qtype uint16) bool { return rt.specials.Covers(name, qtype) }

// specialNames answers special-use names locally, never forwarding them:
// localhost, invalid, local, RFC 6303 reverse zones not covered by a
// configured zone, single-label names (by option), resolver.arpa.
func (rt *Runtime) specialNames(next Handler) Handler {
	return HandlerFunc(func(ctx context.Context, req *Request) (*dns.Msg, error) {
		if m := rt.specials.Answer(req.Msg); m != nil {
			return m, nil
		}
		return next.Resolve(ctx, req)
	})
}

// localZones answers names inside a local zone authoritatively (AA=1);
// conditional forwards are handled by the forwarder.
func (rt *Runtime) localZones(next Handler) Handler {
	return HandlerFunc(func(ctx context.Context, req *Request) (*dns.Msg, error) {
		if z, _ := rt.Zones.Find(req.Name); z != nil {
			return z.Answer(req.Msg), nil
		}
		return next.Resolve(ctx, req)
	})
}

// upstreamFor returns the upstreams for a name: the longest conditional
// forward that covers it, else the default upstreams.
func (rt *Runtime) upstreamFor(name string) Exchanger {
	if _, f := rt.Zones.Find(name); f != nil {
		if up := rt.forwards[f.Name]; up != nil {
			return up
		}
	}
	return rt.fwd.up
}

// Close releases the upstream connections of the runtime (DoT pools, DoH
// clients). Call it only once no query uses the runtime any more, e.g. a
// query timeout after it was swapped out.
func (rt *Runtime) Close() error {
	var errs []error
	closeOne := func(x any) {
		if c, ok := x.(io.Closer); ok {
			if err := c.Close(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	closeOne(rt.fwd.up)
	for _, f := range rt.forwards {
		closeOne(f)
	}
	return errors.Join(errs...)
}

package resolver

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/jurisdns/jurisdns/config"
	"github.com/jurisdns/jurisdns/policy"
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

	serial   uint32
	allow    []netip.Prefix
	prefetch bool
	fwd      *forwarder
}

// NewRuntime builds the runtime for cfg and pol, forwarding through up
// (named by upstreams, for logs and the cache-survival rule).
func (s *Server) NewRuntime(cfg *config.Config, pol *policy.Policy, up Exchanger, upstreams []string) (*Runtime, error) {
	rt := &Runtime{
		Config:         cfg,
		Policy:         pol,
		HealthName:     strings.ToLower(cfg.Server.HealthName),
		QueryTimeout:   cfg.Upstreams.Timeout,
		TCPIdleTimeout: cfg.Server.TCPIdleTimeout,
		AccessDrop:     cfg.Access.Action == "drop",
		Upstreams:      upstreams,
		prefetch:       cfg.Cache.Prefetch && s.cache != nil,
	}
	if h := pol.Hash(); len(h) >= 8 {
		if v, err := strconv.ParseUint(h[:8], 16, 32); err == nil {
			rt.serial = uint32(v)
		}
	}
	if rt.HealthName != "" && !strings.HasSuffix(rt.HealthName, ".") {
		rt.HealthName += "."
	}
	if rt.QueryTimeout <= 0 {
		rt.QueryTimeout = 2 * time.Second
	}
	if rt.TCPIdleTimeout <= 0 {
		rt.TCPIdleTimeout = 10 * time.Second
	}
	for i, a := range cfg.Access.Allow {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			return nil, fmt.Errorf("access.allow[%d]: %w", i, err)
		}
		rt.allow = append(rt.allow, p.Masked())
	}
	rt.fwd = &forwarder{s: s, up: up, sf: new(singleflight.Group), stale: cfg.Cache.ServeStale, prefetch: rt.prefetch}
	rt.Chain = Chain(rt.fwd, s.health(rt), s.policyMiddleware(rt), minimalANY)
	return rt, nil
}

// allowed reports whether addr may query (access.allow).
func (rt *Runtime) allowed(addr netip.Addr) bool {
	for _, p := range rt.allow {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// special reports whether name is answered locally by a link before the
// cache (special-use names); such names never take the fast path.
func (rt *Runtime) special(name string) bool { return false }

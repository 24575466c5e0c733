package resolver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jurisdns/jurisdns/internal/dnsname"
	"github.com/jurisdns/jurisdns/policy"
	"github.com/jurisdns/jurisdns/spec"
	"github.com/jurisdns/jurisdns/upstream"
	"github.com/jurisdns/jurisdns/zones"
)

// BuildOptions are what Build needs besides the configuration. A group is
// taken over on its configuration alone: the logger, the clock, the
// observer and the roots must be the same for every Build of one server.
type BuildOptions struct {
	// Policy builds the policy of the configuration (the list side: files,
	// downloads, shipped lists). prev is the current runtime's policy, nil
	// for the first build, for on_load_failure: last_known_good.
	Policy func(ctx context.Context, prev *policy.Policy) (*policy.Policy, error)
	// BaseDir resolves relative zone file paths.
	BaseDir string
	// ResolvConf is read for the default upstreams when upstreams.servers
	// is empty; "" means /etc/resolv.conf.
	ResolvConf string
	// Logger receives the upstream groups' health changes.
	Logger *slog.Logger
	// Observe is called after every upstream try (see
	// upstream.GroupOptions.Observe); nil means nothing is observed.
	Observe func(upstream string, d time.Duration, err error)
	// Now is the clock of the upstreams' health backoff; nil means
	// time.Now.
	Now func() time.Time
	// RootCAs verifies tls:// and https:// upstreams; nil means the
	// system's roots (tests trust their own CA).
	RootCAs *x509.CertPool
	// Certificate is presented by DoT and DoH (see LoadCertificate); nil
	// when neither is served.
	Certificate *tls.Certificate
	// DDR lists the encrypted endpoints answered for _dns.resolver.arpa
	// SVCB (RFC 9462); empty turns DDR off. It needs a Certificate with a
	// DNS name, the records' target.
	DDR []zones.DDREndpoint
	// Wrap, if not nil, wraps every upstream as it is built (dnstap taps
	// their exchanges); like Observe it must be the same for every Build.
	// The wrapper must implement io.Closer when the upstream does.
	Wrap func(upstream.Upstream) upstream.Upstream
	// OnDrop counts a reply an upstream read and threw away (see
	// upstream.Options.OnDrop); nil counts nothing.
	OnDrop func(reason string)
}

// Build assembles the runtime of cfg: the default upstream group and one
// per conditional forward, the policy (o.Policy), the local zones, the rate
// limiter and the forwarder. It does not install it: Swap does.
//
// Parts whose configuration did not change are taken over from the current
// runtime instead of being built again: an upstream group with the same
// servers, strategy and timeouts keeps its connections (no new TLS
// handshakes) and its health state; zones whose specs and files are
// unchanged are not parsed again; the rate limiter keeps its buckets. So a
// list refresh, which changes only the policy, rebuilds only the policy.
//
// Every problem is reported, joined, with its key path. On error nothing
// built is left open and the current runtime is untouched.
func (s *Server) Build(ctx context.Context, cfg *spec.Config, o BuildOptions) (*Runtime, error) {
	prev := s.rt.Load()
	b := &builder{cfg: cfg, o: o, built: map[string]*part{}}
	if prev != nil {
		for _, p := range prev.parts() {
			b.prev = append(b.prev, p)
		}
	}
	var errs []error
	servers := cfg.Upstreams.Servers
	if len(servers) == 0 {
		rc := o.ResolvConf
		if rc == "" {
			rc = "/etc/resolv.conf"
		}
		var err error
		if servers, err = upstream.DefaultServers(rc, cfg.Listen); err != nil {
			errs = append(errs, fmt.Errorf("upstreams.servers: empty, and no usable default: %w", err))
		}
	}
	var up *part
	if len(errs) == 0 {
		var err error
		up, err = b.group(servers, "upstreams", "upstreams.servers")
		if err != nil {
			errs = append(errs, err)
		}
	}
	forwards := map[string]*part{}
	var specs []zones.Spec
	for i, z := range cfg.Zones {
		specs = append(specs, zones.Spec{Name: z.Name, File: z.File, Forward: z.Forward})
		if len(z.Forward) == 0 {
			continue
		}
		key := fmt.Sprintf("zones[%d]", i)
		p, err := b.group(z.Forward, key, key+".forward")
		if err != nil {
			errs = append(errs, err)
			continue
		}
		forwards[dnsname.Canonical(z.Name)] = p
	}
	var pol *policy.Policy
	if o.Policy == nil {
		errs = append(errs, errors.New("resolver: Build without a policy"))
	} else {
		var prevPol *policy.Policy
		if prev != nil {
			prevPol = prev.Policy
		}
		var err error
		if pol, err = o.Policy(ctx, prevPol); err != nil {
			errs = append(errs, err)
		}
	}
	zkey := zonesKey(specs, o.BaseDir)
	var tbl *zones.Table
	if prev != nil && zkey != "" && prev.zonesKey == zkey {
		tbl = prev.Zones
	} else {
		var err error
		if tbl, err = zones.Load(specs, o.BaseDir); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		_ = releaseAll(b.taken)
		return nil, errors.Join(errs...)
	}
	return s.assemble(cfg, pol, up, forwards, tbl, zkey, encryptedParts{cert: o.Certificate, ddr: o.DDR})
}

// builder holds the upstream groups of one Build: those taken over from
// the current runtime and those built anew.
type builder struct {
	cfg   *spec.Config
	o     BuildOptions
	prev  []*part          // the current runtime's groups
	built map[string]*part // groups built by this Build, by key
	taken []*part          // every reference this Build holds
}

// group returns the upstream group for servers with the configured
// strategy and timeouts: the current runtime's when it has one with the
// same key, else a new one. key names the group in errors (upstreams,
// zones[2]); list names servers (upstreams.servers, zones[2].forward).
func (b *builder) group(servers []string, key, list string) (*part, error) {
	u := b.cfg.Upstreams
	gkey := fmt.Sprintf("%s|%s|%s|%q", u.Strategy, u.Timeout, u.TryTimeout, servers)
	for _, p := range b.prev {
		if p.key == gkey && p.take() {
			b.taken = append(b.taken, p)
			return p, nil
		}
	}
	if p := b.built[gkey]; p != nil && p.take() {
		b.taken = append(b.taken, p)
		return p, nil
	}
	var ups []upstream.Upstream
	var errs []error
	for i, s := range servers {
		up, err := upstream.Parse(s, upstream.Options{Timeout: u.TryTimeout, RootCAs: b.o.RootCAs, OnDrop: b.o.OnDrop})
		if err != nil {
			errs = append(errs, fmt.Errorf("%s[%d]: %w", list, i, err))
			continue
		}
		if b.o.Wrap != nil {
			up = b.o.Wrap(up)
		}
		ups = append(ups, up)
	}
	if len(errs) > 0 {
		closeUpstreams(ups)
		return nil, errors.Join(errs...)
	}
	g, err := upstream.NewGroup(ups, upstream.GroupOptions{
		Strategy:   string(u.Strategy),
		Timeout:    u.Timeout,
		TryTimeout: u.TryTimeout,
		Now:        b.o.Now,
		Logger:     b.o.Logger,
		Observe:    b.o.Observe,
	})
	if err != nil {
		closeUpstreams(ups)
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	p := newPart(gkey, g, g.Upstreams())
	b.built[gkey] = p
	b.taken = append(b.taken, p)
	return p, nil
}

func closeUpstreams(ups []upstream.Upstream) {
	for _, u := range ups {
		if c, ok := u.(io.Closer); ok {
			_ = c.Close()
		}
	}
}

// zonesKey describes what zones.Load would read for specs: the specs, the
// base directory and the size and modification time of every zone file.
// Equal keys mean the same table; "" means the files cannot be checked
// (Load reports why) and the table is loaded again.
func zonesKey(specs []zones.Spec, baseDir string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%q", baseDir)
	for _, sp := range specs {
		fmt.Fprintf(&b, "|%q %q %q", sp.Name, sp.File, sp.Forward)
		if sp.File == "" {
			continue
		}
		path := sp.File
		if !filepath.IsAbs(path) {
			path = filepath.Join(baseDir, path)
		}
		fi, err := os.Stat(path)
		if err != nil {
			return ""
		}
		fmt.Fprintf(&b, " %d %d", fi.Size(), fi.ModTime().UnixNano())
	}
	return b.String()
}

// A part is an upstream group that runtimes share: every runtime holding
// it has one reference, and the last one released closes it (its DoT and
// DoH connections, its pooled UDP sockets).
type part struct {
	key   string // the configuration it was built from ("" for NewRuntime's)
	up    Exchanger
	names []string // the upstreams, for logs and the cache-survival rule
	refs  atomic.Int32
}

// newPart returns a part holding one reference.
func newPart(key string, up Exchanger, names []string) *part {
	p := &part{key: key, up: up, names: names}
	p.refs.Store(1)
	return p
}

// take adds a reference; false when the part is already closed.
func (p *part) take() bool {
	for {
		n := p.refs.Load()
		if n <= 0 {
			return false
		}
		if p.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// release drops a reference and closes the group with the last one.
func (p *part) release() error {
	if p.refs.Add(-1) != 0 {
		return nil
	}
	if c, ok := p.up.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// releaseAll releases every part of ps (nil ones are skipped).
func releaseAll(ps []*part) error {
	var errs []error
	for _, p := range ps {
		if p == nil {
			continue
		}
		if err := p.release(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

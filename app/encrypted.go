package app

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/jurisdns/jurisdns/config"
	"github.com/jurisdns/jurisdns/resolver"
	"github.com/jurisdns/jurisdns/zones"
)

// listenEncrypted binds dot.listen and doh.listen (none when neither is
// set: a reload may add them).
func (a *App) listenEncrypted(cfg *config.Config) (*resolver.Encrypted, error) {
	return a.server.ListenEncrypted(resolver.EncryptedOptions{
		DoT:            cfg.DoT.Listen,
		DoH:            cfg.DoH.Listen,
		DoTMaxConns:    cfg.DoT.MaxConnections,
		DoHMaxConns:    cfg.DoH.MaxConnections,
		DoHMaxStreams:  cfg.DoH.MaxStreams,
		DoHIdleTimeout: cfg.DoH.IdleTimeout,
	})
}

// certificate returns the certificate of the runtime being built: read
// from tls.cert_file and tls.key_file at start and on every reload (an
// unusable pair fails the reload, which keeps the previous runtime and so
// the previous pair), taken over from prev by a list refresh. nil when
// neither DoT nor DoH is configured.
func (a *App) certificate(ctx context.Context, cfg *config.Config, prev *resolver.Runtime) (*tls.Certificate, error) {
	if !cfg.Encrypted() {
		return nil, nil
	}
	if prev != nil && refreshRunOf(ctx) != nil && prev.Config.TLS == cfg.TLS && prev.Certificate() != nil {
		return prev.Certificate(), nil
	}
	return loadCertificate(cfg, a.now())
}

// loadCertificate loads the pair of cfg; relative paths are relative to the
// directory of the configuration file.
func loadCertificate(cfg *config.Config, now time.Time) (*tls.Certificate, error) {
	path := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(baseDir(cfg), p)
	}
	return resolver.LoadCertificate(path(cfg.TLS.CertFile), path(cfg.TLS.KeyFile), now)
}

// listenersKey is the context key of the ListenerChange a reload prepared:
// the runtime it builds designates the listeners of the change with DDR.
type listenersKey struct{}

// prepareListeners binds the DoT and DoH addresses of cfg that are not
// served yet (a reload): an address that cannot be bound fails the reload
// before anything changed. The change is applied by commitListeners once
// the new runtime is in place, or dropped by its Abort.
func (a *App) prepareListeners(ctx context.Context, cfg *config.Config) (context.Context, *resolver.ListenerChange, error) {
	if a.enc == nil {
		return ctx, nil, nil
	}
	ch, err := a.enc.Prepare(cfg.DoT.Listen, cfg.DoH.Listen)
	if err != nil {
		return ctx, nil, err
	}
	return context.WithValue(ctx, listenersKey{}, ch), ch, nil
}

// commitListeners applies ch (a nil ch is none): new listeners are served,
// dropped ones close once their connections have drained, within
// server.shutdown_timeout.
func (a *App) commitListeners(cfg *config.Config, ch *resolver.ListenerChange) {
	grace := cfg.Server.ShutdownTimeout
	if grace <= 0 {
		grace = 5 * time.Second
	}
	ch.Commit(grace)
}

// ddrEndpoints describes the bound DoT and DoH listeners for DDR (those of
// the change a reload prepared, when ctx carries one); nil when ddr is off
// or nothing encrypted is served.
func (a *App) ddrEndpoints(ctx context.Context, cfg *config.Config) []zones.DDREndpoint {
	if !cfg.DDR || a.enc == nil {
		return nil
	}
	dot, doh := a.enc.DoTAddrs(), a.enc.DoHAddrs()
	if ch, ok := ctx.Value(listenersKey{}).(*resolver.ListenerChange); ok {
		dot, doh = ch.DoTAddrs(), ch.DoHAddrs()
	}
	var eps []zones.DDREndpoint
	add := func(alpn, path string, addrs []string) {
		for _, bound := range addrs {
			host, port, err := net.SplitHostPort(bound)
			if err != nil {
				continue
			}
			p, _ := strconv.Atoi(port)
			hints := hostAddrs(host)
			i := slices.IndexFunc(eps, func(ep zones.DDREndpoint) bool { return ep.ALPN == alpn && int(ep.Port) == p })
			if i < 0 {
				eps = append(eps, zones.DDREndpoint{ALPN: alpn, Port: uint16(p), DoHPath: path})
				i = len(eps) - 1
			}
			for _, h := range hints {
				if !slices.Contains(eps[i].Hints, h) {
					eps[i].Hints = append(eps[i].Hints, h)
				}
			}
		}
	}
	add("dot", "", dot)
	add("h2", cfg.DoH.Path, doh)
	return eps
}

// hostAddrs returns the addresses a listener bound to host answers on:
// host itself, or for a wildcard host ("", 0.0.0.0, ::) the global unicast
// addresses of this machine's interfaces (IPv4 only for 0.0.0.0).
func hostAddrs(host string) []netip.Addr {
	ip, err := netip.ParseAddr(host)
	if err == nil && !ip.IsUnspecified() {
		return []netip.Addr{ip.Unmap()}
	}
	only4 := err == nil && ip.Is4()
	ifaddrs, ierr := net.InterfaceAddrs()
	if ierr != nil {
		return nil
	}
	var out []netip.Addr
	for _, ia := range ifaddrs {
		pfx, perr := netip.ParsePrefix(ia.String())
		if perr != nil {
			continue
		}
		a := pfx.Addr().Unmap()
		if !a.IsGlobalUnicast() || (only4 && !a.Is4()) {
			continue
		}
		out = append(out, a)
	}
	return out
}

// certRenewWarning: a certificate that expires sooner than this is warned
// about at every start, reload and validate.
const certRenewWarning = 14 * 24 * time.Hour

// CheckTLS checks what the configuration serves over TLS beyond what
// config.Validate can see: the certificate pair must load, match and be
// valid at now (an error, named by its key); with ddr, a resolver address
// (of listen, where clients send the DDR query) that the certificate does
// not list is a warning, because clients that verify the discovery (RFC
// 9462 §4.2) then do not upgrade. Nothing is checked when neither DoT nor
// DoH is configured.
func CheckTLS(cfg *config.Config, now time.Time) (warnings []string, err error) {
	if !cfg.Encrypted() {
		return nil, nil
	}
	cert, err := loadCertificate(cfg, now)
	if err != nil {
		return nil, err
	}
	if left := cert.Leaf.NotAfter.Sub(now); left < certRenewWarning {
		warnings = append(warnings, fmt.Sprintf("tls.cert_file %s: the certificate expires on %s, in %d days: renew it and reload",
			cfg.TLS.CertFile, cert.Leaf.NotAfter.UTC().Format(time.RFC3339), int(left.Hours()/24)))
	}
	if !cfg.DDR {
		return warnings, nil
	}
	if _, err := resolver.DDRTarget(cert); err != nil {
		return nil, err
	}
	for i, l := range cfg.Listen {
		host, _, serr := net.SplitHostPort(l)
		if serr != nil {
			continue
		}
		for _, a := range resolver.UncoveredAddrs(cert, hostAddrs(host)) {
			warnings = append(warnings, fmt.Sprintf("tls.cert_file %s: the certificate does not list %s (listen[%d]) "+
				"as an IP address: clients that verify DDR (RFC 9462 §4.2, Windows 11, Android) will not upgrade to DoT/DoH",
				cfg.TLS.CertFile, a, i))
		}
	}
	return warnings, nil
}

// warnTLS logs the warnings of CheckTLS (its errors fail the build).
func (a *App) warnTLS(cfg *config.Config) {
	warnings, _ := CheckTLS(cfg, a.now())
	for _, w := range warnings {
		a.log.Warn(w)
	}
}

// closeEncrypted closes the DoT and DoH listeners of an App that never
// started.
func (a *App) closeEncrypted() {
	if a.enc != nil {
		_ = a.enc.Shutdown(context.Background())
	}
}

package upstream

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// DefaultServers returns the nameservers of the resolv.conf file at
// resolvConfPath as "IP:port" strings (IPv6 in brackets), for use when no
// upstream is configured.
//
// To avoid a forwarding loop it leaves out every nameserver that is jurisdns
// itself: one whose IP and port equal a listen address, and, when jurisdns
// listens on an unspecified address (0.0.0.0 or ::) on that port, every
// loopback or unspecified nameserver (127.0.0.1, 127.0.0.53, ::1, ...).
// Entries that are not IP addresses are skipped. It returns an error when no
// nameserver is left.
func DefaultServers(resolvConfPath string, listen []string) ([]string, error) {
	cfg, err := dns.ClientConfigFromFile(resolvConfPath)
	if err != nil {
		return nil, fmt.Errorf("reading nameservers from %s: %w", resolvConfPath, err)
	}
	port, err := strconv.ParseUint(cfg.Port, 10, 16)
	if err != nil || port == 0 {
		return nil, fmt.Errorf("reading nameservers from %s: bad port %q", resolvConfPath, cfg.Port)
	}
	own := make([]netip.AddrPort, 0, len(listen))
	for _, l := range listen {
		ap, err := parseListen(l)
		if err != nil {
			return nil, fmt.Errorf("listen address %q: %w", l, err)
		}
		own = append(own, ap)
	}
	var out, skipped []string
	for _, s := range cfg.Servers {
		a, err := netip.ParseAddr(s)
		if err != nil {
			skipped = append(skipped, s+" (not an IP address)")
			continue
		}
		ap := netip.AddrPortFrom(a.Unmap(), uint16(port))
		if isSelf(ap, own) {
			skipped = append(skipped, ap.String()+" (jurisdns listens there)")
			continue
		}
		out = append(out, ap.String())
	}
	if len(out) == 0 {
		if len(skipped) == 0 {
			return nil, fmt.Errorf("no nameserver in %s", resolvConfPath)
		}
		return nil, fmt.Errorf("no usable nameserver in %s: skipped %s", resolvConfPath, strings.Join(skipped, ", "))
	}
	return out, nil
}

// parseListen parses a listen address "IP:port", ":port" or "localhost:port".
func parseListen(s string) (netip.AddrPort, error) {
	host, p, err := net.SplitHostPort(s)
	if err != nil {
		return netip.AddrPort{}, err
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("bad port %q", p)
	}
	var a netip.Addr
	switch host {
	case "":
		a = netip.IPv6Unspecified()
	case "localhost":
		a = netip.MustParseAddr("127.0.0.1")
	default:
		if a, err = netip.ParseAddr(host); err != nil {
			return netip.AddrPort{}, err
		}
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(port)), nil
}

// isSelf reports whether a query to ns would reach one of the listen
// addresses own.
func isSelf(ns netip.AddrPort, own []netip.AddrPort) bool {
	for _, l := range own {
		if l.Port() != ns.Port() {
			continue
		}
		if l.Addr() == ns.Addr() {
			return true
		}
		if l.Addr().IsUnspecified() && (ns.Addr().IsLoopback() || ns.Addr().IsUnspecified()) {
			return true
		}
	}
	return false
}

package zones

import (
	"net"
	"net/netip"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/internal/dnsname"
)

// DDRName is the name a client asks for SVCB records to discover the
// encrypted endpoints of the resolver it was given (RFC 9462 §4).
const DDRName = "_dns.resolver.arpa."

// ddrTTL is the TTL of the DDR records: endpoints change only with a
// restart, and a client asks again on every network change anyway.
const ddrTTL = 3600

// DDREndpoint is one encrypted endpoint of the resolver.
type DDREndpoint struct {
	// ALPN is "dot" (RFC 7858) or "h2" (RFC 8484).
	ALPN string
	// Port is the TCP port.
	Port uint16
	// DoHPath is the URL path of a DoH endpoint ("/dns-query"); "" for DoT.
	DoHPath string
	// Hints are the addresses the endpoint is reachable at (ipv4hint and
	// ipv6hint); empty when they are not known (a wildcard listener on a
	// host without global addresses): the client resolves the target name.
	Hints []netip.Addr
}

// DDRRecords returns one SVCB record per endpoint (RFC 9461, RFC 9462),
// owned by _dns.resolver.arpa., priorities in the order given, all with
// target, the resolver's name that its certificate carries.
func DDRRecords(target string, eps []DDREndpoint) []dns.RR {
	out := make([]dns.RR, 0, len(eps))
	for i, ep := range eps {
		rr := &dns.SVCB{
			Hdr:      dns.RR_Header{Name: DDRName, Rrtype: dns.TypeSVCB, Class: dns.ClassINET, Ttl: ddrTTL},
			Priority: uint16(i + 1),
			Target:   dns.Fqdn(dnsname.Lower(target)),
		}
		// Keys in ascending order (RFC 9460 §2.2): alpn, port, ipv4hint,
		// ipv6hint, dohpath.
		rr.Value = append(rr.Value, &dns.SVCBAlpn{Alpn: []string{ep.ALPN}}, &dns.SVCBPort{Port: ep.Port})
		var v4, v6 []net.IP
		for _, a := range ep.Hints {
			if a.Unmap().Is4() {
				v4 = append(v4, net.IP(a.Unmap().AsSlice()))
			} else {
				v6 = append(v6, net.IP(a.AsSlice()))
			}
		}
		if len(v4) > 0 {
			rr.Value = append(rr.Value, &dns.SVCBIPv4Hint{Hint: v4})
		}
		if len(v6) > 0 {
			rr.Value = append(rr.Value, &dns.SVCBIPv6Hint{Hint: v6})
		}
		if ep.DoHPath != "" {
			rr.Value = append(rr.Value, &dns.SVCBDoHPath{Template: ep.DoHPath + "{?dns}"})
		}
		out = append(out, rr)
	}
	return out
}

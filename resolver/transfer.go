package resolver

import "github.com/miekg/dns"

// localOnly reports whether a query type is answered by jurisdns itself and
// never forwarded: the zone transfers (AXFR, IXFR) and the reserved type 0.
// Such queries never take the fast path or the miss path.
func localOnly(qtype uint16) bool {
	return qtype == 0 || qtype == dns.TypeAXFR || qtype == dns.TypeIXFR
}

package resolver

import (
	"context"

	"github.com/miekg/dns"
)

// localOnly reports whether a query type is answered by jurisdns itself and
// never forwarded: the zone transfers (AXFR, IXFR) and the reserved type 0.
// Such queries never take the fast path or the miss path.
func localOnly(qtype uint16) bool {
	return qtype == 0 || qtype == dns.TypeAXFR || qtype == dns.TypeIXFR
}

// refuseTransfers answers AXFR and IXFR with REFUSED: jurisdns forwards
// queries, it transfers no zone of its upstreams (and a transfer forwarded
// over UDP would be answered with a partial zone, if at all). It is the
// chain link just before the forwarder: a link that serves zones over
// transfer (local zones, policy zones published to secondaries) must come
// before it in the chain, so that it answers the transfers of its own zones
// and this link refuses the rest.
func refuseTransfers(next Handler) Handler {
	return HandlerFunc(func(ctx context.Context, req *Request) (*dns.Msg, error) {
		if req.Qtype == dns.TypeAXFR || req.Qtype == dns.TypeIXFR {
			return rcodeReply(req.Msg, dns.RcodeRefused), nil
		}
		return next.Resolve(ctx, req)
	})
}

package status

import (
	"sync/atomic"

	"github.com/jurisdns/jurisdns/spec"
)

// Transport is the client transport a query arrived on: spec.Transport,
// the one transport enum of the resolver and the metrics too.
type Transport = spec.Transport

// The transports counted in Queries.
const (
	UDP = spec.TransportUDP
	TCP = spec.TransportTCP
	DoT = spec.TransportDoT // DNS over TLS
	DoH = spec.TransportDoH // DNS over HTTPS
)

// Queries counts the queries answered since this process started, per
// client transport.
type Queries struct {
	UDP uint64 `json:"udp"`
	TCP uint64 `json:"tcp"`
	DoT uint64 `json:"dot"`
	DoH uint64 `json:"doh"`
}

// queryCounters are the live counters behind Queries.
type queryCounters struct{ udp, tcp, dot, doh atomic.Uint64 }

// Answered counts one query answered over transport t (an unknown one
// counts as UDP). It is one atomic addition: the resolver's observer calls
// it for every answer.
func (s *Status) Answered(t Transport) {
	switch t {
	case TCP:
		s.queries.tcp.Add(1)
	case DoT:
		s.queries.dot.Add(1)
	case DoH:
		s.queries.doh.Add(1)
	default:
		s.queries.udp.Add(1)
	}
}

func (c *queryCounters) snapshot() Queries {
	return Queries{UDP: c.udp.Load(), TCP: c.tcp.Load(), DoT: c.dot.Load(), DoH: c.doh.Load()}
}

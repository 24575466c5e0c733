// Package resolver is the jurisdns DNS server: listeners, edge checks,
// the engine (classify: which link answers a query; the health name, DDR,
// policy, special names, local zones, cache and forward), the wire fast path
// that answers blocks and cache hits on every transport without a dns.Msg,
// and the immutable runtime snapshot that a reload swaps atomically.
package resolver

import (
	"context"
	"net/netip"
	"time"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/policy"
	"github.com/jurisdns/jurisdns/spec"
)

// Proto is the transport a query arrived on: spec.Transport, the one
// transport enum the metrics and the status page count by too.
type Proto = spec.Transport

// The transports.
const (
	UDP = spec.TransportUDP
	TCP = spec.TransportTCP
	DoT = spec.TransportDoT // DNS over TLS (RFC 7858)
	DoH = spec.TransportDoH // DNS over HTTPS (RFC 8484)
)

// Request is one client query after the edge checks. Handlers must not
// modify Msg; they build a new message for the reply.
type Request struct {
	// Msg is the query: exactly one question of class IN, opcode QUERY.
	Msg *dns.Msg
	// Client is the source address of the query.
	Client netip.AddrPort
	// Proto is the transport.
	Proto Proto
	// Name is the canonical (lower-case, fully qualified) question name.
	Name string
	// Qtype is the question type.
	Qtype uint16
	// DO and CD are the client's DNSSEC OK and Checking Disabled bits.
	DO, CD bool
	// EDNS reports whether the client sent an OPT record.
	EDNS bool
	// Clients is the client's jurisdiction set in the runtime's policy.
	Clients *policy.ClientSet
	// Cached and Blocked are set by the engine for the query log: answered
	// from the cache, answered by policy.
	Cached, Blocked bool
	// Wire is the query as received (for dnstap; nil when the server has no
	// query logger).
	Wire []byte
	// Policy is the policy hit the query log and dnstap report, set by the
	// engine when the server has a query logger (see QueryEvent.Policy).
	Policy *policy.Event

	// up is the upstreams for Name, once the zone lookup found them (nil:
	// not looked up yet).
	up Exchanger
	// wall is a time.Now reading taken as the query was taken up (zero:
	// none); a flight's deadline is counted from it (one clock read fewer).
	wall time.Time
	// after is set for a query whose first upstream try went out without
	// a worker (asyncMiss) and gave no usable reply: the flight goes on
	// from it (upstream.Group.ExchangeAfter) instead of starting over.
	after *afterTry
}

// Handler answers a query. A nil error means the returned message is the
// answer (the server fixes ID, question, EDNS and size); a nil message with
// a nil error means "send nothing" (policy action drop). A non-nil error
// becomes SERVFAIL, with the EDE of an *EDEError when it carries one.
type Handler interface {
	Resolve(ctx context.Context, req *Request) (*dns.Msg, error)
}

// EDEError is an error that carries an RFC 8914 Extended DNS Error for the
// SERVFAIL it becomes.
type EDEError struct {
	Code uint16
	Text string
	Err  error
}

func (e *EDEError) Error() string {
	if e.Err != nil {
		return e.Text + ": " + e.Err.Error()
	}
	return e.Text
}

func (e *EDEError) Unwrap() error { return e.Err }

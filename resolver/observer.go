package resolver

import (
	"net/netip"
	"time"

	"github.com/jurisdns/jurisdns/policy"
)

// Observer receives the events that metrics count. Implementations must be
// cheap and safe for concurrent use: they run on the hot path. Policy hits
// are not among them: each is one policy.Event, handed to the Auditor,
// whoever counts or records it. Upstream tries are reported by the
// upstream groups themselves (upstream.GroupOptions.Observe).
type Observer interface {
	// Answered counts a reply sent with rcode for a query of qtype.
	Answered(p Proto, qtype uint16, rcode int)
	// CacheHit, CacheMiss and CacheStale count cache outcomes.
	CacheHit()
	CacheMiss()
	CacheStale()
	// Refused counts queries refused for reason (acl, malformed).
	Refused(reason string)
	// Dropped counts packets not answered for reason.
	Dropped(reason string)
	// Overloaded counts queries shed because of the in-flight cap.
	Overloaded()
	// RateLimited counts queries over their client's rate limit.
	RateLimited()
}

type nopObserver struct{}

func (nopObserver) Answered(Proto, uint16, int) {}
func (nopObserver) CacheHit()                   {}
func (nopObserver) CacheMiss()                  {}
func (nopObserver) CacheStale()                 {}
func (nopObserver) Refused(string)              {}
func (nopObserver) Dropped(string)              {}
func (nopObserver) Overloaded()                 {}
func (nopObserver) RateLimited()                {}

// QueryEvent is one answered query, for the general query log.
type QueryEvent struct {
	Time     time.Time
	Client   netip.Addr
	Proto    Proto
	Name     string
	Qtype    uint16
	Rcode    int
	Duration time.Duration
	// Cached: answered from the cache (fresh or stale); Blocked: a policy
	// answer.
	Cached, Blocked bool
	// Port is the client's source port.
	Port uint16
	// Query is the query as received and Response the reply as sent, in
	// wire format (for dnstap). Both point into the server's buffers: they
	// are valid only during the call. Response is nil when nothing was sent
	// (Dropped).
	Query, Response []byte
	// Dropped: no answer was sent (policy action drop). The query log skips
	// such events; dnstap sends the query alone.
	Dropped bool
	// Policy is the policy hit that decided the answer (the enforced one
	// when there is one, else the first report-mode hit), or nil; valid only
	// during the call, like a policy.Auditor's event.
	Policy *policy.Event
}

// QueryLogger receives every answered query. It must not block, and it
// copies what it keeps of the event.
type QueryLogger interface {
	Query(ev *QueryEvent)
}

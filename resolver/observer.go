package resolver

import (
	"net/netip"
	"time"

	"github.com/jurisdns/jurisdns/policy"
)

// Observer receives the events that metrics count. Implementations must be
// cheap and safe for concurrent use: they run on the hot path.
type Observer interface {
	// Answered counts a reply sent with rcode for a query of qtype.
	Answered(p Proto, qtype uint16, rcode int)
	// CacheHit, CacheMiss and CacheStale count cache outcomes.
	CacheHit()
	CacheMiss()
	CacheStale()
	// PolicyHit counts a policy match (mode enforce or report).
	PolicyHit(jurisdiction, action, mode string)
	// Refused counts queries refused for reason (acl, malformed).
	Refused(reason string)
	// Dropped counts packets not answered for reason.
	Dropped(reason string)
	// Overloaded counts queries shed because of the in-flight cap.
	Overloaded()
	// RateLimited counts queries over their client's rate limit.
	RateLimited()
	// Upstream reports one upstream exchange.
	Upstream(addr string, d time.Duration, err error)
}

type nopObserver struct{}

func (nopObserver) Answered(Proto, uint16, int)           {}
func (nopObserver) CacheHit()                             {}
func (nopObserver) CacheMiss()                            {}
func (nopObserver) CacheStale()                           {}
func (nopObserver) PolicyHit(string, string, string)      {}
func (nopObserver) Refused(string)                        {}
func (nopObserver) Dropped(string)                        {}
func (nopObserver) Overloaded()                           {}
func (nopObserver) RateLimited()                          {}
func (nopObserver) Upstream(string, time.Duration, error) {}

// PolicyEvent is one policy hit (enforced or report-only), for the
// enforcement log.
type PolicyEvent struct {
	Time         time.Time
	Client       netip.Addr
	Name         string
	Qtype        uint16
	Jurisdiction *policy.Jurisdiction
	// Instrument names the instrument that decided (the verdict's, else
	// the jurisdiction's primary one).
	Instrument string
	Rule       string
	Source     string
	Line       int
	Action     string
	Mode       string
	PolicyHash string
}

// Auditor receives policy events. It must not block: the enforcement log
// queues them and counts drops. ev is valid only during the call: Name and
// Rule may point into the caller's buffers, so an auditor that keeps them
// copies them (the other fields are immutable and may be kept).
type Auditor interface {
	PolicyEvent(ev *PolicyEvent)
}

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
}

// QueryLogger receives every answered query. It must not block.
type QueryLogger interface {
	Query(ev *QueryEvent)
}

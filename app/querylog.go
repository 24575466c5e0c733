package app

import (
	"context"
	"crypto/rand"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jurisdns/jurisdns/audit"
	"github.com/jurisdns/jurisdns/metrics"
	"github.com/jurisdns/jurisdns/policy"
	"github.com/jurisdns/jurisdns/resolver"
)

// queryEvent is one answered query, as the general query log needs it.
type queryEvent struct {
	Time     time.Time
	Client   netip.Addr
	Name     string
	Qtype    uint16
	Rcode    int
	Duration time.Duration
	Cached   bool
	Blocked  bool
}

// queryLogSink feeds the general query log (audit.query_log): one JSON line
// per answered query through the log's bounded queue; it never blocks, and
// drops are counted (jurisdns_query_log_dropped_total).
type queryLogSink struct {
	l       *audit.QueryLog
	privacy string
	salt    []byte
	now     func() time.Time
}

func newQueryLogSink(l *audit.QueryLog, privacy string, m *metrics.Metrics, now func() time.Time) *queryLogSink {
	s := &queryLogSink{l: l, privacy: privacy, salt: privacySalt(privacy), now: now}
	m.Registry().MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: metrics.Namespace,
			Name:      "query_log_dropped_total",
			Help:      "Query log lines dropped because the writer fell behind.",
		}, func() float64 { return float64(l.Dropped()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: metrics.Namespace,
			Name:      "query_log_written_total",
			Help:      "Query log lines written.",
		}, func() float64 { return float64(l.Written()) }),
	)
	return s
}

// Query logs one answered query.
func (s *queryLogSink) Query(ev *queryEvent) {
	s.l.Log(audit.QueryEntry{
		Time:       ev.Time,
		Client:     audit.ClientString(ev.Client, s.privacy, s.salt),
		Name:       ev.Name,
		Type:       typeString(ev.Qtype),
		Rcode:      rcodeString(ev.Rcode),
		DurationUS: ev.Duration.Microseconds(),
		Cached:     ev.Cached,
		Blocked:    ev.Blocked,
	})
}

// Close writes out the queue and closes the file.
func (s *queryLogSink) Close() error { return s.l.Close() }

// wrap adds the query log to a runtime's chain before it is published. It
// sees every query that reaches the chain: TCP, cache misses, policy
// answers, the health name. UDP cache hits answered by the resolver's fast
// path never reach the chain and are not logged until the resolver reports
// answered queries itself (a per-query hook; see the query log notes in the
// report of issue 4); Cached is then reported too, which the chain cannot
// see.
func (a *App) wrap(rt *resolver.Runtime) *resolver.Runtime {
	if a.qlog == nil {
		return rt
	}
	next, pol, now := rt.Chain, rt.Policy, a.now
	rt.Chain = resolver.HandlerFunc(func(ctx context.Context, req *resolver.Request) (*dns.Msg, error) {
		start := time.Now()
		resp, err := next.Resolve(ctx, req)
		if resp == nil && err == nil {
			return nil, nil // action drop: nothing is answered
		}
		ev := queryEvent{
			Time:     now(),
			Client:   req.Client.Addr(),
			Name:     req.Name,
			Qtype:    req.Qtype,
			Rcode:    dns.RcodeServerFailure,
			Duration: time.Since(start),
		}
		if resp != nil {
			ev.Rcode = resp.Rcode
		}
		ev.Blocked = policyAnswer(resp) || pol.Match(req.Name, req.Clients, ev.Time).Decision != policy.DecisionNone
		a.qlog.Query(&ev)
		return resp, err
	})
	return rt
}

// policyAnswer reports a synthesized NXDOMAIN/NODATA block answer (its SOA
// names the policy zone), which also covers answers blocked for a CNAME
// target.
func policyAnswer(m *dns.Msg) bool {
	if m == nil {
		return false
	}
	for _, rr := range m.Ns {
		if soa, ok := rr.(*dns.SOA); ok && strings.HasSuffix(soa.Ns, ".policy.jurisdns.") {
			return true
		}
	}
	return false
}

// privacySalt is the key of the hash client_privacy mode: random for each
// process, so that hashed clients cannot be inverted by hashing the whole
// IPv4 space (they stay comparable within one run only).
func privacySalt(privacy string) []byte {
	if privacy != audit.PrivacyHash {
		return nil
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return b
}

func typeString(t uint16) string {
	if s, ok := dns.TypeToString[t]; ok {
		return s
	}
	return "TYPE" + strconv.Itoa(int(t))
}

func rcodeString(r int) string {
	if s, ok := dns.RcodeToString[r]; ok {
		return s
	}
	return "RCODE" + strconv.Itoa(r)
}

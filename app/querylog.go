package app

import (
	"crypto/rand"
	"strconv"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jurisdns/jurisdns/audit"
	"github.com/jurisdns/jurisdns/metrics"
	"github.com/jurisdns/jurisdns/resolver"
)

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
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: metrics.Namespace,
			Name:      "query_log_failed_total",
			Help:      "Query log lines not written because of a write error (after the first one the log stops writing; the error is logged).",
		}, func() float64 { return float64(l.Failed()) }),
	)
	return s
}

// Query logs one answered query.
func (s *queryLogSink) Query(ev *resolver.QueryEvent) {
	if ev.Dropped {
		return // nothing was answered: the query log lists answers
	}
	s.l.Log(audit.QueryEntry{
		Time:       ev.Time,
		Client:     audit.ClientString(ev.Client, s.privacy, s.salt),
		Name:       ev.Name,
		Type:       dns.Type(ev.Qtype).String(), // TYPE<n> for a type without a name
		Rcode:      rcodeString(ev.Rcode),
		DurationUS: ev.Duration.Microseconds(),
		Cached:     ev.Cached,
		Blocked:    ev.Blocked,
	})
}

// Close writes out the queue and closes the file.
func (s *queryLogSink) Close() error { return s.l.Close() }

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

func rcodeString(r int) string {
	if s, ok := dns.RcodeToString[r]; ok {
		return s
	}
	return "RCODE" + strconv.Itoa(r)
}

package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// RateLimitState is what the per-client rate limiter reports to /metrics,
// read at each scrape through the function given to SetRateLimitState.
type RateLimitState struct {
	// Clients is the number of client prefixes with a bucket.
	Clients int
	// Evicted counts buckets dropped before they had refilled, to keep
	// within the limiter's cap: a sign of a flood of distinct (likely
	// spoofed) sources.
	Evicted uint64
}

// ListSourceState is what the downloader reports of one URL source, read
// at each scrape through the function given to SetListSourceState.
type ListSourceState struct {
	// Jurisdiction and Source name the source, as list_refresh_failures_total
	// does.
	Jurisdiction, Source string
	// Downloaded, NotModified, Cache and Errors count fetches by outcome: a
	// new body accepted, a 304, the last good copy used because the server
	// could not be reached or its body was refused, a failure.
	Downloaded, NotModified, Cache, Errors uint64
	// Rejected counts bodies refused by the sha256 pin, the parser or a
	// guard; Retries counts retried attempts.
	Rejected, Retries uint64
	// Entries is the entry count of the last list returned.
	Entries int
	// LastSuccess is when the server last confirmed the list (200 or 304);
	// zero if never.
	LastSuccess time.Time
}

// sourceCollector produces the families read from the rate limiter and the
// downloader at scrape time, when their functions are set.
type sourceCollector struct {
	mu    sync.Mutex
	limit func() RateLimitState
	lists func() []ListSourceState

	rlClients, rlEvicted                                     *prometheus.Desc
	fetches, rejected, retries, sourceEntries, sourceSuccess *prometheus.Desc
}

// sourceNames are the families of sourceCollector (Names lists them).
var sourceNames = []string{
	"ratelimit_clients", "ratelimit_evictions_total",
	"list_fetches_total", "list_fetch_rejected_total", "list_fetch_retries_total",
	"list_source_entries", "list_source_last_success_timestamp_seconds",
}

func newSourceCollector() *sourceCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(Namespace+"_"+name, help, labels, nil)
	}
	return &sourceCollector{
		rlClients: d("ratelimit_clients",
			"Client prefixes with a rate-limit bucket (bounded by the limiter's cap of tracked clients; beyond it the least recently seen are evicted)."),
		rlEvicted: d("ratelimit_evictions_total",
			"Rate-limit buckets evicted before they had refilled, to stay within the cap: a flood of distinct (likely spoofed) sources. Starts again at 0 when a reload changes access.rate_limit."),
		fetches: d("list_fetches_total",
			"Fetches of a URL list source, by jurisdiction, source and result: downloaded (a new body accepted), not_modified (304), cache (the last good copy used), error.",
			"jurisdiction", "source", "result"),
		rejected: d("list_fetch_rejected_total",
			"Downloaded bodies of a URL list source refused by the sha256 pin, the parser or a guard (min_entries, max_shrink, must_contain).",
			"jurisdiction", "source"),
		retries: d("list_fetch_retries_total", "Retried download attempts of a URL list source.", "jurisdiction", "source"),
		sourceEntries: d("list_source_entries", "Entries of the last list of a URL list source the downloader returned.",
			"jurisdiction", "source"),
		sourceSuccess: d("list_source_last_success_timestamp_seconds",
			"Unix time at which the server of a URL list source last confirmed the list (200 or 304).", "jurisdiction", "source"),
	}
}

func (c *sourceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.rlClients, c.rlEvicted, c.fetches, c.rejected, c.retries, c.sourceEntries, c.sourceSuccess} {
		ch <- d
	}
}

func (c *sourceCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	limit, lists := c.limit, c.lists
	c.mu.Unlock()
	if limit != nil {
		s := limit()
		ch <- prometheus.MustNewConstMetric(c.rlClients, prometheus.GaugeValue, float64(s.Clients))
		ch <- prometheus.MustNewConstMetric(c.rlEvicted, prometheus.CounterValue, float64(s.Evicted))
	}
	if lists == nil {
		return
	}
	seen := map[[2]string]bool{}
	for _, s := range lists() {
		k := [2]string{s.Jurisdiction, s.Source}
		if seen[k] { // the registry refuses duplicate series
			continue
		}
		seen[k] = true
		for _, r := range []struct {
			result string
			n      uint64
		}{{"downloaded", s.Downloaded}, {"not_modified", s.NotModified}, {"cache", s.Cache}, {"error", s.Errors}} {
			ch <- prometheus.MustNewConstMetric(c.fetches, prometheus.CounterValue, float64(r.n), s.Jurisdiction, s.Source, r.result)
		}
		ch <- prometheus.MustNewConstMetric(c.rejected, prometheus.CounterValue, float64(s.Rejected), s.Jurisdiction, s.Source)
		ch <- prometheus.MustNewConstMetric(c.retries, prometheus.CounterValue, float64(s.Retries), s.Jurisdiction, s.Source)
		ch <- prometheus.MustNewConstMetric(c.sourceEntries, prometheus.GaugeValue, float64(s.Entries), s.Jurisdiction, s.Source)
		if !s.LastSuccess.IsZero() {
			ch <- prometheus.MustNewConstMetric(c.sourceSuccess, prometheus.GaugeValue, unixSeconds(s.LastSuccess), s.Jurisdiction, s.Source)
		}
	}
}

// SetRateLimitState makes /metrics publish jurisdns_ratelimit_clients and
// jurisdns_ratelimit_evictions_total, read from f at each scrape (f must be
// safe for concurrent use). Until it is called, or with a nil f, the two
// families have no series.
func (m *Metrics) SetRateLimitState(f func() RateLimitState) {
	if m == nil {
		return
	}
	m.sources.mu.Lock()
	m.sources.limit = f
	m.sources.mu.Unlock()
}

// SetListSourceState makes /metrics publish the jurisdns_list_fetch*,
// jurisdns_list_source_* families of every URL source f returns, read at
// each scrape (f must be safe for concurrent use and must not block on a
// download). Until it is called, or with a nil f, they have no series.
func (m *Metrics) SetListSourceState(f func() []ListSourceState) {
	if m == nil {
		return
	}
	m.sources.mu.Lock()
	m.sources.lists = f
	m.sources.mu.Unlock()
}

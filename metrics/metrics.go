// Package metrics holds every Prometheus metric of the resolver (namespace
// "jurisdns").
//
// Each Metrics owns its own registry (never the global default one), so tests
// and several resolvers in one process do not collide. The methods called on
// the DNS hot path (QueryAnswered, PolicyHit, the cache counters, the upstream
// methods, RateLimited, Refused, Dropped) do not allocate and do not hash label
// strings through the client library: their label children are created once
// and then looked up in fixed arrays or in immutable copy-on-write maps.
//
// Labels stay bounded: there is never a client address or a query name in a
// label, and every metric with a free-form label caps the number of distinct
// values; values past the cap are counted under "other".
//
// All methods are safe for concurrent use, and all are no-ops on a nil
// *Metrics, so a component can run without metrics.
package metrics

import (
	"net/http"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/jurisdns/jurisdns/spec"
)

// Namespace is the prefix of every metric of the resolver.
const Namespace = "jurisdns"

// OtherLabel is the label value used for a query type or rcode outside the
// pre-created set, and for values past the cap of a free-form label.
const OtherLabel = "other"

// Caps on the number of distinct children of the metrics whose label values
// come from the caller. Configuration bounds them in practice; the caps keep a
// bug from exploding the series count.
const (
	maxPolicyChildren        = 1024
	maxUpstreamChildren      = 256
	maxUpstreamErrorChildren = 1024
	maxReasonChildren        = 64
)

// Proto is the transport a query arrived on: spec.Transport, whose String
// is the label value ("udp", "tcp", "dot", "doh", or "other").
type Proto = spec.Transport

// Transports of client queries.
const (
	ProtoUDP  = spec.TransportUDP
	ProtoTCP  = spec.TransportTCP
	ProtoDoT  = spec.TransportDoT // DNS over TLS
	ProtoDoH  = spec.TransportDoH // DNS over HTTPS
	numProtos = spec.NumTransports
)

// qtypeNames are the pre-created qtype label values; index 0 is "other".
var qtypeNames = [...]string{
	OtherLabel, "A", "AAAA", "CNAME", "MX", "TXT", "NS", "SOA", "PTR", "SRV", "HTTPS", "SVCB", "ANY",
}

const numQtypes = len(qtypeNames)

// qtypeIndex maps a query type below 256 to its index in qtypeNames (0, the
// zero value, is "other"). Every pre-created type is below 256.
var qtypeIndex = func() (t [256]uint8) {
	for i, v := range []uint16{
		dns.TypeA, dns.TypeAAAA, dns.TypeCNAME, dns.TypeMX, dns.TypeTXT, dns.TypeNS,
		dns.TypeSOA, dns.TypePTR, dns.TypeSRV, dns.TypeHTTPS, dns.TypeSVCB, dns.TypeANY,
	} {
		t[v] = uint8(i + 1)
	}
	return t
}()

// rcodeNames are the pre-created rcode label values; index 0 is "other".
var rcodeNames = [...]string{
	OtherLabel, "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "BADVERS",
}

const numRcodes = len(rcodeNames)

// rcodeIndex maps an (extended) rcode to its index in rcodeNames; 0 is "other".
var rcodeIndex = func() (t [dns.RcodeBadVers + 1]uint8) {
	for i, v := range []int{
		dns.RcodeSuccess, dns.RcodeFormatError, dns.RcodeServerFailure, dns.RcodeNameError,
		dns.RcodeNotImplemented, dns.RcodeRefused, dns.RcodeBadVers,
	} {
		t[v] = uint8(i + 1)
	}
	return t
}()

// upstreamBuckets are the latency buckets of upstream queries, in seconds:
// from a sub-millisecond LAN resolver to a timing-out one.
var upstreamBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}

type policyKey struct{ jurisdiction, action, mode string }

type upstreamErrKey struct{ upstream, kind string }

// Metrics is the set of resolver metrics with its own registry. Create it with
// New.
type Metrics struct {
	reg   *prometheus.Registry
	names []string // families registered by this package (not the Go/process collectors)

	queries    [numProtos][numQtypes][numRcodes]prometheus.Counter
	queriesVec *prometheus.CounterVec

	policyHits *childCache[policyKey, prometheus.Counter]

	cacheHits, cacheMisses, cacheEvictions, cacheStale prometheus.Counter
	cacheSource                                        atomic.Pointer[cacheSource]
	cacheSet                                           atomic.Int64 // SetCacheSize without a source
	serverSource                                       atomic.Pointer[serverSource]
	socketSource                                       atomic.Pointer[func() (open, idle int64)]
	upstreamInflight                                   atomic.Pointer[func() int64]
	answersQueued                                      atomic.Pointer[func() int64]

	upstreamDuration *childCache[string, prometheus.Observer]
	upstreamErrors   *childCache[upstreamErrKey, prometheus.Counter]

	reloadsOK, reloadsFailed                    prometheus.Counter
	reloadLast, reloadLastSuccess, reloadLastOK prometheus.Gauge

	listEntries       *prometheus.GaugeVec
	listRefreshed     *prometheus.GaugeVec
	listRefreshFailed *prometheus.CounterVec

	infoMu      sync.Mutex
	policyInfo  *prometheus.GaugeVec
	certExpiry  prometheus.Gauge
	policyHash  string
	hasHash     bool
	buildInfo   *prometheus.GaugeVec
	buildLabels []string
	unknownEnv  *prometheus.GaugeVec

	upstreamDropped *childCache[string, prometheus.Counter]

	rateLimited  prometheus.Counter
	refused      *childCache[string, prometheus.Counter]
	dropped      *childCache[string, prometheus.Counter]
	auditDropped prometheus.Counter
	audit        *auditCollector
	sources      *sourceCollector
}

// New returns a Metrics whose metrics, plus the Go runtime and process
// collectors, are registered in a new registry of its own.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	m.queriesVec = m.counterVec("queries_total",
		"DNS queries answered, by client transport, query type and response code.", "proto", "qtype", "rcode")
	for p := range numProtos {
		for q := range numQtypes {
			for r := range numRcodes {
				m.queries[p][q][r] = m.queriesVec.WithLabelValues(p.String(), qtypeNames[q], rcodeNames[r])
			}
		}
	}

	policyHits := m.counterVec("policy_hits_total",
		"Queries that matched a jurisdiction's block rule, by jurisdiction, action and mode (enforce or report).",
		"jurisdiction", "action", "mode")
	m.policyHits = newChildCache(maxPolicyChildren, policyKey{OtherLabel, OtherLabel, OtherLabel},
		func(k policyKey) prometheus.Counter {
			return policyHits.WithLabelValues(k.jurisdiction, k.action, k.mode)
		})

	m.cacheHits = m.counter("cache_hits_total", "Queries answered from the cache with a fresh entry.")
	m.cacheMisses = m.counter("cache_misses_total", "Cache lookups that found no usable entry.")
	m.cacheEvictions = m.counter("cache_evictions_total", "Entries evicted from the cache to make room.")
	m.cacheStale = m.counter("cache_stale_served_total", "Queries answered with an expired (stale) cache entry.")
	m.register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Name: "cache_entries", Help: "Entries in the cache."},
		func() float64 {
			if src := m.cacheSource.Load(); src != nil {
				return float64(src.entries())
			}
			return float64(m.cacheSet.Load())
		}), "cache_entries")
	m.register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Name: "queries_inflight",
		Help: "Queries that may wait for an upstream, UDP and TCP (bounded by server.max_inflight)."},
		func() float64 {
			if src := m.serverSource.Load(); src != nil {
				return float64(src.inflight())
			}
			return 0
		}), "queries_inflight")
	m.register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Name: "tcp_connections",
		Help: "Open client TCP connections (bounded by server.max_tcp_connections)."},
		func() float64 {
			if src := m.serverSource.Load(); src != nil {
				return float64(src.tcpConns())
			}
			return 0
		}), "tcp_connections")
	m.register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Name: "upstream_udp_sockets",
		Help: "UDP sockets to upstream servers, open (a few per server, each with many queries in flight, plus those retiring until their last query is over)."},
		func() float64 {
			if src := m.socketSource.Load(); src != nil {
				open, _ := (*src)()
				return float64(open)
			}
			return 0
		}), "upstream_udp_sockets")
	m.register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Name: "upstream_udp_sockets_idle",
		Help: "UDP sockets to upstream servers with no query in flight."},
		func() float64 {
			if src := m.socketSource.Load(); src != nil {
				_, idle := (*src)()
				return float64(idle)
			}
			return 0
		}), "upstream_udp_sockets_idle")
	m.register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Name: "upstream_udp_inflight",
		Help: "Queries in flight on UDP sockets to upstream servers (at most 4096 per server; beyond, a query goes to the next upstream)."},
		func() float64 {
			if src := m.upstreamInflight.Load(); src != nil {
				return float64((*src)())
			}
			return 0
		}), "upstream_udp_inflight")
	m.register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Name: "udp_answers_queued",
		Help: "Slow-path UDP answers queued to be written in a batch (at most 1024 per listener socket; beyond, a worker writes its own)."},
		func() float64 {
			if src := m.answersQueued.Load(); src != nil {
				return float64((*src)())
			}
			return 0
		}), "udp_answers_queued")
	m.register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Name: "cache_bytes",
		Help: "Memory accounted to the cached answers (bounded by cache.max_bytes)."},
		func() float64 {
			if src := m.cacheSource.Load(); src != nil {
				return float64(src.bytes())
			}
			return 0
		}), "cache_bytes")

	upstreamDuration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace,
		Name:      "upstream_request_duration_seconds",
		Help:      "Duration of queries to upstream servers, by upstream.",
		Buckets:   upstreamBuckets,
	}, []string{"upstream"})
	m.register(upstreamDuration, "upstream_request_duration_seconds")
	m.upstreamDuration = newChildCache(maxUpstreamChildren, OtherLabel, func(k string) prometheus.Observer {
		return upstreamDuration.WithLabelValues(k)
	})
	upstreamErrors := m.counterVec("upstream_errors_total",
		"Failed queries to upstream servers, by upstream and kind (timeout, network, mismatch, servfail, ...).",
		"upstream", "kind")
	m.upstreamErrors = newChildCache(maxUpstreamErrorChildren, upstreamErrKey{OtherLabel, OtherLabel},
		func(k upstreamErrKey) prometheus.Counter { return upstreamErrors.WithLabelValues(k.upstream, k.kind) })

	reloads := m.counterVec("reloads_total", "Configuration reloads, by result (ok or failed).", "result")
	m.reloadsOK = reloads.WithLabelValues("ok")
	m.reloadsFailed = reloads.WithLabelValues("failed")
	m.reloadLast = m.gauge("reload_last_timestamp_seconds", "Unix time of the last reload attempt.")
	m.reloadLastSuccess = m.gauge("reload_last_success_timestamp_seconds", "Unix time of the last successful reload.")
	m.reloadLastOK = m.gauge("reload_last_successful", "1 if the last reload attempt succeeded, 0 if it failed.")

	m.listEntries = m.gaugeVec("list_entries", "Block list entries loaded, by jurisdiction.", "jurisdiction")
	m.listRefreshed = m.gaugeVec("list_last_refresh_success_timestamp_seconds",
		"Unix time of the last successful refresh of a jurisdiction's lists.", "jurisdiction")
	m.listRefreshFailed = m.counterVec("list_refresh_failures_total",
		"Failed refreshes of a list source, by jurisdiction and source.", "jurisdiction", "source")
	m.policyInfo = m.gaugeVec("policy_info", "Always 1; the label hash identifies the policy in force.", "hash")
	m.certExpiry = m.gauge("tls_certificate_expiry_timestamp_seconds",
		"Unix time at which the certificate DoT and DoH present expires; 0 when neither is served.")

	m.rateLimited = m.counter("rate_limited_total", "Queries dropped because the client exceeded its rate limit.")
	refused := m.counterVec("refused_total", "Queries answered REFUSED before resolution, by reason (acl, class, ...).", "reason")
	m.refused = newChildCache(maxReasonChildren, OtherLabel, func(k string) prometheus.Counter {
		return refused.WithLabelValues(k)
	})
	dropped := m.counterVec("dropped_total", "Packets dropped without an answer, by reason (response, malformed, ...).", "reason")
	m.dropped = newChildCache(maxReasonChildren, OtherLabel, func(k string) prometheus.Counter {
		return dropped.WithLabelValues(k)
	})
	m.auditDropped = m.counter("audit_dropped_total", "Enforcement log records dropped because the writer fell behind.")
	m.buildInfo = m.gaugeVec("build_info", "Always 1; labels give the build version and Go version.", "version", "goversion")
	upstreamDropped := m.counterVec("upstream_replies_dropped_total",
		"Replies from plain UDP/TCP upstreams read and thrown away, by reason: id (no query waits for that ID: forged, duplicate or late), question, case (0x20 caught a reply that matched only case-insensitively), source (not from the server's address and port), malformed.", "reason")
	m.upstreamDropped = newChildCache(maxReasonChildren, OtherLabel, func(k string) prometheus.Counter {
		return upstreamDropped.WithLabelValues(k)
	})
	m.unknownEnv = m.gaugeVec("config_unknown_env_variables",
		"JURISDNS_* environment variables that name no key, by kind: service_link (Kubernetes or Docker link variables, ignored) or unknown (a warning at start; likely a typo).", "kind")
	m.audit = newAuditCollector()
	m.reg.MustRegister(m.audit)
	for _, n := range auditNames {
		m.names = append(m.names, Namespace+"_"+n)
	}
	m.sources = newSourceCollector()
	m.reg.MustRegister(m.sources)
	for _, n := range sourceNames {
		m.names = append(m.names, Namespace+"_"+n)
	}

	slices.Sort(m.names)
	return m
}

func (m *Metrics) register(c prometheus.Collector, name string) {
	m.reg.MustRegister(c)
	m.names = append(m.names, Namespace+"_"+name)
}

func (m *Metrics) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help})
	m.register(c, name)
	return c
}

func (m *Metrics) gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help})
	m.register(g, name)
	return g
}

func (m *Metrics) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, labels)
	m.register(c, name)
	return c
}

func (m *Metrics) gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help}, labels)
	m.register(g, name)
	return g
}

// Registry returns the registry holding every metric of m.
func (m *Metrics) Registry() *prometheus.Registry {
	if m == nil {
		return nil
	}
	return m.reg
}

// Handler returns an HTTP handler that serves the metrics of m in the
// Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Names returns the sorted names of every metric family m registers: its own,
// whether or not they have a sample yet, and those of the Go runtime and
// process collectors. Histograms are named by family (without the _bucket,
// _sum and _count suffixes of their series).
func (m *Metrics) Names() []string {
	if m == nil {
		return nil
	}
	names := slices.Clone(m.names)
	mfs, _ := m.reg.Gather() // a partial result is still useful; our own names are already in the list
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// QueryAnswered counts a query answered to a client over transport p with
// query type qtype and (extended) response code rcode. Types and rcodes outside
// the pre-created set are counted as "other".
func (m *Metrics) QueryAnswered(p Proto, qtype uint16, rcode int) {
	if m == nil {
		return
	}
	var qi, ri uint8
	if qtype < uint16(len(qtypeIndex)) {
		qi = qtypeIndex[qtype]
	}
	if uint(rcode) < uint(len(rcodeIndex)) {
		ri = rcodeIndex[rcode]
	}
	if p >= numProtos {
		m.queriesVec.WithLabelValues(OtherLabel, qtypeNames[qi], rcodeNames[ri]).Inc()
		return
	}
	m.queries[p][qi][ri].Inc()
}

// PolicyHit counts a query that matched a block rule of jurisdiction, answered
// with action (nxdomain, nodata, null, ip, refused, drop) in mode (enforce or
// report).
func (m *Metrics) PolicyHit(jurisdiction, action, mode string) {
	if m == nil {
		return
	}
	m.policyHits.get(policyKey{jurisdiction, action, mode}).Inc()
}

// CacheHit counts a query answered from a fresh cache entry.
func (m *Metrics) CacheHit() {
	if m == nil {
		return
	}
	m.cacheHits.Inc()
}

// CacheMiss counts a cache lookup that found no usable entry.
func (m *Metrics) CacheMiss() {
	if m == nil {
		return
	}
	m.cacheMisses.Inc()
}

// CacheEviction counts an entry evicted from the cache to make room.
func (m *Metrics) CacheEviction() {
	if m == nil {
		return
	}
	m.cacheEvictions.Inc()
}

// CacheStale counts a query answered with an expired entry (serve-stale).
func (m *Metrics) CacheStale() {
	if m == nil {
		return
	}
	m.cacheStale.Inc()
}

// SetCertificateExpiry records when the certificate that DoT and DoH
// present expires; the zero time when there is none.
func (m *Metrics) SetCertificateExpiry(t time.Time) {
	if m == nil {
		return
	}
	if t.IsZero() {
		m.certExpiry.Set(0)
		return
	}
	m.certExpiry.Set(float64(t.Unix()) + float64(t.Nanosecond())/1e9)
}

// SetCacheSize sets the number of entries in the cache, until CacheSource
// is called.
func (m *Metrics) SetCacheSize(n int) {
	if m == nil {
		return
	}
	m.cacheSet.Store(int64(n))
}

type cacheSource struct {
	entries func() int
	bytes   func() int64
}

type serverSource struct {
	inflight, tcpConns func() int
}

// ServerSource makes jurisdns_queries_inflight and jurisdns_tcp_connections
// read the server at every scrape.
func (m *Metrics) ServerSource(inflight, tcpConns func() int) {
	if m == nil {
		return
	}
	m.serverSource.Store(&serverSource{inflight: inflight, tcpConns: tcpConns})
}

// UpstreamSocketSource makes jurisdns_upstream_udp_sockets and
// jurisdns_upstream_udp_sockets_idle read f (upstream.UDPSockets) at every
// scrape.
func (m *Metrics) UpstreamSocketSource(f func() (open, idle int64)) {
	if m == nil {
		return
	}
	m.socketSource.Store(&f)
}

// UpstreamInflightSource makes jurisdns_upstream_udp_inflight read f
// (upstream.UDPInflight) at every scrape.
func (m *Metrics) UpstreamInflightSource(f func() int64) {
	if m == nil {
		return
	}
	m.upstreamInflight.Store(&f)
}

// AnswerQueueSource makes jurisdns_udp_answers_queued read f
// (resolver.QueuedAnswers) at every scrape.
func (m *Metrics) AnswerQueueSource(f func() int64) {
	if m == nil {
		return
	}
	m.answersQueued.Store(&f)
}

// CacheSource makes jurisdns_cache_entries and jurisdns_cache_bytes read
// the cache at every scrape.
func (m *Metrics) CacheSource(entries func() int, bytes func() int64) {
	if m == nil {
		return
	}
	m.cacheSource.Store(&cacheSource{entries: entries, bytes: bytes})
}

// UpstreamDuration records how long a query to upstream took. upstream is the
// configured server (e.g. "udp://192.0.2.53:53"); it must not carry secrets.
func (m *Metrics) UpstreamDuration(upstream string, d time.Duration) {
	if m == nil {
		return
	}
	m.upstreamDuration.get(upstream).Observe(d.Seconds())
}

// UpstreamError counts a failed query to upstream, by kind (timeout, network,
// mismatch, servfail, ...).
func (m *Metrics) UpstreamError(upstream, kind string) {
	if m == nil {
		return
	}
	m.upstreamErrors.get(upstreamErrKey{upstream, kind}).Inc()
}

// Loaded records the configuration and lists loaded at start-up, at time
// at: the first successful load, so the reload gauges (last successful,
// last success timestamp) read as a success on a fresh server. It counts
// no reload.
func (m *Metrics) Loaded(at time.Time) {
	if m == nil {
		return
	}
	ts := unixSeconds(at)
	m.reloadLast.Set(ts)
	m.reloadLastSuccess.Set(ts)
	m.reloadLastOK.Set(1)
}

// Reload records a reload attempt that finished at time at, successful or not.
func (m *Metrics) Reload(ok bool, at time.Time) {
	if m == nil {
		return
	}
	ts := unixSeconds(at)
	m.reloadLast.Set(ts)
	if ok {
		m.reloadsOK.Inc()
		m.reloadLastSuccess.Set(ts)
		m.reloadLastOK.Set(1)
		return
	}
	m.reloadsFailed.Inc()
	m.reloadLastOK.Set(0)
}

// SetListEntries sets the number of block list entries loaded for jurisdiction.
func (m *Metrics) SetListEntries(jurisdiction string, n int) {
	if m == nil {
		return
	}
	m.listEntries.WithLabelValues(jurisdiction).Set(float64(n))
}

// ListRefreshed records that the lists of jurisdiction were last refreshed
// successfully at time at.
func (m *Metrics) ListRefreshed(jurisdiction string, at time.Time) {
	if m == nil {
		return
	}
	m.listRefreshed.WithLabelValues(jurisdiction).Set(unixSeconds(at))
}

// ListRefreshFailed counts a failed refresh of the list source named source of
// jurisdiction.
func (m *Metrics) ListRefreshFailed(jurisdiction, source string) {
	if m == nil {
		return
	}
	m.listRefreshFailed.WithLabelValues(jurisdiction, source).Inc()
}

// SetPolicyHash publishes the hash of the policy in force as
// jurisdns_policy_info{hash="..."} 1, removing the series of the previous hash.
func (m *Metrics) SetPolicyHash(hash string) {
	if m == nil {
		return
	}
	m.infoMu.Lock()
	defer m.infoMu.Unlock()
	if m.hasHash && m.policyHash != hash {
		m.policyInfo.DeleteLabelValues(m.policyHash)
	}
	m.policyHash, m.hasHash = hash, true
	m.policyInfo.WithLabelValues(hash).Set(1)
}

// SetBuildInfo publishes jurisdns_build_info{version="...",goversion="..."} 1,
// removing the series of a previous call.
func (m *Metrics) SetBuildInfo(version string) {
	if m == nil {
		return
	}
	labels := []string{version, runtime.Version()}
	m.infoMu.Lock()
	defer m.infoMu.Unlock()
	if m.buildLabels != nil && !slices.Equal(m.buildLabels, labels) {
		m.buildInfo.DeleteLabelValues(m.buildLabels...)
	}
	m.buildLabels = labels
	m.buildInfo.WithLabelValues(labels...).Set(1)
}

// UpstreamReplyDropped counts a reply an upstream read and threw away.
func (m *Metrics) UpstreamReplyDropped(reason string) {
	if m == nil {
		return
	}
	m.upstreamDropped.get(reason).Inc()
}

// SetUnknownEnv publishes how many JURISDNS_* variables name no key:
// serviceLinks of a platform's link shapes, others of any other name.
func (m *Metrics) SetUnknownEnv(serviceLinks, others int) {
	if m == nil {
		return
	}
	m.unknownEnv.WithLabelValues("service_link").Set(float64(serviceLinks))
	m.unknownEnv.WithLabelValues("unknown").Set(float64(others))
}

// RateLimited counts a query dropped because its client exceeded its rate
// limit.
func (m *Metrics) RateLimited() {
	if m == nil {
		return
	}
	m.rateLimited.Inc()
}

// Refused counts a query answered REFUSED before resolution, by reason (acl,
// class, ...). Reasons are a small fixed set chosen by the caller.
func (m *Metrics) Refused(reason string) {
	if m == nil {
		return
	}
	m.refused.get(reason).Inc()
}

// Dropped counts a packet dropped without an answer, by reason (response,
// malformed, ...). Reasons are a small fixed set chosen by the caller.
func (m *Metrics) Dropped(reason string) {
	if m == nil {
		return
	}
	m.dropped.get(reason).Inc()
}

// AuditDropped counts an enforcement log record dropped because the writer
// fell behind.
func (m *Metrics) AuditDropped() {
	if m == nil {
		return
	}
	m.auditDropped.Inc()
}

func unixSeconds(t time.Time) float64 {
	return float64(t.UnixNano()) / 1e9
}

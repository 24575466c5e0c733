package metrics

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// sample returns the value of the series of family name whose labels are
// exactly labels (counter, gauge, or a histogram's sample count), and whether
// it exists.
func sample(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if !sameLabels(m.GetLabel(), labels) {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.GetCounter().GetValue(), true
			case m.Gauge != nil:
				return m.GetGauge().GetValue(), true
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount()), true
			}
			t.Fatalf("%s: unexpected metric type %v", name, mf.GetType())
		}
	}
	return 0, false
}

func sameLabels(got []*dto.LabelPair, want map[string]string) bool {
	if len(got) != len(want) {
		return false
	}
	for _, lp := range got {
		if v, ok := want[lp.GetName()]; !ok || v != lp.GetValue() {
			return false
		}
	}
	return true
}

// value is sample that fails the test when the series does not exist.
func value(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	v, ok := sample(t, reg, name, labels)
	if !ok {
		t.Fatalf("no series %s%v", name, labels)
	}
	return v
}

// seriesCount returns how many series family name has.
func seriesCount(t *testing.T, reg *prometheus.Registry, name string) int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return len(mf.GetMetric())
		}
	}
	return 0
}

func TestQueryAnswered(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		proto Proto
		qtype uint16
		rcode int
		want  map[string]string
	}{
		{name: "udp A noerror", proto: ProtoUDP, qtype: dns.TypeA, rcode: dns.RcodeSuccess,
			want: map[string]string{"proto": "udp", "qtype": "A", "rcode": "NOERROR"}},
		{name: "tcp AAAA nxdomain", proto: ProtoTCP, qtype: dns.TypeAAAA, rcode: dns.RcodeNameError,
			want: map[string]string{"proto": "tcp", "qtype": "AAAA", "rcode": "NXDOMAIN"}},
		{name: "dot A nxdomain", proto: ProtoDoT, qtype: dns.TypeA, rcode: dns.RcodeNameError,
			want: map[string]string{"proto": "dot", "qtype": "A", "rcode": "NXDOMAIN"}},
		{name: "doh HTTPS noerror", proto: ProtoDoH, qtype: dns.TypeHTTPS, rcode: dns.RcodeSuccess,
			want: map[string]string{"proto": "doh", "qtype": "HTTPS", "rcode": "NOERROR"}},
		{name: "HTTPS servfail", proto: ProtoUDP, qtype: dns.TypeHTTPS, rcode: dns.RcodeServerFailure,
			want: map[string]string{"proto": "udp", "qtype": "HTTPS", "rcode": "SERVFAIL"}},
		{name: "SVCB refused", proto: ProtoUDP, qtype: dns.TypeSVCB, rcode: dns.RcodeRefused,
			want: map[string]string{"proto": "udp", "qtype": "SVCB", "rcode": "REFUSED"}},
		{name: "ANY notimp", proto: ProtoTCP, qtype: dns.TypeANY, rcode: dns.RcodeNotImplemented,
			want: map[string]string{"proto": "tcp", "qtype": "ANY", "rcode": "NOTIMP"}},
		{name: "PTR formerr", proto: ProtoUDP, qtype: dns.TypePTR, rcode: dns.RcodeFormatError,
			want: map[string]string{"proto": "udp", "qtype": "PTR", "rcode": "FORMERR"}},
		{name: "extended rcode BADVERS", proto: ProtoUDP, qtype: dns.TypeSOA, rcode: dns.RcodeBadVers,
			want: map[string]string{"proto": "udp", "qtype": "SOA", "rcode": "BADVERS"}},
		{name: "uncommon type below 256", proto: ProtoUDP, qtype: dns.TypeCAA - 200, rcode: dns.RcodeSuccess,
			want: map[string]string{"proto": "udp", "qtype": "other", "rcode": "NOERROR"}},
		{name: "type above 256", proto: ProtoUDP, qtype: dns.TypeCAA, rcode: dns.RcodeSuccess,
			want: map[string]string{"proto": "udp", "qtype": "other", "rcode": "NOERROR"}},
		{name: "type 0", proto: ProtoTCP, qtype: 0, rcode: dns.RcodeSuccess,
			want: map[string]string{"proto": "tcp", "qtype": "other", "rcode": "NOERROR"}},
		{name: "rcode NOTAUTH", proto: ProtoUDP, qtype: dns.TypeMX, rcode: dns.RcodeNotAuth,
			want: map[string]string{"proto": "udp", "qtype": "MX", "rcode": "other"}},
		{name: "rcode beyond table", proto: ProtoUDP, qtype: dns.TypeTXT, rcode: 4000,
			want: map[string]string{"proto": "udp", "qtype": "TXT", "rcode": "other"}},
		{name: "negative rcode", proto: ProtoUDP, qtype: dns.TypeNS, rcode: -1,
			want: map[string]string{"proto": "udp", "qtype": "NS", "rcode": "other"}},
		{name: "unknown proto", proto: Proto(9), qtype: dns.TypeSRV, rcode: dns.RcodeSuccess,
			want: map[string]string{"proto": "other", "qtype": "SRV", "rcode": "NOERROR"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := New()
			const name = "jurisdns_queries_total"
			before, _ := sample(t, m.Registry(), name, tc.want)
			if before != 0 {
				t.Fatalf("series starts at %v", before)
			}
			for range 3 {
				m.QueryAnswered(tc.proto, tc.qtype, tc.rcode)
			}
			if got := value(t, m.Registry(), name, tc.want); got != 3 {
				t.Fatalf("%s%v = %v, want 3", name, tc.want, got)
			}
			total := 0.0
			mfs, _ := m.Registry().Gather()
			for _, mf := range mfs {
				if mf.GetName() == name {
					for _, s := range mf.GetMetric() {
						total += s.GetCounter().GetValue()
					}
				}
			}
			if total != 3 {
				t.Fatalf("sum over all series = %v, want 3 (a call moved another series)", total)
			}
		})
	}
}

func TestQueryChildrenPrecreated(t *testing.T) {
	t.Parallel()
	m := New()
	want := int(numProtos) * len(qtypeNames) * len(rcodeNames)
	if got := seriesCount(t, m.Registry(), "jurisdns_queries_total"); got != want {
		t.Fatalf("pre-created series = %d, want %d", got, want)
	}
	if _, ok := sample(t, m.Registry(), "jurisdns_queries_total",
		map[string]string{"proto": "tcp", "qtype": "HTTPS", "rcode": "BADVERS"}); !ok {
		t.Fatal("series tcp/HTTPS/BADVERS not pre-created")
	}
}

func TestProtoString(t *testing.T) {
	t.Parallel()
	for p, want := range map[Proto]string{ProtoUDP: "udp", ProtoTCP: "tcp", ProtoDoT: "dot", ProtoDoH: "doh", Proto(4): "other", Proto(255): "other"} {
		if got := p.String(); got != want {
			t.Errorf("Proto(%d).String() = %q, want %q", p, got, want)
		}
	}
}

func TestCounters(t *testing.T) {
	t.Parallel()
	m := New()
	reg := m.Registry()
	m.PolicyHit("au-gov", "nxdomain", "enforce")
	m.PolicyHit("au-gov", "nxdomain", "enforce")
	m.PolicyHit("us-gov", "null", "report")
	for range 3 {
		m.CacheHit()
	}
	for range 2 {
		m.CacheMiss()
	}
	m.CacheEviction()
	for range 4 {
		m.CacheStale()
	}
	m.SetCacheSize(1234)
	m.UpstreamError("udp://192.0.2.53:53", "timeout")
	m.UpstreamError("udp://192.0.2.53:53", "timeout")
	m.UpstreamError("tls://192.0.2.54:853", "network")
	m.RateLimited()
	m.Refused("acl")
	m.Refused("acl")
	m.Refused("class")
	m.Dropped("response")
	m.AuditDropped()
	m.AuditDropped()
	m.ListRefreshFailed("au-gov", "deepseek-core")

	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"jurisdns_policy_hits_total", map[string]string{"jurisdiction": "au-gov", "action": "nxdomain", "mode": "enforce"}, 2},
		{"jurisdns_policy_hits_total", map[string]string{"jurisdiction": "us-gov", "action": "null", "mode": "report"}, 1},
		{"jurisdns_cache_hits_total", nil, 3},
		{"jurisdns_cache_misses_total", nil, 2},
		{"jurisdns_cache_evictions_total", nil, 1},
		{"jurisdns_cache_stale_served_total", nil, 4},
		{"jurisdns_cache_entries", nil, 1234},
		{"jurisdns_upstream_errors_total", map[string]string{"upstream": "udp://192.0.2.53:53", "kind": "timeout"}, 2},
		{"jurisdns_upstream_errors_total", map[string]string{"upstream": "tls://192.0.2.54:853", "kind": "network"}, 1},
		{"jurisdns_rate_limited_total", nil, 1},
		{"jurisdns_refused_total", map[string]string{"reason": "acl"}, 2},
		{"jurisdns_refused_total", map[string]string{"reason": "class"}, 1},
		{"jurisdns_dropped_total", map[string]string{"reason": "response"}, 1},
		{"jurisdns_audit_dropped_total", nil, 2},
		{"jurisdns_list_refresh_failures_total", map[string]string{"jurisdiction": "au-gov", "source": "deepseek-core"}, 1},
	}
	for _, tc := range tests {
		if got := value(t, reg, tc.name, tc.labels); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	if n := seriesCount(t, reg, "jurisdns_policy_hits_total"); n != 2 {
		t.Errorf("policy hit series = %d, want 2", n)
	}
}

func TestUpstreamDuration(t *testing.T) {
	t.Parallel()
	m := New()
	m.UpstreamDuration("udp://192.0.2.53:53", 3*time.Millisecond)
	m.UpstreamDuration("udp://192.0.2.53:53", 700*time.Millisecond)
	m.UpstreamDuration("https://dns.example/dns-query", time.Second)

	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var h *dto.Histogram
	for _, mf := range mfs {
		if mf.GetName() != "jurisdns_upstream_request_duration_seconds" {
			continue
		}
		for _, s := range mf.GetMetric() {
			if sameLabels(s.GetLabel(), map[string]string{"upstream": "udp://192.0.2.53:53"}) {
				h = s.GetHistogram()
			}
		}
	}
	if h == nil {
		t.Fatal("no histogram for udp://192.0.2.53:53")
	}
	if h.GetSampleCount() != 2 {
		t.Fatalf("sample count = %d, want 2", h.GetSampleCount())
	}
	if got, want := h.GetSampleSum(), 0.703; got < want-1e-9 || got > want+1e-9 {
		t.Fatalf("sample sum = %v, want %v", got, want)
	}
	for _, b := range h.GetBucket() {
		var want uint64
		switch {
		case b.GetUpperBound() >= 0.7:
			want = 2
		case b.GetUpperBound() >= 0.003:
			want = 1
		}
		if b.GetCumulativeCount() != want {
			t.Errorf("bucket le=%v: %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), want)
		}
	}
}

func TestReload(t *testing.T) {
	t.Parallel()
	m := New()
	reg := m.Registry()
	if got := value(t, reg, "jurisdns_reloads_total", map[string]string{"result": "failed"}); got != 0 {
		t.Fatalf("failed reloads before any = %v", got)
	}
	ok1 := time.Unix(1_700_000_000, 500_000_000)
	fail := ok1.Add(time.Minute)
	m.Reload(true, ok1)
	m.Reload(false, fail)

	check := func(name string, labels map[string]string, want float64) {
		t.Helper()
		if got := value(t, reg, name, labels); got != want {
			t.Errorf("%s%v = %v, want %v", name, labels, got, want)
		}
	}
	check("jurisdns_reloads_total", map[string]string{"result": "ok"}, 1)
	check("jurisdns_reloads_total", map[string]string{"result": "failed"}, 1)
	check("jurisdns_reload_last_timestamp_seconds", nil, 1_700_000_060.5)
	check("jurisdns_reload_last_success_timestamp_seconds", nil, 1_700_000_000.5)
	check("jurisdns_reload_last_successful", nil, 0)

	m.Reload(true, fail.Add(time.Minute))
	check("jurisdns_reloads_total", map[string]string{"result": "ok"}, 2)
	check("jurisdns_reload_last_success_timestamp_seconds", nil, 1_700_000_120.5)
	check("jurisdns_reload_last_successful", nil, 1)
}

// TestLoaded: the start-up load reads as a successful one (the dashboard's
// "Last reload" and an alert on reload_last_successful == 0 must not fire on
// a fresh server) without counting a reload.
func TestLoaded(t *testing.T) {
	t.Parallel()
	m := New()
	reg := m.Registry()
	at := time.Unix(1_700_000_000, 0)
	m.Loaded(at)
	for name, want := range map[string]float64{
		"jurisdns_reload_last_successful":                1,
		"jurisdns_reload_last_success_timestamp_seconds": 1_700_000_000,
		"jurisdns_reload_last_timestamp_seconds":         1_700_000_000,
	} {
		if got := value(t, reg, name, nil); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if got := value(t, reg, "jurisdns_reloads_total", map[string]string{"result": "ok"}); got != 0 {
		t.Errorf("reloads_total{ok} = %v after the start-up load, want 0", got)
	}
}

func TestCertificateExpiry(t *testing.T) {
	t.Parallel()
	m := New()
	reg := m.Registry()
	if got := value(t, reg, "jurisdns_tls_certificate_expiry_timestamp_seconds", nil); got != 0 {
		t.Fatalf("before any certificate: %v", got)
	}
	m.SetCertificateExpiry(time.Unix(1_800_000_000, 250_000_000))
	if got := value(t, reg, "jurisdns_tls_certificate_expiry_timestamp_seconds", nil); got != 1_800_000_000.25 {
		t.Errorf("expiry = %v, want 1800000000.25", got)
	}
	m.SetCertificateExpiry(time.Time{})
	if got := value(t, reg, "jurisdns_tls_certificate_expiry_timestamp_seconds", nil); got != 0 {
		t.Errorf("without a certificate: %v, want 0", got)
	}
}

func TestLists(t *testing.T) {
	t.Parallel()
	m := New()
	reg := m.Registry()
	m.SetListEntries("au-gov", 120)
	m.SetListEntries("us-gov", 7)
	m.SetListEntries("au-gov", 121)
	at := time.Unix(1_750_000_000, 0)
	m.ListRefreshed("au-gov", at)

	if got := value(t, reg, "jurisdns_list_entries", map[string]string{"jurisdiction": "au-gov"}); got != 121 {
		t.Errorf("au-gov entries = %v, want 121", got)
	}
	if got := value(t, reg, "jurisdns_list_entries", map[string]string{"jurisdiction": "us-gov"}); got != 7 {
		t.Errorf("us-gov entries = %v, want 7", got)
	}
	if got := value(t, reg, "jurisdns_list_last_refresh_success_timestamp_seconds",
		map[string]string{"jurisdiction": "au-gov"}); got != 1_750_000_000 {
		t.Errorf("au-gov refreshed = %v", got)
	}
}

func TestPolicyHash(t *testing.T) {
	t.Parallel()
	m := New()
	reg := m.Registry()
	const name = "jurisdns_policy_info"
	if n := seriesCount(t, reg, name); n != 0 {
		t.Fatalf("series before SetPolicyHash = %d", n)
	}
	m.SetPolicyHash("aaaa")
	m.SetPolicyHash("aaaa")
	if got := value(t, reg, name, map[string]string{"hash": "aaaa"}); got != 1 {
		t.Fatalf("info = %v, want 1", got)
	}
	m.SetPolicyHash("bbbb")
	if _, ok := sample(t, reg, name, map[string]string{"hash": "aaaa"}); ok {
		t.Fatal("old hash series still present")
	}
	if got := value(t, reg, name, map[string]string{"hash": "bbbb"}); got != 1 {
		t.Fatalf("info = %v, want 1", got)
	}
	if n := seriesCount(t, reg, name); n != 1 {
		t.Fatalf("series = %d, want 1", n)
	}
	m.SetPolicyHash("") // an empty hash is still a value, and still replaces the old one
	if n := seriesCount(t, reg, name); n != 1 {
		t.Fatalf("series after empty hash = %d, want 1", n)
	}
}

func TestBuildInfo(t *testing.T) {
	t.Parallel()
	m := New()
	reg := m.Registry()
	m.SetBuildInfo("v1.0.0")
	m.SetBuildInfo("v1.1.0")
	if _, ok := sample(t, reg, "jurisdns_build_info", map[string]string{"version": "v1.0.0", "goversion": runtime.Version()}); ok {
		t.Fatal("old version series still present")
	}
	if got := value(t, reg, "jurisdns_build_info", map[string]string{"version": "v1.1.0", "goversion": runtime.Version()}); got != 1 {
		t.Fatalf("build info = %v, want 1", got)
	}
	if n := seriesCount(t, reg, "jurisdns_build_info"); n != 1 {
		t.Fatalf("series = %d, want 1", n)
	}
}

func TestLabelCap(t *testing.T) {
	t.Parallel()
	m := New()
	// Shrink the cap of this instance so the test stays small.
	m.refused.limit = 3
	for i := range 10 {
		m.Refused(fmt.Sprintf("reason-%d", i))
	}
	m.Refused("reason-1") // known before the cap: keeps its own series
	reg := m.Registry()
	if n := seriesCount(t, reg, "jurisdns_refused_total"); n != 4 {
		t.Fatalf("series = %d, want 3 plus other", n)
	}
	if got := value(t, reg, "jurisdns_refused_total", map[string]string{"reason": "reason-1"}); got != 2 {
		t.Errorf("reason-1 = %v, want 2", got)
	}
	if got := value(t, reg, "jurisdns_refused_total", map[string]string{"reason": "other"}); got != 7 {
		t.Errorf("other = %v, want 7", got)
	}

	m.policyHits.limit = 1
	m.PolicyHit("a", "nxdomain", "enforce")
	m.PolicyHit("b", "nxdomain", "enforce")
	if got := value(t, reg, "jurisdns_policy_hits_total",
		map[string]string{"jurisdiction": "other", "action": "other", "mode": "other"}); got != 1 {
		t.Errorf("policy overflow = %v, want 1", got)
	}
}

// TestConcurrent adds new label values from many goroutines while the registry
// is gathered; run it with -race. Every increment must be counted once.
func TestConcurrent(t *testing.T) {
	t.Parallel()
	m := New()
	const workers, perWorker = 8, 500
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				j := fmt.Sprintf("j%d", i%16)
				m.PolicyHit(j, "nxdomain", "enforce")
				m.UpstreamError(fmt.Sprintf("u%d", w%4), "timeout")
				m.UpstreamDuration(fmt.Sprintf("u%d", i%4), time.Millisecond)
				m.QueryAnswered(Proto(i%2), dns.TypeA, dns.RcodeSuccess)
				m.Dropped("malformed")
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			if _, err := m.Registry().Gather(); err != nil {
				t.Errorf("gather: %v", err)
			}
		}
	})
	wg.Wait()

	reg := m.Registry()
	sum := func(name string) float64 {
		var s float64
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() == name {
				for _, x := range mf.GetMetric() {
					s += x.GetCounter().GetValue() + float64(x.GetHistogram().GetSampleCount())
				}
			}
		}
		return s
	}
	const total = workers * perWorker
	for _, name := range []string{
		"jurisdns_policy_hits_total", "jurisdns_upstream_errors_total",
		"jurisdns_upstream_request_duration_seconds", "jurisdns_queries_total", "jurisdns_dropped_total",
	} {
		if got := sum(name); got != total {
			t.Errorf("%s total = %v, want %d", name, got, total)
		}
	}
	if n := seriesCount(t, reg, "jurisdns_policy_hits_total"); n != 16 {
		t.Errorf("policy series = %d, want 16", n)
	}
}

func TestNilMetrics(t *testing.T) {
	t.Parallel()
	var m *Metrics
	// None of these may panic.
	m.QueryAnswered(ProtoUDP, dns.TypeA, 0)
	m.PolicyHit("a", "b", "c")
	m.CacheHit()
	m.CacheMiss()
	m.CacheEviction()
	m.CacheStale()
	m.SetCacheSize(1)
	m.UpstreamDuration("u", time.Second)
	m.UpstreamError("u", "timeout")
	m.Reload(true, time.Now())
	m.SetListEntries("j", 1)
	m.ListRefreshed("j", time.Now())
	m.ListRefreshFailed("j", "s")
	m.SetPolicyHash("h")
	m.RateLimited()
	m.Refused("acl")
	m.Dropped("x")
	m.AuditDropped()
	m.SetAuditState(func() AuditState { return AuditState{} })
	m.SetBuildInfo("v")
	if m.Registry() != nil || m.Names() != nil {
		t.Fatal("nil Metrics returned a registry or names")
	}
}

// exercise calls every method once so that every family has a series.
func exercise(m *Metrics) {
	m.SetUnknownEnv(3, 1)
	m.UpstreamReplyDropped("case")
	m.QueryAnswered(ProtoUDP, dns.TypeA, 0)
	m.PolicyHit("a", "nxdomain", "enforce")
	m.CacheHit()
	m.CacheMiss()
	m.CacheEviction()
	m.CacheStale()
	m.SetCacheSize(1)
	m.UpstreamDuration("u", time.Millisecond)
	m.UpstreamError("u", "timeout")
	m.Reload(true, time.Unix(1, 0))
	m.SetListEntries("j", 1)
	m.ListRefreshed("j", time.Unix(1, 0))
	m.ListRefreshFailed("j", "s")
	m.SetPolicyHash("h")
	m.RateLimited()
	m.Refused("acl")
	m.Dropped("x")
	m.AuditDropped()
	m.SetAuditState(func() AuditState {
		return AuditState{Checkpoint: &AuditCheckpoint{Head: "h", Time: time.Unix(1, 0)}}
	})
	m.SetBuildInfo("v")
	m.SetRateLimitState(func() RateLimitState { return RateLimitState{Clients: 1} })
	m.SetListSourceState(func() []ListSourceState {
		return []ListSourceState{{Jurisdiction: "j", Source: "s", LastSuccess: time.Unix(1, 0)}}
	})
}

func TestSourceState(t *testing.T) {
	t.Parallel()
	m := New()
	reg := m.Registry()
	for _, n := range sourceNames {
		if c := seriesCount(t, reg, Namespace+"_"+n); c != 0 {
			t.Fatalf("%s: %d series before the state functions are set", n, c)
		}
	}
	m.SetRateLimitState(func() RateLimitState { return RateLimitState{Clients: 42, Evicted: 7} })
	at := time.Unix(1700000000, 0)
	m.SetListSourceState(func() []ListSourceState {
		return []ListSourceState{
			{Jurisdiction: "corp", Source: "feed", Downloaded: 3, NotModified: 5, Cache: 2, Errors: 1, Rejected: 2, Retries: 4, Entries: 1000, LastSuccess: at},
			{Jurisdiction: "corp", Source: "feed", Downloaded: 99}, // a duplicate is skipped
			{Jurisdiction: "corp", Source: "never", Errors: 1},
		}
	})
	if got := value(t, reg, "jurisdns_ratelimit_clients", nil); got != 42 {
		t.Errorf("ratelimit_clients = %v, want 42", got)
	}
	if got := value(t, reg, "jurisdns_ratelimit_evictions_total", nil); got != 7 {
		t.Errorf("ratelimit_evictions_total = %v, want 7", got)
	}
	feed := map[string]string{"jurisdiction": "corp", "source": "feed"}
	with := func(k, v string) map[string]string {
		out := map[string]string{k: v}
		for k, v := range feed {
			out[k] = v
		}
		return out
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"jurisdns_list_fetches_total", with("result", "downloaded"), 3},
		{"jurisdns_list_fetches_total", with("result", "not_modified"), 5},
		{"jurisdns_list_fetches_total", with("result", "cache"), 2},
		{"jurisdns_list_fetches_total", with("result", "error"), 1},
		{"jurisdns_list_fetch_rejected_total", feed, 2},
		{"jurisdns_list_fetch_retries_total", feed, 4},
		{"jurisdns_list_source_entries", feed, 1000},
		{"jurisdns_list_source_last_success_timestamp_seconds", feed, unixSeconds(at)},
	} {
		if got := value(t, reg, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if n := seriesCount(t, reg, "jurisdns_list_source_last_success_timestamp_seconds"); n != 1 {
		t.Errorf("last success series: %d, want 1 (none for a source never confirmed)", n)
	}
	if n := seriesCount(t, reg, "jurisdns_list_fetches_total"); n != 8 {
		t.Errorf("list_fetches_total series: %d, want 8 (4 results of 2 sources)", n)
	}
	m.SetRateLimitState(nil)
	m.SetListSourceState(nil)
	if c := seriesCount(t, reg, "jurisdns_ratelimit_clients") + seriesCount(t, reg, "jurisdns_list_fetches_total"); c != 0 {
		t.Errorf("%d series after the state functions were unset", c)
	}
	var nilM *Metrics
	nilM.SetRateLimitState(func() RateLimitState { return RateLimitState{} })
	nilM.SetListSourceState(nil)
}

func TestAuditState(t *testing.T) {
	t.Parallel()
	m := New()
	reg := m.Registry()
	if n := seriesCount(t, reg, "jurisdns_audit_writing"); n != 0 {
		t.Fatalf("audit series before SetAuditState: %d", n)
	}
	st := AuditState{Writing: false, WriteErrors: 7, Lost: 3, BufferedBytes: 4000}
	var mu sync.Mutex
	m.SetAuditState(func() AuditState { mu.Lock(); defer mu.Unlock(); return st })
	for name, want := range map[string]float64{
		"jurisdns_audit_writing": 0, "jurisdns_audit_write_errors_total": 7, "jurisdns_audit_lost_total": 3,
		"jurisdns_audit_buffered_bytes": 4000,
	} {
		if got := value(t, reg, name, nil); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if n := seriesCount(t, reg, "jurisdns_audit_checkpoint_info"); n != 0 {
		t.Fatalf("checkpoint series without a checkpoint: %d", n)
	}
	at := time.Date(2026, 12, 6, 10, 0, 0, 5, time.UTC)
	mu.Lock()
	st.Writing = true
	st.Checkpoint = &AuditCheckpoint{Count: 41, Head: strings.Repeat("ab", 32), Reason: "interval", Key: "0011223344556677", Sig: "c2ln", Time: at}
	mu.Unlock()
	labels := map[string]string{"count": "41", "head": strings.Repeat("ab", 32), "time": "2026-12-06T10:00:00.000000005Z",
		"reason": "interval", "key": "0011223344556677", "signature": "c2ln"}
	if got := value(t, reg, "jurisdns_audit_checkpoint_info", labels); got != 1 {
		t.Fatalf("checkpoint info = %v", got)
	}
	if got := value(t, reg, "jurisdns_audit_checkpoint_timestamp_seconds", nil); got != unixSeconds(at) {
		t.Fatalf("checkpoint time = %v", got)
	}
	if got := value(t, reg, "jurisdns_audit_writing", nil); got != 1 {
		t.Fatalf("writing = %v", got)
	}
}

func TestNames(t *testing.T) {
	t.Parallel()
	m := New()
	fresh := m.Names()
	if !slices.IsSorted(fresh) {
		t.Fatal("Names not sorted")
	}
	for _, want := range []string{"jurisdns_queries_total", "jurisdns_policy_info", "jurisdns_upstream_request_duration_seconds", "go_goroutines"} {
		if !slices.Contains(fresh, want) {
			t.Errorf("Names lacks %s before any sample", want)
		}
	}

	exercise(m)
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var gathered []string
	for _, mf := range mfs {
		gathered = append(gathered, mf.GetName())
		if !slices.Contains(fresh, mf.GetName()) {
			t.Errorf("gathered family %s missing from Names", mf.GetName())
		}
	}
	// Every name Names reports must be real: after every method ran once, each
	// of our families has a series.
	for _, n := range fresh {
		if !slices.Contains(gathered, n) {
			t.Errorf("Names reports %s, which the registry does not expose", n)
		}
	}
	for _, n := range fresh {
		if !strings.HasPrefix(n, Namespace+"_") && !strings.HasPrefix(n, "go_") && !strings.HasPrefix(n, "process_") {
			t.Errorf("unexpected family %s", n)
		}
	}
}

func TestHandler(t *testing.T) {
	t.Parallel()
	m := New()
	m.CacheMiss()
	m.CacheMiss()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if !strings.Contains(string(body), "\njurisdns_cache_misses_total 2\n") {
		t.Fatalf("scrape lacks jurisdns_cache_misses_total 2:\n%.2000s", body)
	}
}

// TestHotPathNoAllocs fails if a method called per query allocates once its
// label children exist.
func TestHotPathNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	m := New()
	exercise(m)
	calls := map[string]func(){
		"QueryAnswered":    func() { m.QueryAnswered(ProtoTCP, dns.TypeAAAA, dns.RcodeNameError) },
		"QueryAnsweredOth": func() { m.QueryAnswered(ProtoUDP, dns.TypeCAA, 4000) },
		"PolicyHit":        func() { m.PolicyHit("a", "nxdomain", "enforce") },
		"CacheHit":         m.CacheHit,
		"CacheMiss":        m.CacheMiss,
		"CacheStale":       m.CacheStale,
		"CacheEviction":    m.CacheEviction,
		"SetCacheSize":     func() { m.SetCacheSize(7) },
		"UpstreamDuration": func() { m.UpstreamDuration("u", time.Millisecond) },
		"UpstreamError":    func() { m.UpstreamError("u", "timeout") },
		"RateLimited":      m.RateLimited,
		"Refused":          func() { m.Refused("acl") },
		"Dropped":          func() { m.Dropped("x") },
		"AuditDropped":     m.AuditDropped,
	}
	for name, f := range calls {
		if a := testing.AllocsPerRun(1000, f); a != 0 {
			t.Errorf("%s: %v allocs per call, want 0", name, a)
		}
	}
}

func BenchmarkQueryAnswered(b *testing.B) {
	m := New()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		m.QueryAnswered(Proto(i&1), dns.TypeA, dns.RcodeSuccess)
	}
}

func BenchmarkQueryAnsweredParallel(b *testing.B) {
	m := New()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.QueryAnswered(ProtoUDP, dns.TypeAAAA, dns.RcodeNameError)
		}
	})
}

func BenchmarkPolicyHit(b *testing.B) {
	m := New()
	for _, j := range []string{"us-gov", "au-gov", "kr-gov", "bypass"} {
		m.PolicyHit(j, "nxdomain", "enforce")
	}
	b.ReportAllocs()
	for b.Loop() {
		m.PolicyHit("kr-gov", "nxdomain", "enforce")
	}
}

func BenchmarkUpstreamDuration(b *testing.B) {
	m := New()
	b.ReportAllocs()
	for b.Loop() {
		m.UpstreamDuration("udp://192.0.2.53:53", 3*time.Millisecond)
	}
}

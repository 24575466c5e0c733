package app_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// TestCacheAndServerGauges: jurisdns_cache_entries and cache_bytes follow
// the cache between reloads (they were set only at a reload, so stayed 0),
// the upstream socket gauges follow the pool, and the in-flight and TCP
// connection gauges are published.
func TestCacheAndServerGauges(t *testing.T) {
	e := newEnv(t, nil)
	e.config("")
	e.start()
	for i := 0; i < 5; i++ {
		wantRcode(t, "miss", e.query("udp", fmt.Sprintf("n%d.example", i), dns.TypeA), dns.RcodeSuccess)
	}
	if got := e.metric("cache_entries"); got != 5 {
		t.Errorf("jurisdns_cache_entries = %v after 5 cached answers, want 5", got)
	}
	if got := e.metric("cache_bytes"); got <= 0 {
		t.Errorf("jurisdns_cache_bytes = %v", got)
	}
	// The upstream sockets of those misses are open and idle (the gauges
	// count every server of the process: at least this one).
	if got := e.metric("upstream_udp_sockets_idle"); got < 1 {
		t.Errorf("jurisdns_upstream_udp_sockets_idle = %v after 5 misses, want ≥ 1", got)
	}
	if got := e.metric("upstream_udp_sockets"); got < 1 {
		t.Errorf("jurisdns_upstream_udp_sockets = %v after 5 misses, want ≥ 1", got)
	}
	code, body := e.get("/metrics")
	for _, name := range []string{"jurisdns_queries_inflight", "jurisdns_tcp_connections", "jurisdns_upstream_udp_inflight", "jurisdns_udp_answers_queued"} {
		if code != 200 || !strings.Contains(body, "\n"+name+" ") {
			t.Errorf("/metrics has no %s", name)
		}
	}
}

// TestRateLimitGauges: the rate limiter's buckets and evictions are read at
// scrape time; a reload that keeps access.rate_limit keeps the limiter and
// its buckets, one that changes it starts a new one.
func TestRateLimitGauges(t *testing.T) {
	e := newEnv(t, nil)
	e.config("access: {rate_limit: {qps: 1000, burst: 1000, exempt: []}}\n")
	a := e.start()
	if got := e.metric("ratelimit_clients"); got != 0 {
		t.Errorf("jurisdns_ratelimit_clients = %v before any query, want 0", got)
	}
	wantRcode(t, "query", e.query("udp", "n.example", dns.TypeA), dns.RcodeSuccess)
	if got := e.metric("ratelimit_clients"); got != 1 {
		t.Errorf("jurisdns_ratelimit_clients = %v after a query from 127.0.0.1, want 1", got)
	}
	code, body := e.get("/metrics")
	if code != 200 || !strings.Contains(body, "\njurisdns_ratelimit_evictions_total 0\n") {
		t.Errorf("/metrics has no jurisdns_ratelimit_evictions_total 0")
	}
	if err := a.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := e.metric("ratelimit_clients"); got != 1 {
		t.Errorf("jurisdns_ratelimit_clients = %v after a reload that kept the limiter, want 1", got)
	}
	e.config("access: {rate_limit: {qps: 500, burst: 1000, exempt: []}}\n")
	if err := a.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := e.metric("ratelimit_clients"); got != 0 {
		t.Errorf("jurisdns_ratelimit_clients = %v after a reload with a new rate limit, want 0 (a new limiter)", got)
	}
}

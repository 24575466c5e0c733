package app_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// TestCacheAndServerGauges: jurisdns_cache_entries and cache_bytes follow
// the cache between reloads (they were set only at a reload, so stayed 0),
// and the in-flight and TCP connection gauges are published.
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
	code, body := e.get("/metrics")
	for _, name := range []string{"jurisdns_queries_inflight", "jurisdns_tcp_connections"} {
		if code != 200 || !strings.Contains(body, "\n"+name+" ") {
			t.Errorf("/metrics has no %s", name)
		}
	}
}

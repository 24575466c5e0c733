package main

import (
	"net"
	"regexp"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// TestListsTransfer: `jurisdns lists` transfers an RPZ source from its
// primary (an in-process server on 127.0.0.1) and prints its zone, serial,
// primary and last transfer, and the triggers it cannot honour.
func TestListsTransfer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	zone := []string{
		"rpz.test. 60 IN SOA localhost. admin.rpz.test. 7 60 60 600 60",
		"a.example.rpz.test. 60 IN CNAME .",
		"*.b.example.rpz.test. 60 IN CNAME .",
		"32.1.2.0.192.rpz-ip.rpz.test. 60 IN CNAME .",
		"rpz.test. 60 IN SOA localhost. admin.rpz.test. 7 60 60 600 60",
	}
	srv := &dns.Server{Listener: l, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		var rrs []dns.RR
		for _, s := range zone {
			rr, _ := dns.NewRR(s)
			rrs = append(rrs, rr)
		}
		ch := make(chan *dns.Envelope, 1)
		ch <- &dns.Envelope{RR: rrs}
		close(ch)
		_ = new(dns.Transfer).Out(w, q, ch)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })

	dir := t.TempDir()
	cfg := writeFile(t, dir, "c.yaml", `listen: ["127.0.0.1:0"]
upstreams: {servers: ["127.0.0.1:9"]}
default_jurisdictions: [feed-j]
jurisdictions:
  - id: feed-j
    sources: [{name: feed, transfer: {zone: rpz.test., primaries: ["`+l.Addr().String()+`"]}}]
`)
	code, out, errOut := jurisdns(t, "lists", "-c", cfg)
	want := regexp.MustCompile(`(?m)^feed-j/feed: zone rpz\.test\. serial 7 from ` + regexp.QuoteMeta(l.Addr().String()) +
		`, last transfer 20\d\d-[0-9T:-]+Z, last NOTIFY never, 2 entries, 1 unsupported triggers skipped$`)
	if code != 0 || !want.MatchString(out) {
		t.Fatalf("lists = %d\n%s%s", code, out, errOut)
	}
	code, out, _ = jurisdns(t, "lists", "-c", cfg, "--json")
	checkJSONStyle(t, "lists --json", out)
	if code != 0 || !strings.Contains(out, `"serial": 7`) || !strings.Contains(out, `"zone": "rpz.test."`) {
		t.Errorf("lists --json = %d\n%s", code, out)
	}
}

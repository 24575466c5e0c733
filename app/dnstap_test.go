package app_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tap "github.com/dnstap/golang-dnstap"
	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/dnstap/dnstaptest"
	"github.com/jurisdns/jurisdns/internal/testtool"
	"github.com/jurisdns/jurisdns/resolver/resolvertest"
)

// dnstapUpstream answers A 192.0.2.1, and for alias.example a CNAME chain
// to x.blocked.example (which the policy blocks).
func dnstapUpstream() dns.Handler {
	return resolvertest.Func(func(r *dns.Msg) *dns.Msg {
		m := new(dns.Msg)
		m.SetReply(r)
		q := r.Question[0]
		if strings.EqualFold(q.Name, "alias.example.") {
			m.Answer = append(m.Answer, &dns.CNAME{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: 300},
				Target: "x.blocked.example."})
		}
		if q.Qtype == dns.TypeA {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300},
				A: net.IPv4(192, 0, 2, 1).To4()})
		}
		return m
	})
}

// dnstapPolicy is the policy part of the test configurations.
const dnstapPolicy = `default_jurisdictions: [acme, watch, dropper]
jurisdictions:
  - id: dropper
    tier: local
    action: drop
    sources: [{name: d, inline: [dropped.example]}]
  - id: acme
    tier: local
    instrument: ACME IT policy 7.2
    sources: [{name: core, inline: [blocked.example]}]
  - id: watch
    mode: report
    instrument: Watch list 1
    sources: [{name: w, inline: [watched.example]}]
`

// tapped is a decoded capture, indexed for the assertions.
type tapped struct {
	t      *testing.T
	frames []*tap.Dnstap
}

// find returns the messages of type typ whose query (or response) asks
// for qname.
func (c tapped) find(typ tap.Message_Type, qname string) []*tap.Message {
	var out []*tap.Message
	for _, d := range c.frames {
		m := d.GetMessage()
		if m.GetType() != typ {
			continue
		}
		wire := m.GetQueryMessage()
		if wire == nil {
			wire = m.GetResponseMessage()
		}
		msg := new(dns.Msg)
		if err := msg.Unpack(wire); err != nil {
			c.t.Fatalf("%v: message does not parse: %v", typ, err)
		}
		if len(msg.Question) == 1 && strings.EqualFold(msg.Question[0].Name, qname) {
			out = append(out, m)
		}
	}
	return out
}

// one returns the single message of type typ for qname.
func (c tapped) one(typ tap.Message_Type, qname string) *tap.Message {
	c.t.Helper()
	ms := c.find(typ, qname)
	if len(ms) != 1 {
		c.t.Fatalf("%d %v messages for %s, want 1", len(ms), typ, qname)
	}
	return ms[0]
}

// TestDnstapToFstrmCapture runs a server that sends dnstap to Debian's
// fstrm_capture over a unix socket and checks, in what fstrm_capture wrote,
// every path a query takes (miss, fast-path hit, fast-path block, slow-path
// block over TCP, report mode, a CNAME into a blocked name) and the
// forwarder's exchanges; dnstap-ldns reads the same capture.
func TestDnstapToFstrmCapture(t *testing.T) {
	e := newEnv(t, dnstapUpstream())
	sock, capFile := filepath.Join(e.dir, "tap.sock"), filepath.Join(e.dir, "tap.fstrm")
	f := dnstaptest.StartFstrm(t, sock, capFile)
	e.config(fmt.Sprintf("dnstap: {socket: %q, identity: test-ns, messages: [client, forwarder]}\n", sock) + dnstapPolicy)
	a := e.start()
	waitMetric(t, e, "dnstap_connected", 1)

	replies := map[string]*dns.Msg{}
	ask := func(network, name string) {
		r := e.query(network, name, dns.TypeA)
		replies[network+" "+name] = r
	}
	ask("udp", "fwd.example")         // miss
	ask("udp", "fwd.example")         // fast-path hit
	ask("udp", "blocked.example")     // fast-path block
	ask("tcp", "www.blocked.example") // slow-path block
	ask("udp", "watched.example")     // report mode
	ask("udp", "alias.example")       // CNAME into a blocked name
	// A dropped query: no answer comes.
	dc := &dns.Client{Net: "udp", Timeout: 300 * time.Millisecond}
	dq := new(dns.Msg)
	dq.SetQuestion("dropped.example.", dns.TypeA)
	if r, _, err := dc.Exchange(dq, e.dns); err == nil {
		t.Fatalf("dropped.example got an answer: %v", r)
	}
	wantRcode(t, "blocked", replies["udp blocked.example"], dns.RcodeNameError)
	wantRcode(t, "cname", replies["udp alias.example"], dns.RcodeNameError)
	wantRcode(t, "watched", replies["udp watched.example"], dns.RcodeSuccess)
	// 7 client events and 3 upstream exchanges (fwd, watched, alias).
	waitMetric(t, e, "dnstap_sent_total", 10)
	if err := a.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := tapped{t: t, frames: f.Frames(t)}
	if len(c.frames) != 19 {
		t.Errorf("%d frames, want 19 (a query and a response for each of 9 events, a query alone for the dropped one)", len(c.frames))
	}
	for _, d := range c.frames {
		if string(d.GetIdentity()) != "test-ns" || !strings.HasPrefix(string(d.GetVersion()), "jurisdns ") {
			t.Fatalf("identity %q version %q", d.GetIdentity(), d.GetVersion())
		}
	}

	// The client's side: the query and the very reply it got.
	cqs := c.find(tap.Message_CLIENT_QUERY, "fwd.example.")
	crs := c.find(tap.Message_CLIENT_RESPONSE, "fwd.example.")
	if len(cqs) != 2 || len(crs) != 2 {
		t.Fatalf("fwd.example: %d CLIENT_QUERY and %d CLIENT_RESPONSE, want 2 and 2", len(cqs), len(crs))
	}
	for _, m := range append(cqs, crs...) {
		if m.GetSocketProtocol() != tap.SocketProtocol_UDP || m.GetSocketFamily() != tap.SocketFamily_INET ||
			net.IP(m.GetQueryAddress()).String() != "127.0.0.1" || m.GetQueryPort() == 0 {
			t.Errorf("fwd.example %v: socket %v %v %v:%d", m.GetType(), m.GetSocketFamily(), m.GetSocketProtocol(), m.GetQueryAddress(), m.GetQueryPort())
		}
		if m.GetQueryTimeSec() == 0 {
			t.Errorf("fwd.example %v without query time", m.GetType())
		}
		if dnstaptest.PolicyOf(t, m) != nil {
			t.Errorf("fwd.example %v carries a policy", m.GetType())
		}
	}
	for _, m := range crs {
		r := new(dns.Msg)
		if err := r.Unpack(m.GetResponseMessage()); err != nil || len(r.Answer) != 1 || r.Rcode != dns.RcodeSuccess {
			t.Errorf("fwd.example CLIENT_RESPONSE: %v %v", r, err)
		}
	}
	got := new(dns.Msg)
	if err := got.Unpack(c.one(tap.Message_CLIENT_RESPONSE, "blocked.example.").GetResponseMessage()); err != nil {
		t.Fatal(err)
	}
	if want := replies["udp blocked.example"]; got.Id != want.Id || got.String() != want.String() {
		t.Errorf("CLIENT_RESPONSE of blocked.example is not what the client got:\n%v\nwant\n%v", got, want)
	}
	if m := c.one(tap.Message_CLIENT_QUERY, "www.blocked.example."); m.GetSocketProtocol() != tap.SocketProtocol_TCP {
		t.Errorf("the TCP query is logged as %v", m.GetSocketProtocol())
	}

	// Policy on both messages of every query the policy touched.
	for _, tc := range []struct {
		name, rule, value string
		action            int32
	}{
		{"blocked.example.", "acme blocked.example", "ACME IT policy 7.2", 1},
		{"www.blocked.example.", "acme blocked.example", "ACME IT policy 7.2", 1},
		{"watched.example.", "watch watched.example", "Watch list 1", 3},
		{"alias.example.", "acme blocked.example via CNAME x.blocked.example.", "ACME IT policy 7.2", 1},
		{"dropped.example.", "dropper dropped.example", "", 4},
	} {
		if tc.action == 4 { // DROP: no response was sent
			if ms := c.find(tap.Message_CLIENT_RESPONSE, tc.name); len(ms) != 0 {
				t.Errorf("%s: %d CLIENT_RESPONSE for a dropped query", tc.name, len(ms))
			}
			p := dnstaptest.PolicyOf(t, c.one(tap.Message_CLIENT_QUERY, tc.name))
			if p == nil || p.Rule != tc.rule || p.Action != 4 || p.Value != "" {
				t.Errorf("%s: policy %+v", tc.name, p)
			}
			continue
		}
		for _, typ := range []tap.Message_Type{tap.Message_CLIENT_QUERY, tap.Message_CLIENT_RESPONSE} {
			p := dnstaptest.PolicyOf(t, c.one(typ, tc.name))
			if p == nil {
				t.Errorf("%s %v: no Policy", tc.name, typ)
				continue
			}
			if p.Type != "jurisdns" || p.Rule != tc.rule || p.Action != tc.action || p.Match != 1 || p.Value != tc.value {
				t.Errorf("%s %v: policy %+v, want rule %q action %d match QNAME value %q", tc.name, typ, *p, tc.rule, tc.action, tc.value)
			}
		}
	}

	// The forwarder's side: one exchange per upstream query, with the
	// upstream's address.
	for _, name := range []string{"fwd.example.", "watched.example.", "alias.example."} {
		fq, fr := c.one(tap.Message_FORWARDER_QUERY, name), c.one(tap.Message_FORWARDER_RESPONSE, name)
		for _, m := range []*tap.Message{fq, fr} {
			addr := net.JoinHostPort(net.IP(m.GetResponseAddress()).String(), fmt.Sprint(m.GetResponsePort()))
			if addr != e.up.Addr() || m.GetSocketProtocol() != tap.SocketProtocol_UDP {
				t.Errorf("%s %v: upstream %s over %v, want %s over UDP", name, m.GetType(), addr, m.GetSocketProtocol(), e.up.Addr())
			}
		}
		r := new(dns.Msg)
		if err := r.Unpack(fr.GetResponseMessage()); err != nil || len(r.Answer) == 0 {
			t.Errorf("%s FORWARDER_RESPONSE: %v %v", name, r, err)
		}
	}
	if ms := c.find(tap.Message_FORWARDER_QUERY, "blocked.example."); len(ms) != 0 {
		t.Error("a blocked name reached the upstream")
	}

	// dnstap-ldns, the reference decoder, reads the capture.
	ldns := testtool.Need(t, "dnstap-ldns", "dnstap-ldns")
	out, err := exec.Command(ldns, "-r", capFile, "-y").CombinedOutput()
	if err != nil {
		t.Fatalf("dnstap-ldns: %v\n%s", err, out)
	}
	for _, want := range []string{"identity: \"test-ns\"", "type: CLIENT_QUERY", "type: CLIENT_RESPONSE", "type: FORWARDER_RESPONSE",
		"blocked.example.", `query_address: "127.0.0.1"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("dnstap-ldns output lacks %q:\n%.3000s", want, out)
		}
	}
}

// TestDnstapDeadCollector: with no collector, every query is answered and
// the events beyond the queue are dropped and counted; when a collector
// comes up the server connects, and when it restarts the server reconnects.
func TestDnstapDeadCollector(t *testing.T) {
	e := newEnv(t, dnstapUpstream())
	sock := filepath.Join(e.dir, "tap.sock")
	e.config(fmt.Sprintf("dnstap: {socket: %q, messages: [client], queue_size: 5}\n", sock) + dnstapPolicy)
	e.start()
	start := time.Now()
	for i := range 100 {
		name := "fwd.example"
		if i%3 == 0 {
			name = "blocked.example"
		}
		r := e.query("udp", name, dns.TypeA)
		if r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError {
			t.Fatalf("query %d: %s", i, rcode(r))
		}
	}
	t.Logf("100 queries with the collector away: %v", time.Since(start))
	if got := e.metric("dnstap_dropped_total"); got != 95 {
		t.Errorf("dnstap_dropped_total = %v, want 95 (100 events, a queue of 5)", got)
	}
	if got := e.metric("dnstap_connected"); got != 0 {
		t.Errorf("dnstap_connected = %v with no collector", got)
	}

	// The collector comes up: the server connects and sends what it queued.
	f := dnstaptest.StartFstrm(t, sock, filepath.Join(e.dir, "first.fstrm"))
	waitMetric(t, e, "dnstap_connected", 1)
	waitMetric(t, e, "dnstap_sent_total", 5)

	// It restarts: the server notices on its next write and reconnects.
	f.Stop(t)
	f2 := dnstaptest.StartFstrm(t, sock, filepath.Join(e.dir, "second.fstrm"))
	deadline := time.Now().Add(waitLimit)
	sent := e.metric("dnstap_sent_total")
	for i := 0; ; i++ {
		e.query("udp", fmt.Sprintf("after-%d.example", i), dns.TypeA)
		if e.metric("dnstap_connected") == 1 && e.metric("dnstap_sent_total") > sent+1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no reconnection to the restarted collector")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := e.app.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, d := range f2.Frames(t) {
		r := new(dns.Msg)
		if r.Unpack(d.GetMessage().GetQueryMessage()) == nil && len(r.Question) == 1 && strings.HasPrefix(r.Question[0].Name, "after-") {
			found = true
		}
	}
	if !found {
		t.Error("the restarted collector received none of the queries sent after the restart")
	}
}

// TestDnstapReloadKeepsStream: a reload that leaves the dnstap keys alone
// keeps the connection; one that changes them reconnects with the new
// settings; one that clears the socket stops the stream.
func TestDnstapReloadKeepsStream(t *testing.T) {
	e := newEnv(t, dnstapUpstream())
	sock := dnstaptest.SockPath(t)
	col := dnstaptest.StartCollector(t, sock)
	conf := func(identity, extra string) {
		e.config(fmt.Sprintf("dnstap: {socket: %q, identity: %s, messages: [client]}\n", sock, identity) + dnstapPolicy + extra)
	}
	conf("one", "")
	a := e.start()
	next := func(name string) *tap.Dnstap {
		t.Helper()
		e.query("udp", name, dns.TypeA)
		d := col.Next(t)
		col.Next(t) // its response
		return d
	}
	if d := next("a.example"); string(d.GetIdentity()) != "one" {
		t.Fatalf("identity %q", d.GetIdentity())
	}
	// A reload with other changes but the same dnstap keys.
	conf("one", "  - id: extra\n    tier: local\n    sources: [{name: x, inline: [x.example]}]\n")
	if err := a.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := next("b.example"); string(d.GetIdentity()) != "one" || col.Accepted() != 1 {
		t.Fatalf("after an unrelated reload: identity %q, %d connections (want 1)", d.GetIdentity(), col.Accepted())
	}
	// New dnstap keys: a new stream.
	conf("two", "")
	if err := a.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := next("c.example"); string(d.GetIdentity()) != "two" || col.Accepted() != 2 {
		t.Fatalf("after changing dnstap.identity: identity %q, %d connections (want 2)", d.GetIdentity(), col.Accepted())
	}
	// Off.
	e.config(dnstapPolicy)
	if err := a.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.query("udp", "d.example", dns.TypeA)
	select {
	case f := <-col.Frames:
		t.Errorf("a frame after dnstap was turned off: %v", dnstaptest.Decode(t, f).GetMessage().GetType())
	case <-time.After(300 * time.Millisecond):
	}
}

// waitMetric waits until metric name reaches at least want.
func waitMetric(t *testing.T, e *env, name string, want float64) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		got := e.metric(name)
		if got >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v, want %v", name, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDnstapParallelUpstreams: with strategy parallel every upstream gets
// the same query at once; each try is its own FORWARDER_QUERY (and, run
// with -race, tapping them shares nothing unsafely).
func TestDnstapParallelUpstreams(t *testing.T) {
	e := newEnv(t, dnstapUpstream())
	second := resolvertest.StartUpstream(t, dnstapUpstream())
	sock := dnstaptest.SockPath(t)
	col := dnstaptest.StartCollector(t, sock)
	base := strings.Replace(baseConfig(e.up.Addr()), fmt.Sprintf("servers: [%q],", e.up.Addr()),
		fmt.Sprintf("servers: [%q, %q], strategy: parallel,", e.up.Addr(), second.Addr()), 1)
	if !strings.Contains(base, "parallel") {
		t.Fatalf("base configuration not as expected:\n%s", base)
	}
	e.write("jurisdns.yaml", base+fmt.Sprintf("dnstap: {socket: %q, messages: [forwarder]}\n", sock)+dnstapPolicy)
	e.start()
	for i := range 5 {
		wantRcode(t, "forwarded", e.query("udp", fmt.Sprintf("p%d.example", i), dns.TypeA), dns.RcodeSuccess)
	}
	queried := map[string]bool{}
	deadline := time.Now().Add(waitLimit)
	for len(queried) < 2 {
		select {
		case f := <-col.Frames:
			m := dnstaptest.Decode(t, f).GetMessage()
			if m.GetType() == tap.Message_FORWARDER_QUERY {
				queried[net.JoinHostPort(net.IP(m.GetResponseAddress()).String(), fmt.Sprint(m.GetResponsePort()))] = true
			}
		case <-time.After(time.Until(deadline)):
			t.Fatalf("FORWARDER_QUERY seen for %v, want both upstreams", queried)
		}
	}
	if !queried[e.up.Addr()] || !queried[second.Addr()] {
		t.Errorf("FORWARDER_QUERY for %v, want %s and %s", queried, e.up.Addr(), second.Addr())
	}
}

// TestDnstapOnNeedsRestart: a reload that turns dnstap on says that only a
// restart applies it, and sends nothing.
func TestDnstapOnNeedsRestart(t *testing.T) {
	e := newEnv(t, dnstapUpstream())
	e.config(dnstapPolicy)
	a := e.start()
	sock := dnstaptest.SockPath(t)
	col := dnstaptest.StartCollector(t, sock)
	e.config(fmt.Sprintf("dnstap: {socket: %q}\n", sock) + dnstapPolicy)
	from := e.logs.mark()
	if err := a.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	warned := e.logs.find(from, func(r logRecord) bool {
		return r.Level == slog.LevelWarn && strings.Contains(r.Msg, "restart") && r.Attrs["key"] == "dnstap"
	})
	if len(warned) != 1 {
		t.Errorf("%d restart warnings for dnstap, want 1", len(warned))
	}
	e.query("udp", "a.example", dns.TypeA)
	if col.Accepted() != 0 {
		t.Error("dnstap connected after a reload that turned it on")
	}
}

// TestDnstapEncrypted: queries over DoT and DoH are sent with their
// transport (DOT, DOH) and the reply the client got.
func TestDnstapEncrypted(t *testing.T) {
	sock := dnstaptest.SockPath(t)
	col := dnstaptest.StartCollector(t, sock)
	e, ca := startEncrypted(t, fmt.Sprintf("dnstap: {socket: %q, messages: [client]}\n", sock))
	r := exchangeDoT(t, dotClient(ca, ""), e.dotAddr(), "dot.example", dns.TypeA)
	wantRcode(t, "DoT", r, dns.RcodeSuccess)
	res := doh(t, dohClient(ca, false, ""), e.dohURL(), http.MethodPost, "application/dns-message", packQuery(t, "doh.example", dns.TypeA))
	if res.msg == nil {
		t.Fatalf("DoH: status %d, no DNS message", res.status)
	}
	want := map[string]tap.SocketProtocol{"dot.example.": tap.SocketProtocol_DOT, "doh.example.": tap.SocketProtocol_DOH}
	got := map[string]tap.SocketProtocol{}
	for len(got) < 2 {
		m := col.Next(t).GetMessage()
		if m.GetType() != tap.Message_CLIENT_RESPONSE {
			continue
		}
		msg := new(dns.Msg)
		if err := msg.Unpack(m.GetResponseMessage()); err != nil || len(msg.Question) != 1 {
			t.Fatalf("CLIENT_RESPONSE: %v", err)
		}
		got[msg.Question[0].Name] = m.GetSocketProtocol()
		// The reply the client got, but for the EDNS padding (RFC 8467)
		// the transport adds after the engine.
		if msg.Question[0].Name == "doh.example." && (msg.Id != res.msg.Id || msg.Rcode != res.msg.Rcode ||
			fmt.Sprint(msg.Answer) != fmt.Sprint(res.msg.Answer) || len(m.GetResponseMessage()) >= len(res.body)) {
			t.Errorf("DoH CLIENT_RESPONSE\n%v\nis not the (unpadded) reply the client got\n%v", msg, res.msg)
		}
	}
	for name, p := range want {
		if got[name] != p {
			t.Errorf("%s sent as %v, want %v", name, got[name], p)
		}
	}
}

package app_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptrace"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/internal/testtool"
)

// listenersConfig is the encrypted part of a configuration with the DoT
// and DoH listen lists given (YAML flow sequences).
func listenersConfig(dot, doh string) string {
	return fmt.Sprintf(`tls: {cert_file: cert.pem, key_file: key.pem, handshake_timeout: 2s}
dot: {listen: %s}
doh: {listen: %s, path: /dns-query}
ddr: true
`, dot, doh)
}

// reloadEncrypted rewrites the configuration with the DoT and DoH listen
// lists given and reloads.
func (e *env) reloadEncrypted(dot, doh string) error {
	e.t.Helper()
	e.config(listenersConfig(dot, doh))
	return e.app.Reload(context.Background())
}

// ddrEndpoints returns the endpoints of the DDR answer over UDP, each as
// "alpn port hint", sorted.
func (e *env) ddrEndpoints() []string {
	e.t.Helper()
	r := e.query("udp", "_dns.resolver.arpa", dns.TypeSVCB)
	var out []string
	for _, rr := range r.Answer {
		s, ok := rr.(*dns.SVCB)
		if !ok {
			e.t.Fatalf("DDR answer %v is not SVCB", rr)
		}
		var alpn, port, hint string
		for _, kv := range s.Value {
			switch v := kv.(type) {
			case *dns.SVCBAlpn:
				alpn = strings.Join(v.Alpn, ",")
			case *dns.SVCBPort:
				port = fmt.Sprint(v.Port)
			case *dns.SVCBIPv4Hint:
				hint = fmt.Sprint(v.Hint)
			}
		}
		out = append(out, alpn+" "+port+" "+hint)
	}
	slices.Sort(out)
	return out
}

// endpoint is the ddrEndpoints form of a bound address.
func endpoint(alpn, addr string) string {
	host, port, _ := net.SplitHostPort(addr)
	return alpn + " " + port + " [" + host + "]"
}

func sorted(s ...string) []string {
	slices.Sort(s)
	return s
}

// askDoT sends a query for www.example.org on an open DoT connection and
// returns the error, if any, of the exchange.
func askDoT(co *dns.Conn) error {
	m := new(dns.Msg)
	m.SetQuestion("www.example.org.", dns.TypeA)
	_ = co.SetDeadline(time.Now().Add(waitLimit))
	if err := co.WriteMsg(m); err != nil {
		return err
	}
	r, err := co.ReadMsg()
	if err != nil {
		return err
	}
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
		return fmt.Errorf("rcode %s, %d answers", rcode(r), len(r.Answer))
	}
	return nil
}

// TestEncryptedListenersReload: a reload adds and removes DoT and DoH
// addresses. An added address is served (and named by DDR); a removed one
// stops accepting and its connections close once drained; the connections
// of kept listeners are not touched; a reload with an address that cannot
// be bound fails naming the key, and leaves nothing changed (not even the
// addresses it could bind).
func TestEncryptedListenersReload(t *testing.T) {
	e, ca := startEncrypted(t, "")
	dot0 := e.dotAddr()
	_, dohs := e.app.EncryptedAddrs()
	doh0 := dohs[0]
	dc := dotClient(ca, "")
	connA, err := dc.Dial(dot0)
	if err != nil {
		t.Fatal(err)
	}
	defer connA.Close()
	if err := askDoT(connA); err != nil {
		t.Fatalf("DoT on %s: %v", dot0, err)
	}
	hc := dohClient(ca, false, "")
	if res := doh(t, hc, e.dohURL(), http.MethodPost, "application/dns-message", packQuery(t, "www.example.org", dns.TypeA)); res.status != http.StatusOK {
		t.Fatalf("DoH: status %d", res.status)
	}

	// A second DoT address.
	if err := e.reloadEncrypted(`["127.0.0.1:0", "127.0.0.2:0"]`, `["127.0.0.1:0"]`); err != nil {
		t.Fatalf("reload adding a DoT address: %v", err)
	}
	dots, dohs := e.app.EncryptedAddrs()
	if len(dots) != 2 || dots[0] != dot0 || len(dohs) != 1 || dohs[0] != doh0 {
		t.Fatalf("after adding 127.0.0.2:0: dot %v doh %v, want [%s 127.0.0.2:*] [%s]", dots, dohs, dot0, doh0)
	}
	dot1 := dots[1]
	connB, err := dc.Dial(dot1)
	if err != nil {
		t.Fatalf("DoT on the added %s: %v", dot1, err)
	}
	defer connB.Close()
	if err := askDoT(connB); err != nil {
		t.Errorf("DoT on the added %s: %v", dot1, err)
	}
	if err := askDoT(connA); err != nil {
		t.Errorf("DoT on the connection to the kept %s: %v", dot0, err)
	}
	// The DoH client's connection to the kept DoH listener is still open.
	reused := false
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		GotConn: func(ci httptrace.GotConnInfo) { reused = ci.Reused },
	}), http.MethodPost, e.dohURL(), bytes.NewReader(packQuery(t, "www.example.org", dns.TypeA)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/dns-message")
	if resp, err := hc.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("DoH on the kept %s: %v", doh0, err)
	} else {
		resp.Body.Close()
	}
	if !reused {
		t.Errorf("the DoH client opened a new connection to the kept %s", doh0)
	}
	if got, want := e.ddrEndpoints(), sorted(endpoint("dot", dot0), endpoint("dot", dot1), endpoint("h2", doh0)); !slices.Equal(got, want) {
		t.Errorf("DDR after adding a DoT address:\n got %q\nwant %q", got, want)
	}

	// An address that cannot be bound (the test holds it) fails the reload,
	// and the address the same reload bound before it is let go.
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	free := testtool.FreeAddrOn(t, "127.0.0.3")
	err = e.reloadEncrypted(`["127.0.0.1:0", "127.0.0.2:0", "`+free+`"]`, `["127.0.0.1:0", "`+held.Addr().String()+`"]`)
	if err == nil || !strings.Contains(err.Error(), "doh.listen[1]") || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("reload with a DoH address in use: %v, want an error naming doh.listen[1]", err)
	}
	if d, h := e.app.EncryptedAddrs(); !slices.Equal(d, dots) || !slices.Equal(h, dohs) {
		t.Errorf("after the failed reload: dot %v doh %v, want %v %v", d, h, dots, dohs)
	}
	if l, err := net.Listen("tcp", free); err != nil {
		t.Errorf("%s, bound by the failed reload, is still in use: %v", free, err)
	} else {
		l.Close()
	}
	if err := askDoT(connA); err != nil {
		t.Errorf("DoT on %s after the failed reload: %v", dot0, err)
	}

	// The first DoT address and DoH go away.
	mark := e.logs.mark()
	if err := e.reloadEncrypted(`["127.0.0.2:0"]`, `[]`); err != nil {
		t.Fatalf("reload removing addresses: %v", err)
	}
	if d, h := e.app.EncryptedAddrs(); !slices.Equal(d, []string{dot1}) || len(h) != 0 {
		t.Fatalf("after removing: dot %v doh %v, want [%s] []", d, h, dot1)
	}
	// The established connection to the removed address is closed: it
	// was idle, so at once.
	_ = connA.SetReadDeadline(time.Now().Add(waitLimit))
	if _, err := connA.ReadMsg(); err == nil {
		t.Errorf("the connection to the removed %s got a message", dot0)
	}
	for _, addr := range []string{dot0, doh0} {
		if c, err := net.DialTimeout("tcp", addr, 5*time.Second); err == nil {
			c.Close()
			t.Errorf("the removed %s still accepts connections", addr)
		}
	}
	if _, err := hc.Post("https://"+doh0+"/dns-query", "application/dns-message", strings.NewReader(string(packQuery(t, "www.example.org", dns.TypeA)))); err == nil {
		t.Error("DoH still answers after doh.listen was emptied")
	}
	for range 3 {
		if err := askDoT(connB); err != nil {
			t.Errorf("DoT on the connection to the kept %s: %v", dot1, err)
		}
	}
	if got, want := e.ddrEndpoints(), []string{endpoint("dot", dot1)}; !slices.Equal(got, want) {
		t.Errorf("DDR after removing:\n got %q\nwant %q", got, want)
	}
	for n := range 2 {
		r := e.logs.waitFrom(t, mark, "dot: stopped serving an address", 1)
		if n == 1 {
			r = e.logs.waitFrom(t, mark, "doh: stopped serving an address", 1)
		}
		if r.Attrs["drained"] != "true" {
			t.Errorf("%s %v: not drained", r.Msg, r.Attrs)
		}
	}

	// DoH comes back on a new address.
	if err := e.reloadEncrypted(`["127.0.0.2:0"]`, `["127.0.0.1:0"]`); err != nil {
		t.Fatalf("reload adding DoH again: %v", err)
	}
	if res := doh(t, dohClient(ca, false, ""), e.dohURL(), http.MethodGet, "", packQuery(t, "www.example.org", dns.TypeA)); res.status != http.StatusOK || res.msg == nil {
		t.Errorf("DoH on the new address: status %d", res.status)
	}
	if err := askDoT(connB); err != nil {
		t.Errorf("DoT on the connection to the kept %s: %v", dot1, err)
	}
}

// TestEncryptedTurnedOnByReload: a server started without DoT and DoH
// serves them after a reload that configures them (certificate included),
// and DDR names them; a reload that turns them off closes them again.
func TestEncryptedTurnedOnByReload(t *testing.T) {
	e := newEnv(t, nil)
	e.config("")
	e.start()
	if d, h := e.app.EncryptedAddrs(); len(d)+len(h) != 0 {
		t.Fatalf("started without dot and doh: serving %v %v", d, h)
	}
	ca := newTestCA()
	e.writePair(ca, goodLeaf)
	if err := e.reloadEncrypted(`["127.0.0.1:0"]`, `["127.0.0.1:0"]`); err != nil {
		t.Fatalf("reload turning dot and doh on: %v", err)
	}
	wantRcode(t, "DoT after the reload", exchangeDoT(t, dotClient(ca, ""), e.dotAddr(), "www.example.org", dns.TypeA), dns.RcodeSuccess)
	if res := doh(t, dohClient(ca, false, ""), e.dohURL(), http.MethodPost, "application/dns-message", packQuery(t, "www.example.org", dns.TypeA)); res.status != http.StatusOK {
		t.Errorf("DoH after the reload: status %d", res.status)
	}
	dots, dohs := e.app.EncryptedAddrs()
	if got, want := e.ddrEndpoints(), sorted(endpoint("dot", dots[0]), endpoint("h2", dohs[0])); !slices.Equal(got, want) {
		t.Errorf("DDR after turning dot and doh on:\n got %q\nwant %q", got, want)
	}
	e.config("")
	if err := e.app.Reload(context.Background()); err != nil {
		t.Fatalf("reload turning dot and doh off: %v", err)
	}
	if d, h := e.app.EncryptedAddrs(); len(d)+len(h) != 0 {
		t.Errorf("turned off: still serving %v %v", d, h)
	}
	if c, err := net.DialTimeout("tcp", dots[0], 5*time.Second); err == nil {
		c.Close()
		t.Errorf("the DoT address %s still accepts connections", dots[0])
	}
}

// TestEncryptedRemovedListenerDrains: when a reload removes a DoT and a DoH
// address, the queries in flight on their connections are answered before
// the connections close (DoT: the answer, then the close; DoH: the
// response), while new connections are refused at once; a query still
// unanswered after server.shutdown_timeout has its connection closed.
func TestEncryptedRemovedListenerDrains(t *testing.T) {
	release, stuck := make(chan struct{}), make(chan struct{})
	seen := make(chan string, 10)
	e := newEnv(t, dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		name := strings.ToLower(r.Question[0].Name)
		switch {
		case strings.HasPrefix(name, "slow"):
			seen <- name
			<-release
		case strings.HasPrefix(name, "stuck"):
			seen <- name
			<-stuck
		}
		m := new(dns.Msg)
		m.SetReply(r)
		rr, _ := dns.NewRR(r.Question[0].Name + " 300 IN A 192.0.2.1")
		m.Answer = []dns.RR{rr}
		_ = w.WriteMsg(m)
	}))
	defer close(stuck) // before the App's shutdown: its query finishes
	ca := newTestCA()
	e.writePair(ca, goodLeaf)
	base := strings.Replace(baseConfig(e.up.Addr()), "shutdown_timeout: 20s", "shutdown_timeout: 1s", 1)
	if base == baseConfig(e.up.Addr()) {
		t.Fatal("the base configuration no longer sets shutdown_timeout: 20s")
	}
	e.write("jurisdns.yaml", base+listenersConfig(`["127.0.0.1:0", "127.0.0.2:0"]`, `["127.0.0.1:0"]`))
	e.start()
	dots, dohs := e.app.EncryptedAddrs()
	dc := dotClient(ca, "")
	connA, err := dc.Dial(dots[0])
	if err != nil {
		t.Fatal(err)
	}
	defer connA.Close()
	connB, err := dc.Dial(dots[1])
	if err != nil {
		t.Fatal(err)
	}
	defer connB.Close()
	q := new(dns.Msg).SetQuestion("slow1.example.", dns.TypeA)
	if err := connA.WriteMsg(q); err != nil {
		t.Fatal(err)
	}
	dohDone := make(chan int, 1)
	go func() {
		resp, err := dohClient(ca, false, "").Post("https://"+dohs[0]+"/dns-query", "application/dns-message",
			bytes.NewReader(packQuery(t, "slow2.example", dns.TypeA)))
		if err != nil {
			dohDone <- 0
			return
		}
		resp.Body.Close()
		dohDone <- resp.StatusCode
	}()
	for range 2 {
		select {
		case <-seen:
		case <-time.After(waitLimit):
			t.Fatal("the slow queries did not reach the upstream")
		}
	}

	mark := e.logs.mark()
	e.write("jurisdns.yaml", base+listenersConfig(`["127.0.0.2:0"]`, `["127.0.0.3:0"]`))
	if err := e.app.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{dots[0], dohs[0]} {
		if c, err := net.DialTimeout("tcp", addr, 5*time.Second); err == nil {
			c.Close()
			t.Errorf("the removed %s accepts connections while it drains", addr)
		}
	}
	close(release)
	_ = connA.SetReadDeadline(time.Now().Add(waitLimit))
	if r, err := connA.ReadMsg(); err != nil || r.Rcode != dns.RcodeSuccess {
		t.Errorf("the query in flight on the removed DoT address: %v %v", r, err)
	}
	if _, err := connA.ReadMsg(); err == nil {
		t.Error("the connection to the removed DoT address stays open after its answer")
	}
	if code := <-dohDone; code != http.StatusOK {
		t.Errorf("the request in flight on the removed DoH address: status %d", code)
	}
	for _, msg := range []string{"dot: stopped serving an address", "doh: stopped serving an address"} {
		if r := e.logs.waitFrom(t, mark, msg, 1); r.Attrs["drained"] != "true" {
			t.Errorf("%s %v: not drained", r.Msg, r.Attrs)
		}
	}

	// A query that outlasts server.shutdown_timeout (1s): its connection
	// is closed without the answer.
	if err := connB.WriteMsg(new(dns.Msg).SetQuestion("stuck.example.", dns.TypeA)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-seen:
	case <-time.After(waitLimit):
		t.Fatal("the stuck query did not reach the upstream")
	}
	mark = e.logs.mark()
	e.write("jurisdns.yaml", base+listenersConfig(`["127.0.0.1:0"]`, `["127.0.0.3:0"]`))
	if err := e.app.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_ = connB.SetReadDeadline(time.Now().Add(waitLimit))
	if r, err := connB.ReadMsg(); err == nil {
		t.Errorf("the stuck query was answered: %v", r)
	}
	// (Not the upstream's 5s timeout: the answer is not waited for.)
	if d := time.Since(start); d < 900*time.Millisecond || d > 4500*time.Millisecond {
		t.Errorf("the connection with a stuck query was closed after %v, want about 1s", d)
	}
	if r := e.logs.waitFrom(t, mark, "dot: stopped serving an address", 1); r.Attrs["drained"] != "false" {
		t.Errorf("%s %v: want drained=false", r.Msg, r.Attrs)
	}
}

package app_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// reloadEncrypted rewrites the configuration with the DoT and DoH listen
// lists given (YAML flow sequences) and reloads.
func (e *env) reloadEncrypted(dot, doh string) error {
	e.t.Helper()
	e.config(fmt.Sprintf(`tls: {cert_file: cert.pem, key_file: key.pem, handshake_timeout: 2s}
dot: {listen: %s}
doh: {listen: %s, path: /dns-query}
ddr: true
`, dot, doh))
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

// unusedAddr returns a TCP address on host that nothing listens on.
func unusedAddr(t *testing.T, host string) string {
	t.Helper()
	l, err := net.Listen("tcp", host+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
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
	free := unusedAddr(t, "127.0.0.3")
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
	ca := newTestCA(t)
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

package app_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/jurisdns/jurisdns/app"
	"github.com/jurisdns/jurisdns/config"
	"github.com/jurisdns/jurisdns/internal/testtool"
)

// testServerName is the DNS name in every test certificate: the target of
// the DDR records.
const testServerName = "dns.test.jurisdns.example"

// goodLeaf covers the loopback resolver addresses.
var goodLeaf = testtool.Leaf{DNSNames: []string{testServerName}, IPs: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}}

// newTestCA is a CA made for one test, the office's internal CA.
func newTestCA() *testtool.CA { return testtool.NewCA("jurisdns test CA") }

// writePair writes cert.pem and key.pem of l into the env's directory.
func (e *env) writePair(ca *testtool.CA, l testtool.Leaf) {
	e.t.Helper()
	iss := ca.Issue(l)
	writeAtomic(e.t, filepath.Join(e.dir, "cert.pem"), iss.CertPEM)
	writeAtomic(e.t, filepath.Join(e.dir, "key.pem"), iss.KeyPEM)
}

// writeAtomic replaces path with b the way an ACME client does: write a
// temporary file, rename it over the old one.
func writeAtomic(t testing.TB, path string, b []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// encryptedConfig serves DoT and DoH on 127.0.0.1 port 0 with DDR, with
// the pair written by writePair.
const encryptedConfig = `tls: {cert_file: cert.pem, key_file: key.pem, handshake_timeout: 2s}
dot: {listen: ["127.0.0.1:0"]}
doh: {listen: ["127.0.0.1:0"], path: /dns-query}
ddr: true
`

// startEncrypted starts an App serving DoT and DoH with a certificate of a
// new test CA, plus the configuration rest.
func startEncrypted(t *testing.T, rest string) (*env, *testtool.CA) {
	t.Helper()
	return startEncryptedWith(t, encryptedConfig+rest)
}

// startEncryptedWith is startEncrypted with the whole configuration below
// the base given.
func startEncryptedWith(t *testing.T, cfg string) (*env, *testtool.CA) {
	t.Helper()
	e := newEnv(t, nil)
	ca := newTestCA()
	e.writePair(ca, goodLeaf)
	e.config(cfg)
	e.start()
	return e, ca
}

func (e *env) dotAddr() string {
	dot, _ := e.app.EncryptedAddrs()
	return dot[0]
}

func (e *env) dohURL() string {
	_, doh := e.app.EncryptedAddrs()
	return "https://" + doh[0] + "/dns-query"
}

// dotClient is a DoT client that trusts ca, from the local address src ("" for
// any).
func dotClient(ca *testtool.CA, src string) *dns.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	return &dns.Client{Net: "tcp-tls", Timeout: 5 * time.Second, Dialer: d,
		TLSConfig: &tls.Config{RootCAs: ca.Pool, ServerName: testServerName}}
}

// dohClient is an HTTP client that trusts ca, over HTTP/2 unless h1, from
// the local address src ("" for any).
func dohClient(ca *testtool.CA, h1 bool, src string) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	tr := &http.Transport{Proxy: nil, DialContext: d.DialContext, ForceAttemptHTTP2: !h1,
		TLSClientConfig: &tls.Config{RootCAs: ca.Pool, ServerName: testServerName}}
	if h1 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: tr}
}

func packQuery(t testing.TB, name string, qtype uint16) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.Id = 0 // RFC 8484 §4.1: cache friendly
	m.SetEdns0(1232, false)
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// dohResult is one DoH exchange.
type dohResult struct {
	status int
	proto  int // HTTP major version
	header http.Header
	body   []byte
	msg    *dns.Msg // nil unless the body is a DNS message
}

// doh sends a DoH request: method GET (the query in ?dns=) or POST (the
// query as body with contentType).
func doh(t testing.TB, c *http.Client, url, method, contentType string, body []byte) dohResult {
	t.Helper()
	var req *http.Request
	var err error
	if method == http.MethodGet {
		req, err = http.NewRequest(method, url+"?dns="+base64.RawURLEncoding.EncodeToString(body), nil)
	} else {
		req, err = http.NewRequest(method, url, bytes.NewReader(body))
		req.Header.Set("Content-Type", contentType)
	}
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/dns-message")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := dohResult{status: resp.StatusCode, proto: resp.ProtoMajor, header: resp.Header, body: b}
	if resp.Header.Get("Content-Type") == "application/dns-message" {
		r.msg = new(dns.Msg)
		if err := r.msg.Unpack(b); err != nil {
			t.Fatalf("%s %s: body is not a DNS message: %v", method, url, err)
		}
	}
	return r
}

func exchangeDoT(t testing.TB, c *dns.Client, addr, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.SetEdns0(1232, false)
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("DoT %s: %v", name, err)
	}
	return r
}

// TestEncryptedServesTheEngine: over DoT and over DoH (HTTP/2 and HTTP/1.1,
// GET and POST) a banned name gets the jurisdiction's NXDOMAIN with its EDE,
// a normal name is forwarded, every answer is padded to 468 bytes (RFC
// 8467), DoH answers carry Cache-Control from the TTL, and the metrics
// count each transport.
func TestEncryptedServesTheEngine(t *testing.T) {
	e, ca := startEncrypted(t, "")
	dot := dotClient(ca, "")

	r := exchangeDoT(t, dot, e.dotAddr(), "chat.deepseek.com", dns.TypeA)
	wantRcode(t, "DoT chat.deepseek.com", r, dns.RcodeNameError)
	if x := ede(r); x == nil || !strings.Contains(x.ExtraText, "deepseek") {
		t.Errorf("DoT chat.deepseek.com: EDE %v, want the jurisdiction's text", x)
	}
	before := e.up.Queries()
	r = exchangeDoT(t, dot, e.dotAddr(), "www.example.org", dns.TypeA)
	wantRcode(t, "DoT www.example.org", r, dns.RcodeSuccess)
	if len(r.Answer) == 0 || e.up.Queries() != before+1 {
		t.Errorf("DoT www.example.org: %d answers, %d upstream queries; want it forwarded once", len(r.Answer), e.up.Queries()-before)
	}
	// The answer on the wire is padded: read it raw.
	co, err := dot.Dial(e.dotAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer co.Close()
	if err := co.WriteMsg(new(dns.Msg).SetQuestion("www.example.org.", dns.TypeA).SetEdns0(1232, false)); err != nil {
		t.Fatal(err)
	}
	raw := make([]byte, 65535)
	n, err := co.Read(raw)
	if err != nil {
		t.Fatal(err)
	}
	if n%468 != 0 {
		t.Errorf("DoT answer of %d bytes is not padded to a multiple of 468", n)
	}

	for _, h1 := range []bool{false, true} {
		c := dohClient(ca, h1, "")
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			what := fmt.Sprintf("DoH %s (HTTP/1.1 only: %v)", method, h1)
			res := doh(t, c, e.dohURL(), method, "application/dns-message", packQuery(t, "chat.deepseek.com", dns.TypeA))
			if res.status != http.StatusOK || res.msg == nil {
				t.Fatalf("%s: status %d, content type %q", what, res.status, res.header.Get("Content-Type"))
			}
			if want := map[bool]int{false: 2, true: 1}[h1]; res.proto != want {
				t.Errorf("%s: HTTP/%d, want HTTP/%d", what, res.proto, want)
			}
			wantRcode(t, what+" chat.deepseek.com", res.msg, dns.RcodeNameError)
			if x := ede(res.msg); x == nil || !strings.Contains(x.ExtraText, "deepseek") {
				t.Errorf("%s: EDE %v, want the jurisdiction's text", what, x)
			}
			if len(res.body)%468 != 0 {
				t.Errorf("%s: answer of %d bytes is not padded", what, len(res.body))
			}
			// The block answer's SOA carries the jurisdiction's block TTL.
			if cc, want := res.header.Get("Cache-Control"), fmt.Sprintf("max-age=%d", res.msg.Ns[0].Header().Ttl); cc != want {
				t.Errorf("%s: Cache-Control %q, want %q", what, cc, want)
			}
			res = doh(t, c, e.dohURL(), method, "application/dns-message", packQuery(t, "www.example.org", dns.TypeA))
			if res.status != http.StatusOK || res.msg == nil {
				t.Fatalf("%s www.example.org: status %d", what, res.status)
			}
			wantRcode(t, what+" www.example.org", res.msg, dns.RcodeSuccess)
			if len(res.msg.Answer) == 0 {
				t.Errorf("%s www.example.org: no answer", what)
			}
			if cc, want := res.header.Get("Cache-Control"), fmt.Sprintf("max-age=%d", res.msg.Answer[0].Header().Ttl); cc != want {
				t.Errorf("%s: Cache-Control %q, want %q", what, cc, want)
			}
		}
	}

	if got := e.metric("queries_total", "proto=dot"); got != 3 {
		t.Errorf("queries_total{proto=dot} = %v, want 3", got)
	}
	if got := e.metric("queries_total", "proto=doh"); got != 8 {
		t.Errorf("queries_total{proto=doh} = %v, want 8", got)
	}
	// The status page counts them too.
	code, body := e.get("/api/status")
	var page struct {
		Queries struct{ UDP, TCP, DoT, DoH uint64 } `json:"queries"`
	}
	if err := json.Unmarshal([]byte(body), &page); code != http.StatusOK || err != nil {
		t.Fatalf("/api/status: %d %v", code, err)
	}
	if page.Queries.DoT != 3 || page.Queries.DoH != 8 {
		t.Errorf("/api/status queries %+v, want dot 3, doh 8", page.Queries)
	}
}

// TestDoTPipelining sends many queries on one DoT connection before reading
// a reply (RFC 7766 §6.2.1.1): a slow one does not hold back the others
// (out-of-order answers), and every one is answered, matched by ID.
func TestDoTPipelining(t *testing.T) {
	e := newEnv(t, dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		if strings.HasPrefix(strings.ToLower(r.Question[0].Name), "slow.") {
			time.Sleep(400 * time.Millisecond)
		}
		m := new(dns.Msg)
		m.SetReply(r)
		rr, _ := dns.NewRR(r.Question[0].Name + " 300 IN A 192.0.2.1")
		m.Answer = []dns.RR{rr}
		_ = w.WriteMsg(m)
	}))
	ca := newTestCA()
	e.writePair(ca, goodLeaf)
	e.config(encryptedConfig)
	e.start()
	c, err := tls.Dial("tcp", e.dotAddr(), &tls.Config{RootCAs: ca.Pool, ServerName: testServerName, NextProtos: []string{"dot"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if p := c.ConnectionState().NegotiatedProtocol; p != "dot" {
		t.Errorf("ALPN %q, want dot", p)
	}
	const n = 150
	var frames []byte
	for i := range n {
		name := fmt.Sprintf("p%d.example.", i)
		if i == 0 {
			name = "slow.example."
		}
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		m.Id = uint16(1000 + i)
		b, _ := m.Pack()
		frames = binary.BigEndian.AppendUint16(frames, uint16(len(b)))
		frames = append(frames, b...)
	}
	if _, err := c.Write(frames); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(waitLimit))
	var order []uint16
	for len(order) < n {
		var l [2]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			t.Fatalf("after %d replies: %v", len(order), err)
		}
		b := make([]byte, binary.BigEndian.Uint16(l[:]))
		if _, err := io.ReadFull(c, b); err != nil {
			t.Fatal(err)
		}
		r := new(dns.Msg)
		if err := r.Unpack(b); err != nil {
			t.Fatal(err)
		}
		if r.Rcode != dns.RcodeSuccess || r.Id < 1000 || r.Id >= 1000+n {
			t.Fatalf("reply id %d rcode %s", r.Id, rcode(r))
		}
		order = append(order, r.Id)
	}
	if order[0] == 1000 {
		t.Error("the slow query was answered first: answers are not out of order")
	}
	if order[n-1] != 1000 {
		t.Errorf("the slow query was answered at position %d, want last", func() int {
			for i, id := range order {
				if id == 1000 {
					return i
				}
			}
			return -1
		}())
	}
}

// TestDDR: _dns.resolver.arpa SVCB lists the DoT and the DoH endpoint with
// their ports, the address hint, the DoH path and the certificate's name,
// over port 53 (UDP and TCP) and over DoT, without the bypass jurisdiction's
// NODATA; with ddr off (or no encrypted endpoint) that NODATA applies.
func TestDDR(t *testing.T) {
	e, ca := startEncrypted(t, "")
	dot, doh := e.app.EncryptedAddrs()
	dotPort := dot[0][strings.LastIndex(dot[0], ":")+1:]
	dohPort := doh[0][strings.LastIndex(doh[0], ":")+1:]
	want := []string{
		fmt.Sprintf(`1 %s. alpn="dot" port="%s" ipv4hint="127.0.0.1"`, testServerName, dotPort),
		fmt.Sprintf(`2 %s. alpn="h2" port="%s" ipv4hint="127.0.0.1" dohpath="/dns-query{?dns}"`, testServerName, dohPort),
	}
	check := func(what string, r *dns.Msg) {
		t.Helper()
		wantRcode(t, what, r, dns.RcodeSuccess)
		var got []string
		for _, rr := range r.Answer {
			s, ok := rr.(*dns.SVCB)
			if !ok {
				t.Fatalf("%s: %v is not SVCB", what, rr)
			}
			got = append(got, strings.TrimPrefix(s.String(), s.Hdr.String()))
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s:\n got %s\nwant %s", what, strings.Join(got, "\n     "), strings.Join(want, "\n     "))
		}
		if x := ede(r); x != nil {
			t.Errorf("%s: EDE %d %q on the DDR answer", what, x.InfoCode, x.ExtraText)
		}
	}
	for i := range 2 { // the second UDP query would be a cache hit
		check(fmt.Sprintf("udp #%d", i), e.query("udp", "_dns.resolver.arpa", dns.TypeSVCB))
	}
	check("tcp", e.query("tcp", "_dns.resolver.arpa", dns.TypeSVCB))
	check("dot", exchangeDoT(t, dotClient(ca, ""), e.dotAddr(), "_dns.resolver.arpa", dns.TypeSVCB))

	// Without DDR the bypass jurisdiction's NODATA answers.
	off := newEnv(t, nil)
	off.writePair(ca, goodLeaf)
	off.config(strings.Replace(encryptedConfig, "ddr: true", "ddr: false", 1))
	off.start()
	r := off.query("udp", "_dns.resolver.arpa", dns.TypeSVCB)
	wantRcode(t, "ddr off", r, dns.RcodeSuccess)
	if len(r.Answer) != 0 || ede(r) == nil || ede(r).InfoCode != dns.ExtendedErrorCodeBlocked {
		t.Errorf("ddr off: want the bypass NODATA with EDE 15, got\n%v", r)
	}
}

// TestEncryptedAccessList: a client outside access.allow (127.0.0.2 here)
// is refused over DoT and DoH as over port 53, while 127.0.0.1 is served.
func TestEncryptedAccessList(t *testing.T) {
	e, ca := startEncrypted(t, "access: {allow: [127.0.0.1/32]}\n")
	wantRcode(t, "port 53 from 127.0.0.2", e.queryFrom("127.0.0.2", "udp", "www.example.org", dns.TypeA), dns.RcodeRefused)
	wantRcode(t, "DoT from 127.0.0.2", exchangeDoT(t, dotClient(ca, "127.0.0.2"), e.dotAddr(), "www.example.org", dns.TypeA), dns.RcodeRefused)
	wantRcode(t, "DoT from 127.0.0.1", exchangeDoT(t, dotClient(ca, "127.0.0.1"), e.dotAddr(), "www.example.org", dns.TypeA), dns.RcodeSuccess)
	for _, src := range []string{"127.0.0.2", "127.0.0.1"} {
		res := doh(t, dohClient(ca, false, src), e.dohURL(), http.MethodPost, "application/dns-message", packQuery(t, "www.example.org", dns.TypeA))
		if res.msg == nil {
			t.Fatalf("DoH from %s: status %d, no DNS answer", src, res.status)
		}
		want := dns.RcodeSuccess
		if src == "127.0.0.2" {
			want = dns.RcodeRefused
		}
		wantRcode(t, "DoH from "+src, res.msg, want)
	}
	if got := e.metric("refused_total", "reason=acl"); got != 3 {
		t.Errorf("refused_total{reason=acl} = %v, want 3", got)
	}
}

// TestDoHBadRequests: every malformed request gets its HTTP status and is
// counted; nothing reaches the engine.
func TestDoHBadRequests(t *testing.T) {
	e, ca := startEncrypted(t, "")
	c := dohClient(ca, false, "")
	q := packQuery(t, "www.example.org", dns.TypeA)
	resp := func(method, url, ctype string, body io.Reader) int {
		t.Helper()
		req, err := http.NewRequest(method, url, body)
		if err != nil {
			t.Fatal(err)
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		r, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
		return r.StatusCode
	}
	response := q
	response[2] |= 0x80 // QR=1
	tests := []struct {
		name   string
		method string
		url    string
		ctype  string
		body   io.Reader
		want   int
	}{
		{name: "post_wrong_type", method: "POST", url: e.dohURL(), ctype: "text/plain", body: bytes.NewReader(q), want: 415},
		{name: "post_no_type", method: "POST", url: e.dohURL(), body: bytes.NewReader(q), want: 415},
		{name: "post_too_large", method: "POST", url: e.dohURL(), ctype: "application/dns-message", body: bytes.NewReader(make([]byte, 65536)), want: 413},
		{name: "post_empty", method: "POST", url: e.dohURL(), ctype: "application/dns-message", body: bytes.NewReader(nil), want: 400},
		{name: "post_response", method: "POST", url: e.dohURL(), ctype: "application/dns-message", body: bytes.NewReader(response), want: 400},
		{name: "get_no_param", method: "GET", url: e.dohURL(), want: 400},
		{name: "get_bad_base64", method: "GET", url: e.dohURL() + "?dns=AAAA*AAA", want: 400},
		{name: "get_short", method: "GET", url: e.dohURL() + "?dns=AAAA", want: 400},
		{name: "put", method: "PUT", url: e.dohURL(), ctype: "application/dns-message", body: bytes.NewReader(q), want: 405},
		{name: "other_path", method: "POST", url: strings.Replace(e.dohURL(), "/dns-query", "/resolve", 1), ctype: "application/dns-message", body: bytes.NewReader(q), want: 404},
	}
	for _, tc := range tests {
		if got := resp(tc.method, tc.url, tc.ctype, tc.body); got != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.want)
		}
	}
	if e.up.Queries() != 0 {
		t.Errorf("%d queries reached the upstream", e.up.Queries())
	}
	if got := e.metric("dropped_total", "reason=doh_bad_request"); got != 6 {
		t.Errorf("dropped_total{reason=doh_bad_request} = %v, want 6", got)
	}
	// A padded GET parameter is tolerated; the answer is still a DNS answer.
	res := doh(t, c, e.dohURL(), "POST", "application/dns-message", packQuery(t, "www.example.org", dns.TypeA))
	if res.status != 200 {
		t.Errorf("after the bad requests: status %d", res.status)
	}
	req, _ := http.NewRequest("GET", e.dohURL()+"?dns="+base64.URLEncoding.EncodeToString(packQuery(t, "x.example.org", dns.TypeA)), nil)
	r, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 200 {
		t.Errorf("GET with base64url padding: status %d", r.StatusCode)
	}
}

// TestEncryptedLimits: a client that never finishes its TLS handshake is
// disconnected after tls.handshake_timeout and counted; connections over
// dot.max_connections are closed at once; an idle DoT connection is closed
// after dot.idle_timeout.
func TestEncryptedLimits(t *testing.T) {
	e, ca := startEncryptedWith(t, `tls: {cert_file: cert.pem, key_file: key.pem, handshake_timeout: 1s}
dot: {listen: ["127.0.0.1:0"], max_connections: 2, idle_timeout: 300ms}
`)
	// A silent client holds one of the two slots until the handshake
	// timeout closes it.
	silent, err := net.Dial("tcp", e.dotAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	start := time.Now()
	_ = silent.SetReadDeadline(time.Now().Add(waitLimit))
	// Meanwhile a second connection is served...
	good, err := tls.Dial("tcp", e.dotAddr(), &tls.Config{RootCAs: ca.Pool, ServerName: testServerName})
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	// ... and a third is over the cap: closed at once.
	over, err := net.Dial("tcp", e.dotAddr())
	if err != nil {
		t.Fatal(err)
	}
	_ = over.SetReadDeadline(time.Now().Add(waitLimit))
	if _, err := over.Read(make([]byte, 1)); err == nil {
		t.Error("a connection over dot.max_connections was not closed")
	}
	over.Close()
	if _, err := silent.Read(make([]byte, 1)); err == nil {
		t.Error("the silent client got data")
	}
	if d := time.Since(start); d < 900*time.Millisecond || d > 10*time.Second {
		t.Errorf("the silent client was closed after %v, want about 1s", d)
	}
	// The served connection is idle: closed after 300ms.
	_ = good.SetReadDeadline(time.Now().Add(waitLimit))
	start = time.Now()
	if _, err := good.Read(make([]byte, 1)); err == nil {
		t.Error("the idle connection got data")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the idle connection was closed after %v, want about 300ms", d)
	}
	// The TLS stack closes a timed-out handshake itself, just before the
	// listener counts it: wait for the count.
	if got := e.waitMetric("dropped_total", 1, "reason=tls_handshake"); got < 1 {
		t.Errorf("dropped_total{reason=tls_handshake} = %v, want at least 1", got)
	}
	if got := e.metric("dropped_total", "reason=overload"); got < 1 {
		t.Errorf("dropped_total{reason=overload} = %v, want at least 1", got)
	}
}

// TestCertificateReloadUnderLoad: clients query over DoT on kept-open and
// on new connections while the certificate is replaced and reloaded (and a
// broken pair is rejected); no query fails, established connections keep
// working, new handshakes get the new certificate, and a broken pair keeps
// the previous one.
func TestCertificateReloadUnderLoad(t *testing.T) {
	e, ca := startEncrypted(t, "")
	serial := func() int64 {
		t.Helper()
		c, err := tls.Dial("tcp", e.dotAddr(), &tls.Config{RootCAs: ca.Pool, ServerName: testServerName})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	}
	if s := serial(); s != 2 {
		t.Fatalf("serial %d at start, want 2", s)
	}
	var failed, answered atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := dotClient(ca, "")
			var conn *dns.Conn
			for i := 0; ; i++ {
				select {
				case <-stop:
					if conn != nil {
						conn.Close()
					}
					return
				default:
				}
				// Workers 0 and 1 keep one connection; 2 and 3 open a new
				// one every few queries.
				if conn == nil || (w >= 2 && i%5 == 0) {
					if conn != nil {
						conn.Close()
					}
					var err error
					if conn, err = c.Dial(e.dotAddr()); err != nil {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, err)
						conn = nil
						continue
					}
				}
				m := new(dns.Msg)
				m.SetQuestion(fmt.Sprintf("w%d-%d.example.", w, i%50), dns.TypeA)
				r, _, err := c.ExchangeWithConn(m, conn)
				if err != nil || r.Rcode != dns.RcodeSuccess {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Errorf("query: %v %v", err, r))
					conn.Close()
					conn = nil
					continue
				}
				answered.Add(1)
			}
		}()
	}
	waitAnswered := func(n int64) {
		t.Helper()
		deadline := time.Now().Add(waitLimit)
		for answered.Load() < n && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitAnswered(50)
	notAfter := time.Now().Add(100 * 24 * time.Hour).Truncate(time.Second)
	for i := range 3 {
		e.writePair(ca, testtool.Leaf{Serial: int64(10 + i), DNSNames: goodLeaf.DNSNames, IPs: goodLeaf.IPs, NotAfter: notAfter.Add(time.Duration(i) * time.Hour)})
		if err := e.app.Reload(context.Background()); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		waitAnswered(answered.Load() + 50)
	}
	// A key that does not match the certificate: the reload fails, the
	// previous pair stays.
	c := ca.Issue(testtool.Leaf{Serial: 99, DNSNames: goodLeaf.DNSNames, IPs: goodLeaf.IPs}).CertPEM
	writeAtomic(t, filepath.Join(e.dir, "cert.pem"), c)
	if err := e.app.Reload(context.Background()); err == nil {
		t.Error("reload with a mismatched pair succeeded")
	}
	waitAnswered(answered.Load() + 50)
	close(stop)
	wg.Wait()
	if failed.Load() != 0 {
		t.Errorf("%d of %d queries failed during the reloads; first: %v", failed.Load(), answered.Load()+failed.Load(), firstErr.Load())
	}
	if s := serial(); s != 12 {
		t.Errorf("serial %d after the reloads, want 12 (the last good pair)", s)
	}
	if got, want := e.metric("tls_certificate_expiry_timestamp_seconds"), float64(notAfter.Add(2*time.Hour).Unix()); got != want {
		t.Errorf("tls_certificate_expiry_timestamp_seconds = %v, want %v (the last good pair's)", got, want)
	}
}

// TestCertificateErrors: an expired, unreadable or mismatched pair stops
// the start with an error naming the key; CheckTLS (jurisdns validate)
// warns when DDR is on and the certificate does not list the resolver's
// address, and fails without a DNS name for the DDR target.
func TestCertificateErrors(t *testing.T) {
	ca := newTestCA()
	other := newTestCA()
	tests := []struct {
		name     string
		setup    func(e *env)
		wantErr  string
		wantWarn string
	}{
		{name: "expired", setup: func(e *env) {
			e.writePair(ca, testtool.Leaf{DNSNames: goodLeaf.DNSNames, IPs: goodLeaf.IPs, NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
		}, wantErr: "the certificate expired on"},
		{name: "not_yet_valid", setup: func(e *env) {
			e.writePair(ca, testtool.Leaf{DNSNames: goodLeaf.DNSNames, IPs: goodLeaf.IPs, NotBefore: time.Now().Add(time.Hour)})
		}, wantErr: "is not valid before"},
		{name: "unreadable_cert", setup: func(e *env) {}, wantErr: "tls.cert_file: open "},
		{name: "unreadable_key", setup: func(e *env) {
			c := ca.Issue(goodLeaf).CertPEM
			e.write("cert.pem", string(c))
		}, wantErr: "tls.key_file: open "},
		{name: "mismatched", setup: func(e *env) {
			c := ca.Issue(goodLeaf).CertPEM
			k := other.Issue(goodLeaf).KeyPEM
			e.write("cert.pem", string(c))
			e.write("key.pem", string(k))
		}, wantErr: "private key does not match public key"},
		{name: "no_dns_name", setup: func(e *env) {
			e.writePair(ca, testtool.Leaf{IPs: goodLeaf.IPs})
		}, wantErr: "ddr: the certificate of tls.cert_file lists no DNS name"},
		{name: "expires_soon", setup: func(e *env) {
			e.writePair(ca, testtool.Leaf{DNSNames: goodLeaf.DNSNames, IPs: goodLeaf.IPs, NotAfter: time.Now().Add(50 * time.Hour)})
		}, wantWarn: "in 2 days: renew it and reload"},
		{name: "ip_not_covered", setup: func(e *env) {
			e.writePair(ca, testtool.Leaf{DNSNames: goodLeaf.DNSNames, IPs: []net.IP{net.ParseIP("192.0.2.53")}})
		}, wantWarn: "does not list 127.0.0.1 (listen[0]) as an IP address"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			tc.setup(e)
			e.config(encryptedConfig)
			cfg, err := app.LoadConfig(config.LoadOptions{Path: e.cfg, Env: []string{}})
			if err != nil {
				t.Fatal(err)
			}
			warnings, err := app.CheckTLS(cfg, time.Now())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("CheckTLS: %v, want an error with %q", err, tc.wantErr)
				}
				a, err := app.New(e.options())
				if err == nil {
					_ = a.Shutdown(context.Background())
					t.Fatalf("app.New started with the bad pair")
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("app.New: %v, want an error with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("CheckTLS: %v", err)
			}
			if len(warnings) != 1 || !strings.Contains(warnings[0], tc.wantWarn) {
				t.Errorf("CheckTLS warnings %q, want one with %q", warnings, tc.wantWarn)
			}
		})
	}
}

// h2Flood is a raw HTTP/2 connection to the DoH listener.
type h2Flood struct {
	c      *tls.Conn
	fr     *http2.Framer
	post   []byte        // the HPACK block of a POST to /dns-query
	closed chan struct{} // closed when the server ends the connection
	goAway atomic.Int64  // the error code of the server's GOAWAY, -1 before one
}

func newH2Flood(t *testing.T, addr string, ca *testtool.CA) *h2Flood {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool, ServerName: testServerName, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if c.ConnectionState().NegotiatedProtocol != "h2" {
		t.Fatalf("ALPN %q, want h2", c.ConnectionState().NegotiatedProtocol)
	}
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	f := &h2Flood{c: c, fr: http2.NewFramer(c, c), closed: make(chan struct{})}
	f.goAway.Store(-1)
	if err := f.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	f.post = hpackBlock("POST", "/dns-query", "content-type", "application/dns-message")
	go func() { // read and drop what the server sends, until it closes
		defer close(f.closed)
		for {
			fr, err := f.fr.ReadFrame()
			if err != nil {
				return
			}
			if ga, ok := fr.(*http2.GoAwayFrame); ok {
				f.goAway.Store(int64(ga.ErrCode))
			}
		}
	}()
	return f
}

// hpackBlock is the HPACK block of a request to the DoH listener, with the
// extra header fields kv (name, value, ...). Each block is encoded by a
// new encoder: it refers to no entry of an earlier one.
func hpackBlock(method, path string, kv ...string) []byte {
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	fields := append([]string{":method", method, ":scheme", "https", ":authority", testServerName, ":path", path}, kv...)
	for i := 0; i+1 < len(fields); i += 2 {
		_ = enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	return hb.Bytes()
}

// open starts stream id: request headers, no body yet.
func (f *h2Flood) open(id uint32) error {
	return f.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: f.post, EndHeaders: true})
}

// waitClosed reports whether the server ended the connection within
// waitLimit.
func (f *h2Flood) waitClosed() bool {
	select {
	case <-f.closed:
		return true
	case <-time.After(waitLimit):
		return false
	}
}

// TestDoHStreamLimits: a client that opens far more HTTP/2 streams than
// doh.max_streams and never sends their bodies holds at most max_streams
// handlers, and the streams beyond are refused and counted; a client that
// sends queries and resets their streams at once, as fast as it can (rapid
// reset, CVE-2023-44487), holds at most max_streams handlers, is
// disconnected with ENHANCE_YOUR_CALM and counted; a normal client is
// answered throughout, on a connection it had before the floods and on a
// new one.
func TestDoHStreamLimits(t *testing.T) {
	// Queries for slow.example wait until the test ends: their handlers
	// stay busy after the client reset their streams, which is what makes
	// a rapid reset flood costly.
	release := make(chan struct{})
	e := newEnv(t, dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		if strings.HasPrefix(strings.ToLower(r.Question[0].Name), "slow.") {
			select {
			case <-release:
			case <-time.After(waitLimit):
			}
		}
		m := new(dns.Msg)
		m.SetReply(r)
		rr, _ := dns.NewRR(r.Question[0].Name + " 300 IN A 192.0.2.1")
		m.Answer = []dns.RR{rr}
		_ = w.WriteMsg(m)
	}))
	defer close(release)
	ca := newTestCA()
	e.writePair(ca, goodLeaf)
	e.config(strings.Replace(encryptedConfig, "path: /dns-query", "path: /dns-query, max_streams: 50", 1))
	e.start()
	_, dohAddrs := e.app.EncryptedAddrs()
	normal := dohClient(ca, false, "")
	answered := func(what string) {
		t.Helper()
		res := doh(t, normal, e.dohURL(), http.MethodPost, "application/dns-message", packQuery(t, "www.example.org", dns.TypeA))
		if res.status != http.StatusOK || res.msg == nil || res.msg.Rcode != dns.RcodeSuccess {
			t.Errorf("%s: status %d", what, res.status)
		}
	}
	answered("before the floods")
	base := runtime.NumGoroutine()

	// Streams left open: the handlers wait for bodies that never come;
	// the streams over the limit are refused.
	hold := newH2Flood(t, dohAddrs[0], ca)
	for i := range 1000 {
		if err := hold.open(uint32(2*i + 1)); err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
	}
	if got := e.waitMetric("dropped_total", 950, "reason=doh_h2_stream"); got < 950 {
		t.Errorf("1000 open streams with doh.max_streams 50: dropped_total{reason=doh_h2_stream} = %v, want 950", got)
	}
	if grown := runtime.NumGoroutine() - base; grown > 50+60 {
		t.Errorf("1000 open streams with doh.max_streams 50: goroutines grew by %d", grown)
	}

	// Rapid reset on a second connection: each query is sent whole and
	// its stream reset at once. The first 50 keep their handlers busy; the
	// server queues the next ones and ends the connection when 4×50 wait.
	flood := newH2Flood(t, dohAddrs[0], ca)
	get := hpackBlock("GET", "/dns-query?dns="+base64.RawURLEncoding.EncodeToString(packQuery(t, "slow.example", dns.TypeA)))
	peak, sent := 0, 0
	for i := range 5000 {
		id := uint32(2*i + 1)
		if flood.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: get, EndHeaders: true, EndStream: true}) != nil ||
			flood.fr.WriteRSTStream(id, http2.ErrCodeCancel) != nil {
			break // the server ended the connection (most writes are buffered before it reads them)
		}
		sent++
		if i%50 == 0 {
			peak = max(peak, runtime.NumGoroutine()-base)
		}
	}
	if !flood.waitClosed() {
		t.Fatalf("rapid reset: %d streams sent and reset, the connection is still open", sent)
	}
	t.Logf("rapid reset: %d streams written and reset; goroutines grew by at most %d", sent, peak)
	if code := http2.ErrCode(flood.goAway.Load()); code != http2.ErrCodeEnhanceYourCalm {
		t.Errorf("rapid reset: GOAWAY %v, want ENHANCE_YOUR_CALM", code)
	}
	if peak > 2*(50+60) {
		t.Errorf("goroutines grew by %d during a flood of %d reset streams", peak, sent)
	}
	if got := e.waitMetric("dropped_total", 1, "reason=doh_rapid_reset"); got != 1 {
		t.Errorf("dropped_total{reason=doh_rapid_reset} = %v, want 1", got)
	}
	answered("after the floods, on the connection opened before")
	normal = dohClient(ca, false, "")
	answered("after the floods, on a new connection")
}

// TestDoHProtocolErrorsCounted: an HTTP/2 client that breaks the protocol
// has its connection ended with GOAWAY PROTOCOL_ERROR and is counted by
// kind: request headers on a server-initiated (even) stream ID as
// doh_h2_connection, a malformed frame (a window update of 0 for the
// connection) as doh_h2_frame.
func TestDoHProtocolErrorsCounted(t *testing.T) {
	e, ca := startEncrypted(t, "")
	_, dohAddrs := e.app.EncryptedAddrs()
	for _, tc := range []struct {
		reason string
		send   func(f *h2Flood) error
	}{
		{"doh_h2_connection", func(f *h2Flood) error {
			return f.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 2, BlockFragment: f.post, EndHeaders: true})
		}},
		{"doh_h2_frame", func(f *h2Flood) error {
			f.fr.AllowIllegalWrites = true
			return f.fr.WriteWindowUpdate(0, 0)
		}},
	} {
		f := newH2Flood(t, dohAddrs[0], ca)
		if err := tc.send(f); err != nil {
			t.Fatalf("%s: %v", tc.reason, err)
		}
		if !f.waitClosed() {
			t.Fatalf("%s: the connection is still open", tc.reason)
		}
		if code := http2.ErrCode(f.goAway.Load()); code != http2.ErrCodeProtocol {
			t.Errorf("%s: GOAWAY %v, want PROTOCOL_ERROR", tc.reason, code)
		}
		if got := e.waitMetric("dropped_total", 1, "reason="+tc.reason); got != 1 {
			t.Errorf("dropped_total{reason=%s} = %v, want 1", tc.reason, got)
		}
	}
}

// TestEncryptedLogsSeeTheClient: the enforcement log and the query log
// record the address of the DoT or DoH client itself.
func TestEncryptedLogsSeeTheClient(t *testing.T) {
	auditDir := t.TempDir()
	auditPath, queryPath := filepath.Join(auditDir, "enforcement.log"), filepath.Join(auditDir, "query.log")
	e, ca := startEncrypted(t, fmt.Sprintf("audit: {path: %q, query_log: %q, client_privacy: full}\n", auditPath, queryPath))
	wantRcode(t, "DoT from 127.0.0.2", exchangeDoT(t, dotClient(ca, "127.0.0.2"), e.dotAddr(), "chat.deepseek.com", dns.TypeA), dns.RcodeNameError)
	res := doh(t, dohClient(ca, false, "127.0.0.3"), e.dohURL(), http.MethodPost, "application/dns-message", packQuery(t, "chat.deepseek.com", dns.TypeAAAA))
	if res.msg == nil {
		t.Fatalf("DoH: status %d", res.status)
	}
	wantRcode(t, "DoH from 127.0.0.3", res.msg, dns.RcodeNameError)
	if err := e.app.Shutdown(context.Background()); err != nil { // flushes both logs
		t.Fatal(err)
	}
	for _, want := range []struct{ path, client, typ string }{
		{auditPath, "127.0.0.2", "A"}, {auditPath, "127.0.0.3", "AAAA"},
		{queryPath, "127.0.0.2", "A"}, {queryPath, "127.0.0.3", "AAAA"},
	} {
		found := false
		for _, line := range readLines(t, want.path) {
			var r struct{ Client, Name, Type string }
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("%s: %q: %v", want.path, line, err)
			}
			if r.Client == want.client && r.Type == want.typ && strings.HasPrefix(r.Name, "chat.deepseek.com") {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: no line for chat.deepseek.com %s from %s", filepath.Base(want.path), want.typ, want.client)
		}
	}
}

// TestEncryptedRateLimit: the client's rate limit applies over DoT (a query
// over it gets no answer, as over UDP with action drop) and DoH (429), and
// is counted.
func TestEncryptedRateLimit(t *testing.T) {
	e, ca := startEncrypted(t, "access: {rate_limit: {qps: 0.001, burst: 1, exempt: []}}\n")
	c := dohClient(ca, false, "")
	if res := doh(t, c, e.dohURL(), http.MethodPost, "application/dns-message", packQuery(t, "www.example.org", dns.TypeA)); res.status != http.StatusOK {
		t.Fatalf("first DoH query: status %d", res.status)
	}
	if res := doh(t, c, e.dohURL(), http.MethodPost, "application/dns-message", packQuery(t, "www.example.org", dns.TypeA)); res.status != http.StatusTooManyRequests {
		t.Errorf("second DoH query: status %d, want 429", res.status)
	}
	dot := dotClient(ca, "")
	dot.Timeout = 500 * time.Millisecond
	m := new(dns.Msg)
	m.SetQuestion("www.example.org.", dns.TypeA)
	if r, _, err := dot.Exchange(m, e.dotAddr()); err == nil {
		t.Errorf("DoT query over the limit answered: %v", r)
	}
	if got := e.metric("rate_limited_total"); got != 2 {
		t.Errorf("rate_limited_total = %v, want 2", got)
	}
}

// waitMetric returns the metric (as env.metric) once it reaches at least
// want, or its value when waitLimit has passed.
func (e *env) waitMetric(name string, want float64, labels ...string) float64 {
	e.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		got := e.metric(name, labels...)
		if got >= want || time.Now().After(deadline) {
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
}

package app_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/internal/testtool"
	"github.com/jurisdns/jurisdns/resolver/resolvertest"
)

// runTool runs a Debian tool with a time limit and returns its output.
func runTool(t *testing.T, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out)
	}
	return string(out)
}

// writeCA writes the test CA's certificate for the tools.
func (e *env) writeCA(ca *testtool.CA) string {
	e.t.Helper()
	p := filepath.Join(e.dir, "ca.PEM")
	if err := os.WriteFile(p, ca.PEM, 0o644); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// TestKdigEncrypted drives knot's kdig against jurisdns over DoT (+tls) and
// DoH (+https, POST and GET), verifying the certificate against the test
// CA: a banned name gets NXDOMAIN with the jurisdiction's EDE text, a
// normal name is forwarded, and _dns.resolver.arpa SVCB lists both
// endpoints. A client outside access.allow (127.0.0.2) is refused over both.
func TestKdigEncrypted(t *testing.T) {
	kdig := testtool.Need(t, "kdig", "knot-dnsutils")
	e, ca := startEncrypted(t, "access: {allow: [127.0.0.1/32]}\n")
	caFile := e.writeCA(ca)
	dotHost, dotPort, _ := net.SplitHostPort(e.dotAddr())
	_, doh := e.app.EncryptedAddrs()
	_, dohPort, _ := net.SplitHostPort(doh[0])
	verify := []string{"+tls-ca=" + caFile, "+tls-hostname=" + testServerName}
	transports := []struct {
		name string
		args []string
	}{
		{name: "dot", args: append([]string{"@" + dotHost, "-p", dotPort, "+tls"}, verify...)},
		{name: "doh_post", args: append([]string{"@" + dotHost, "-p", dohPort, "+https=/dns-query"}, verify...)},
		{name: "doh_get", args: append([]string{"@" + dotHost, "-p", dohPort, "+https=/dns-query", "+https-get"}, verify...)},
	}
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			out := runTool(t, kdig, append(tr.args, "chat.deepseek.com", "A")...)
			if !strings.Contains(out, "status: NXDOMAIN") || !strings.Contains(out, "EDE: 1") || !strings.Contains(out, "deepseek") {
				t.Errorf("chat.deepseek.com: want NXDOMAIN with the EDE text, got\n%s", out)
			}
			if strings.Contains(out, "TLS") == false && tr.name == "dot" {
				t.Errorf("kdig did not report a TLS session:\n%s", out)
			}
			before := e.up.Queries()
			out = runTool(t, kdig, append(tr.args, "www."+tr.name+".example.org", "A")...)
			if !strings.Contains(out, "status: NOERROR") || !strings.Contains(out, "192.0.2.1") {
				t.Errorf("www.example.org: want the upstream's answer, got\n%s", out)
			}
			if e.up.Queries() != before+1 {
				t.Errorf("%d upstream queries, want 1", e.up.Queries()-before)
			}
			out = runTool(t, kdig, append(tr.args, "_dns.resolver.arpa", "SVCB")...)
			for _, want := range []string{
				fmt.Sprintf(`1 %s. alpn=dot port=%s`, testServerName, dotPort),
				fmt.Sprintf(`2 %s. alpn=h2 port=%s`, testServerName, dohPort),
				`=/dns-query{?dns}`, // dohpath; kdig 3.2 writes it as key7
			} {
				if !strings.Contains(strings.ReplaceAll(out, `"`, ""), want) {
					t.Errorf("_dns.resolver.arpa SVCB: missing %q in\n%s", want, out)
				}
			}
			out = runTool(t, kdig, append(append([]string{"-b", "127.0.0.2"}, tr.args...), "www.example.org", "A")...)
			if !strings.Contains(out, "status: REFUSED") {
				t.Errorf("from 127.0.0.2: want REFUSED, got\n%s", out)
			}
		})
	}
	// Over port 53, too, DDR lists the endpoints (this is where clients ask).
	out := runTool(t, kdig, "@"+dotHost, "-p", e.dns[strings.LastIndex(e.dns, ":")+1:], "_dns.resolver.arpa", "SVCB")
	if !strings.Contains(out, "alpn=") || !strings.Contains(out, "ANSWER: 2") {
		t.Errorf("_dns.resolver.arpa SVCB over port 53:\n%s", out)
	}
}

// TestCurlDoH fetches a page from a test HTTP server on 127.0.0.1 by a
// name that only jurisdns's upstream knows, with curl resolving it through
// its own DoH client (--doh-url) against jurisdns, trusting the test CA.
func TestCurlDoH(t *testing.T) {
	curl := testtool.Need(t, "curl", "curl")
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "resolved by jurisdns over DoH")
	}))
	t.Cleanup(page.Close)
	// The upstream answers every A query with 127.0.0.1, AAAA with NODATA.
	e := newEnv(t, resolvertest.Func(func(r *dns.Msg) *dns.Msg {
		m := new(dns.Msg)
		m.SetReply(r)
		if r.Question[0].Qtype == dns.TypeA {
			m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
				A: net.IPv4(127, 0, 0, 1)}}
		}
		return m
	}))
	ca := newTestCA()
	e.writePair(ca, goodLeaf)
	e.config(encryptedConfig)
	e.start()
	caFile := e.writeCA(ca)
	_, pagePort, _ := net.SplitHostPort(page.Listener.Addr().String())
	out := runTool(t, curl, "-sS", "--noproxy", "*", "--max-time", "10", "--cacert", caFile,
		"--doh-url", e.dohURL(), "http://page.curl.example.org:"+pagePort+"/")
	if out != "resolved by jurisdns over DoH" {
		t.Errorf("curl: %q", out)
	}
	if q := e.up.Last(); q == nil || !strings.EqualFold(q.Question[0].Name, "page.curl.example.org.") {
		t.Errorf("the upstream did not see curl's lookup: last query %v", q)
	}
	if got := e.metric("queries_total", "proto=doh"); got < 1 {
		t.Errorf("queries_total{proto=doh} = %v", got)
	}
}

// TestKdigReloadedListener: a DoT address added by a reload serves kdig
// +tls (the banned name's NXDOMAIN with its EDE), and DDR over port 53 names
// it; after a reload that removes it, kdig cannot connect.
func TestKdigReloadedListener(t *testing.T) {
	kdig := testtool.Need(t, "kdig", "knot-dnsutils")
	e, ca := startEncrypted(t, "")
	caFile := e.writeCA(ca)
	if err := e.reloadEncrypted(`["127.0.0.1:0", "127.0.0.2:0"]`, `["127.0.0.1:0"]`); err != nil {
		t.Fatal(err)
	}
	dots, _ := e.app.EncryptedAddrs()
	host, port, _ := net.SplitHostPort(dots[1])
	args := []string{"@" + host, "-p", port, "+tls", "+tls-ca=" + caFile, "+tls-hostname=" + testServerName}
	out := runTool(t, kdig, append(args, "chat.deepseek.com", "A")...)
	if !strings.Contains(out, "status: NXDOMAIN") || !strings.Contains(out, "deepseek") {
		t.Errorf("kdig +tls to the added %s: want NXDOMAIN with the EDE text, got\n%s", dots[1], out)
	}
	dnsHost, dnsPort, _ := net.SplitHostPort(e.dns)
	out = runTool(t, kdig, "@"+dnsHost, "-p", dnsPort, "_dns.resolver.arpa", "SVCB")
	if !strings.Contains(strings.ReplaceAll(out, `"`, ""), "alpn=dot port="+port) {
		t.Errorf("_dns.resolver.arpa SVCB does not name the added port %s:\n%s", port, out)
	}
	if err := e.reloadEncrypted(`["127.0.0.1:0"]`, `["127.0.0.1:0"]`); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, kdig, append(args, "+retry=0", "www.example.org", "A")...).CombinedOutput(); err == nil && strings.Contains(string(out), "status: NOERROR") {
		t.Errorf("kdig +tls to the removed %s was answered:\n%s", dots[1], out)
	}
}

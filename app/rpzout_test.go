package app_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/internal/testtool"
)

const (
	outKeyName   = "out-key."
	outKeySecret = "b3V0LWtleS1zZWNyZXQtZm9yLXRoZS1ycHotb3V0LXRlc3Q="
)

// rpzOutConfig serves us-gov (the shipped jurisdiction, plus an inline
// source of extra names) as us-gov.rpz.jurisdns.
func rpzOutConfig(extra []string, allow, key string, notify []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "default_jurisdictions: [us-gov]\n")
	fmt.Fprintf(&b, "tsig_keys:\n  - {name: %s, secret: %q}\n", outKeyName, outKeySecret)
	fmt.Fprintf(&b, "rpz_out: {zone_suffix: rpz.jurisdns., allow: [%s], tsig_key: %q, notify: [%s]}\n", allow, key, quoteAll(notify))
	fmt.Fprintf(&b, "jurisdictions:\n  - id: us-gov\n    sources: [{name: extra, inline: [%s]}]\n", strings.Join(extra, ", "))
	return b.String()
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

// xfrIn transfers zone from addr (IXFR from serial when serial is not 0)
// and returns every record, or the error.
func xfrIn(addr, zone string, serial uint32, key bool) ([]dns.RR, error) {
	m := new(dns.Msg)
	if serial != 0 {
		m.SetIxfr(zone, serial, ".", ".")
	} else {
		m.SetAxfr(zone)
	}
	t := &dns.Transfer{ReadTimeout: 5 * time.Second}
	if key {
		t.TsigSecret = map[string]string{outKeyName: outKeySecret}
		m.SetTsig(outKeyName, dns.HmacSHA256, 300, time.Now().Unix())
	}
	ch, err := t.In(m, addr)
	if err != nil {
		return nil, err
	}
	var rrs []dns.RR
	for env := range ch {
		if env.Error != nil {
			return rrs, env.Error
		}
		rrs = append(rrs, env.RR...)
	}
	return rrs, nil
}

func hasRR(rrs []dns.RR, owner string, typ uint16, data string) bool {
	for _, rr := range rrs {
		h := rr.Header()
		if strings.EqualFold(h.Name, owner) && h.Rrtype == typ && strings.HasSuffix(rr.String(), "\t"+data) {
			return true
		}
	}
	return false
}

// TestRPZOutTransfer: us-gov as an RPZ zone over AXFR (TSIG required),
// provenance at the apex, a serial that moves only when the rules do, an
// IXFR from the journal after a reload, REFUSED outside rpz_out.allow.
func TestRPZOutTransfer(t *testing.T) {
	e := newEnv(t, nil)
	e.config(rpzOutConfig([]string{"first.example"}, `"127.0.0.0/8"`, outKeyName, nil))
	e.start()
	const zone = "us-gov.rpz.jurisdns."

	if _, err := xfrIn(e.dns, zone, 0, false); err == nil {
		t.Error("AXFR without the key succeeded")
	}
	rrs, err := xfrIn(e.dns, zone, 0, true)
	if err != nil {
		t.Fatalf("AXFR: %v", err)
	}
	soa, ok := rrs[0].(*dns.SOA)
	if !ok {
		t.Fatalf("first record %v", rrs[0])
	}
	for _, want := range []struct {
		owner string
		typ   uint16
		data  string
	}{
		{"deepseek.com." + zone, dns.TypeCNAME, "."},
		{"*.deepseek.com." + zone, dns.TypeCNAME, "."},
		{"first.example." + zone, dns.TypeCNAME, "."},
		{zone, dns.TypeTXT, `"jurisdiction=us-gov"`},
	} {
		if !hasRR(rrs, want.owner, want.typ, want.data) {
			t.Errorf("AXFR has no %s %s %s", want.owner, dns.TypeToString[want.typ], want.data)
		}
	}
	if !slicesAnyTXT(rrs, "instrument=") {
		t.Error("no provenance TXT instrument= at the apex")
	}

	// SOA over UDP (a secondary's refresh probe), unsigned: NOTAUTH.
	q := new(dns.Msg)
	q.SetQuestion(zone, dns.TypeSOA)
	r, _, err := (&dns.Client{Timeout: 5 * time.Second}).Exchange(q, e.dns)
	if err != nil || r.Rcode != dns.RcodeNotAuth {
		t.Errorf("unsigned SOA: %v %v, want NOTAUTH", r, err)
	}

	// A reload that changes another jurisdiction keeps us-gov's serial.
	e.config(rpzOutConfig([]string{"first.example"}, `"127.0.0.0/8"`, outKeyName, nil) +
		"  - {id: other, sources: [{name: o, inline: [other.example]}]}\n")
	if err := e.app.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	rrs2, err := xfrIn(e.dns, zone, soa.Serial, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(rrs2) != 1 || rrs2[0].(*dns.SOA).Serial != soa.Serial {
		t.Errorf("IXFR after a reload without change: %d records, want the SOA of serial %d", len(rrs2), soa.Serial)
	}

	// A reload that adds a name: a new serial and an IXFR of one record.
	e.config(rpzOutConfig([]string{"first.example", "second.example"}, `"127.0.0.0/8"`, outKeyName, nil))
	if err := e.app.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	rrs3, err := xfrIn(e.dns, zone, soa.Serial, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(rrs3) < 4 {
		t.Fatalf("IXFR: %v", rrs3)
	}
	if _, incremental := rrs3[1].(*dns.SOA); !incremental || rrs3[0].(*dns.SOA).Serial == soa.Serial {
		t.Errorf("IXFR not incremental or serial unchanged: %v", rrs3)
	}
	if !hasRR(rrs3, "second.example."+zone, dns.TypeCNAME, ".") || !hasRR(rrs3, "*.second.example."+zone, dns.TypeCNAME, ".") || len(rrs3) != 6 {
		t.Errorf("IXFR: want SOA new, SOA old, SOA new, the two added records, SOA new; got %v", rrs3)
	}

	// Outside rpz_out.allow.
	e.config(rpzOutConfig([]string{"first.example", "second.example"}, `"10.0.0.0/8"`, outKeyName, nil))
	if err := e.app.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := xfrIn(e.dns, zone, 0, true); err == nil || !strings.Contains(err.Error(), "5") {
		t.Errorf("AXFR from outside allow: %v, want REFUSED (rcode 5)", err)
	}
}

func slicesAnyTXT(rrs []dns.RR, prefix string) bool {
	for _, rr := range rrs {
		if t, ok := rr.(*dns.TXT); ok && len(t.Txt) > 0 && strings.HasPrefix(t.Txt[0], prefix) {
			return true
		}
	}
	return false
}

// TestRPZOutUnbound: an Unbound whose rpz: clause names jurisdns as the
// primary of us-gov.rpz.jurisdns. pulls it and answers chat.deepseek.com
// with NXDOMAIN; after a jurisdns reload that adds a name, jurisdns's
// NOTIFY makes Unbound block that name too.
func TestRPZOutUnbound(t *testing.T) {
	bin := testtool.Need(t, "unbound", "unbound")
	e := newEnv(t, nil)
	jport, uport := testtool.FreePort(t), testtool.FreePort(t)
	jaddr := fmt.Sprintf("127.0.0.1:%d", jport)
	uaddr := fmt.Sprintf("127.0.0.1:%d", uport)
	rest := func(extra ...string) string {
		return strings.Replace(baseConfig(e.up.Addr()), `listen: ["127.0.0.1:0"]`, fmt.Sprintf("listen: [%q]", jaddr), 1) +
			rpzOutConfig(extra, `"127.0.0.0/8"`, "", []string{uaddr})
	}
	e.write("jurisdns.yaml", rest("first.example"))
	e.start()

	dir := t.TempDir()
	_, upPort, _ := net.SplitHostPort(e.up.Addr())
	conf := fmt.Sprintf(`server:
    interface: 127.0.0.1
    port: %d
    do-daemonize: no
    chroot: ""
    username: ""
    directory: "%[2]s"
    pidfile: "%[2]s/unbound.pid"
    logfile: ""
    use-syslog: no
    verbosity: 1
    do-ip6: no
    access-control: 127.0.0.0/8 allow
    do-not-query-localhost: no
    module-config: "respip iterator"
remote-control:
    control-enable: no
forward-zone:
    name: "."
    forward-addr: 127.0.0.1@%[3]s
rpz:
    name: us-gov.rpz.jurisdns.
    primary: 127.0.0.1@%[4]d
    rpz-log: yes
`, uport, dir, upPort, jport)
	cf := filepath.Join(dir, "unbound.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	cmd := exec.Command(bin, "-d", "-c", cf)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("unbound log:\n%s", logs.String())
		}
	})
	ask := func(name string) (int, error) {
		q := new(dns.Msg)
		q.SetQuestion(dns.Fqdn(name), dns.TypeA)
		r, _, err := (&dns.Client{Timeout: time.Second}).Exchange(q, uaddr)
		if err != nil {
			return -1, err
		}
		return r.Rcode, nil
	}
	waitNX := func(name string) time.Duration {
		start := time.Now()
		for {
			rc, err := ask(name)
			if err == nil && rc == dns.RcodeNameError {
				return time.Since(start)
			}
			select {
			case <-done:
				t.Fatalf("unbound exited:\n%s", logs.String())
			default:
			}
			if time.Since(start) > waitLimit {
				t.Fatalf("unbound: %s is %s (%v) after %s, want NXDOMAIN", name, rcode2s(rc), err, waitLimit)
			}
			time.Sleep(20 * time.Millisecond) // a poll interval
		}
	}
	t.Logf("unbound blocks chat.deepseek.com %s after start", waitNX("chat.deepseek.com"))
	waitNX("first.example")
	if rc, err := ask("not-listed.example"); err != nil || rc != dns.RcodeSuccess {
		t.Errorf("not-listed.example through unbound: %s %v, want NOERROR", rcode2s(rc), err)
	}

	mark := e.logs.mark()
	e.write("jurisdns.yaml", rest("first.example", "added.example"))
	start := time.Now()
	if err := e.app.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.logs.waitFrom(t, mark, "rpz_out NOTIFY sent", 1)
	took := waitNX("added.example")
	t.Logf("unbound blocks added.example %s after the reload started, %s after it returned (NOTIFY, then a transfer)",
		time.Since(start), took)
	if n := len(e.logs.find(mark, func(r logRecord) bool { return r.Msg == "rpz_out IXFR" || r.Msg == "rpz_out AXFR" })); n == 0 {
		t.Error("unbound did not transfer the zone again after the NOTIFY")
	}
}

// TestRPZOutKnotSecondary: knotd, as a secondary of us-gov.rpz.jurisdns.
// with the TSIG key, transfers a zone of several messages from jurisdns:
// every message's signature, chained as RFC 8945 says, verifies in an
// implementation other than miekg/dns. After a reload that adds a name,
// jurisdns's signed NOTIFY brings knotd the new serial.
func TestRPZOutKnotSecondary(t *testing.T) {
	bin := testtool.Need(t, "knotd", "knot")
	names := make([]string, 3000)
	for i := range names {
		names[i] = fmt.Sprintf("n%04d.bulk.example", i)
	}
	e := newEnv(t, nil)
	jport, kport := testtool.FreePort(t), testtool.FreePort(t)
	jaddr := fmt.Sprintf("127.0.0.1:%d", jport)
	kaddr := fmt.Sprintf("127.0.0.1:%d", kport)
	rest := func(extra ...string) string {
		return strings.Replace(baseConfig(e.up.Addr()), `listen: ["127.0.0.1:0"]`, fmt.Sprintf("listen: [%q]", jaddr), 1) +
			rpzOutConfig(append(names, extra...), `"127.0.0.0/8"`, outKeyName, []string{kaddr})
	}
	e.write("jurisdns.yaml", rest())
	e.start()

	dir := t.TempDir()
	for _, d := range []string{"run", "db", "zones"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	conf := knotConf(dir, kport, outKeyName, outKeySecret, fmt.Sprintf("127.0.0.1@%d", jport)) + fmt.Sprintf(`acl:
  - id: notify
    address: 127.0.0.1
    key: %[2]s
    action: notify
template:
  - id: default
    storage: "%[1]s/zones"
    zonefile-sync: -1
    journal-content: none
    semantic-checks: off
zone:
  - domain: us-gov.rpz.jurisdns.
    master: jurisdns
    acl: notify
`, dir, outKeyName)
	cf := filepath.Join(dir, "knot.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	k := runKnot(t, bin, dir, kport, cf)
	ask := func(name string) int {
		q := new(dns.Msg)
		q.SetQuestion(name, dns.TypeCNAME)
		r, _, err := (&dns.Client{Timeout: time.Second}).Exchange(q, k.addr)
		if err != nil || !r.Authoritative {
			return -1
		}
		return len(r.Answer)
	}
	waitAnswer := func(name string) {
		t.Helper()
		deadline := time.Now().Add(waitLimit)
		for ask(name) != 1 {
			if time.Now().After(deadline) {
				t.Fatalf("knotd has no %s after %s:\n%s", name, waitLimit, k.logs.String())
			}
			time.Sleep(20 * time.Millisecond) // a poll interval
		}
	}
	waitAnswer("n2999.bulk.example.us-gov.rpz.jurisdns.")
	if !strings.Contains(k.logs.String(), "messages") {
		t.Logf("knotd log:\n%s", k.logs.String())
	}
	mark := e.logs.mark()
	e.write("jurisdns.yaml", rest("late.example"))
	if err := e.app.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.logs.waitFrom(t, mark, "rpz_out NOTIFY sent", 1)
	waitAnswer("late.example.us-gov.rpz.jurisdns.")
	if strings.Contains(k.logs.String(), "TSIG") && strings.Contains(strings.ToLower(k.logs.String()), "bad") {
		t.Errorf("knotd reports a TSIG problem:\n%s", k.logs.String())
	}
}

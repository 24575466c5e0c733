package app_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/internal/testtool"
	"github.com/jurisdns/jurisdns/transfer"
)

// rpzZone is the RPZ zone knot serves: QNAME triggers with each action,
// and an rpz-ip trigger jurisdns cannot honour (counted, not enforced).
const rpzZone = `$ORIGIN rpz.test.
@ 3600 IN SOA localhost. admin.rpz.test. 1 3600 600 86400 60
@ 3600 IN NS localhost.
chat.deepseek.com 60 IN CNAME .
*.deepseek.com 60 IN CNAME .
ok.deepseek.com 60 IN CNAME rpz-passthru.
nodata.example 60 IN CNAME *.
sink.example 60 IN A 192.0.2.7
32.7.2.0.192.rpz-ip 60 IN CNAME .
`

const (
	feedKeyName   = "feed-key."
	feedKeySecret = "c2VjcmV0LWZvci10aGUtcnB6LWZlZWQtdGVzdHMhIQ=="
	wrongSecret   = "d3Jvbmctc2VjcmV0LWZvci10aGUtcnB6LWZlZWQhIQ=="
)

// knotPrimary is a knotd started by a test as the primary of rpz.test.
type knotPrimary struct {
	t    *testing.T
	addr string
	sock string
	cmd  *exec.Cmd
	done chan struct{}
	logs *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startKnotPrimary runs knotd in the foreground with rpz.test, requiring
// the TSIG key feed-key. for transfers and sending NOTIFY (signed) to
// notifyAddr. Everything it writes is under dir.
func startKnotPrimary(t *testing.T, dir string, port int, notifyAddr string) *knotPrimary {
	t.Helper()
	bin := testtool.Need(t, "knotd", "knot")
	testtool.Need(t, "knotc", "knot")
	for _, d := range []string{"run", "db", "zones"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	zf := filepath.Join(dir, "zones", "rpz.test.zone")
	if _, err := os.Stat(zf); err != nil {
		if err := os.WriteFile(zf, []byte(rpzZone), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	host, nport, _ := net.SplitHostPort(notifyAddr)
	conf := knotConf(dir, port, feedKeyName, feedKeySecret, host+"@"+nport) + fmt.Sprintf(`acl:
  - id: xfr
    address: 127.0.0.0/8
    key: %[2]s
    action: transfer
template:
  - id: default
    storage: "%[1]s/zones"
    file: "%%s.zone"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: changes
    semantic-checks: off
zone:
  - domain: rpz.test.
    acl: xfr
    notify: jurisdns
`, dir, feedKeyName)
	cf := filepath.Join(dir, "knot.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	k := runKnot(t, bin, dir, port, cf)
	deadline := time.Now().Add(waitLimit)
	for {
		q := new(dns.Msg)
		q.SetQuestion("rpz.test.", dns.TypeSOA)
		c := &dns.Client{Timeout: 300 * time.Millisecond}
		if r, _, err := c.Exchange(q, k.addr); err == nil && r.Rcode == dns.RcodeSuccess && r.Authoritative {
			return k
		}
		select {
		case <-k.done:
			t.Fatalf("knotd exited:\n%s", k.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("knotd not serving rpz.test. after %s:\n%s", waitLimit, k.logs.String())
		}
		time.Sleep(50 * time.Millisecond) // a poll interval
	}
}

// knotConf is the part of a knotd configuration both knot tests share: a
// server on 127.0.0.1:port with its rundir, control socket and database in
// dir, logging to stderr, the TSIG key keyName, and jurisdns (at
// remoteAddr, knot's "IP@port") as the remote "jurisdns" using that key. The
// caller appends its acl, template and zone sections.
func knotConf(dir string, port int, keyName, keySecret, remoteAddr string) string {
	return fmt.Sprintf(`server:
    rundir: "%[1]s/run"
    listen: 127.0.0.1@%[2]d
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
control:
    listen: "%[1]s/run/knot.sock"
database:
    storage: "%[1]s/db"
log:
  - target: stderr
    any: info
key:
  - id: %[3]s
    algorithm: hmac-sha256
    secret: %[4]s
remote:
  - id: jurisdns
    address: %[5]s
    key: %[3]s
`, dir, port, keyName, keySecret, remoteAddr)
}

// runKnot starts knotd -c cf in the foreground, listening on port, and
// stops it when the test ends (printing its log if the test failed).
func runKnot(t *testing.T, bin, dir string, port int, cf string) *knotPrimary {
	t.Helper()
	k := &knotPrimary{t: t, addr: fmt.Sprintf("127.0.0.1:%d", port), sock: filepath.Join(dir, "run", "knot.sock"),
		done: make(chan struct{}), logs: &lockedBuffer{}}
	k.cmd = exec.Command(bin, "-c", cf)
	k.cmd.Stdout, k.cmd.Stderr = k.logs, k.logs
	if err := k.cmd.Start(); err != nil {
		t.Fatalf("starting knotd: %v", err)
	}
	go func() { _ = k.cmd.Wait(); close(k.done) }()
	t.Cleanup(func() {
		k.stop()
		if t.Failed() {
			t.Logf("knotd log:\n%s", k.logs.String())
		}
	})
	return k
}

func (k *knotPrimary) stop() {
	select {
	case <-k.done:
		return
	default:
	}
	_ = k.cmd.Process.Kill()
	<-k.done
}

// knotc runs knotc against the primary's control socket.
func (k *knotPrimary) knotc(args ...string) {
	k.t.Helper()
	out, err := exec.Command(testtool.Look("knotc"), append([]string{"-s", k.sock}, args...)...).CombinedOutput()
	if err != nil {
		k.t.Fatalf("knotc %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// addName adds a trigger "name CNAME ." in one knotc transaction; knot
// bumps the serial, journals the change and sends NOTIFY.
func (k *knotPrimary) addName(name string) {
	k.t.Helper()
	k.knotc("zone-begin", "rpz.test.")
	k.knotc("zone-set", "rpz.test.", name+".rpz.test.", "60", "CNAME", ".")
	k.knotc("zone-commit", "rpz.test.")
}

func transferConfig(knot string, cacheDir string) string {
	return fmt.Sprintf(`lists: {cache_dir: %q}
tsig_keys:
  - {name: %s, secret: %q}
default_jurisdictions: [feed-j]
jurisdictions:
  - id: feed-j
    title: RPZ feed test
    on_load_failure: fail_closed
    sources:
      - name: feed
        transfer: {zone: rpz.test., primaries: [%q], tsig_key: %s}
`, cacheDir, feedKeyName, feedKeySecret, knot, feedKeyName)
}

// waitRcode polls name until it answers rcode and returns how long that
// took.
func (e *env) waitRcode(name string, rcode int) time.Duration {
	e.t.Helper()
	start := time.Now()
	for {
		r := e.query("udp", name, dns.TypeA)
		if r.Rcode == rcode {
			return time.Since(start)
		}
		if time.Since(start) > waitLimit {
			e.t.Fatalf("%s: still %s after %s, want %s", name, rcode2s(r.Rcode), waitLimit, rcode2s(rcode))
		}
		time.Sleep(5 * time.Millisecond) // a poll interval
	}
}

func rcode2s(c int) string { return dns.RcodeToString[c] }

// TestTransferFromKnot: knotd is the primary of an RPZ zone that needs TSIG.
// jurisdns transfers it at start and enforces its QNAME triggers with the
// RPZ actions, counts the rpz-ip trigger it cannot honour, follows a knotc
// transaction by knot's NOTIFY and an IXFR applied as a delta, and after
// the primary is gone restarts from the cached copy.
func TestTransferFromKnot(t *testing.T) {
	kdir := t.TempDir()
	jport := testtool.FreePort(t)
	kport := testtool.FreePort(t)
	jaddr := fmt.Sprintf("127.0.0.1:%d", jport)
	k := startKnotPrimary(t, kdir, kport, jaddr)
	cache := t.TempDir()

	e := newEnv(t, nil)
	cfg := strings.Replace(baseConfig(e.up.Addr()), `listen: ["127.0.0.1:0"]`, fmt.Sprintf("listen: [%q]", jaddr), 1) +
		transferConfig(k.addr, cache)
	e.write("jurisdns.yaml", cfg)
	a := e.start()

	wantRcode(t, "chat.deepseek.com", e.query("udp", "chat.deepseek.com", dns.TypeA), dns.RcodeNameError)
	wantRcode(t, "www.deepseek.com (*.deepseek.com)", e.query("udp", "www.deepseek.com", dns.TypeA), dns.RcodeNameError)
	wantRcode(t, "ok.deepseek.com (passthru)", e.query("udp", "ok.deepseek.com", dns.TypeA), dns.RcodeSuccess)
	if r := e.query("udp", "nodata.example", dns.TypeA); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 {
		t.Errorf("nodata.example: %s with %d answers, want NODATA", rcode2s(r.Rcode), len(r.Answer))
	}
	if r := e.query("udp", "sink.example", dns.TypeA); len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "192.0.2.7" {
		t.Errorf("sink.example: %v, want the local data 192.0.2.7", r.Answer)
	}
	j := a.Server().Runtime().Policy.Lookup("feed-j")
	src := j.Sources[0]
	if src.Skipped != 1 || src.Transfer == nil || src.Transfer.Serial != 1 || src.Transfer.Primary != k.addr {
		t.Errorf("source info: skipped %d, transfer %+v; want the rpz-ip trigger skipped, serial 1 from %s", src.Skipped, src.Transfer, k.addr)
	}
	if src.Entries != 5 {
		t.Errorf("entries %d, want 5", src.Entries)
	}

	// A knotc transaction: knot's NOTIFY, an IXFR, a delta; meanwhile a
	// client asks for a blocked name without pause, and every answer is
	// NXDOMAIN (no query lost or answered otherwise across the swap).
	mark := e.logs.mark()
	wantRcode(t, "new.example before", e.query("udp", "new.example", dns.TypeA), dns.RcodeSuccess)
	stopLoad := make(chan struct{})
	loadDone := make(chan string)
	go func() {
		c := &dns.Client{Timeout: 2 * time.Second}
		n := 0
		for {
			select {
			case <-stopLoad:
				loadDone <- fmt.Sprintf("%d queries", n)
				return
			default:
			}
			q := new(dns.Msg)
			q.SetQuestion("chat.deepseek.com.", dns.TypeA)
			r, _, err := c.Exchange(q, e.dns)
			if err != nil || r.Rcode != dns.RcodeNameError {
				loadDone <- fmt.Sprintf("query %d: %v %v", n, r, err)
				<-stopLoad
				return
			}
			n++
		}
	}()
	start := time.Now()
	k.addName("new.example")
	commit := time.Since(start)
	took := e.waitRcode("new.example", dns.RcodeNameError)
	t.Logf("new.example in force %s after knotc zone-commit returned (commit took %s)", took, commit)
	time.Sleep(50 * time.Millisecond) // some queries after the swap too
	close(stopLoad)
	if res := <-loadDone; !strings.HasSuffix(res, " queries") {
		t.Errorf("under the delta: %s", res)
	} else {
		t.Logf("under the delta: %s, every one NXDOMAIN", res)
	}
	rec := e.logs.waitFrom(t, mark, "zone delta applied", 1)
	if rec.Attrs["added"] != "1" || rec.Attrs["serial"] != "2" {
		t.Errorf("delta log: %s", rec)
	}
	j = a.Server().Runtime().Policy.Lookup("feed-j")
	if st := j.Sources[0].Transfer; st == nil || st.Serial != 2 || st.LastNotify.IsZero() {
		t.Errorf("after NOTIFY: %+v, want serial 2 and a last NOTIFY time", st)
	}
	if j.Sources[0].Entries != 6 {
		t.Errorf("entries after the delta: %d, want 6", j.Sources[0].Entries)
	}
	wantRcode(t, "chat.deepseek.com after the delta", e.query("udp", "chat.deepseek.com", dns.TypeA), dns.RcodeNameError)
	// The status page (what `lists` prints) shows the feed.
	code, body := e.get("/api/status")
	if code != 200 || !strings.Contains(body, `"zone": "rpz.test."`) || !strings.Contains(body, `"serial": 2`) ||
		!strings.Contains(body, `"primary": "`+k.addr+`"`) || !strings.Contains(body, `"last_notify": "`) {
		t.Errorf("status page: %d, want the transfer state of the feed:\n%s", code, body)
	}

	// NOTIFY from elsewhere than the primary, or without the key: REFUSED.
	notify := func(src string, key bool) int {
		m := new(dns.Msg)
		m.SetNotify("rpz.test.")
		c := &dns.Client{Timeout: 5 * time.Second, Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(src)}}}
		if key {
			c.TsigSecret = map[string]string{feedKeyName: feedKeySecret}
			m.SetTsig(feedKeyName, dns.HmacSHA256, 300, time.Now().Unix())
		}
		r, _, err := c.Exchange(m, e.dns)
		if err != nil {
			t.Fatalf("NOTIFY from %s: %v", src, err)
		}
		return r.Rcode
	}
	if rc := notify("127.0.0.2", true); rc != dns.RcodeRefused {
		t.Errorf("NOTIFY from a non-primary: %s, want REFUSED", rcode2s(rc))
	}
	if rc := notify("127.0.0.1", false); rc != dns.RcodeRefused {
		t.Errorf("unsigned NOTIFY: %s, want REFUSED", rcode2s(rc))
	}
	if rc := notify("127.0.0.1", true); rc != dns.RcodeSuccess {
		t.Errorf("signed NOTIFY from the primary: %s, want NOERROR", rcode2s(rc))
	}
	if n := e.metric("refused_total", "reason=notify"); n != 2 {
		t.Errorf("refused NOTIFY counted %v times, want 2", n)
	}

	// The primary goes away; a restarted jurisdns serves the cached zone.
	k.stop()
	if err := a.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	mark = e.logs.mark()
	e.start()
	e.logs.waitFrom(t, mark, "zone transfer failed: using the cached copy", 1)
	wantRcode(t, "chat.deepseek.com from the cache", e.query("udp", "chat.deepseek.com", dns.TypeA), dns.RcodeNameError)
	wantRcode(t, "new.example from the cache", e.query("udp", "new.example", dns.TypeA), dns.RcodeNameError)
}

// TestTransferTSIGFromKnot: knot refuses a transfer without the key and one
// signed with a wrong secret; jurisdns gets nothing from either.
func TestTransferTSIGFromKnot(t *testing.T) {
	kport := testtool.FreePort(t)
	k := startKnotPrimary(t, t.TempDir(), kport, "127.0.0.1:9")
	primary := netip.MustParseAddrPort(k.addr)
	for _, tc := range []struct {
		name string
		key  *transfer.Key
		ok   bool
	}{
		{"no key", nil, false},
		{"wrong secret", &transfer.Key{Name: feedKeyName, Algorithm: dns.HmacSHA256, Secret: wrongSecret}, false},
		{"right key", &transfer.Key{Name: feedKeyName, Algorithm: dns.HmacSHA256, Secret: feedKeySecret}, true},
	} {
		f := transfer.New(transfer.Options{Name: "t/" + tc.name, Zone: "rpz.test.", Primaries: []netip.AddrPort{primary}, Key: tc.key, Timeout: 5 * time.Second})
		err := f.Load(context.Background())
		if (err == nil) != tc.ok {
			t.Errorf("%s: Load error %v, want ok=%v", tc.name, err, tc.ok)
			continue
		}
		if tc.ok && f.Status().Serial != 1 {
			t.Errorf("%s: serial %d", tc.name, f.Status().Serial)
		}
		if !tc.ok && f.Loaded() {
			t.Errorf("%s: a zone was loaded", tc.name)
		}
	}
}

// TestTransferPrimaryLate: the primary is down when jurisdns starts and
// there is no cached copy: the jurisdiction fails closed (SERVFAIL). When
// knotd comes up, its NOTIFY brings the zone and the names are blocked.
func TestTransferPrimaryLate(t *testing.T) {
	jport, kport := testtool.FreePort(t), testtool.FreePort(t)
	jaddr := fmt.Sprintf("127.0.0.1:%d", jport)
	kaddr := fmt.Sprintf("127.0.0.1:%d", kport)
	testtool.Need(t, "knotd", "knot")
	e := newEnv(t, nil)
	cfg := strings.Replace(baseConfig(e.up.Addr()), `listen: ["127.0.0.1:0"]`, fmt.Sprintf("listen: [%q]", jaddr), 1) +
		strings.Replace(transferConfig(kaddr, t.TempDir()), "lists: {", "lists: {timeout: 2s, ", 1)
	e.write("jurisdns.yaml", cfg)
	e.start()
	wantRcode(t, "chat.deepseek.com with the primary down", e.query("udp", "chat.deepseek.com", dns.TypeA), dns.RcodeServerFailure)
	mark := e.logs.mark()
	startKnotPrimary(t, t.TempDir(), kport, jaddr)
	took := e.waitRcode("chat.deepseek.com", dns.RcodeNameError)
	t.Logf("blocked %s after knotd answered", took)
	e.logs.waitFrom(t, mark, "zone transferred", 1)
}

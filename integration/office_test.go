package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jurisdns/jurisdns/internal/testtool"
)

// waitLimit bounds every wait (a server coming up, a command finishing) so
// that a broken test fails instead of hanging. No test asserts on time.
const waitLimit = 30 * time.Second

// httpGetEnv makes the test binary a one-shot HTTP client: the test runs
// itself with `ip netns exec` to reach the admin listener on the server
// namespace's loopback (there is no curl on a bare CI machine).
const httpGetEnv = "JURISDNS_INTEGRATION_HTTP_GET"

func TestMain(m *testing.M) {
	if url := os.Getenv(httpGetEnv); url != "" {
		os.Exit(httpGet(url))
	}
	os.Exit(m.Run())
}

// httpGet prints the status code on the first line and then the body.
func httpGet(url string) int {
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer resp.Body.Close()
	fmt.Println(resp.StatusCode)
	_, _ = io.Copy(os.Stdout, resp.Body)
	return 0
}

// The network of the office test. Floor 1 is a Canberra office under
// au-gov, floor 2 a Washington office under us-gov; each floor's resolver
// address is jurisdns on the server namespace.
const (
	floor1Net      = "198.18.0.0/28"
	floor1Resolver = "198.18.0.1"
	floor1Client   = "198.18.0.2"
	floor2Net      = "198.18.0.16/28"
	floor2Resolver = "198.18.0.17"
	floor2Client   = "198.18.0.18"
	knotAddr       = "127.0.0.1@5300" // on the server namespace's loopback
	wwwAddr        = "198.18.0.100"   // www.office.example in testdata/office.example.zone
	bannedAddr     = "198.18.0.200"   // chat.deepseek.com in testdata/deepseek.com.zone
)

// TestOfficeClientsEndToEnd runs the office of docs/office.md in network
// namespaces: two client namespaces on two subnets ("floors") mapped to
// different jurisdictions, a server namespace with jurisdns listening on
// each floor's resolver address and knot as its upstream on loopback. The
// clients resolve with the system's stub resolver (getent, through the
// namespace's resolv.conf) and with dig.
func TestOfficeClientsEndToEnd(t *testing.T) {
	need(t)
	dir := t.TempDir()
	bin := testtool.BuildJurisdns(t, dir)

	n := newNet(t)
	srv := n.namespace("srv")
	f1 := n.namespace("f1")
	f2 := n.namespace("f2")
	n.run("ip", "-n", srv, "link", "set", "lo", "up")
	n.veth(srv, n.name("s1"), floor1Resolver+"/28", f1, floor1Client+"/28")
	n.veth(srv, n.name("s2"), floor2Resolver+"/28", f2, floor2Client+"/28")
	n.resolvConf(f1, floor1Resolver)
	n.resolvConf(f2, floor2Resolver)

	// The upstream: knot serving office.example and a stand-in deepseek.com
	// (so a name jurisdns failed to block would resolve, and be seen).
	startKnot(t, n, srv, dir)

	cfg := filepath.Join(dir, "office.yaml")
	audit := filepath.Join(dir, "enforcement.log")
	writeFile(t, cfg, fmt.Sprintf(`# The office of docs/office.md, on the test's own addresses.
listen: ["%s:53", "%s:53"]
upstreams: {servers: ["127.0.0.1:5300"]}
access: {allow: [198.18.0.0/24, 127.0.0.0/8]}
default_jurisdictions: [bypass]
clients:
  - {name: floor-1-canberra, subnets: [%s], jurisdictions: [au-gov, bypass]}
  - {name: floor-2-washington, subnets: [%s], jurisdictions: [us-gov, bypass]}
admin: "127.0.0.1:8053"
audit: {path: %q, client_privacy: truncate}
`, floor1Resolver, floor2Resolver, floor1Net, floor2Net, audit))
	if out, err := n.exec(srv, bin, "validate", "--config", cfg); err != nil {
		t.Fatalf("jurisdns validate: %v\n%s", err, out)
	}
	jd := n.start(srv, "jurisdns", bin, "serve", "--config", cfg)
	n.waitFor("jurisdns health", func() error {
		_, err := n.exec(srv, bin, "health", "--config", cfg)
		return err
	})

	// Readiness and the policy hash replicas compare (docs/scaling.md).
	if code, _ := n.httpGet(srv, "http://127.0.0.1:8053/readyz"); code != "200" {
		t.Errorf("/readyz = %s, want 200", code)
	}
	listsOut, err := n.exec(srv, bin, "lists", "--json", "--config", cfg)
	if err != nil {
		t.Fatalf("jurisdns lists: %v\n%s", err, listsOut)
	}
	var lists struct {
		PolicyHash string `json:"policy_hash"`
	}
	if err := json.Unmarshal([]byte(listsOut), &lists); err != nil || lists.PolicyHash == "" {
		t.Fatalf("jurisdns lists --json: no policy_hash (%v)\n%s", err, listsOut)
	}
	if code, body := n.httpGet(srv, "http://127.0.0.1:8053/metrics"); code != "200" ||
		!strings.Contains(body, `jurisdns_policy_info{hash="`+lists.PolicyHash+`"} 1`) {
		t.Errorf("/metrics (%s) does not show jurisdns_policy_info{hash=%q} of `jurisdns lists`", code, lists.PolicyHash)
	}

	// The system's stub resolver, as an application on the client sees it.
	for _, ns := range []string{f1, f2} {
		out, err := n.exec(ns, "getent", "hosts", "www.office.example")
		if err != nil || !regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(wwwAddr)+`\s+www\.office\.example$`).MatchString(out) {
			t.Errorf("%s: getent hosts www.office.example = %q, %v; want %s", ns, out, err, wwwAddr)
		}
		out, err = n.exec(ns, "getent", "hosts", "chat.deepseek.com")
		if exitCode(err) != 2 || strings.Contains(out, bannedAddr) {
			// getent exits 2 when the name is not found.
			t.Errorf("%s: getent hosts chat.deepseek.com = %q, %v; want not found (exit status 2)", ns, out, err)
		}
	}

	// dig, with the EDE that names the jurisdiction of each floor.
	for _, c := range []struct {
		ns, resolver, jurisdiction, other, instrument string
	}{
		{f1, floor1Resolver, "au-gov", "us-gov", "PSPF Direction 001-2025"},
		{f2, floor2Resolver, "us-gov", "au-gov", ""},
	} {
		out, err := n.exec(c.ns, "dig", "+tries=1", "+time=5", "www.office.example", "A")
		if err != nil || !strings.Contains(out, "status: NOERROR") || !strings.Contains(out, wwwAddr) {
			t.Errorf("%s: dig www.office.example: %v\n%s", c.ns, err, out)
		}
		if !strings.Contains(out, "SERVER: "+c.resolver+"#53") {
			t.Errorf("%s: dig did not use the floor's resolver %s from resolv.conf:\n%s", c.ns, c.resolver, out)
		}
		out, err = n.exec(c.ns, "dig", "+tries=1", "+time=5", "chat.deepseek.com", "A")
		if err != nil {
			t.Fatalf("%s: dig chat.deepseek.com: %v\n%s", c.ns, err, out)
		}
		for _, want := range []string{
			"status: NXDOMAIN",
			"; EDE: 16 (Censored): (" + c.jurisdiction + ": ",
			"rule deepseek.com (deepseek-core))",
			c.jurisdiction + ".policy.jurisdns.",
			c.instrument,
		} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: dig chat.deepseek.com: no %q in\n%s", c.ns, want, out)
			}
		}
		if strings.Contains(out, bannedAddr) || strings.Contains(out, c.other+":") {
			t.Errorf("%s: dig chat.deepseek.com answered or named %s:\n%s", c.ns, c.other, out)
		}
	}

	// The enforcement log: SIGTERM drains and closes it; its chain verifies
	// and it recorded both floors' blocks, each under its own jurisdiction.
	jd.stop(t)
	if out, err := n.exec(srv, bin, "audit", "verify", audit); err != nil || !strings.HasPrefix(out, "ok: ") {
		t.Errorf("jurisdns audit verify: %v\n%s", err, out)
	}
	log, err := os.ReadFile(audit)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"client":"198.18.0.0/24","name":"chat.deepseek.com.","type":"A","jurisdiction":"au-gov"`,
		`"client":"198.18.0.0/24","name":"chat.deepseek.com.","type":"A","jurisdiction":"us-gov"`,
	} {
		if !bytes.Contains(log, []byte(want)) {
			t.Errorf("enforcement log has no record %s:\n%s", want, log)
		}
	}
}

// need skips the test when it cannot run here (not Linux, not root) or
// when a tool is missing, with the install hint. Where every tool is
// required (.ci/run, see internal/testtool) it fails instead: CI provides
// all of it.
func need(t *testing.T) {
	t.Helper()
	var missing []string
	if runtime.GOOS != "linux" {
		missing = append(missing, "Linux (network namespaces)")
	}
	if os.Geteuid() != 0 {
		missing = append(missing, "root (ip netns add)")
	}
	if len(missing) > 0 {
		msg := "end-to-end office test needs " + strings.Join(missing, ", ") + "; .ci/run provides them"
		if testtool.Required() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	for _, b := range []struct{ bin, pkg string }{
		{"ip", "iproute2"}, {"knotd", "knot"}, {"dig", "dnsutils"}, {"getent", "libc-bin"},
	} {
		testtool.Need(t, b.bin, b.pkg)
	}
}

// startKnot runs knotd in namespace ns on knotAddr with the zones of
// testdata/ and waits until it answers.
func startKnot(t *testing.T, n *testNet, ns, dir string) {
	t.Helper()
	kd := filepath.Join(dir, "knot")
	for _, d := range []string{"db", "zones"} {
		if err := os.MkdirAll(filepath.Join(kd, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, z := range []string{"office.example.zone", "deepseek.com.zone"} {
		b, err := os.ReadFile(filepath.Join("testdata", z))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(kd, "zones", z), string(b))
	}
	conf := filepath.Join(kd, "knot.conf")
	writeFile(t, conf, fmt.Sprintf(`server:
    rundir: %q
    listen: %s
database:
    storage: %q
log:
  - target: stderr
    any: info
template:
  - id: default
    storage: %q
    file: "%%s.zone"
    zonefile-sync: -1
    journal-content: none
zone:
  - domain: office.example.
  - domain: deepseek.com.
`, kd, knotAddr, filepath.Join(kd, "db"), filepath.Join(kd, "zones")))
	n.start(ns, "knotd", "knotd", "-c", conf)
	n.waitFor("knot", func() error {
		out, err := n.exec(ns, "dig", "+short", "+tries=1", "+time=1", "@127.0.0.1", "-p", "5300", "www.office.example", "A")
		if err == nil && strings.TrimSpace(out) != wwwAddr {
			err = fmt.Errorf("www.office.example = %q", out)
		}
		return err
	})
}

// testNet creates network namespaces, veth pairs and per-namespace
// resolv.conf files, and removes all of it in t.Cleanup.
type testNet struct {
	t      *testing.T
	suffix string
}

func newNet(t *testing.T) *testNet {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return &testNet{t: t, suffix: hex.EncodeToString(b)}
}

// name makes a name unique to this run; at most 15 bytes for interfaces.
func (n *testNet) name(s string) string { return "jd" + n.suffix + s }

func (n *testNet) run(args ...string) {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput(); err != nil {
		n.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// namespace creates a network namespace and deletes it (and its
// /etc/netns directory) at cleanup.
func (n *testNet) namespace(role string) string {
	n.t.Helper()
	ns := n.name(role)
	n.run("ip", "netns", "add", ns)
	n.t.Cleanup(func() {
		_ = os.RemoveAll(filepath.Join("/etc/netns", ns))
		if out, err := exec.Command("ip", "netns", "delete", ns).CombinedOutput(); err != nil {
			n.t.Errorf("ip netns delete %s: %v\n%s", ns, err, out)
		}
	})
	return ns
}

// veth links namespace a (interface ifA, address addrA) to namespace b
// (interface eth0, address addrB).
func (n *testNet) veth(a, ifA, addrA, b, addrB string) {
	n.t.Helper()
	n.run("ip", "link", "add", ifA, "netns", a, "type", "veth", "peer", "name", "eth0", "netns", b)
	n.run("ip", "-n", a, "addr", "add", addrA, "dev", ifA)
	n.run("ip", "-n", a, "link", "set", ifA, "up")
	n.run("ip", "-n", b, "addr", "add", addrB, "dev", "eth0")
	n.run("ip", "-n", b, "link", "set", "eth0", "up")
	n.run("ip", "-n", b, "link", "set", "lo", "up")
}

// resolvConf writes the resolv.conf that `ip netns exec` bind-mounts over
// /etc/resolv.conf for programs in ns.
func (n *testNet) resolvConf(ns, nameserver string) {
	n.t.Helper()
	d := filepath.Join("/etc/netns", ns)
	if err := os.MkdirAll(d, 0o755); err != nil {
		n.t.Fatal(err)
	}
	writeFile(n.t, filepath.Join(d, "resolv.conf"), "nameserver "+nameserver+"\noptions timeout:5 attempts:1\n")
}

// exec runs a command in ns and returns its standard output (standard
// error is appended when it fails).
func (n *testNet) exec(ns string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String() + stderr.String(), err
	}
	return stdout.String(), nil
}

// httpGet fetches url from inside ns with the test binary as client.
func (n *testNet) httpGet(ns, url string) (code, body string) {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, os.Args[0])
	cmd.Env = append(os.Environ(), httpGetEnv+"="+url)
	out, err := cmd.Output()
	if err != nil {
		n.t.Errorf("GET %s in %s: %v", url, ns, err)
		return "", ""
	}
	code, body, _ = strings.Cut(string(out), "\n")
	return code, body
}

// proc is a long-running process started in a namespace.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *testtool.Output
	done chan struct{}
	err  error
	once sync.Once
}

// start runs a long-running command in ns; cleanup stops it and, when the
// test failed, logs its output.
func (n *testNet) start(ns, name string, args ...string) *proc {
	n.t.Helper()
	// ip netns exec execs the command: the process is the program itself.
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	p := &proc{name: name, cmd: cmd, out: &testtool.Output{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		n.t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	n.t.Cleanup(func() {
		p.stop(n.t)
		if n.t.Failed() {
			n.t.Logf("output of %s:\n%s", name, p.out.String())
		}
	})
	return p
}

// stop sends SIGTERM and waits; after waitLimit it kills.
func (p *proc) stop(t *testing.T) {
	p.once.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(waitLimit):
			_ = p.cmd.Process.Kill()
			<-p.done
			t.Errorf("%s did not stop on SIGTERM", p.name)
		}
	})
}

// waitFor retries check until it succeeds, failing the test after
// waitLimit.
func (n *testNet) waitFor(what string, check func() error) {
	n.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("%s did not come up: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

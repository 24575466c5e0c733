package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/resolver/resolvertest"
)

// reexecVar makes the test binary run as jurisdns (main's run), so tests
// start the real command as a process without building it.
const reexecVar = "JDNS_CMD_TEST_REEXEC"

func TestMain(m *testing.M) {
	if os.Getenv(reexecVar) == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestServeNeverWaitsOnListServer runs `jurisdns serve` as a process, as a
// user does, with a list server on 127.0.0.1 that accepts connections and
// never answers, and a last good copy of its list in lists.cache_dir: DNS
// and admin listen, and the cached list is enforced, within two seconds
// (one download may take lists.timeout, 30s, per attempt, and
// lists.deadline, 60s, in all); /readyz says the list is not current; a
// SIGTERM stops the server at once.
func TestServeNeverWaitsOnListServer(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	hang := false
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		h := hang
		mu.Unlock()
		if h {
			<-release // accepted; never answered
			return
		}
		_, _ = io.WriteString(w, "cached-listed.example\n")
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	up := resolvertest.StartUpstream(t, resolvertest.Echo())
	cfg := writeFile(t, dir, "jurisdns.yaml", fmt.Sprintf(`listen: ["127.0.0.1:0"]
admin: "127.0.0.1:0"
upstreams: {servers: [%q]}
server: {udp_workers: 1}
lists: {cache_dir: %q}
log: {format: json}
default_jurisdictions: [remote]
jurisdictions:
  - id: remote
    title: Remote list
    sources: [{name: r, url: "%s/list.txt", allow_http: true}]
`, up.Addr(), filepath.Join(dir, "cache"), srv.URL))
	// The last good copy, as an earlier run left it.
	if code, out, errOut := jurisdns(t, "validate", "-c", cfg); code != 0 {
		t.Fatalf("validate (seeding the cache) = %d %s %s", code, out, errOut)
	}
	mu.Lock()
	hang = true
	mu.Unlock()

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "serve", "-c", cfg)
	cmd.Env = append(os.Environ(), reexecVar+"=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var waitErr error
	exited := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(exited) }()
	defer func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
	}()

	// The start line names the bound addresses.
	started := make(chan map[string]any, 1)
	var logMu sync.Mutex
	var logs strings.Builder
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logMu.Lock()
			logs.WriteString(sc.Text() + "\n")
			logMu.Unlock()
			var rec map[string]any
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["msg"] == "jurisdns started" {
				started <- rec
			}
		}
	}()
	var rec map[string]any
	select {
	case rec = <-started:
	case <-exited:
		logMu.Lock()
		t.Fatalf("serve exited (%v) before it started:\n%s", waitErr, logs.String())
	case <-time.After(30 * time.Second):
		logMu.Lock()
		t.Fatalf("serve did not start within 30s:\n%s", logs.String())
	}
	listen, _ := rec["listen"].([]any)
	admin, _ := rec["admin"].(string)
	if len(listen) == 0 || admin == "" {
		t.Fatalf("start line without addresses: %v", rec)
	}
	m := resolvertest.Query(t, listen[0].(string), "udp", "www.cached-listed.example", dns.TypeA)
	resp, err := http.Get("http://" + admin + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("serve took %v to listen and answer; want under 2s with a cached copy", took)
	}
	if m.Rcode != dns.RcodeNameError {
		t.Errorf("a name of the cached list: %s, want NXDOMAIN", dns.RcodeToString[m.Rcode])
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"not_current":["remote/r: using the last good copy from `) {
		t.Errorf("/readyz = %d %s; want 200 naming remote/r as served from its last good copy", resp.StatusCode, body)
	}

	stopAt := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		if waitErr != nil {
			t.Errorf("serve exited with %v after SIGTERM", waitErr)
		}
		if took := time.Since(stopAt); took > 5*time.Second {
			t.Errorf("serve took %v to stop with a download hanging", took)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop within 30s of SIGTERM")
	}
}

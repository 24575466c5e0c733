package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jurisdns/jurisdns/app"
	"github.com/jurisdns/jurisdns/audit"
	"github.com/jurisdns/jurisdns/config"
	"github.com/jurisdns/jurisdns/resolver/resolvertest"
	"github.com/jurisdns/jurisdns/status"
)

// jurisdns runs the command line in-process, as main does, and returns its
// exit code, stdout and stderr.
func jurisdns(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// writeFile writes a file in dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

var snakeKey = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

// checkJSONStyle fails unless out is JSON whose keys are all snake_case.
func checkJSONStyle(t *testing.T, what, out string) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("%s: not JSON: %v\n%s", what, err, out)
	}
	var walk func(path string, x any)
	walk = func(path string, x any) {
		switch x := x.(type) {
		case map[string]any:
			for k, e := range x {
				if !snakeKey.MatchString(k) {
					t.Errorf("%s: key %s.%s is not snake_case", what, path, k)
				}
				walk(path+"."+k, e)
			}
		case []any:
			for i, e := range x {
				walk(fmt.Sprintf("%s[%d]", path, i), e)
			}
		}
	}
	walk("", v)
	return v
}

func TestVersion(t *testing.T) {
	code, out, _ := jurisdns(t, "version")
	_, flagOut, _ := jurisdns(t, "--version")
	b := app.Build()
	if code != 0 || out != b.String() || flagOut != out {
		t.Fatalf("version = %d %q, --version = %q; want both %q", code, out, flagOut, b.String())
	}
	if b.Version == "dev" || b.Version == "" || !strings.HasPrefix(out, "jurisdns "+b.Version+"\n") ||
		!strings.Contains(out, "module   github.com/jurisdns/jurisdns\n") || !strings.Contains(out, "go       go1.") {
		t.Errorf("version output %q lacks the build info's version, module or Go", out)
	}
	_, js, _ := jurisdns(t, "version", "--json")
	v := checkJSONStyle(t, "version --json", js)
	if v["module"] != "github.com/jurisdns/jurisdns" || v["version"] != b.Version {
		t.Errorf("version --json = %v", v)
	}
	// A build with VCS information shows it (this tree may be built without).
	rev := app.BuildInfo{Version: "v1.2.3", Module: "m", Revision: "9c33a83", Time: "2026-12-06T12:00:00Z", Modified: true, Go: "go1.26", Platform: "linux/amd64"}
	if s := rev.String(); !strings.Contains(s, "revision 9c33a83 (2026-12-06T12:00:00Z) with local modifications\n") {
		t.Errorf("BuildInfo.String() = %q", s)
	}
}

func TestConfigDefault(t *testing.T) {
	code, out, _ := jurisdns(t, "config", "default")
	if code != 0 || out != string(config.Default()) {
		t.Fatalf("config default = %d, %d bytes; want the %d bytes of the embedded default", code, len(out), len(config.Default()))
	}
}

// TestHelpShowsOwnFlags: a command that only reads the configuration does
// not offer the serving flags.
func TestHelpShowsOwnFlags(t *testing.T) {
	for _, c := range []struct {
		cmd  []string
		want []string
	}{
		{[]string{"check", "--help"}, []string{"--client", "--type", "--json", "--config"}},
		{[]string{"lists", "--help"}, []string{"--json", "--config"}},
		{[]string{"validate", "--help"}, []string{"--config"}},
		{[]string{"reload", "--help"}, []string{"--admin", "--token-file", "--timeout", "--json"}},
		{[]string{"status", "--help"}, []string{"--admin", "--token-file", "--json"}},
		{[]string{"version", "--help"}, []string{"--json"}},
	} {
		code, out, _ := jurisdns(t, c.cmd...)
		if code != 0 {
			t.Errorf("%v: exit %d", c.cmd, code)
		}
		for _, f := range c.want {
			if !strings.Contains(out, f) {
				t.Errorf("%v: no %s in\n%s", c.cmd, f, out)
			}
		}
		for _, f := range []string{"--listen", "--upstream", "--log-level"} {
			if strings.Contains(out, f) {
				t.Errorf("%v shows the serving flag %s:\n%s", c.cmd, f, out)
			}
		}
	}
	if _, out, _ := jurisdns(t, "serve", "--help"); !strings.Contains(out, "--listen") || !strings.Contains(out, "--upstream") {
		t.Errorf("serve --help lacks its flags:\n%s", out)
	}
}

// localConfig writes a configuration with one local list and returns its
// path.
func localConfig(t *testing.T, dir, list string) string {
	t.Helper()
	writeFile(t, dir, "acme.txt", list)
	return writeFile(t, dir, "jurisdns.yaml", `listen: ["127.0.0.1:0"]
admin: "127.0.0.1:0"
upstreams: {servers: ["127.0.0.1:9"]}
default_jurisdictions: [acme]
jurisdictions:
  - id: acme
    title: Acme policy
    ttl: 90s
    sources: [{name: acme, path: acme.txt}]
`)
}

func TestCheck(t *testing.T) {
	cfg := localConfig(t, t.TempDir(), "blocked.example\n")
	code, out, errOut := jurisdns(t, "check", "-c", cfg, "www.blocked.example")
	if code != 0 || !strings.Contains(out, "www.blocked.example: BLOCKED by acme") {
		t.Fatalf("check = %d\n%s%s", code, out, errOut)
	}
	code, out, _ = jurisdns(t, "check", "-c", cfg, "--json", "www.blocked.example")
	v := checkJSONStyle(t, "check --json", out)
	if code != 0 || v["decision"] != "block" || v["jurisdiction"] != "acme" || v["ttl"] != 90.0 {
		t.Errorf("check --json = %d: decision %v, jurisdiction %v, ttl %v; want block, acme, 90 (seconds)", code, v["decision"], v["jurisdiction"], v["ttl"])
	}
	for _, args := range [][]string{{"check", "-c", cfg, "bad..name"}, {"check", "-c", cfg, "--json", "bad..name"}} {
		code, out, _ := jurisdns(t, args...)
		if code != 1 || !strings.Contains(out, "empty label") {
			t.Errorf("%v = %d %q; want exit 1 saying why the name is invalid", args, code, out)
		}
	}
}

func TestLists(t *testing.T) {
	dir := t.TempDir()
	cfg := localConfig(t, dir, "a.example\nbad..line\nb.example\nc.example\nd.example\n")
	code, out, errOut := jurisdns(t, "lists", "-c", cfg)
	if code != 0 || !regexp.MustCompile(`(?m)^acme\s+active\s+local\s+enforce\s+nxdomain\s+15\s+4\s+acme\s+1\s+[0-9a-f]{12}$`).MatchString(out) ||
		!strings.Contains(out, `acme/acme: bad line `+filepath.Join(dir, "acme.txt")+`:2: empty label in "bad..line"`) {
		t.Fatalf("lists = %d\n%s%s", code, out, errOut)
	}
	code, out, _ = jurisdns(t, "lists", "-c", cfg, "--json")
	checkJSONStyle(t, "lists --json", out)
	var p status.Page
	if err := json.Unmarshal([]byte(out), &p); err != nil || code != 0 || len(p.PolicyHash) != 64 {
		t.Fatalf("lists --json = %d, %v, policy_hash %q", code, err, p.PolicyHash)
	}
	var acme *status.Jurisdiction
	for i := range p.Jurisdictions {
		if p.Jurisdictions[i].ID == "acme" {
			acme = &p.Jurisdictions[i]
		}
	}
	if acme == nil || acme.TTL != 90 || acme.Entries != 4 || !acme.InUse || len(acme.Sources) != 1 || acme.Sources[0].Bad != 1 {
		t.Errorf("lists --json acme = %+v; want ttl 90 (seconds), 4 entries, in use, 1 bad line", acme)
	}

	// What the former lists --json showed of a jurisdiction is still there.
	full := writeFile(t, dir, "full.yaml", `listen: ["127.0.0.1:0"]
upstreams: {servers: ["127.0.0.1:9"]}
default_jurisdictions: [acme]
jurisdictions:
  - id: acme
    title: Acme policy
    contact: it@acme.example
    action: ip
    sinkhole: [192.0.2.80]
    allow: [docs.a.example]
    sources: [{name: acme, path: acme.txt}]
`)
	_, out, errOut = jurisdns(t, "lists", "-c", full, "--json")
	p = status.Page{}
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("lists --json: %v\n%s", err, errOut)
	}
	j := p.Jurisdictions[0]
	if j.ID != "acme" || j.Contact != "it@acme.example" || j.Action != "ip" ||
		strings.Join(j.Sinkhole, ",") != "192.0.2.80" || strings.Join(j.Allow, ",") != "docs.a.example" {
		t.Errorf("lists --json acme = %+v", j)
	}
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	cfg := localConfig(t, dir, "a.example\nb.example\n")
	code, out, errOut := jurisdns(t, "validate", "-c", cfg)
	if code != 0 || !strings.HasPrefix(out, cfg+": ok (policy ") || errOut != "" {
		t.Fatalf("validate = %d %q %q", code, out, errOut)
	}

	// Every kind of problem at once: the configuration's own, an upstream,
	// a zone, a list that fails to load and a list with a bad line.
	writeFile(t, dir, "bad.txt", "a.example\nb.example\nbad..line\nc.example\nd.example\ne.example\n")
	broken := writeFile(t, dir, "broken.yaml", `listen: ["127.0.0.1:0"]
upstreams: {servers: ["bogus://x"]}
cache: {min_ttl: 2h, max_ttl: 1h}
default_jurisdictions: [acme]
jurisdictions:
  - id: acme
    title: Acme
    on_load_failure: fail_closed
    sources: [{name: bad, path: bad.txt}, {name: gone, path: missing.txt}]
zones:
  - {name: corp.example., file: nothere.zone}
`)
	code, out, errOut = jurisdns(t, "validate", "-c", broken)
	if code != 1 || out != "" {
		t.Errorf("validate of a broken configuration = %d, stdout %q; want 1 and nothing on stdout", code, out)
	}
	for _, want := range []string{
		`upstreams.servers[0]: "bogus://x"`,
		"cache.min_ttl: 2h0m0s is more than cache.max_ttl",
		"nothere.zone",
		"jurisdictions[0].sources[1] (" + filepath.Join(dir, "missing.txt") + "): open ",
		"warning: jurisdictions[0].sources[0] (" + filepath.Join(dir, "bad.txt") + "): 1 bad line, skipped",
		"  " + filepath.Join(dir, "bad.txt") + `:3: empty label in "bad..line"`,
		broken + ": 4 problems, 1 warning",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("validate stderr lacks %q:\n%s", want, errOut)
		}
	}
	if n := strings.Count(errOut, "upstreams.servers[0]"); n != 1 {
		t.Errorf("the bad upstream is reported %d times, want once:\n%s", n, errOut)
	}

	// Bad lines alone: serve accepts them, so validate reports them and
	// does not say ok; --strict makes them fatal.
	warned := localConfig(t, t.TempDir(), "a.example\nbad..line\nb.example\nc.example\nd.example\n")
	code, out, errOut = jurisdns(t, "validate", "-c", warned)
	if code != 0 || !strings.HasPrefix(out, warned+": valid with 1 warning (policy ") || strings.Contains(out, "ok") ||
		!strings.Contains(errOut, `warning: jurisdictions[0].sources[0]`) || !strings.Contains(errOut, `:2: empty label in "bad..line"`) {
		t.Errorf("validate of a list with a bad line = %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if code, _, _ := jurisdns(t, "validate", "--strict", "-c", warned); code != 1 {
		t.Errorf("validate --strict of a list with a bad line = %d, want 1", code)
	}
}

// TestCachedCopyNote: when a list server accepts and never answers, check,
// lists and validate end within lists.deadline, use the last good copy in
// lists.cache_dir and say so on stderr.
func TestCachedCopyNote(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	hang, served := false, 0
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		h := hang
		served++
		mu.Unlock()
		if h {
			<-release
			return
		}
		_, _ = io.WriteString(w, "remote-listed.example\n")
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	cfg := writeFile(t, dir, "jurisdns.yaml", fmt.Sprintf(`listen: ["127.0.0.1:0"]
upstreams: {servers: ["127.0.0.1:9"]}
lists: {cache_dir: %q, timeout: 300ms, deadline: 800ms}
default_jurisdictions: [remote]
jurisdictions:
  - id: remote
    title: Remote
    sources: [{name: r, url: "%s/list.txt", allow_http: true}]
`, filepath.Join(dir, "cache"), srv.URL))
	if code, out, errOut := jurisdns(t, "validate", "-c", cfg); code != 0 || errOut != "" {
		t.Fatalf("validate with the server up = %d %q %q", code, out, errOut)
	}
	mu.Lock()
	hang = true
	mu.Unlock()
	for _, args := range [][]string{
		{"validate", "-c", cfg},
		{"check", "-c", cfg, "remote-listed.example"},
		{"lists", "-c", cfg},
	} {
		start := time.Now()
		code, out, errOut := jurisdns(t, args...)
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("%v took %v; lists.deadline is 800ms", args, took)
		}
		if code != 0 || !regexp.MustCompile(`list remote/r: using the last good copy from \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(update failed: .*deadline`).MatchString(errOut) {
			t.Errorf("%v = %d\nstdout: %s\nstderr: %s\nwant exit 0 and the last good copy named on stderr", args, code, out, errOut)
		}
		if args[0] == "check" && !strings.Contains(out, "BLOCKED by remote") {
			t.Errorf("check from the cached copy:\n%s", out)
		}
	}

	// --offline: no request at all, the last good copy is checked.
	mu.Lock()
	requests := served
	mu.Unlock()
	code, out, errOut := jurisdns(t, "validate", "--offline", "-c", cfg)
	mu.Lock()
	after := served
	mu.Unlock()
	if code != 0 || after != requests || !strings.Contains(errOut, "list remote/r: offline: checked the last good copy from ") {
		t.Errorf("validate --offline = %d (%d requests)\nstdout: %s\nstderr: %s", code, after-requests, out, errOut)
	}
	// … and a source without a copy yet is not checked, and not a problem.
	fresh := writeFile(t, dir, "fresh.yaml", strings.Replace(readFile(t, cfg), `/cache"`, `/no-copy-yet"`, 1))
	code, out, errOut = jurisdns(t, "validate", "--offline", "-c", fresh)
	if code != 0 || !strings.Contains(errOut, "list remote/r: offline: no last good copy in lists.cache_dir yet, not checked") {
		t.Errorf("validate --offline without a copy = %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// server is a running jurisdns with its admin API, in-process.
type server struct {
	a       *app.App
	cfg     string
	dir     string
	token   string // token file
	adminAt string
}

func startServer(t *testing.T) *server {
	t.Helper()
	up := resolvertest.StartUpstream(t, resolvertest.Echo())
	dir := t.TempDir()
	s := &server{dir: dir, token: writeFile(t, dir, "token", "s3cret-token\n")}
	writeFile(t, dir, "acme.txt", "blocked.example\n")
	s.cfg = writeFile(t, dir, "jurisdns.yaml", fmt.Sprintf(`listen: ["127.0.0.1:0"]
admin: "127.0.0.1:0"
admin_auth: {token_file: %q}
audit: {path: %q}
upstreams: {servers: [%q]}
server: {udp_workers: 1}
default_jurisdictions: [acme]
jurisdictions:
  - id: acme
    title: Acme policy
    sources: [{name: acme, path: acme.txt}]
`, s.token, filepath.Join(dir, "enforcement.log"), up.Addr()))
	a, err := app.New(app.Options{Load: config.LoadOptions{Path: s.cfg, Env: []string{}}, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Shutdown(context.Background()) })
	s.a, s.adminAt = a, a.AdminAddr()
	return s
}

func TestReloadAndStatus(t *testing.T) {
	s := startServer(t)
	// The admin address of the configuration is port 0: pass the real one.
	remote := func(args ...string) (int, string, string) {
		return jurisdns(t, append(args, "-c", s.cfg, "--admin", s.adminAt)...)
	}

	code, out, errOut := remote("status")
	if code != 0 || !strings.Contains(out, "jurisdns "+app.Version+" at http://"+s.adminAt) ||
		!strings.Contains(out, "enforcement log "+filepath.Join(s.dir, "enforcement.log")+": writing, ") ||
		!regexp.MustCompile(`(?m)^acme\s+active\s+local\s+enforce\s+nxdomain\s+15\s+1\s+acme\s+0\s+[0-9a-f]{12}$`).MatchString(out) {
		t.Fatalf("status = %d\n%s%s", code, out, errOut)
	}
	code, out, _ = remote("status", "--json")
	v := checkJSONStyle(t, "status --json", out)
	if code != 0 || len(v["policy_hash"].(string)) != 64 {
		t.Errorf("status --json = %d, policy_hash %v", code, v["policy_hash"])
	}
	before := v["policy_hash"].(string)

	// Without the token: refused, and the error says what to do.
	code, _, errOut = jurisdns(t, "status", "--admin", s.adminAt, "--token-file", "", "-c", writeFile(t, s.dir, "plain.yaml", "admin: \"127.0.0.1:0\"\n"))
	if code != 1 || !strings.Contains(errOut, "wants a bearer token: pass --token-file") {
		t.Errorf("status without a token = %d %q", code, errOut)
	}

	// A reload that changes the list: the new hash and what changed.
	writeFile(t, s.dir, "acme.txt", "blocked.example\nnew.example\n")
	code, out, errOut = remote("reload")
	if code != 0 || !strings.Contains(out, "reloaded: policy ") || !strings.Contains(out, "(was "+before[:12]+")") ||
		!regexp.MustCompile(`(?m)^\s+acme\s+2\s+\+1\s+-0$`).MatchString(out) {
		t.Fatalf("reload = %d\n%s%s", code, out, errOut)
	}
	code, out, _ = remote("reload", "--json")
	rv := checkJSONStyle(t, "reload --json", out)
	if code != 0 || rv["ok"] != true || rv["changed"] != false || rv["policy_hash"] == before {
		t.Errorf("second reload --json = %d %v; want ok, unchanged, a new hash", code, rv)
	}
	if _, ok := rv["took_seconds"].(float64); !ok {
		t.Errorf("reload --json has no took_seconds: %v", rv)
	}

	// A broken configuration: refused, exit 1, the previous policy stays.
	good, _ := os.ReadFile(s.cfg)
	writeFile(t, s.dir, "jurisdns.yaml", string(good)+"cache: {min_ttl: 2h, max_ttl: 1h}\n")
	code, out, _ = remote("reload")
	if code != 1 || !strings.Contains(out, "reload refused; still serving policy ") || !strings.Contains(out, "cache.min_ttl") {
		t.Errorf("reload of a broken configuration = %d\n%s", code, out)
	}
	if got := s.a.Metrics(); got == nil {
		t.Fatal("no metrics")
	}

	// Nothing listens: a clear error.
	code, _, errOut = jurisdns(t, "status", "-c", s.cfg, "--admin", "127.0.0.1:1")
	if code != 1 || !strings.Contains(errOut, "is jurisdns running") {
		t.Errorf("status with nothing listening = %d %q", code, errOut)
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestAuditVerify: the JSON report of a verified enforcement log is in the
// style of every other output.
func TestAuditVerify(t *testing.T) {
	path := filepath.Join(t.TempDir(), "enforcement.log")
	w, err := audit.Open(audit.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		w.Log(audit.Record{Time: time.Now(), Name: "deepseek.com", Type: "A", Jurisdiction: "acme", Action: "nxdomain", Mode: "enforce"})
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := jurisdns(t, "audit", "verify", "--json", path)
	if code != 0 {
		t.Fatalf("audit verify --json = %d %q %q", code, out, errOut)
	}
	checkJSONStyle(t, "audit verify --json", out)
}

// TestProvenance: check names the instrument that decides for the client
// with its public links; lists shows each jurisdiction's instrument and
// source, tw-rednote expired; a Texas client keeps baidu.com, aliyun.com and
// tencent.com.
func TestProvenance(t *testing.T) {
	cfg := writeFile(t, t.TempDir(), "jurisdns.yaml", `listen: ["127.0.0.1:0"]
upstreams: {servers: ["127.0.0.1:9"]}
clients:
  - {name: dc, subnets: [10.9.0.0/16], jurisdictions: [us-gov]}
  - {name: austin, subnets: [10.8.0.0/16], jurisdictions: [us-state-tx]}
`)
	code, out, errOut := jurisdns(t, "check", "-c", cfg, "--client", "10.9.1.1", "chat.deepseek.com")
	if code != 0 || !strings.Contains(out, `instrument "FY2026 NDAA (P.L. 119-60) §1532 and §6604"`) ||
		!strings.Contains(out, "https://www.crowell.com/en/insights/client-alerts/the-fy-2026-national-defense-authorization-act") ||
		!strings.Contains(out, "EDE 16 (Censored): us-gov: FY2026 NDAA") {
		t.Errorf("check us-gov client = %d\n%s%s", code, out, errOut)
	}
	code, out, _ = jurisdns(t, "check", "-c", cfg, "chat.deepseek.com")
	if code != 0 || !strings.Contains(out, "EDE 15 (Blocked): ai-deepseek: Operator policy") {
		t.Errorf("check unmapped client = %d\n%s", code, out)
	}
	for _, name := range []string{"baidu.com", "aliyun.com", "tencent.com"} {
		if code, out, _ := jurisdns(t, "check", "-c", cfg, "--client", "10.8.1.1", name); code != 0 || !strings.Contains(out, name+": NOT BLOCKED") {
			t.Errorf("check %s for a Texas client = %d\n%s", name, code, out)
		}
	}
	code, out, errOut = jurisdns(t, "lists", "-c", cfg)
	if code != 0 || !regexp.MustCompile(`(?m)^tw-rednote\s+expired 2026-12-04T00:00:00\+08:00\s`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^us-state-la\s+active\s`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^\s+tw-rednote\s+MOI order .*https://www\.taipeitimes\.com/News/front/archives/2025/12/05/2003848348$`).MatchString(out) {
		t.Errorf("lists = %d\n%s%s", code, out, errOut)
	}
}

package deploy

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
	corev1 "k8s.io/api/core/v1"

	"github.com/jurisdns/jurisdns/config"
	"github.com/jurisdns/jurisdns/internal/testtool"
)

// kubeletServiceEnv is what the kubelet injects into every pod of a
// namespace for each Service in it while the pod's enableServiceLinks is
// true (the default): the {SVCNAME}_SERVICE_* variables and the Docker-link
// style {SVCNAME}_PORT* ones (pkg/kubelet/envvars in Kubernetes). The
// Services carry no clusterIP in the manifests; the API server assigns one,
// here 10.96.0.10, 10.96.0.11, ... in file order. Headless Services
// (clusterIP None) get no variables.
func kubeletServiceEnv(services []*corev1.Service) []string {
	var env []string
	for i, s := range services {
		ip := s.Spec.ClusterIP
		if ip == corev1.ClusterIPNone {
			continue
		}
		if ip == "" {
			ip = fmt.Sprintf("10.96.0.%d", 10+i)
		}
		name := strings.ToUpper(strings.ReplaceAll(s.Name, "-", "_"))
		if len(s.Spec.Ports) == 0 {
			continue
		}
		first := s.Spec.Ports[0]
		env = append(env,
			name+"_SERVICE_HOST="+ip,
			fmt.Sprintf("%s_SERVICE_PORT=%d", name, first.Port))
		for _, p := range s.Spec.Ports {
			if p.Name != "" {
				pn := strings.ToUpper(strings.ReplaceAll(p.Name, "-", "_"))
				env = append(env, fmt.Sprintf("%s_SERVICE_PORT_%s=%d", name, pn, p.Port))
			}
		}
		url := func(p corev1.ServicePort) string {
			proto := strings.ToLower(string(p.Protocol))
			if proto == "" {
				proto = "tcp"
			}
			return fmt.Sprintf("%s://%s", proto, net.JoinHostPort(ip, fmt.Sprint(p.Port)))
		}
		env = append(env, name+"_PORT="+url(first))
		for _, p := range s.Spec.Ports {
			proto := string(p.Protocol)
			if proto == "" {
				proto = "TCP"
			}
			prefix := fmt.Sprintf("%s_PORT_%d_%s", name, p.Port, strings.ToUpper(proto))
			env = append(env,
				prefix+"="+url(p),
				prefix+"_PROTO="+strings.ToLower(proto),
				fmt.Sprintf("%s_PORT=%d", prefix, p.Port),
				prefix+"_ADDR="+ip)
		}
	}
	return env
}

// TestEnableServiceLinksOff: every pod template of the manifests turns the
// service-link variables off (a Service named jurisdns would otherwise give
// its pods JURISDNS_SERVICE_HOST and the like).
func TestEnableServiceLinksOff(t *testing.T) {
	for _, ms := range loadManifests(t) {
		for _, p := range podTemplates(ms) {
			if p.spec.EnableServiceLinks == nil || *p.spec.EnableServiceLinks {
				t.Errorf("%s: set enableServiceLinks: false (the kubelet injects JURISDNS_* variables for Services named jurisdns*)", p.where)
			}
		}
	}
}

// TestServiceLinkVariables: with exactly the variables a kubelet injects for
// the Services of cluster.yaml (as if enableServiceLinks were left on),
// `jurisdns serve` starts and answers, `jurisdns health` says ok and
// `jurisdns validate` passes, and none of them warns about the variables;
// only `validate --strict-env` refuses a real typo, never a service link.
func TestServiceLinkVariables(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the jurisdns binary")
	}
	ms := loadManifests(t)[filepath.Join("kubernetes", "cluster.yaml")]
	var services []*corev1.Service
	for _, m := range ms {
		if s, ok := m.obj.(*corev1.Service); ok {
			services = append(services, s)
		}
	}
	links := kubeletServiceEnv(services)
	for _, want := range []string{"JURISDNS_SERVICE_HOST=", "JURISDNS_PORT=udp://", "JURISDNS_PORT_53_UDP_ADDR=", "JURISDNS_OFFICE_SERVICE_PORT_DNS_TCP=53"} {
		if !slices.ContainsFunc(links, func(s string) bool { return strings.HasPrefix(s, want) }) {
			t.Fatalf("derived service-link variables %v lack %s", links, want)
		}
	}
	jcs := jurisdnsContainers(t, ms)
	if len(jcs) != 1 {
		t.Fatalf("%d jurisdns containers, want 1", len(jcs))
	}
	jc := jcs[0]
	dir := t.TempDir()
	bin := testtool.BuildJurisdns(t, dir)

	// The list server of the ConfigMap is outside; a loopback one serves the
	// same list so that nothing leaves the machine.
	lists := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "deepseek.com\n")
	}))
	t.Cleanup(lists.Close)
	cfgPath := localConfig(t, jc, ms, dir, lists.URL)

	dnsAddr, adminAddr := testtool.FreeAddr(t), testtool.FreeAddr(t)
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	env = append(env, imageEnv(t)...)
	for _, e := range jc.c.Env {
		if e.Name != config.EnvConfig {
			env = append(env, e.Name+"="+e.Value)
		}
	}
	env = append(env, links...)
	env = append(env,
		config.EnvConfig+"="+cfgPath,
		"JURISDNS_LISTEN="+dnsAddr,
		"JURISDNS_ADMIN="+adminAddr,
		"JURISDNS_UPSTREAMS_SERVERS=127.0.0.1:9", // never queried: only local names are asked
		"JURISDNS_LISTS_CACHE_DIR="+filepath.Join(dir, "lists"),
		"JURISDNS_AUDIT_PATH="+filepath.Join(dir, "enforcement.log"),
	)

	run := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run("validate"); err != nil || strings.Contains(out, "JURISDNS_") {
		t.Fatalf("jurisdns validate with the kubelet's variables: %v\n%s", err, out)
	}
	if out, err := run("validate", "--strict-env"); err != nil {
		t.Fatalf("jurisdns validate --strict-env refuses service-link variables: %v\n%s", err, out)
	}

	var stderr testtool.Output // written by exec's copying goroutine, read by the test
	serve := exec.Command(bin, "serve")
	serve.Env = env
	serve.Stdout, serve.Stderr = &stderr, &stderr
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- serve.Wait() }()
	t.Cleanup(func() {
		_ = serve.Process.Kill()
		<-done
	})
	ready := false
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && !ready; {
		select {
		case err := <-done:
			done <- err // for the cleanup's wait
			t.Fatalf("jurisdns serve exited with the kubelet's variables: %v\n%s", err, stderr.String())
		case <-time.After(100 * time.Millisecond):
		}
		resp, err := http.Get("http://" + adminAddr + "/readyz")
		if err == nil {
			ready = resp.StatusCode == http.StatusOK
			resp.Body.Close()
		}
	}
	if !ready {
		t.Fatalf("jurisdns serve not ready within 30 s\n%s", stderr.String())
	}
	if out, err := run("health"); err != nil || strings.TrimSpace(out) != "ok" {
		t.Fatalf("jurisdns health with the kubelet's variables: %v\n%s", err, out)
	}
	req, err := http.NewRequest(http.MethodGet, "http://"+adminAddr+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer test-token") // localConfig's token
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	metricsText, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	wantMetric := fmt.Sprintf(`jurisdns_config_unknown_env_variables{kind="service_link"} %d`, len(links))
	if !strings.Contains(string(metricsText), wantMetric) {
		t.Errorf("/metrics lacks %q", wantMetric)
	}
	if strings.Contains(stderr.String(), "JURISDNS_SERVICE") || strings.Contains(stderr.String(), "JURISDNS_PORT") {
		t.Errorf("serve warned about service-link variables:\n%s", stderr.String())
	}

	// A typo beside the links: a warning, never a refusal, but for --strict-env.
	env = append(env, "JURISDNS_CACHE_SIZ=5")
	out, err := run("validate")
	if err != nil || !strings.Contains(out, "JURISDNS_CACHE_SIZ: unknown environment variable, ignored (did you mean JURISDNS_CACHE_SIZE?)") {
		t.Errorf("validate with a typo: %v, want ok with a did-you-mean warning\n%s", err, out)
	}
	out, err = run("validate", "--strict-env")
	if err == nil || !strings.Contains(out, "JURISDNS_CACHE_SIZ") || strings.Contains(out, "JURISDNS_SERVICE_HOST") {
		t.Errorf("validate --strict-env with a typo: %v, want a failure naming only the typo\n%s", err, out)
	}
}

// localConfig writes the container's ConfigMap file with every URL source
// pointed at listURL (plain HTTP on loopback, so allow_http) and returns its
// path.
func localConfig(t *testing.T, jc jurisdnsContainer, ms []manifest, dir, listURL string) string {
	t.Helper()
	var cfgPath string
	for _, e := range jc.c.Env {
		if e.Name == config.EnvConfig {
			cfgPath = e.Value
		}
	}
	var data string
	for _, m := range ms {
		if cm, ok := m.obj.(*corev1.ConfigMap); ok {
			if d, ok := cm.Data[path.Base(cfgPath)]; ok {
				data = d
			}
		}
	}
	if data == "" {
		t.Fatalf("no ConfigMap holds %s", cfgPath)
	}
	var doc map[string]any
	if err := yaml.Unmarshal([]byte(data), &doc); err != nil {
		t.Fatal(err)
	}
	js, _ := doc["jurisdictions"].([]any)
	for _, j := range js {
		srcs, _ := j.(map[string]any)["sources"].([]any)
		for _, s := range srcs {
			src := s.(map[string]any)
			if _, ok := src["url"]; ok {
				src["url"] = listURL + "/list.txt"
				src["allow_http"] = true
			}
		}
	}
	// The admin token comes from a Secret mounted in the pod: a file here.
	if auth, ok := doc["admin_auth"].(map[string]any); ok && auth["token_file"] != nil {
		tok := filepath.Join(dir, "admin-token")
		if err := os.WriteFile(tok, []byte("test-token\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		auth["token_file"] = tok
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(p, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

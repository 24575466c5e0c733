// Package deploy holds the files that install jurisdns: the systemd unit
// and the Kubernetes manifests. Its tests decode every manifest strictly
// into the Kubernetes API types, so that a typo fails CI, and check that
// what the files promise holds: the configuration each container gets
// (image environment, container environment, ConfigMap) passes validate,
// probes, ports and writable paths agree with it, and the unit has the
// hardening docs/office.md describes.
package deploy

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"

	"github.com/jurisdns/jurisdns/app"
	"github.com/jurisdns/jurisdns/config"
	"github.com/jurisdns/jurisdns/internal/testtool"
)

// manifest is one decoded YAML document.
type manifest struct {
	file string
	doc  int
	kind string
	obj  any
}

func (m manifest) String() string { return fmt.Sprintf("%s#%d (%s)", m.file, m.doc, m.kind) }

// decodeStrict decodes one document into the API type of its kind,
// refusing unknown and duplicate fields.
func decodeStrict(data []byte) (string, any, error) {
	var tm struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := yaml.Unmarshal(data, &tm); err != nil {
		return "", nil, err
	}
	var obj any
	switch tm.APIVersion + "/" + tm.Kind {
	case "v1/ConfigMap":
		obj = &corev1.ConfigMap{}
	case "v1/Pod":
		obj = &corev1.Pod{}
	case "v1/Service":
		obj = &corev1.Service{}
	case "v1/ServiceAccount":
		obj = &corev1.ServiceAccount{}
	case "v1/Secret":
		obj = &corev1.Secret{}
	case "apps/v1/Deployment":
		obj = &appsv1.Deployment{}
	case "apps/v1/DaemonSet":
		obj = &appsv1.DaemonSet{}
	case "policy/v1/PodDisruptionBudget":
		obj = &policyv1.PodDisruptionBudget{}
	default:
		return "", nil, fmt.Errorf("apiVersion %q kind %q: not a kind this test knows (add it to decodeStrict)", tm.APIVersion, tm.Kind)
	}
	if err := yaml.UnmarshalStrict(data, obj); err != nil {
		return "", nil, err
	}
	return tm.Kind, obj, nil
}

// splitDocuments splits a multi-document YAML stream at "---" lines and
// drops documents that hold only comments.
func splitDocuments(data []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	flush := func() {
		content := false
		for line := range strings.SplitSeq(cur.String(), "\n") {
			if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "#") {
				content = true
				break
			}
		}
		if content {
			docs = append(docs, bytes.Clone(cur.Bytes()))
		}
		cur.Reset()
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if strings.TrimRight(line, " \t\r") == "---" {
			flush()
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
	}
	flush()
	return docs
}

// loadManifests decodes every manifest under kubernetes/.
func loadManifests(t *testing.T) map[string][]manifest {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("kubernetes", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 {
		t.Fatalf("found %v; want the sidecar and cluster manifests at least", files)
	}
	out := map[string][]manifest{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range splitDocuments(data) {
			kind, obj, err := decodeStrict(doc)
			if err != nil {
				t.Errorf("%s document %d: %v", f, i+1, err)
				continue
			}
			out[f] = append(out[f], manifest{file: f, doc: i + 1, kind: kind, obj: obj})
		}
	}
	return out
}

// TestManifestsDecodeStrictly is the typo check: every document of every
// manifest decodes into its Kubernetes API type with no unknown field.
func TestManifestsDecodeStrictly(t *testing.T) {
	for f, ms := range loadManifests(t) {
		for _, m := range ms {
			if name := objectName(m.obj); name == "" {
				t.Errorf("%s: no metadata.name", m)
			}
		}
		if len(ms) == 0 {
			t.Errorf("%s: no manifest", f)
		}
	}
}

// TestStrictDecodingCatchesTypos makes sure the check above bites.
func TestStrictDecodingCatchesTypos(t *testing.T) {
	for _, doc := range []string{
		"apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  dnsPolicy: None\n  dnsConfg: {nameservers: [127.0.0.1]}\n",
		"apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  ports: [{port: 53, protocl: UDP}]\n",
		"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  replicas: three\n",
		"apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nmetadata: {name: q}\n",
		"apiVersion: v1\nkind: Pdo\nmetadata: {name: p}\n",
	} {
		if _, _, err := decodeStrict([]byte(doc)); err == nil {
			t.Errorf("decoded without error:\n%s", doc)
		}
	}
}

func objectName(obj any) string {
	switch o := obj.(type) {
	case *corev1.ConfigMap:
		return o.Name
	case *corev1.Pod:
		return o.Name
	case *corev1.Service:
		return o.Name
	case *corev1.ServiceAccount:
		return o.Name
	case *corev1.Secret:
		return o.Name
	case *appsv1.Deployment:
		return o.Name
	case *appsv1.DaemonSet:
		return o.Name
	case *policyv1.PodDisruptionBudget:
		return o.Name
	}
	return ""
}

// podTemplate is a pod spec with the labels its pods get.
type podTemplate struct {
	where  string
	labels map[string]string
	spec   *corev1.PodSpec
}

func podTemplates(ms []manifest) []podTemplate {
	var out []podTemplate
	for _, m := range ms {
		switch o := m.obj.(type) {
		case *corev1.Pod:
			out = append(out, podTemplate{m.String(), o.Labels, &o.Spec})
		case *appsv1.Deployment:
			out = append(out, podTemplate{m.String(), o.Spec.Template.Labels, &o.Spec.Template.Spec})
		case *appsv1.DaemonSet:
			out = append(out, podTemplate{m.String(), o.Spec.Template.Labels, &o.Spec.Template.Spec})
		}
	}
	return out
}

// imageEnv reads the ENV lines of the Dockerfile: the image's environment,
// which a container's env adds to.
func imageEnv(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	final := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "FROM ") {
			env, final = nil, true // only the last stage's ENV reaches the image
			continue
		}
		rest, ok := strings.CutPrefix(line, "ENV ")
		if !final || !ok {
			continue
		}
		k, v, ok := strings.Cut(strings.TrimSpace(rest), "=")
		if !ok || strings.ContainsAny(v, " \\") && !strings.HasPrefix(v, `"`) {
			t.Fatalf("Dockerfile: cannot read %q (one KEY=value per ENV line)", line)
		}
		env = append(env, k+"="+strings.Trim(v, `"`))
	}
	return env
}

// jurisdnsContainer is a jurisdns container with the configuration it
// gets: the ConfigMap files laid out in a temporary directory, the image's
// and the container's environment.
type jurisdnsContainer struct {
	where string
	pod   podTemplate
	c     *corev1.Container
	cfg   *config.Config
}

// jurisdnsContainers finds every jurisdns container of a manifest file and
// loads its configuration as `jurisdns validate` would inside the pod.
func jurisdnsContainers(t *testing.T, ms []manifest) []jurisdnsContainer {
	t.Helper()
	configMaps := map[string]*corev1.ConfigMap{}
	for _, m := range ms {
		if cm, ok := m.obj.(*corev1.ConfigMap); ok {
			configMaps[cm.Name] = cm
		}
	}
	var out []jurisdnsContainer
	for _, p := range podTemplates(ms) {
		for _, list := range [][]corev1.Container{p.spec.InitContainers, p.spec.Containers} {
			for i := range list {
				c := &list[i]
				if !strings.Contains(c.Image, "jurisdns") {
					continue
				}
				where := p.where + " container " + c.Name
				out = append(out, jurisdnsContainer{where: where, pod: p, c: c, cfg: containerConfig(t, where, p.spec, c, configMaps)})
			}
		}
	}
	return out
}

func containerConfig(t *testing.T, where string, spec *corev1.PodSpec, c *corev1.Container, configMaps map[string]*corev1.ConfigMap) *config.Config {
	t.Helper()
	env := imageEnv(t)
	cfgPath := ""
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			t.Errorf("%s: env %s comes from valueFrom; the test cannot check it", where, e.Name)
			continue
		}
		if e.Name == config.EnvConfig {
			cfgPath = e.Value
			continue
		}
		env = append(env, e.Name+"="+e.Value)
	}
	for _, a := range append(slices.Clone(c.Command), c.Args...) {
		if strings.HasPrefix(a, "-") {
			t.Errorf("%s: flag %s: configure through JURISDNS_* so that `jurisdns health` sees the same configuration", where, a)
		}
	}
	if cfgPath == "" {
		t.Fatalf("%s: no %s: where is the configuration?", where, config.EnvConfig)
	}
	// Find the ConfigMap volume mounted at the file's directory.
	var cm *corev1.ConfigMap
	for _, vm := range c.VolumeMounts {
		if path.Dir(cfgPath) != path.Clean(vm.MountPath) {
			continue
		}
		if vm.SubPath != "" {
			t.Errorf("%s: the configuration volume is mounted with subPath, which the kubelet never updates", where)
		}
		for _, v := range spec.Volumes {
			if v.Name == vm.Name && v.ConfigMap != nil {
				cm = configMaps[v.ConfigMap.Name]
				if cm == nil {
					t.Fatalf("%s: ConfigMap %q is not in the same file", where, v.ConfigMap.Name)
				}
			}
		}
	}
	if cm == nil {
		t.Fatalf("%s: %s=%s is not in a mounted ConfigMap", where, config.EnvConfig, cfgPath)
	}
	dir := t.TempDir()
	for name, content := range cm.Data {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	local := filepath.Join(dir, path.Base(cfgPath))
	cfg, err := app.LoadConfig(config.LoadOptions{Path: local, Env: env})
	if err != nil {
		t.Fatalf("%s: jurisdns validate fails with the image's and the container's environment:\n%v", where, err)
	}
	if !hasURLSource(cfg) {
		// With URL sources validate would download them; the test stays
		// off the network and checks the configuration alone.
		if _, err := app.BuildPolicy(context.Background(), cfg); err != nil {
			t.Errorf("%s: jurisdns validate: %v", where, err)
		}
	}
	return cfg
}

func hasURLSource(cfg *config.Config) bool {
	for _, j := range cfg.Jurisdictions {
		for _, s := range j.Sources {
			if s.URL != "" {
				return true
			}
		}
	}
	return false
}

// portOf resolves a probe or Service port (a number or a container port
// name) to a number.
func portOf(c *corev1.Container, port string) (int32, bool) {
	for _, p := range c.Ports {
		if p.Name == port || fmt.Sprint(p.ContainerPort) == port {
			return p.ContainerPort, true
		}
	}
	var n int32
	if _, err := fmt.Sscan(port, &n); err == nil {
		return n, true
	}
	return 0, false
}

func listenPort(t *testing.T, where, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	return port
}

// TestJurisdnsContainers checks every jurisdns container: its configuration
// validates, it runs as non-root with a read-only root filesystem and no
// capabilities, it writes only to writable volumes, probes hit /readyz and
// /healthz on the admin port, resources are set.
func TestJurisdnsContainers(t *testing.T) {
	found := 0
	for _, ms := range loadManifests(t) {
		for _, jc := range jurisdnsContainers(t, ms) {
			found++
			c, cfg, where := jc.c, jc.cfg, jc.where
			sc := c.SecurityContext
			if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				t.Errorf("%s: readOnlyRootFilesystem is not true", where)
			}
			if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				t.Errorf("%s: allowPrivilegeEscalation is not false", where)
			}
			if sc == nil || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
				t.Errorf("%s: capabilities should drop ALL and add none", where)
			}
			nonRoot := sc != nil && sc.RunAsNonRoot != nil && *sc.RunAsNonRoot
			if psc := jc.pod.spec.SecurityContext; psc != nil && psc.RunAsNonRoot != nil && *psc.RunAsNonRoot {
				nonRoot = true
			}
			if !nonRoot {
				t.Errorf("%s: runAsNonRoot is not set", where)
			}
			if _, ok := c.Resources.Requests[corev1.ResourceMemory]; !ok {
				t.Errorf("%s: no memory request", where)
			}
			if _, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok {
				t.Errorf("%s: no memory limit", where)
			}

			// Ports below 1024 need the sysctl for a non-root user.
			for _, l := range cfg.Listen {
				var port int
				fmt.Sscan(listenPort(t, where, l), &port)
				if port >= 1024 {
					continue
				}
				ok := false
				if psc := jc.pod.spec.SecurityContext; psc != nil {
					for _, s := range psc.Sysctls {
						var start int
						fmt.Sscan(s.Value, &start)
						ok = ok || s.Name == "net.ipv4.ip_unprivileged_port_start" && start <= port
					}
				}
				if !ok {
					t.Errorf("%s: listens on %s as non-root without net.ipv4.ip_unprivileged_port_start <= %d", where, l, port)
				}
			}

			// Probes on the admin listener, which must not be loopback-only.
			if cfg.Admin == "" {
				t.Fatalf("%s: admin is off; the probes need it", where)
			}
			host, adminPort, _ := net.SplitHostPort(cfg.Admin)
			if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() || host == "localhost" {
				t.Errorf("%s: admin %s is loopback-only; the kubelet probes the pod IP", where, cfg.Admin)
			}
			// Off loopback, the admin listener needs its token, from a
			// Secret (not the ConfigMap, which anyone reading the
			// namespace's configuration sees).
			if cfg.AdminAuth.TokenFile == "" {
				t.Errorf("%s: admin %s is on the pod IP without admin_auth.token_file", where, cfg.Admin)
			} else if !fromSecret(jc.pod.spec, c, cfg.AdminAuth.TokenFile) {
				t.Errorf("%s: admin_auth.token_file %s is not on a volume from a Secret", where, cfg.AdminAuth.TokenFile)
			}
			for _, pr := range []struct {
				name, path string
				p          *corev1.Probe
			}{
				{"readinessProbe", "/readyz", c.ReadinessProbe},
				{"livenessProbe", "/healthz", c.LivenessProbe},
			} {
				if pr.p == nil || pr.p.HTTPGet == nil {
					t.Errorf("%s: no HTTP %s", where, pr.name)
					continue
				}
				if pr.p.HTTPGet.Path != pr.path {
					t.Errorf("%s: %s path %s, want %s", where, pr.name, pr.p.HTTPGet.Path, pr.path)
				}
				if n, ok := portOf(c, pr.p.HTTPGet.Port.String()); !ok || fmt.Sprint(n) != adminPort {
					t.Errorf("%s: %s port %s is not the admin port %s", where, pr.name, pr.p.HTTPGet.Port.String(), adminPort)
				}
			}

			// What jurisdns writes must be on a writable volume.
			var writable []string
			for _, path := range []string{cfg.Lists.CacheDir, cfg.Audit.Path, cfg.Audit.QueryLog} {
				if path != "" {
					writable = append(writable, path)
				}
			}
			for _, w := range writable {
				ok := false
				for _, vm := range c.VolumeMounts {
					if !vm.ReadOnly && strings.HasPrefix(w, strings.TrimSuffix(vm.MountPath, "/")+"/") {
						ok = true
					}
				}
				if !ok {
					t.Errorf("%s: %s is not on a writable volume (the root filesystem is read-only)", where, w)
				}
			}
		}
	}
	if found < 2 {
		t.Errorf("found %d jurisdns containers, want the sidecar and the cluster one", found)
	}
}

// TestSidecar checks the sidecar pod: the application's only nameserver is
// jurisdns on 127.0.0.1:53, which serves loopback only, and the ConfigMap
// holds examples/sidecar.yaml as it is.
func TestSidecar(t *testing.T) {
	ms := loadManifests(t)[filepath.Join("kubernetes", "sidecar.yaml")]
	var pod *corev1.Pod
	for _, m := range ms {
		switch o := m.obj.(type) {
		case *corev1.Pod:
			pod = o
		case *corev1.ConfigMap:
			want, err := os.ReadFile(filepath.Join("..", "examples", "sidecar.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			if o.Data["config.yaml"] != string(want) {
				t.Errorf("ConfigMap %s config.yaml differs from examples/sidecar.yaml; keep them equal", o.Name)
			}
		}
	}
	if pod == nil {
		t.Fatal("no Pod in sidecar.yaml")
	}
	if pod.Spec.DNSPolicy != corev1.DNSNone {
		t.Errorf("dnsPolicy %q, want None", pod.Spec.DNSPolicy)
	}
	if pod.Spec.DNSConfig == nil || !slices.Equal(pod.Spec.DNSConfig.Nameservers, []string{"127.0.0.1"}) {
		t.Errorf("dnsConfig.nameservers = %v, want [127.0.0.1]", pod.Spec.DNSConfig)
	}
	jcs := jurisdnsContainers(t, ms)
	if len(jcs) != 1 {
		t.Fatalf("%d jurisdns containers in the sidecar pod, want 1", len(jcs))
	}
	cfg := jcs[0].cfg
	if !slices.Equal(cfg.Listen, []string{"127.0.0.1:53"}) {
		t.Errorf("the sidecar listens on %v, want [127.0.0.1:53]", cfg.Listen)
	}
	for _, a := range cfg.Access.Allow {
		if !strings.HasPrefix(a, "127.") && a != "::1/128" {
			t.Errorf("access.allow %s: a sidecar serves its pod only", a)
		}
	}
	if len(cfg.Upstreams.Servers) == 0 {
		t.Error("upstreams.servers is empty: the pod's resolv.conf names jurisdns itself, so the upstream must be explicit")
	}
}

// TestCluster checks the cluster deployment: Services and the
// PodDisruptionBudget select the jurisdns pods, Service target ports are
// the DNS ports jurisdns listens on, over UDP and TCP.
func TestCluster(t *testing.T) {
	ms := loadManifests(t)[filepath.Join("kubernetes", "cluster.yaml")]
	jcs := jurisdnsContainers(t, ms)
	if len(jcs) != 1 {
		t.Fatalf("%d jurisdns containers, want 1", len(jcs))
	}
	jc := jcs[0]
	selects := func(sel map[string]string) bool {
		if len(sel) == 0 {
			return false
		}
		for k, v := range sel {
			if jc.pod.labels[k] != v {
				return false
			}
		}
		return true
	}
	var services, pdbs int
	for _, m := range ms {
		switch o := m.obj.(type) {
		case *corev1.Service:
			services++
			if !selects(o.Spec.Selector) {
				t.Errorf("%s: selector %v does not select the jurisdns pods %v", m, o.Spec.Selector, jc.pod.labels)
			}
			protos := map[corev1.Protocol]bool{}
			for _, p := range o.Spec.Ports {
				protos[p.Protocol] = true
				n, ok := portOf(jc.c, p.TargetPort.String())
				if !ok {
					t.Errorf("%s: targetPort %s is not a port of the container", m, p.TargetPort.String())
					continue
				}
				listening := false
				for _, l := range jc.cfg.Listen {
					listening = listening || listenPort(t, m.String(), l) == fmt.Sprint(n)
				}
				if !listening {
					t.Errorf("%s: targetPort %s (%d) is not a port jurisdns listens on (%v)", m, p.TargetPort.String(), n, jc.cfg.Listen)
				}
			}
			if !protos[corev1.ProtocolUDP] || !protos[corev1.ProtocolTCP] {
				t.Errorf("%s: DNS needs both UDP and TCP ports", m)
			}
			if o.Spec.Type == corev1.ServiceTypeLoadBalancer && o.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyLocal {
				t.Errorf("%s: a LoadBalancer without externalTrafficPolicy Local hides client addresses, and so their jurisdictions", m)
			}
		case *policyv1.PodDisruptionBudget:
			pdbs++
			if o.Spec.Selector == nil || !selects(o.Spec.Selector.MatchLabels) {
				t.Errorf("%s: selector does not select the jurisdns pods", m)
			}
		case *appsv1.Deployment:
			if o.Spec.Selector == nil || !selects(o.Spec.Selector.MatchLabels) {
				t.Errorf("%s: selector does not select its own pods", m)
			}
			if o.Spec.Replicas == nil || *o.Spec.Replicas < 2 {
				t.Errorf("%s: fewer than 2 replicas", m)
			}
		}
	}
	if services == 0 || pdbs == 0 {
		t.Errorf("%d Services and %d PodDisruptionBudgets, want at least one of each", services, pdbs)
	}
}

// unitDirectives parses a systemd unit: section.Key → values in order.
func unitDirectives(t *testing.T, file string) map[string][]string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	section := ""
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.Trim(line, "[]")
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not a directive: %q", file, i+1, line)
			}
			out[section+"."+strings.TrimSpace(k)] = append(out[section+"."+strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	return out
}

// TestSystemdUnit checks the unit docs/office.md installs: a dedicated
// user with CAP_NET_BIND_SERVICE only, validate before start, SIGHUP on
// reload, the hardening, and write access to exactly what the office
// example writes (its list cache and enforcement log). systemd-analyze
// verify checks the syntax (a missing systemd-analyze skips that part
// locally and fails where every tool is required, see internal/testtool).
func TestSystemdUnit(t *testing.T) {
	file := filepath.Join("systemd", "jurisdns.service")
	d := unitDirectives(t, file)
	one := func(key string) string {
		if len(d[key]) != 1 {
			t.Errorf("%s: %s set %d times, want once", file, key, len(d[key]))
			return ""
		}
		return d[key][0]
	}
	for key, want := range map[string]string{
		"Service.User":                  "jurisdns",
		"Service.AmbientCapabilities":   "CAP_NET_BIND_SERVICE",
		"Service.CapabilityBoundingSet": "CAP_NET_BIND_SERVICE",
		"Service.NoNewPrivileges":       "true",
		"Service.ProtectSystem":         "strict",
		"Service.ProtectHome":           "true",
		"Service.ExecReload":            "/bin/kill -HUP $MAINPID",
		"Install.WantedBy":              "multi-user.target",
	} {
		if got := one(key); got != want {
			t.Errorf("%s: %s=%s, want %s", file, key, got, want)
		}
	}
	start := strings.Fields(one("Service.ExecStart"))
	pre := strings.Fields(one("Service.ExecStartPre"))
	if len(start) < 2 || len(pre) < 3 || pre[0] != start[0] || pre[1] != "validate" || pre[2] != "--offline" || start[1] != "serve" {
		t.Fatalf("%s: ExecStartPre should be `%s validate --offline` (no list download may delay the start) with the options of ExecStart (`serve ...`): %q / %q", file, start[0], pre, start)
	}
	pre = append(pre[:2:2], pre[3:]...)
	if !slices.Equal(pre[2:], start[2:]) {
		t.Errorf("%s: ExecStartPre validates %q but ExecStart serves %q", file, pre[2:], start[2:])
	}
	cfgFile := ""
	for i, a := range start {
		if a == "--config" && i+1 < len(start) {
			cfgFile = start[i+1]
		}
	}
	if cfgFile == "" {
		t.Fatalf("%s: ExecStart has no --config", file)
	}

	// The office example installed as that file writes only where the unit
	// allows it.
	cfg, err := app.LoadConfig(config.LoadOptions{Path: filepath.Join("..", "examples", "office.yaml"), Env: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	var rw []string
	for _, v := range d["Service.ReadWritePaths"] {
		rw = append(rw, strings.Fields(v)...)
	}
	for _, w := range []string{cfg.Lists.CacheDir, cfg.Audit.Path, cfg.Audit.QueryLog} {
		if w == "" {
			continue
		}
		ok := false
		for _, p := range rw {
			ok = ok || strings.HasPrefix(w, strings.TrimSuffix(strings.TrimPrefix(p, "-"), "/")+"/")
		}
		if !ok {
			t.Errorf("%s: examples/office.yaml writes %s, outside ReadWritePaths %v", file, w, rw)
		}
	}

	analyze := testtool.Need(t, "systemd-analyze", "systemd")
	// verify wants the executables to exist: point them at /bin/true.
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(t.TempDir(), "jurisdns.service")
	if err := os.WriteFile(tmp, bytes.ReplaceAll(data, []byte(start[0]), []byte("/bin/true")), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", tmp).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify %s: %v\n%s", file, err, out)
	}
}

// fromSecret reports whether path lies on a volume of c mounted from a
// Secret.
func fromSecret(spec *corev1.PodSpec, c *corev1.Container, path string) bool {
	for _, vm := range c.VolumeMounts {
		if !strings.HasPrefix(path, strings.TrimSuffix(vm.MountPath, "/")+"/") {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name == vm.Name && v.Secret != nil && v.Secret.SecretName != "" {
				return true
			}
		}
	}
	return false
}

package app_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/app"
	"github.com/jurisdns/jurisdns/config"
)

// watchWaitLimit bounds waits for a reload, so that a broken test fails
// instead of hanging; nothing is measured against it.
const watchWaitLimit = 30 * time.Second

// watchConfig is a configuration that blocks one name for every client,
// under a jurisdiction named after it. The upstream is never asked: the
// test queries blocked names only.
func watchConfig(id, name string) string {
	return fmt.Sprintf(`listen: ["127.0.0.1:0"]
admin: ""
upstreams: {servers: ["127.0.0.1:9"]}
default_jurisdictions: [%s]
jurisdictions:
  - id: %s
    title: %s policy
    tier: local
    ede: 15
    sources: [{name: names, path: names.txt}]
`, id, id, id) + "# " + name + "\n"
}

// watchMsgs captures log messages for the test to wait on.
type watchMsgs struct {
	mu   sync.Mutex
	msgs []string
	more chan struct{}
}

func (w *watchMsgs) Enabled(context.Context, slog.Level) bool { return true }
func (w *watchMsgs) WithAttrs([]slog.Attr) slog.Handler       { return w }
func (w *watchMsgs) WithGroup(string) slog.Handler            { return w }
func (w *watchMsgs) Handle(_ context.Context, r slog.Record) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, r.Message)
	close(w.more)
	w.more = make(chan struct{})
	return nil
}

// wait returns once a message starting with prefix was logged after the
// first `from` messages, and the number of messages so far.
func (w *watchMsgs) wait(t *testing.T, from int, prefix string) int {
	t.Helper()
	limit := time.After(watchWaitLimit)
	for {
		w.mu.Lock()
		for i := from; i < len(w.msgs); i++ {
			if strings.HasPrefix(w.msgs[i], prefix) {
				n := len(w.msgs)
				w.mu.Unlock()
				return n
			}
		}
		more := w.more
		w.mu.Unlock()
		select {
		case <-more:
		case <-limit:
			t.Fatalf("no log message %q", prefix)
		}
	}
}

func (w *watchMsgs) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.msgs)
}

// TestWatchConfigReloadsOnConfigMapSwap runs an App from a directory laid
// out like a mounted ConfigMap (config.yaml -> ..data/config.yaml, ..data ->
// ..2026_…) and swaps ..data as the kubelet does: the new configuration
// and list apply as after a SIGHUP; a broken version is refused and the
// running policy keeps serving; with the option off nothing is watched.
func TestWatchConfigReloadsOnConfigMapSwap(t *testing.T) {
	dir := t.TempDir()
	version := 0
	swap := func(files map[string]string) {
		t.Helper()
		version++
		ts := fmt.Sprintf("..2026_01_02_03_04_%02d.%09d", version, version)
		if err := os.Mkdir(filepath.Join(dir, ts), 0o755); err != nil {
			t.Fatal(err)
		}
		for name, content := range files {
			if err := os.WriteFile(filepath.Join(dir, ts, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(ts, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	swap(map[string]string{"config.yaml": watchConfig("watch-one", "v1"), "names.txt": "one.example\n"})
	for _, name := range []string{"config.yaml", "names.txt"} {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}

	msgs := &watchMsgs{more: make(chan struct{})}
	a, err := app.New(app.Options{
		Load:   config.LoadOptions{Path: filepath.Join(dir, "config.yaml"), Env: []string{}},
		Logger: slog.New(msgs),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		_ = a.Shutdown(context.Background())
		t.Fatal(err)
	}

	// Off: the signal channel is returned as it is.
	sigs := make(chan os.Signal, 1)
	if got, stop, err := a.WatchConfig(sigs, false); err != nil || got != (<-chan os.Signal)(sigs) {
		t.Fatalf("WatchConfig(off) = %v, %v; want the signal channel itself", got, err)
	} else {
		stop()
	}

	merged, stopWatch, err := a.WatchConfig(sigs, true)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- a.Run(ctx, merged) }()
	t.Cleanup(func() {
		cancel()
		if err := <-ran; err != nil {
			t.Errorf("Run: %v", err)
		}
		stopWatch()
	})

	addr := a.DNSAddrs()[0]
	blockedBy := func(name string) string {
		t.Helper()
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		m.SetEdns0(1232, false)
		r, _, err := (&dns.Client{Timeout: 10 * time.Second}).Exchange(m, addr)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if r.Rcode != dns.RcodeNameError {
			return ""
		}
		for _, o := range r.IsEdns0().Option {
			if e, ok := o.(*dns.EDNS0_EDE); ok {
				j, _, _ := strings.Cut(e.ExtraText, ":")
				return j
			}
		}
		return "(no EDE)"
	}
	explain := func(name string) string {
		return a.Server().Runtime().Policy.Explain(name, netip.Addr{}, time.Now()).Decision
	}
	if j := blockedBy("one.example."); j != "watch-one" {
		t.Fatalf("one.example blocked by %q before the swap, want watch-one", j)
	}

	// A new version: another jurisdiction and another list.
	from := msgs.count()
	swap(map[string]string{"config.yaml": watchConfig("watch-two", "v2"), "names.txt": "two.example\n"})
	msgs.wait(t, from, "reloaded")
	if j := blockedBy("two.example."); j != "watch-two" {
		t.Errorf("two.example blocked by %q after the swap, want watch-two", j)
	}
	if d := explain("one.example"); d != "none" {
		t.Errorf("one.example after the swap: decision %q, want none", d)
	}

	// A broken version is refused; the running policy stays.
	hash := a.Server().Runtime().Policy.Hash()
	from = msgs.count()
	swap(map[string]string{"config.yaml": "listen: [\"127.0.0.1:0\"]\nno_such_key: 1\n", "names.txt": "three.example\n"})
	msgs.wait(t, from, "reload failed")
	if h := a.Server().Runtime().Policy.Hash(); h != hash {
		t.Errorf("policy changed after a broken configuration: %s, was %s", h, hash)
	}
	if j := blockedBy("two.example."); j != "watch-two" {
		t.Errorf("two.example blocked by %q after a broken swap, want watch-two", j)
	}

	// Fixed again: applied.
	from = msgs.count()
	swap(map[string]string{"config.yaml": watchConfig("watch-three", "v4"), "names.txt": "three.example\n"})
	msgs.wait(t, from, "reloaded")
	if j := blockedBy("three.example."); j != "watch-three" {
		t.Errorf("three.example blocked by %q after the fix, want watch-three", j)
	}
}

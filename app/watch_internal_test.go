package app

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
)

// configMapDir mimics a Kubernetes ConfigMap volume: the kubelet writes each
// version into a timestamped directory, points the ..data symlink at it
// with an atomic rename of ..data_tmp, and links every key to ..data/KEY.
type configMapDir struct {
	t   testing.TB
	dir string
	n   int
	cur string // the timestamped directory ..data points at
}

func newConfigMapDir(t testing.TB, files map[string]string) *configMapDir {
	t.Helper()
	c := &configMapDir{t: t, dir: t.TempDir()}
	c.swap(files)
	for name := range files {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(c.dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// swap publishes a new version of every file as the kubelet does: write a
// new timestamped directory, symlink ..data_tmp to it, rename it over
// ..data, remove the old directory.
func (c *configMapDir) swap(files map[string]string) {
	c.t.Helper()
	c.n++
	ts := fmt.Sprintf("..2026_01_02_03_04_%02d.%09d", c.n, c.n)
	if err := os.Mkdir(filepath.Join(c.dir, ts), 0o755); err != nil {
		c.t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(c.dir, ts, name), []byte(content), 0o644); err != nil {
			c.t.Fatal(err)
		}
	}
	tmp := filepath.Join(c.dir, "..data_tmp")
	if err := os.Symlink(ts, tmp); err != nil {
		c.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(c.dir, "..data")); err != nil {
		c.t.Fatal(err)
	}
	if c.cur != "" {
		if err := os.RemoveAll(filepath.Join(c.dir, c.cur)); err != nil {
			c.t.Fatal(err)
		}
	}
	c.cur = ts
}

func (c *configMapDir) path(name string) string { return filepath.Join(c.dir, name) }

// watchProbe runs a configWatch and counts its reports. Its barrier creates
// a file in the watched directory and waits until the watch has handled
// that event: events are handled in order, so every event before it has
// been handled too, and the count is final up to that point.
type watchProbe struct {
	t       *testing.T
	dir     string
	reports atomic.Int64
	events  chan string // names of the handled events
	n       int
}

func startWatchProbe(t *testing.T, path string) *watchProbe {
	t.Helper()
	p := &watchProbe{t: t, dir: filepath.Dir(path), events: make(chan string, 1000)}
	cw, err := newConfigWatch(path, slog.New(slog.DiscardHandler), func() { p.reports.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	cw.seen = func(ev fsnotify.Event) { p.events <- filepath.Base(ev.Name) }
	cw.start()
	t.Cleanup(cw.close)
	return p
}

// expect waits for the watch to handle every event so far and checks the
// number of replacements reported.
func (p *watchProbe) expect(want int64, after string) {
	p.t.Helper()
	p.n++
	name := fmt.Sprintf(".barrier-%d", p.n)
	if err := os.WriteFile(filepath.Join(p.dir, name), nil, 0o644); err != nil {
		p.t.Fatal(err)
	}
	limit := time.After(30 * time.Second) // a bound on a hang, never a measurement
	for {
		select {
		case ev := <-p.events:
			if ev != name {
				continue
			}
			if got := p.reports.Load(); got != want {
				p.t.Fatalf("after %s: %d replacements reported, want %d", after, got, want)
			}
			return
		case <-limit:
			p.t.Fatalf("after %s: the watch did not handle %s", after, name)
		}
	}
}

// TestWatchConfigFileReportsReplacements checks that exactly the
// replacements of the configuration file are reported, once each: a
// ConfigMap ..data swap (whatever key changed, and with the kubelet's
// removal of the old directory) and a file renamed over a plain path; not
// other files in the directory, a chmod, an edit in place, or the file
// going away.
func TestWatchConfigFileReportsReplacements(t *testing.T) {
	v1 := map[string]string{"config.yaml": "v: 1\n", "deepseek.txt": "deepseek.com\n"}
	cm := newConfigMapDir(t, v1)
	p := startWatchProbe(t, cm.path("config.yaml"))

	if err := os.WriteFile(cm.path("unrelated.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(cm.path("unrelated.txt"), 0o600); err != nil {
		t.Fatal(err)
	}
	p.expect(0, "another file written and chmodded")

	cm.swap(map[string]string{"config.yaml": "v: 2\n", "deepseek.txt": "deepseek.com\n"})
	p.expect(1, "a ..data swap")

	// The kubelet swaps ..data when any key changes; the configuration
	// path then resolves to a new file, and the lists in the same ConfigMap
	// are reloaded with it.
	cm.swap(map[string]string{"config.yaml": "v: 2\n", "deepseek.txt": "deepseek.com\ndeepseek.ai\n"})
	p.expect(2, "a ..data swap that changed another key")

	if err := os.Remove(cm.path("config.yaml")); err != nil {
		t.Fatal(err)
	}
	p.expect(2, "the configuration link removed")
	if err := os.Symlink(filepath.Join("..data", "config.yaml"), cm.path("config.yaml")); err != nil {
		t.Fatal(err)
	}
	p.expect(3, "the configuration link back")

	// Outside Kubernetes: an edit in place is not a replacement; a file
	// renamed over the path is.
	plain := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(plain, []byte("v: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	q := startWatchProbe(t, plain)
	f, err := os.OpenFile(plain, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.WriteString("# edited in place: send SIGHUP\n")
	_ = f.Close()
	q.expect(0, "an edit in place")
	tmp := filepath.Join(filepath.Dir(plain), ".config.yaml.new")
	if err := os.WriteFile(tmp, []byte("v: 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, plain); err != nil {
		t.Fatal(err)
	}
	q.expect(1, "a file renamed over the configuration")
}

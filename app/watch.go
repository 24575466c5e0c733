package app

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/fsnotify/fsnotify"

	"github.com/jurisdns/jurisdns/config"
)

// WatchConfig makes a replacement of the configuration file reload jurisdns
// exactly as a SIGHUP does: it returns a channel that carries every signal
// of sigs plus a SIGHUP each time the file the configuration was loaded
// from is replaced, for Run to read instead of sigs. Run then queues and
// collapses these reloads like any other SIGHUP, and a bad new
// configuration is refused and logged while the old one keeps serving.
//
// "Replaced" means that the configuration path now resolves to another
// file: the atomic swap of the `..data` symlink by which the kubelet updates
// a mounted ConfigMap (config.yaml -> ..data/config.yaml, ..data ->
// ..2026_01_02_03_04_05.123456789), any other symlink swap, or a file
// renamed over it. An edit in place is not noticed (send SIGHUP), and a
// ConfigMap mounted with subPath is never updated by the kubelet at all.
// The directory of the configuration file is watched with inotify; list
// files in the same ConfigMap are swapped with it and so are reloaded too.
//
// When on is false, or the configuration is the embedded default (no
// file), WatchConfig returns sigs itself. stop ends the watch; call it when
// Run returns.
func (a *App) WatchConfig(sigs <-chan os.Signal, on bool) (merged <-chan os.Signal, stop func(), err error) {
	if !on {
		return sigs, func() {}, nil
	}
	path := a.boot.Source
	if path == "" || path == config.DefaultSource {
		a.log.Warn("configuration watch: no configuration file to watch (the embedded default is in use)")
		return sigs, func() {}, nil
	}
	changed := make(chan struct{}, 1)
	w, err := watchConfigFile(path, a.log, func() {
		select {
		case changed <- struct{}{}:
		default: // one is pending already: the reload reads the newest file
		}
	})
	if err != nil {
		return nil, nil, err
	}
	out := make(chan os.Signal, 1)
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		for {
			var sig os.Signal
			select {
			case <-done:
				return
			case s, ok := <-sigs:
				if !ok {
					close(out)
					return
				}
				sig = s
			case <-changed:
				a.log.Info("configuration file replaced: reloading as on SIGHUP", "config", path)
				sig = syscall.SIGHUP
			}
			select {
			case out <- sig:
			case <-done:
				return
			}
		}
	}()
	a.log.Info("watching the configuration file for replacement (ConfigMap update)", "config", path, "dir", w.dir)
	return out, sync.OnceFunc(func() {
		close(done)
		<-exited
		w.close()
	}), nil
}

// configWatch watches the directory of a configuration file and calls
// changed whenever the file the path resolves to is another one than
// before.
type configWatch struct {
	path    string // absolute configuration path, as given
	dir     string // its directory, which is watched
	log     *slog.Logger
	w       *fsnotify.Watcher
	changed func()
	done    chan struct{}
	seen    func(fsnotify.Event) // test hook: called after each event

	cur fileIdentity // touched by the event loop only
}

// fileIdentity says which file a path resolves to: its target after every
// symlink, and the file itself (device and inode through os.SameFile).
type fileIdentity struct {
	real string
	info os.FileInfo // nil when the path does not resolve
}

func identify(path string) fileIdentity {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return fileIdentity{}
	}
	info, err := os.Stat(real)
	if err != nil {
		return fileIdentity{}
	}
	return fileIdentity{real: real, info: info}
}

func (f fileIdentity) same(g fileIdentity) bool {
	if f.info == nil || g.info == nil {
		return f.info == nil && g.info == nil
	}
	return f.real == g.real && os.SameFile(f.info, g.info)
}

// watchConfigFile starts watching path; changed is called from the watch
// goroutine, once per replacement, in the order the events arrive.
func watchConfigFile(path string, log *slog.Logger, changed func()) (*configWatch, error) {
	cw, err := newConfigWatch(path, log, changed)
	if err != nil {
		return nil, err
	}
	cw.start()
	return cw, nil
}

// newConfigWatch sets up the watch of path; start runs it.
func newConfigWatch(path string, log *slog.Logger, changed func()) (*configWatch, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("configuration watch: %w", err)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("configuration watch: %w", err)
	}
	cw := &configWatch{path: abs, dir: filepath.Dir(abs), log: log, w: w, changed: changed, done: make(chan struct{})}
	// The identity is taken after the watch is in place, so that a swap
	// between the two is seen either way.
	if err := w.Add(cw.dir); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("configuration watch: %s: %w", cw.dir, err)
	}
	cw.cur = identify(abs)
	return cw, nil
}

func (cw *configWatch) start() { go cw.loop() }

func (cw *configWatch) loop() {
	defer close(cw.done)
	for {
		select {
		case ev, ok := <-cw.w.Events:
			if !ok {
				return
			}
			cw.event(ev)
		case err, ok := <-cw.w.Errors:
			if !ok {
				return
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				// Events were lost: compare against the file as it is now.
				cw.check()
				continue
			}
			cw.log.Warn("configuration watch", "config", cw.path, "err", err)
		}
	}
}

// event handles one event in the directory.
func (cw *configWatch) event(ev fsnotify.Event) {
	if cw.seen != nil {
		defer cw.seen(ev)
	}
	if ev.Has(fsnotify.Chmod) && !ev.Has(fsnotify.Create|fsnotify.Write|fsnotify.Remove|fsnotify.Rename) {
		return
	}
	cw.check()
}

// check compares the file the path resolves to with the last one seen and
// reports a replacement.
func (cw *configWatch) check() {
	next := identify(cw.path)
	if next.same(cw.cur) {
		return
	}
	cw.cur = next
	if next.info == nil {
		// Removed, or a dangling link for now: wait for it to come back.
		cw.log.Warn("configuration watch: the configuration file is gone; still serving the running configuration", "config", cw.path)
		return
	}
	cw.changed()
}

func (cw *configWatch) close() {
	_ = cw.w.Close()
	<-cw.done
}

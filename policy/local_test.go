package policy

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jurisdns/jurisdns/config"
)

// localCfg is one fail_open jurisdiction with the local list path.
func localCfg(path string, src config.Source) *config.Config {
	src.Name, src.Path = "local", path
	return &config.Config{Jurisdictions: []config.Jurisdiction{{
		JurisdictionAttrs: config.JurisdictionAttrs{ID: "g", OnLoadFailure: "fail_open"},
		Sources:           []config.Source{src},
	}}, DefaultJurisdictions: []string{"g"}, Lists: config.Lists{Timeout: time.Second}}
}

// TestLocalListGuards: the guards hold for a local file as for a download:
// a list truncated to 0 bytes is rejected unless allow_empty is set;
// min_entries and max_shrink apply to its updates.
func TestLocalListGuards(t *testing.T) {
	path := filepath.Join(t.TempDir(), "list.txt")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.example\nb.example\nc.example\nd.example\n")
	prev := build(t, localCfg(path, config.Source{}), BuildOptions{})
	if prev.Entries("g") != 4 {
		t.Fatalf("entries %d", prev.Entries("g"))
	}
	tests := []struct {
		name, content string
		src           config.Source
		wantErr       string
	}{
		{name: "empty", content: "", wantErr: "no entries"},
		{name: "comments only", content: "# nothing\n", wantErr: "no entries"},
		{name: "empty allowed", content: "", src: config.Source{AllowEmpty: true}},
		{name: "min_entries", content: "a.example\n", src: config.Source{MinEntries: 2}, wantErr: "1 entries, fewer than min_entries 2"},
		{name: "max_shrink", content: "a.example\n", src: config.Source{MaxShrink: 0.5}, wantErr: "shrunk from 4 by more than max_shrink 0.5"},
		{name: "max_shrink met", content: "a.example\nb.example\nc.example\n", src: config.Source{MaxShrink: 0.5}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			write(tc.content)
			p := build(t, localCfg(path, tc.src), BuildOptions{Previous: prev})
			j := p.Lookup("g")
			if tc.wantErr == "" {
				if !j.Loaded {
					t.Fatalf("not loaded: %s", j.LoadError)
				}
				return
			}
			if j.Loaded || !strings.Contains(j.LoadError, tc.wantErr) {
				t.Fatalf("loaded %v error %q, want %q", j.Loaded, j.LoadError, tc.wantErr)
			}
		})
	}
	// Without a previous copy, last_known_good refuses the empty list.
	write("")
	cfg := localCfg(path, config.Source{})
	cfg.Jurisdictions[0].OnLoadFailure = ""
	if _, err := Build(context.Background(), cfg, BuildOptions{}); err == nil || !strings.Contains(err.Error(), "no entries") {
		t.Fatalf("an empty local list was accepted: %v", err)
	}
}

// TestLocalListFIFO: a list path that would block on open (a FIFO with no
// writer) fails the build at once with a clear error instead of hanging.
func TestLocalListFIFO(t *testing.T) {
	path := filepath.Join(t.TempDir(), "list.fifo")
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		p, err := Build(context.Background(), localCfg(path, config.Source{}), BuildOptions{})
		if err == nil {
			if j := p.Lookup("g"); j.Loaded || !strings.Contains(j.LoadError, "named pipe (FIFO), not a regular file") {
				err = fmt.Errorf("loaded %v, error %q; want the FIFO refused", j.Loaded, j.LoadError)
			}
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("build hangs on a FIFO list path")
	}
}

// TestReadLocalTimeBound: a read that does not finish (as on a hung
// mount) is given up after the timeout, and a cancelled context ends it at
// once.
func TestReadLocalTimeBound(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	readListFile = func(string) ([]byte, error) { <-release; return nil, nil }
	defer func() { readListFile = readRegular }()
	start := time.Now()
	if _, err := readLocal(context.Background(), "/mnt/hung/list.txt", 100*time.Millisecond); err == nil ||
		!strings.Contains(err.Error(), "not done after 100ms (lists.timeout)") {
		t.Fatalf("hung read: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("gave up after %v", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := readLocal(ctx, "/mnt/hung/list.txt", time.Minute); err == nil || !strings.Contains(err.Error(), "canceled") {
		t.Fatalf("cancelled: %v", err)
	}
}

// TestLocalListRefusedRulesNotEnforced: a local list's rules go into the
// index as they are parsed, before its guards are known; when a guard then
// refuses the list, none of its new rules is enforced, and
// last_known_good serves the previous copy's.
func TestLocalListRefusedRulesNotEnforced(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) { writeFile(t, dir, "list.txt", s) }
	cfg := localCfg(filepath.Join(dir, "list.txt"), config.Source{MaxShrink: 0.2, MustContain: []string{"a.example"}})
	cfg.Jurisdictions[0].OnLoadFailure = "last_known_good"
	write("a.example\nb.example\nc.example\nd.example\ne.example\n")
	prev := build(t, cfg, BuildOptions{})
	for _, c := range []struct{ content, guard string }{
		{"a.example\nnew.example\n", "max_shrink"},
		{"b.example\nc.example\nd.example\ne.example\nnew.example\n", "must_contain"},
	} {
		write(c.content)
		p := build(t, cfg, BuildOptions{Previous: prev})
		if j := p.Lookup("g"); !j.Loaded || !strings.Contains(j.LoadError, c.guard) {
			t.Fatalf("%s: loaded %v, error %q; want the last good copy kept", c.guard, j.Loaded, j.LoadError)
		}
		if v := p.Match("new.example", nil, testNow); v.Decision == DecisionBlock {
			t.Errorf("%s: new.example, a rule of the refused list, is blocked (rule %q)", c.guard, v.Rule)
		}
		for _, name := range []string{"a.example", "e.example"} {
			if v := p.Match(name, nil, testNow); v.Decision != DecisionBlock {
				t.Errorf("%s: %s of the last good copy is not blocked (%v)", c.guard, name, v.Decision)
			}
		}
	}
}

// TestReadRegularExact: a list file is read back byte for byte whatever its
// size, with the buffer reserved from the file's size or, past
// maxPrealloc, grown as it is read.
func TestReadRegularExact(t *testing.T) {
	dir := t.TempDir()
	for _, prealloc := range []int64{maxPrealloc, 1000} {
		for _, n := range []int{0, 1, 511, 512, 513, 999, 1000, 1001, 100_000} {
			old := maxPrealloc
			maxPrealloc = prealloc
			want := make([]byte, n)
			for i := range want {
				want[i] = byte('a' + i%26)
			}
			name := fmt.Sprintf("l-%d-%d.txt", prealloc, n)
			writeFile(t, dir, name, string(want))
			got, err := readRegular(filepath.Join(dir, name))
			maxPrealloc = old
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("prealloc %d, %d bytes: read %d bytes, err %v", prealloc, n, len(got), err)
			}
		}
	}
}

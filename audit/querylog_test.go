package audit

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func openQueryTest(t *testing.T, opts Options) *QueryLog {
	t.Helper()
	opts.Now = func() time.Time { return fixedNow }
	l, err := OpenQueryLog(opts)
	if err != nil {
		t.Fatalf("OpenQueryLog: %v", err)
	}
	return l
}

func TestQueryLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "queries.log")
	// Left by a crash in the middle of a line: new lines start on their own.
	if err := os.WriteFile(path, []byte(`{"time":"2026-`), 0o640); err != nil {
		t.Fatal(err)
	}
	l := openQueryTest(t, Options{Path: path})
	entries := []QueryEntry{
		{Client: "192.0.2.0/24", Name: "chat.deepseek.com.", Type: "A", Rcode: "NXDOMAIN", DurationUS: 12, Blocked: true},
		{Client: "2001:db8::/56", Name: "example.org.", Type: "AAAA", Rcode: "NOERROR", DurationUS: 3, Cached: true,
			Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
	for _, e := range entries {
		if !l.Log(e) {
			t.Fatal("Log dropped")
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if l.Written() != 2 || l.Dropped() != 0 || l.Failed() != 0 || l.Err() != nil {
		t.Fatalf("Written %d Dropped %d Failed %d Err %v", l.Written(), l.Dropped(), l.Failed(), l.Err())
	}
	if l.Log(entries[0]) {
		t.Fatal("Log after Close succeeded")
	}
	lines := readLines(t, path)
	if len(lines) != 3 {
		t.Fatalf("got %d lines, want the partial one and 2 entries", len(lines))
	}
	for i, want := range entries {
		var got QueryEntry
		if err := json.Unmarshal(lines[1+i], &got); err != nil {
			t.Fatal(err)
		}
		if want.Time.IsZero() {
			want.Time = fixedNow
		}
		if !got.Time.Equal(want.Time) || got.Time.Location() != time.UTC {
			t.Errorf("entry %d: time %v, want %v in UTC", i, got.Time, want.Time)
		}
		got.Time, want.Time = time.Time{}, time.Time{}
		if got != want {
			t.Errorf("entry %d = %+v, want %+v", i, got, want)
		}
	}
	var m map[string]any
	if err := json.Unmarshal(lines[1], &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"time", "client", "name", "type", "rcode", "duration_us", "cached", "blocked"} {
		if _, ok := m[k]; !ok {
			t.Errorf("key %q missing from %s", k, lines[1])
		}
	}
}

func TestQueryLogDropsAndRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "queries.log")
	entered := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	l := openQueryTest(t, Options{Path: path, QueueSize: 8, MaxSize: 300, MaxFiles: 50, beforeWrite: func() {
		once.Do(func() { close(entered); <-release })
	}})
	e := QueryEntry{Client: "192.0.2.0/24", Name: "example.org.", Type: "A", Rcode: "NOERROR"}
	l.Log(e)
	<-entered
	accepted := 1
	for range 20 {
		if l.Log(e) {
			accepted++
		}
	}
	if accepted != 9 || l.Dropped() != 12 {
		t.Fatalf("accepted %d, dropped %d; want 9 and 12", accepted, l.Dropped())
	}
	close(release)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	set, err := RotatedSet(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(set) < 3 {
		t.Fatalf("RotatedSet = %v, want several files", set)
	}
	total := 0
	for _, f := range set {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > 300 {
			t.Errorf("%s: %d bytes > MaxSize", f, st.Size())
		}
		total += len(readLines(t, f))
	}
	if total != accepted || l.Written() != uint64(accepted) {
		t.Fatalf("%d lines in %d files, Written %d, want %d", total, len(set), l.Written(), accepted)
	}
}

func TestQueryLogWriteError(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full on this system")
	}
	l, err := OpenQueryLog(Options{Path: "/dev/full"})
	if err != nil {
		t.Fatalf("OpenQueryLog(/dev/full): %v", err)
	}
	for range 3 {
		l.Log(QueryEntry{Name: "example.org."})
	}
	if err := l.Close(); err == nil || l.Err() == nil || l.Failed() == 0 {
		t.Fatalf("Close = %v, Err = %v, Failed = %d: want the write error", err, l.Err(), l.Failed())
	}
}

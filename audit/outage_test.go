package audit

import (
	"bytes"
	"crypto/ed25519"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// smallDisk gives a directory on a file system that can be filled: a
// 64 KiB tmpfs mounted for the test where that is permitted (root, not in
// a restricted container), else a plain directory whose log writes go
// through a hook that fails with ENOSPC past a byte budget. fill takes all
// the free space but keep bytes (a multiple of the 4 KiB page); free gives
// it back.
func smallDisk(t *testing.T, keep int64) (dir string, hook func(*os.File, []byte) (int, error), fill, free func()) {
	t.Helper()
	dir = t.TempDir()
	if err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", dir).Run(); err == nil {
		t.Cleanup(func() {
			if err := exec.Command("umount", dir).Run(); err != nil {
				t.Errorf("umount %s: %v", dir, err)
			}
		})
		filler := filepath.Join(dir, "filler")
		fill = func() {
			f, err := os.Create(filler)
			if err != nil {
				t.Fatal(err)
			}
			var st syscall.Statfs_t
			if err := syscall.Statfs(dir, &st); err != nil {
				t.Fatal(err)
			}
			avail := int64(st.Bavail) * st.Bsize
			if _, err := f.Write(make([]byte, max(avail-keep, 0))); err != nil {
				t.Fatalf("filling %s: %v", dir, err)
			}
			f.Close()
		}
		free = func() {
			if err := os.Remove(filler); err != nil {
				t.Fatal(err)
			}
		}
		return dir, nil, fill, free
	}
	t.Logf("cannot mount a tmpfs (not root?): injecting ENOSPC instead")
	var (
		mu     sync.Mutex
		budget int64 = -1 // bytes that may still be written; -1: any
	)
	hook = func(f *os.File, b []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		if budget < 0 || int64(len(b)) <= budget {
			if budget >= 0 {
				budget -= int64(len(b))
			}
			return f.Write(b)
		}
		n, err := f.Write(b[:budget]) // a partial write, as the kernel does
		budget = 0
		if err == nil {
			err = &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
		}
		return n, err
	}
	fill = func() { mu.Lock(); budget = keep; mu.Unlock() }
	free = func() { mu.Lock(); budget = -1; mu.Unlock() }
	return dir, hook, fill, free
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// A full disk stops the log only while it is full: the writer keeps
// MaxBuffered bytes of records, counts the rest as lost, retries, and when
// space returns writes what it kept and a resumed event that says how many
// were lost. The file never holds a partial line.
func TestWriterSurvivesFullDisk(t *testing.T) {
	dir, hook, fill, free := smallDisk(t, 8192)
	path := filepath.Join(dir, "audit.log")
	const maxBuffered = 4000
	w, err := Open(Options{Path: path, Now: func() time.Time { return fixedNow }, RetryInterval: 5 * time.Millisecond,
		MaxBuffered: maxBuffered, writeHook: hook})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	fill()

	const n = 60 // about 21 KB of records: more than the space left and the buffer
	for i := range n {
		if !w.Log(testRecord(i)) {
			t.Fatalf("Log %d dropped", i)
		}
		// One at a time, so that each is handled before the next arrives.
		waitFor(t, "the record to be handled", func() bool {
			s := w.State()
			return s.Written+s.Failed+uint64(bufferedRecords(w)) == uint64(i+1)
		})
	}
	st := w.State()
	if w.Err() == nil || w.Writing() || st.Writing || st.Error == "" || st.FailingSince.IsZero() || st.WriteErrors == 0 {
		t.Fatalf("after filling the disk: Err %v, State %+v: want an outage", w.Err(), st)
	}
	lost := w.Failed()
	if lost == 0 || st.BufferedBytes == 0 || st.BufferedBytes > maxBuffered {
		t.Fatalf("lost %d, buffered %d bytes: want some of each, at most %d buffered", lost, st.BufferedBytes, maxBuffered)
	}
	// What reached the disk is a valid chain: the partial write was cut off.
	rep, err := Verify(path)
	if err != nil {
		t.Fatalf("Verify during the outage: %v", err)
	}
	onDisk := rep.Records
	if onDisk == 0 || uint64(onDisk) != w.Written() {
		t.Fatalf("%d records on disk, Written %d", onDisk, w.Written())
	}

	free()
	waitFor(t, "writing to resume", func() bool { return w.Err() == nil })
	if !w.Writing() || !w.State().Writing {
		t.Fatal("Writing() false after resuming")
	}
	for i := range 3 {
		w.Log(testRecord(100 + i))
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	rep, err = Verify(path)
	if err != nil {
		t.Fatalf("Verify after the outage: %v", err)
	}
	lines := readLines(t, path)
	var res *Resumed
	var at int
	for i, l := range lines {
		if r := decode(t, l); r.Event == EventResumed {
			if res != nil {
				t.Fatal("two resumed events for one outage")
			}
			res, at = r.Resumed, i
		}
	}
	if res == nil {
		t.Fatal("no resumed event in the log")
	}
	buffered := uint64(at - onDisk)
	if res.Lost != lost || res.Buffered != buffered || res.Error == "" || !res.Until.After(res.From) && !res.Until.Equal(res.From) {
		t.Fatalf("resumed event %+v, want lost %d, buffered %d", *res, lost, buffered)
	}
	if uint64(onDisk)+buffered+lost != n {
		t.Fatalf("%d on disk + %d buffered + %d lost != %d logged", onDisk, buffered, lost, n)
	}
	if got := len(lines); got != at+1+3 || rep.Records != got {
		t.Fatalf("%d lines, want the resumed event at %d and 3 records after it", got, at+1)
	}
	if w.Written() != uint64(n)-lost+3 {
		t.Fatalf("Written = %d, want %d", w.Written(), uint64(n)-lost+3)
	}
	// The records kept are the first ones, in order, with no gap.
	for i, l := range lines[:at] {
		if r := decode(t, l); r.Name != testRecord(i).Name {
			t.Fatalf("line %d is %s, want %s", i+1, r.Name, testRecord(i).Name)
		}
	}
}

// bufferedRecords counts the records waiting in memory.
func bufferedRecords(w *Writer) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return int(w.pendingRecs)
}

// A write that fails part-way never leaves part of a line in the file, and
// an outage at Open (the disk already full) does not fail Open.
func TestWriterOpenOnFullDisk(t *testing.T) {
	dir, hook, fill, free := smallDisk(t, 0)
	path := filepath.Join(dir, "audit.log")
	key := testKey(t)
	writeLog(t, Options{Path: path, SigningKey: key, writeHook: hook}, 3)
	fill()
	w, err := Open(Options{Path: path, SigningKey: key, RetryInterval: 5 * time.Millisecond, writeHook: hook})
	if err != nil {
		t.Fatalf("Open on a full disk: %v", err)
	}
	// A record larger than the slack of the log's last page, so that
	// tmpfs must find a new page for it.
	big := testRecord(9)
	big.Rule, big.Instrument, big.Source, big.Name = strings.Repeat("r", 1024), strings.Repeat("i", 1024),
		strings.Repeat("s", 1024), strings.Repeat("n", 1024)
	w.Log(big)
	waitFor(t, "the record to be buffered", func() bool { return bufferedRecords(w) == 1 })
	if w.Err() == nil {
		t.Fatal("no outage on a full disk")
	}
	before, _ := os.ReadFile(path)
	free()
	waitFor(t, "writing to resume", func() bool { return w.Err() == nil })
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.HasPrefix(after, before) {
		t.Fatal("the log changed before its end")
	}
	if _, err := VerifyWith(VerifyOptions{PublicKey: key.Public().(ed25519.PublicKey)}, path); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

// A last line without its newline on a full disk: Open does not fail, and
// the newline goes out with the next write.
func TestOpenUnterminatedLineOnFullDisk(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	writeLog(t, Options{Path: path}, 2)
	b, _ := os.ReadFile(path)
	os.WriteFile(path, bytes.TrimSuffix(b, []byte{'\n'}), 0o640)
	var mu sync.Mutex
	full := true
	hook := func(f *os.File, b []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		if full {
			return 0, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
		}
		return f.Write(b)
	}
	w, err := Open(Options{Path: path, Now: func() time.Time { return fixedNow }, RetryInterval: 5 * time.Millisecond, writeHook: hook})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	w.Log(testRecord(2))
	waitFor(t, "the outage", func() bool { return w.Err() != nil })
	mu.Lock()
	full = false
	mu.Unlock()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if rep, err := Verify(path); err != nil || rep.Records != 4 {
		t.Fatalf("Verify: %+v %v, want 2 records, the new one and the resumed event", rep, err)
	}
}

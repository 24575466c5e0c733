package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestWriterGoodChainAndReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	writeLog(t, Options{Path: path}, 5)

	lines := readLines(t, path)
	if len(lines) != 5 {
		t.Fatalf("got %d lines, want 5", len(lines))
	}
	prev := Genesis
	for i, l := range lines {
		r := decode(t, l)
		if r.Seq != uint64(i+1) || r.Prev != prev {
			t.Fatalf("line %d: seq %d prev %s, want seq %d prev %s", i+1, r.Seq, r.Prev, i+1, prev)
		}
		if !r.Time.Equal(fixedNow) || r.Time.Location() != time.UTC {
			t.Errorf("line %d: time %v, want %v in UTC", i+1, r.Time, fixedNow)
		}
		if want := testRecord(i).Name; r.Name != want || r.Jurisdiction != "au-gov" || r.Line != 3 {
			t.Errorf("line %d: fields not kept: %+v", i+1, r)
		}
		prev = lineHash(l)
	}
	// The JSON keys are the documented snake_case ones.
	var m map[string]any
	if err := json.Unmarshal(lines[0], &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"time", "seq", "client", "name", "type", "jurisdiction", "tier", "instrument",
		"rule", "source", "line", "policy_hash", "action", "mode", "prev"} {
		if _, ok := m[k]; !ok {
			t.Errorf("key %q missing from %s", k, lines[0])
		}
	}

	rep, err := Verify(path)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	want := Report{Files: 1, Records: 5, First: 1, Last: 5, LastHash: prev, Genesis: true}
	if rep != want {
		t.Fatalf("Report = %+v, want %+v", rep, want)
	}

	// Reopen: the chain goes on from the last line.
	w := openTest(t, Options{Path: path})
	if seq, hash := w.Head(); seq != 5 || hash != prev {
		t.Fatalf("Head after reopen = %d %s, want 5 %s", seq, hash, prev)
	}
	for i := range 3 {
		w.Log(testRecord(10 + i))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	seq, head := w.Head()
	rep, err = Verify(path)
	if err != nil {
		t.Fatalf("Verify after reopen: %v", err)
	}
	if rep.Records != 8 || rep.First != 1 || rep.Last != 8 || seq != 8 || rep.LastHash != head {
		t.Fatalf("after reopen: Report %+v, Head %d %s", rep, seq, head)
	}
	if got := decode(t, readLines(t, path)[5]); got.Prev != prev {
		t.Fatalf("first record after reopen has prev %s, want %s", got.Prev, prev)
	}
}

func TestOpenEmptyFileStartsChain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	if err := os.WriteFile(path, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	writeLog(t, Options{Path: path}, 2)
	if r := decode(t, readLines(t, path)[0]); r.Seq != 1 || r.Prev != Genesis {
		t.Fatalf("first record seq %d prev %s, want 1 genesis", r.Seq, r.Prev)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640 kept", st.Mode().Perm())
	}
}

func TestOpenCreatesWithMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	writeLog(t, Options{Path: path}, 1)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	// The umask can only remove bits.
	if st.Mode().Perm()&^0o640 != 0 {
		t.Errorf("mode %v has bits outside 0640", st.Mode().Perm())
	}
}

func TestOpenMissingDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no-such-dir", "audit.log")
	if _, err := Open(Options{Path: path}); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("Open in a missing directory: err = %v, want an error naming %s", err, path)
	}
}

// A last line that is not a record (a write torn by a crash or a full disk)
// no longer stops Open: it is moved into path.torn, cut off the log, and
// the chain says so in a torn event, then goes on.
func TestOpenMovesTornLineAside(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	writeLog(t, Options{Path: path}, 3)
	lines := readLines(t, path)
	long := bytes.Repeat([]byte("x"), MaxLineSize+10)

	tests := []struct {
		name     string
		good     [][]byte // the valid lines kept
		fragment []byte   // what follows them
		reason   string   // substring of Torn.Reason
	}{
		{name: "truncated_last_line", good: lines[:2], fragment: lines[2][:40], reason: "unterminated line (torn write)"},
		{name: "junk_last_line", good: lines[:2], fragment: []byte("hello\n"), reason: "not a valid record"},
		{name: "blank_last_line", good: lines, fragment: []byte("\n"), reason: "empty line"},
		{name: "nul_bytes", good: lines, fragment: make([]byte, 100), reason: "unterminated line"},
		{name: "bad_prev", good: lines[:1],
			fragment: append(bytes.Replace(lines[1], []byte(`"prev":"`), []byte(`"prev":"x`), 1), '\n'), reason: "not a hex SHA-256"},
		{name: "line_too_long", good: lines[:1], fragment: append(long, '\n'), reason: "line longer than"},
		{name: "line_too_long_unterminated", good: lines[:2], fragment: long, reason: "line longer than"},
		{name: "only_line_torn", good: nil, fragment: lines[0][:30], reason: "unterminated"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "audit.log")
			var content []byte
			if len(tc.good) > 0 {
				content = joinNL(tc.good...)
			}
			content = append(content, tc.fragment...)
			if err := os.WriteFile(p, content, 0o640); err != nil {
				t.Fatal(err)
			}
			w, err := Open(Options{Path: p})
			if err != nil {
				t.Fatalf("Open: %v (a torn last line must not stop the log)", err)
			}
			w.Log(testRecord(7))
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			torn, err := os.ReadFile(p + TornSuffix)
			if err != nil {
				t.Fatalf("no .torn file: %v", err)
			}
			wantTorn := tc.fragment
			if len(wantTorn) == 0 || wantTorn[len(wantTorn)-1] != '\n' {
				wantTorn = append(append([]byte{}, wantTorn...), '\n')
			}
			if !bytes.Equal(torn, wantTorn) {
				t.Fatalf(".torn holds %q, want %q", clip(string(torn), 80), clip(string(wantTorn), 80))
			}
			rep, err := Verify(p)
			if err != nil {
				t.Fatalf("Verify after recovery: %v", err)
			}
			got := readLines(t, p)
			if len(got) != len(tc.good)+2 || rep.Records != len(got) {
				t.Fatalf("%d lines (%d verified), want %d kept + torn event + record", len(got), rep.Records, len(tc.good))
			}
			for i := range tc.good {
				if !bytes.Equal(got[i], tc.good[i]) {
					t.Fatalf("line %d changed", i+1)
				}
			}
			ev := decode(t, got[len(tc.good)])
			sum := sha256.Sum256(tc.fragment)
			if ev.Event != EventTorn || ev.Torn == nil || ev.Seq != uint64(len(tc.good)+1) {
				t.Fatalf("line %d is %s, want the torn event", len(tc.good)+1, got[len(tc.good)])
			}
			tr := ev.Torn
			if tr.From != "audit.log" || tr.Line != len(tc.good)+1 || tr.Bytes != int64(len(tc.fragment)) ||
				tr.SHA256 != hex.EncodeToString(sum[:]) || tr.File != "audit.log.torn" || tr.Kept != int64(len(tc.fragment)) ||
				tr.Error != "" || !strings.Contains(tr.Reason, tc.reason) {
				t.Fatalf("torn event %+v, want line %d, %d bytes, reason containing %q", *tr, len(tc.good)+1, len(tc.fragment), tc.reason)
			}
			if st := w.State(); st.Torn == nil || *st.Torn != *tr {
				t.Fatalf("State().Torn = %+v, want %+v", st.Torn, tr)
			}
		})
	}

	// Two bad lines at the end are not a torn write: Open refuses and
	// changes nothing.
	t.Run("two_bad_lines", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "audit.log")
		content := joinNoFinalNL(lines[0], []byte("junk"), lines[2][:40])
		if err := os.WriteFile(p, content, 0o640); err != nil {
			t.Fatal(err)
		}
		w, err := Open(Options{Path: p})
		if err == nil {
			w.Close()
			t.Fatal("Open succeeded with two corrupt lines at the end")
		}
		if want := "audit.log:3: last record is corrupt"; !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "line 2") {
			t.Fatalf("error %q does not name line 3 and line 2", err)
		}
		if after, _ := os.ReadFile(p); !bytes.Equal(after, content) {
			t.Fatal("Open changed the log")
		}
		if _, err := os.Stat(p + TornSuffix); err == nil {
			t.Fatal("Open wrote a .torn file")
		}
	})

	// A second tear appends to the same .torn file.
	t.Run("second_tear_appends", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "audit.log")
		writeLines(t, p, lines[:1])
		for i, frag := range []string{"{\"time", "{\"seq"} {
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteString(frag)
			f.Close()
			w, err := Open(Options{Path: p})
			if err != nil {
				t.Fatalf("Open %d: %v", i, err)
			}
			w.Close()
		}
		if b, _ := os.ReadFile(p + TornSuffix); string(b) != "{\"time\n{\"seq\n" {
			t.Fatalf(".torn = %q", b)
		}
		if rep, err := Verify(p); err != nil || rep.Records != 3 {
			t.Fatalf("Verify: %+v %v", rep, err)
		}
	})
}

func joinNL(lines ...[]byte) []byte {
	return append(bytes.Join(lines, []byte{'\n'}), '\n')
}

func joinNoFinalNL(lines ...[]byte) []byte { return bytes.Join(lines, []byte{'\n'}) }

func TestOpenLastLineWithoutNewline(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	writeLog(t, Options{Path: path}, 3)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, bytes.TrimSuffix(b, []byte{'\n'}), 0o640); err != nil {
		t.Fatal(err)
	}
	if rep, err := Verify(path); err != nil || rep.Records != 3 {
		t.Fatalf("Verify of a log without final newline: %+v %v", rep, err)
	}
	writeLog(t, Options{Path: path}, 2)
	rep, err := Verify(path)
	if err != nil || rep.Records != 5 || rep.Last != 5 {
		t.Fatalf("Verify after continuing: %+v %v", rep, err)
	}
}

func TestOpenContinuesFromRotatedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	writeLog(t, Options{Path: path}, 4)
	// As if the process stopped right after rotating.
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	writeLog(t, Options{Path: path}, 2)
	set, err := RotatedSet(path)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(set...)
	if err != nil {
		t.Fatalf("Verify(%v): %v", set, err)
	}
	if rep.Files != 2 || rep.Records != 6 || rep.First != 1 || rep.Last != 6 || !rep.Genesis {
		t.Fatalf("Report = %+v", rep)
	}
}

func TestRotation(t *testing.T) {
	const records = 30
	// Each test record's line is about 350 bytes: three per file.
	lineLen := func(t *testing.T) int64 {
		p := filepath.Join(t.TempDir(), "probe.log")
		writeLog(t, Options{Path: p}, 1)
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return st.Size()
	}(t)
	maxSize := 3*lineLen + lineLen/2

	t.Run("all_files_kept", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "audit.log")
		var logs bytes.Buffer
		opts := Options{Path: path, MaxSize: maxSize, MaxFiles: 100,
			Logger: slog.New(slog.NewJSONHandler(&logs, nil))}
		writeLog(t, opts, records/2)
		writeLog(t, opts, records/2) // across a reopen
		set, err := RotatedSet(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(set) != records/3 {
			t.Fatalf("RotatedSet = %v, want %d files", set, records/3)
		}
		if set[0] != path+"."+itoa(records/3-1) || set[len(set)-1] != path {
			t.Fatalf("RotatedSet order = %v, want oldest first and %s last", set, path)
		}
		for _, f := range set {
			st, err := os.Stat(f)
			if err != nil {
				t.Fatal(err)
			}
			if st.Size() > maxSize {
				t.Errorf("%s has %d bytes, more than MaxSize %d", f, st.Size(), maxSize)
			}
		}
		rep, err := Verify(set...)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if rep.Records != records || rep.First != 1 || rep.Last != records || !rep.Genesis || rep.Files != len(set) {
			t.Fatalf("Report = %+v", rep)
		}

		// Each rotation logged the head of the file it closed; it is the
		// anchor of the next file.
		rotations := 0
		for _, l := range bytes.Split(bytes.TrimSpace(logs.Bytes()), []byte{'\n'}) {
			var ev struct {
				Msg      string `json:"msg"`
				LastSeq  uint64 `json:"last_seq"`
				LastHash string `json:"last_hash"`
			}
			if err := json.Unmarshal(l, &ev); err != nil {
				t.Fatal(err)
			}
			if ev.Msg != "enforcement log rotated" {
				continue
			}
			rotations++
			found := false
			for _, f := range set {
				for _, line := range readLines(t, f) {
					if r := decode(t, line); r.Seq == ev.LastSeq+1 {
						found = r.Prev == ev.LastHash
					}
				}
			}
			if !found {
				t.Errorf("rotation logged seq %d hash %s: not the prev of seq %d", ev.LastSeq, ev.LastHash, ev.LastSeq+1)
			}
		}
		if rotations != len(set)-1 {
			t.Errorf("%d rotations logged, want %d", rotations, len(set)-1)
		}

		// A middle file removed: the first record of the next file shows it.
		mid := len(set) / 2
		missing := len(readLines(t, set[mid]))
		gapped := append(append([]string{}, set[:mid]...), set[mid+1:]...)
		_, err = Verify(gapped...)
		wantChainError(t, err, set[mid+1], 1, itoa(missing)+" record(s) missing")

		// Files in the wrong order.
		_, err = Verify(set[1], set[0])
		wantChainError(t, err, set[0], 1, "does not follow")
	})

	t.Run("oldest_dropped", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "audit.log")
		// Left over from a configuration that kept more files.
		if err := os.WriteFile(path+".7", []byte("old\n"), 0o640); err != nil {
			t.Fatal(err)
		}
		writeLog(t, Options{Path: path, MaxSize: maxSize, MaxFiles: 3}, records)
		set, err := RotatedSet(path)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{path + ".3", path + ".2", path + ".1", path}
		if strings.Join(set, " ") != strings.Join(want, " ") {
			t.Fatalf("RotatedSet = %v, want %v", set, want)
		}
		rep, err := Verify(set...)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if rep.Genesis || rep.Last != records || rep.Records != 12 || rep.First != records-11 {
			t.Fatalf("Report = %+v, want the last 12 records anchored after genesis", rep)
		}
	})
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestRotatedSet(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	if _, err := RotatedSet(path); err == nil {
		t.Fatal("RotatedSet of nothing: no error")
	}
	for _, name := range []string{"audit.log.2", "audit.log.10", "audit.log.1", "audit.log.01",
		"audit.log.x", "audit.log.0", "audit.log.-1", "other.log.3", "audit.log"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "audit.log.5"), 0o750); err != nil {
		t.Fatal(err)
	}
	set, err := RotatedSet(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{path + ".10", path + ".2", path + ".1", path}
	if strings.Join(set, " ") != strings.Join(want, " ") {
		t.Fatalf("RotatedSet = %v, want %v", set, want)
	}
	// Only rotated files left: still a set.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if set, err := RotatedSet(path); err != nil || len(set) != 3 {
		t.Fatalf("RotatedSet without the current file = %v, %v", set, err)
	}
}

func TestDropsWhenQueueFull(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	entered := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	hook := func() {
		once.Do(func() {
			close(entered)
			<-release // the writer holds the first record until released
		})
	}
	const queue = 4
	w := openTest(t, Options{Path: path, QueueSize: queue, beforeWrite: hook})
	if !w.Log(testRecord(0)) {
		t.Fatal("first Log dropped")
	}
	<-entered // the writer took record 0 off the queue and is blocked
	for i := range queue {
		if !w.Log(testRecord(1 + i)) {
			t.Fatalf("Log %d dropped with room in the queue", 1+i)
		}
	}
	for i := range 3 {
		if w.Log(testRecord(10 + i)) {
			t.Fatalf("Log into a full queue succeeded (extra %d)", i)
		}
	}
	if got := w.Dropped(); got != 3 {
		t.Fatalf("Dropped = %d, want 3", got)
	}
	close(release)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := w.Written(); got != 1+queue {
		t.Fatalf("Written = %d, want %d", got, 1+queue)
	}
	if w.Log(testRecord(99)) {
		t.Fatal("Log after Close succeeded")
	}
	if got := w.Dropped(); got != 3 {
		t.Fatalf("Dropped after Close = %d, want 3 (Log after Close is not a drop)", got)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	rep, err := Verify(path)
	if err != nil || rep.Records != 1+queue {
		t.Fatalf("Verify: %+v %v", rep, err)
	}
	// The records kept are the ones queued, in order.
	for i, l := range readLines(t, path) {
		if r := decode(t, l); r.Name != testRecord(i).Name {
			t.Errorf("line %d is %s, want %s", i+1, r.Name, testRecord(i).Name)
		}
	}
}

func TestConcurrentLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	w := openTest(t, Options{Path: path, QueueSize: 64, MaxSize: 64 << 10, MaxFiles: 1000})
	const goroutines, each = 16, 400
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		accepted int
	)
	for g := range goroutines {
		wg.Go(func() {
			n := 0
			for i := range each {
				r := testRecord(g*each + i)
				r.Time = fixedNow.Add(time.Duration(i) * time.Millisecond)
				if w.Log(r) {
					n++
				}
				if i%50 == 0 {
					w.Head()
					w.Written()
				}
			}
			mu.Lock()
			accepted += n
			mu.Unlock()
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if w.Written() != uint64(accepted) || w.Dropped() != uint64(goroutines*each-accepted) {
		t.Fatalf("accepted %d of %d; Written %d, Dropped %d", accepted, goroutines*each, w.Written(), w.Dropped())
	}
	set, err := RotatedSet(path)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(set...)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if rep.Records != accepted || rep.Last != uint64(accepted) || !rep.Genesis {
		t.Fatalf("Report = %+v, want %d records", rep, accepted)
	}
}

func TestWriteErrorOnDevFull(t *testing.T) {
	// /dev/full accepts the open and fails every write with ENOSPC.
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full on this system")
	}
	var logs bytes.Buffer
	w, err := Open(Options{Path: "/dev/full", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatalf("Open(/dev/full): %v", err)
	}
	for i := range 3 {
		w.Log(testRecord(i))
	}
	err = w.Close()
	if err == nil || !strings.Contains(err.Error(), "/dev/full") || !strings.Contains(err.Error(), "3 record(s) not written") {
		t.Fatalf("Close = %v, want a write error naming /dev/full and 3 records", err)
	}
	if w.Err() == nil {
		t.Error("Err() = nil after a failed write")
	}
	if w.Failed() != 3 || w.WriteErrors() == 0 {
		t.Errorf("Failed() = %d, WriteErrors() = %d, want 3 and > 0", w.Failed(), w.WriteErrors())
	}
	if !strings.Contains(logs.String(), "writing failed") {
		t.Errorf("write error not logged: %s", logs.String())
	}
}

func TestLongFieldsClipped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	r := testRecord(0)
	r.Rule = strings.Repeat("é", MaxLineSize) // 2 bytes per rune
	w := openTest(t, Options{Path: path})
	w.Log(r)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got := decode(t, readLines(t, path)[0])
	if len(got.Rule) > maxFieldLen || !strings.HasPrefix(r.Rule, got.Rule) || len(got.Rule) < maxFieldLen-1 {
		t.Fatalf("rule clipped to %d bytes (valid prefix: %v)", len(got.Rule), strings.HasPrefix(r.Rule, got.Rule))
	}
	if _, err := Verify(path); err != nil {
		t.Fatal(err)
	}
}

func TestZeroTimeUsesClockOtherTimeKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	w := openTest(t, Options{Path: path})
	given := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	r := testRecord(0)
	r.Time = given
	w.Log(testRecord(1))
	w.Log(r)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	lines := readLines(t, path)
	if got := decode(t, lines[0]).Time; !got.Equal(fixedNow) {
		t.Errorf("zero Time became %v, want the clock's %v", got, fixedNow)
	}
	if got := decode(t, lines[1]).Time; !got.Equal(given) {
		t.Errorf("Time %v became %v", given, got)
	}
}

func TestUnencodableRecordSkipped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	w := openTest(t, Options{Path: path})
	bad := testRecord(1)
	bad.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) // outside RFC 3339
	w.Log(testRecord(0))
	w.Log(bad)
	w.Log(testRecord(2))
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v (a skipped record must not stop the log)", err)
	}
	if w.Written() != 2 || w.Failed() != 1 {
		t.Fatalf("Written %d Failed %d, want 2 and 1", w.Written(), w.Failed())
	}
	rep, err := Verify(path)
	if err != nil || rep.Records != 2 || rep.Last != 2 {
		t.Fatalf("Verify: %+v %v", rep, err)
	}
}

package audit

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// renumber rewrites seq of lines[from:] to follow lines[from-1], and also
// their prev when rechain is set: what a forger who knows the format would do.
func renumber(t *testing.T, lines [][]byte, from int, rechain bool) [][]byte {
	t.Helper()
	out := append([][]byte{}, lines[:from]...)
	prev := decode(t, lines[from-1])
	prevHash := lineHash(lines[from-1])
	for _, l := range lines[from:] {
		r := decode(t, l)
		r.Seq = prev.Seq + 1
		if rechain {
			r.Prev = prevHash
		}
		b := mustMarshal(t, r)
		out = append(out, b)
		prev, prevHash = r, lineHash(b)
	}
	return out
}

func TestVerifyDetectsTampering(t *testing.T) {
	good := filepath.Join(t.TempDir(), "audit.log")
	writeLog(t, Options{Path: good}, 10)
	lines := readLines(t, good)

	edit := func(i int, old, new string) [][]byte {
		out := append([][]byte{}, lines...)
		out[i] = bytes.Replace(lines[i], []byte(old), []byte(new), 1)
		if bytes.Equal(out[i], lines[i]) {
			t.Fatalf("edit of line %d changed nothing", i+1)
		}
		return out
	}
	without := func(i int) [][]byte {
		return append(append([][]byte{}, lines[:i]...), lines[i+1:]...)
	}
	swap := func(i, j int) [][]byte {
		out := append([][]byte{}, lines...)
		out[i], out[j] = out[j], out[i]
		return out
	}

	tests := []struct {
		name     string
		lines    [][]byte
		raw      []byte // used instead of lines when set
		wantLine int
		wantSeq  uint64 // 0: the line is not a valid record
		reason   string
		wantRecs int // records valid before the break
	}{
		{name: "name_edited", lines: edit(3, "chat3.deepseek.com", "chat3.example.com"),
			wantLine: 5, wantSeq: 5, reason: "prev hash does not match line 4 (edited or deleted record)", wantRecs: 4},
		{name: "action_edited", lines: edit(6, `"action":"nxdomain"`, `"action":"allow"`),
			wantLine: 8, wantSeq: 8, reason: "prev hash does not match line 7", wantRecs: 7},
		{name: "prev_edited", lines: edit(5, `"prev":"`, `"prev":"0`+``),
			wantLine: 6, reason: "not a valid record", wantRecs: 5},
		{name: "seq_edited", lines: edit(4, `"seq":5,`, `"seq":50,`),
			wantLine: 5, wantSeq: 50, reason: "45 record(s) missing", wantRecs: 4},
		{name: "line_deleted", lines: without(4),
			wantLine: 5, wantSeq: 6, reason: "does not follow seq 4 at line 4: 1 record(s) missing", wantRecs: 4},
		{name: "line_deleted_and_renumbered", lines: renumber(t, without(4), 4, false),
			wantLine: 5, wantSeq: 5, reason: "prev hash does not match line 4 (edited or deleted record)", wantRecs: 4},
		{name: "first_line_deleted_is_a_new_anchor", lines: without(0), wantRecs: 9},
		{name: "lines_reordered", lines: swap(2, 3),
			wantLine: 3, wantSeq: 4, reason: "1 record(s) missing", wantRecs: 2},
		{name: "line_duplicated", lines: append(append(append([][]byte{}, lines[:5]...), lines[4]), lines[5:]...),
			wantLine: 6, wantSeq: 5, reason: "does not follow seq 5 at line 5 (reordered", wantRecs: 5},
		{name: "truncated_final_line", raw: append(joinNL(lines[:9]...), lines[9][:len(lines[9])/2]...),
			wantLine: 10, reason: "not a valid record: unexpected end of JSON input", wantRecs: 9},
		{name: "blank_line_inserted", lines: append(append(append([][]byte{}, lines[:3]...), []byte{}), lines[3:]...),
			wantLine: 4, reason: "empty line", wantRecs: 3},
		{name: "crlf_line", lines: edit(2, "}", "}\r"),
			wantLine: 4, wantSeq: 4, reason: "prev hash does not match line 3", wantRecs: 3},
		{name: "junk_line", lines: edit(7, `{`, `x{`),
			wantLine: 8, reason: "not a valid record", wantRecs: 7},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.log")
			if tc.raw != nil {
				if err := os.WriteFile(path, tc.raw, 0o640); err != nil {
					t.Fatal(err)
				}
			} else {
				writeLines(t, path, tc.lines)
			}
			rep, err := Verify(path)
			if rep.Records != tc.wantRecs {
				t.Errorf("Report.Records = %d, want %d", rep.Records, tc.wantRecs)
			}
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			ce := wantChainError(t, err, path, tc.wantLine, tc.reason)
			if ce.Seq != tc.wantSeq {
				t.Errorf("ChainError.Seq = %d, want %d", ce.Seq, tc.wantSeq)
			}
		})
	}
}

// A forger who rewrites every record after the one they change produces a
// valid chain; only a head published elsewhere (Writer.Head, the rotation and
// close log lines) shows it, through Report.LastHash.
func TestVerifyRewrittenTailNeedsPublishedHead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	w := openTest(t, Options{Path: path})
	for i := range 6 {
		w.Log(testRecord(i))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	seq, head := w.Head()
	lines := readLines(t, path)
	forged := append([][]byte{}, lines[:2]...)
	forged = append(forged, bytes.Replace(lines[2], []byte("chat2"), []byte("chat9"), 1))
	forged = append(forged, lines[3:]...)
	writeLines(t, path, renumber(t, forged, 3, true))
	rep, err := Verify(path)
	if err != nil {
		t.Fatalf("Verify of a rewritten chain: %v (a full rewrite is expected to verify)", err)
	}
	if rep.Last != seq {
		t.Fatalf("Last = %d, want %d", rep.Last, seq)
	}
	if rep.LastHash == head {
		t.Fatal("rewritten chain has the published head hash")
	}
}

func TestChainErrorMessage(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	writeLog(t, Options{Path: path}, 20)
	lines := readLines(t, path)
	lines[15] = bytes.Replace(lines[15], []byte(`"tier":"mandated"`), []byte(`"tier":"advisory"`), 1)
	writeLines(t, path, lines)
	_, err := Verify(path)
	want := path + ":17: record seq 17: prev hash does not match line 16 (edited or deleted record)"
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v\nwant    %s", err, want)
	}

	// Across files, the previous record is named with its file.
	writeLines(t, path+".1", lines[:16])
	writeLines(t, path, lines[16:])
	_, err = Verify(path+".1", path)
	want = path + ":1: record seq 17: prev hash does not match " + path + ".1:16 (edited or deleted record)"
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v\nwant    %s", err, want)
	}

	writeLines(t, path, [][]byte{[]byte("{")})
	_, err = Verify(path)
	if want := path + ":1: not a valid record: unexpected end of JSON input"; err == nil || err.Error() != want {
		t.Fatalf("error = %v\nwant    %s", err, want)
	}
}

func TestVerifyEmptyAndMissing(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.log")
	if err := os.WriteFile(empty, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(empty)
	if err != nil || rep != (Report{Files: 1}) {
		t.Fatalf("Verify(empty) = %+v, %v", rep, err)
	}
	// An empty file inside a set (a log just rotated) does not break it.
	path := filepath.Join(dir, "audit.log")
	writeLog(t, Options{Path: path}, 4)
	lines := readLines(t, path)
	writeLines(t, path+".1", lines[:2])
	writeLines(t, path, lines[2:])
	rep, err = Verify(path+".1", empty, path)
	if err != nil || rep.Records != 4 || rep.Files != 3 {
		t.Fatalf("Verify with an empty middle file = %+v, %v", rep, err)
	}

	_, err = Verify(filepath.Join(dir, "missing.log"))
	var ce *ChainError
	if !errors.Is(err, fs.ErrNotExist) || errors.As(err, &ce) {
		t.Fatalf("Verify(missing) = %v, want a not-exist error that is not a ChainError", err)
	}
}

func TestVerifyLineTooLong(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	writeLog(t, Options{Path: path}, 2)
	lines := readLines(t, path)
	lines = append(lines, bytes.Repeat([]byte("a"), MaxLineSize+1))
	writeLines(t, path, lines)
	_, err := Verify(path)
	wantChainError(t, err, path, 3, "line longer than "+strconv.Itoa(MaxLineSize))
}

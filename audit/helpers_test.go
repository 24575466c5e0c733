package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fixedNow is the clock of the tests.
var fixedNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.FixedZone("AEDT", 11*3600))

func testRecord(i int) Record {
	return Record{
		Client:       "192.0.2.0/24",
		Name:         fmt.Sprintf("chat%d.deepseek.com.", i),
		Type:         "A",
		Jurisdiction: "au-gov",
		Tier:         "mandated",
		Instrument:   "PSPF Direction 001-2025",
		Rule:         "deepseek.com",
		Source:       "lists/deepseek.txt",
		Line:         3,
		PolicyHash:   "ab12cd34",
		Action:       "nxdomain",
		Mode:         "enforce",
	}
}

// openTest opens a Writer with the test clock; the test closes it.
func openTest(t testing.TB, opts Options) *Writer {
	t.Helper()
	if opts.Now == nil {
		opts.Now = func() time.Time { return fixedNow }
	}
	w, err := Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return w
}

// writeLog logs n records through a new Writer at opts.Path and closes it.
func writeLog(t testing.TB, opts Options, n int) {
	t.Helper()
	w := openTest(t, opts)
	for i := range n {
		if !w.Log(testRecord(i)) {
			t.Fatalf("Log %d: dropped", i)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func readLines(t testing.TB, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 {
		return nil
	}
	if b[len(b)-1] != '\n' {
		t.Fatalf("%s does not end in a newline", path)
	}
	return bytes.Split(b[:len(b)-1], []byte{'\n'})
}

func writeLines(t testing.TB, path string, lines [][]byte) {
	t.Helper()
	var b []byte
	for _, l := range lines {
		b = append(b, l...)
		b = append(b, '\n')
	}
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
}

func decode(t testing.TB, line []byte) Record {
	t.Helper()
	var r Record
	if err := json.Unmarshal(line, &r); err != nil {
		t.Fatalf("decoding %s: %v", line, err)
	}
	return r
}

// wantChainError checks that err is a *ChainError at file:line whose reason
// contains reason.
func wantChainError(t testing.TB, err error, file string, line int, reason string) *ChainError {
	t.Helper()
	var ce *ChainError
	if !errors.As(err, &ce) {
		t.Fatalf("error = %v (%T), want *ChainError", err, err)
	}
	if ce.File != file || ce.Line != line || !strings.Contains(ce.Reason, reason) {
		t.Fatalf("ChainError = %s:%d %q, want %s:%d reason containing %q",
			ce.File, ce.Line, ce.Reason, filepath.Base(file), line, reason)
	}
	return ce
}

func mustMarshal(t testing.TB, r Record) []byte {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

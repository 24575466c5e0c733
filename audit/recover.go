package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// MaxTornKept is how many bytes of a torn last line Open copies into the
// .torn file; the event in the chain gives the size and SHA-256 of all of it.
const MaxTornKept = 1 << 20

// TornSuffix is appended to Options.Path to name the file that receives
// torn last lines.
const TornSuffix = ".torn"

// tail is the last line of a region [0, end) of a file.
type tail struct {
	line       []byte // without its newline; nil when tooLong
	start      int64  // offset of the line
	terminated bool   // a newline follows it
	tooLong    bool   // longer than MaxLineSize
	ok         bool   // the region holds a line
}

// readTail returns the last line of the first end bytes of f.
func readTail(f *os.File, end int64) (tail, error) {
	var t tail
	if end == 0 {
		return t, nil
	}
	t.ok = true
	last := make([]byte, 1)
	if _, err := f.ReadAt(last, end-1); err != nil {
		return t, fmt.Errorf("audit: reading %s: %w", f.Name(), err)
	}
	if last[0] == '\n' {
		end--
		t.terminated = true
	}
	// The window holds one byte more than the longest accepted line, so a
	// line that fills it without a newline is too long.
	n := min(end, MaxLineSize+1)
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, end-n); err != nil && err != io.EOF {
		return t, fmt.Errorf("audit: reading %s: %w", f.Name(), err)
	}
	if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
		t.line, t.start = buf[i+1:], end-n+int64(i+1)
		return t, nil
	}
	if end-n == 0 {
		t.line = buf
		return t, nil
	}
	// No newline in the window: find where the line starts.
	t.tooLong = true
	chunk := make([]byte, 64<<10)
	for pos := end - n; pos > 0; {
		k := min(pos, int64(len(chunk)))
		if _, err := f.ReadAt(chunk[:k], pos-k); err != nil && err != io.EOF {
			return t, fmt.Errorf("audit: reading %s: %w", f.Name(), err)
		}
		if i := bytes.LastIndexByte(chunk[:k], '\n'); i >= 0 {
			t.start = pos - k + int64(i+1)
			return t, nil
		}
		pos -= k
	}
	return t, nil
}

// problem says why t's line cannot continue the chain ("" when it can).
func (t tail) problem() string {
	if t.tooLong {
		return fmt.Sprintf("line longer than %d bytes", MaxLineSize)
	}
	if _, err := parseRecord(t.line); err != nil {
		if !t.terminated {
			return "unterminated line (torn write): " + err.Error()
		}
		return err.Error()
	}
	return ""
}

// head is where the chain found by Open continues.
type head struct {
	seq        uint64
	hash       string
	checkpoint bool  // the last line is a checkpoint
	fileEmpty  bool  // Options.Path holds no line
	torn       *Torn // the line moved aside, if any
}

// findHead finds the last line of the chain: in path or, when path holds no
// line, in path.1. A last line that is not a valid record (a torn write, or
// anything else) is moved aside into path.torn once (see moveAside); if the
// line before it is not valid either, that is not a torn write and findHead
// fails, naming file:line, without changing anything.
func findHead(path string) (head, error) {
	h := head{hash: Genesis}
	for i, p := range []string{path, rotatedName(path, 1)} {
		done, err := h.scan(path, p)
		if err != nil {
			return h, err
		}
		if done {
			return h, nil
		}
		if i == 0 {
			h.fileEmpty = true
		}
	}
	return h, nil
}

// scan reads the last line of p into h, moving a bad one aside. It reports
// whether p held a record.
func (h *head) scan(path, p string) (bool, error) {
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("audit: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("audit: %w", err)
	}
	if !st.Mode().IsRegular() {
		return false, nil // /dev/full, a FIFO: nothing to continue from
	}
	end := st.Size()
	for {
		t, err := readTail(f, end)
		if err != nil || !t.ok {
			return false, err
		}
		reason := t.problem()
		if reason == "" {
			r, _ := parseRecord(t.line)
			h.seq, h.hash, h.checkpoint = r.Seq, lineHash(t.line), r.Event == EventCheckpoint
			return true, nil
		}
		lineNo, _ := lineNumber(p, t.start)
		if h.torn != nil {
			return false, fmt.Errorf("audit: %s:%d: last record is corrupt (%s), and so was the line after it, "+
				"moved to %s: not a torn write; check the log with `jurisdns audit verify` and move it aside",
				p, lineNo, reason, h.torn.File)
		}
		if t.start > 0 {
			prev, err := readTail(f, t.start)
			if err != nil {
				return false, err
			}
			if r := prev.problem(); r != "" {
				prevNo, _ := lineNumber(p, prev.start)
				return false, fmt.Errorf("audit: %s:%d: last record is corrupt (%s), and so is line %d (%s): "+
					"not a torn write; check the log with `jurisdns audit verify` and move it aside",
					p, lineNo, reason, prevNo, r)
			}
		}
		torn, err := moveAside(f, path+TornSuffix, t.start, end)
		if err != nil {
			return false, err
		}
		torn.From, torn.Line, torn.Reason = filepath.Base(p), lineNo, reason
		h.torn = torn
		end = t.start
	}
}

// moveAside appends bytes [start, end) of f (at most MaxTornKept of them,
// then a newline) to the file tornPath, syncs it, and truncates f's file to
// start. When the copy fails (a full disk), it truncates anyway, so that
// the log can go on, and tries the copy once more; Torn.Error then says
// what happened.
func moveAside(f *os.File, tornPath string, start, end int64) (*Torn, error) {
	t := &Torn{Bytes: end - start}
	h := sha256.New()
	kept := make([]byte, 0, min(end-start, MaxTornKept))
	r := io.NewSectionReader(f, start, end-start)
	buf := make([]byte, 64<<10)
	for {
		n, err := r.Read(buf)
		h.Write(buf[:n])
		if room := MaxTornKept - len(kept); room > 0 {
			kept = append(kept, buf[:min(n, room)]...)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("audit: reading %s: %w", f.Name(), err)
		}
	}
	t.SHA256 = hex.EncodeToString(h.Sum(nil))
	save := func() error {
		tf, err := os.OpenFile(tornPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, fileMode)
		if err != nil {
			return err
		}
		data := kept
		if len(data) == 0 || data[len(data)-1] != '\n' {
			data = append(data[:len(data):len(data)], '\n')
		}
		_, err = tf.Write(data)
		if e := tf.Sync(); err == nil {
			err = e
		}
		if e := tf.Close(); err == nil {
			err = e
		}
		return err
	}
	saveErr := save()
	if err := os.Truncate(f.Name(), start); err != nil {
		return nil, fmt.Errorf("audit: cutting the torn last line off %s: %w", f.Name(), err)
	}
	if w, err := os.OpenFile(f.Name(), os.O_WRONLY, 0); err == nil {
		_ = w.Sync()
		w.Close()
	}
	if saveErr != nil {
		saveErr = save()
	}
	if saveErr != nil {
		t.Error = saveErr.Error()
		return t, nil
	}
	t.File, t.Kept = filepath.Base(tornPath), int64(len(kept))
	return t, nil
}

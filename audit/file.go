package audit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// DefaultMaxFiles is the number of rotated files kept when Options.MaxSize is
// set and Options.MaxFiles is 0.
const DefaultMaxFiles = 10

// fileMode is the permission of log files the package creates.
const fileMode = 0o640

// rotFile is an append-only log file with size-based rotation. It is used by
// one goroutine at a time.
type rotFile struct {
	path     string
	maxSize  int64
	maxFiles int
	f        *os.File
	bw       *bufio.Writer
	size     int64
	dirty    bool // a failed write left bytes past size (see appendDirect)
	needNL   bool // the file ends in a line without its newline

	// writeHook, when set (by tests), replaces f.Write in appendDirect.
	writeHook func(f *os.File, b []byte) (int, error)
}

// openRotFile opens path for appending, creating it if needed (the parent
// directory must exist). If the file ends in an unterminated line, a newline
// is appended so that new lines start on their own.
func openRotFile(path string, maxSize int64, maxFiles int) (*rotFile, error) {
	if maxSize > 0 && maxFiles <= 0 {
		maxFiles = DefaultMaxFiles
	}
	rf := &rotFile{path: path, maxSize: maxSize, maxFiles: maxFiles}
	if err := rf.open(); err != nil {
		return nil, err
	}
	if rf.size > 0 {
		nl, err := endsInNewline(path, rf.size)
		if err != nil {
			rf.f.Close()
			return nil, err
		}
		// When the newline cannot be written now (a full disk), the next
		// write starts with it.
		rf.needNL = !nl && rf.appendDirect([]byte{'\n'}) != nil
	}
	return rf, nil
}

// endsInNewline reports whether byte size-1 of the file at path is a newline.
func endsInNewline(path string, size int64) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, fmt.Errorf("audit: %w", err)
	}
	defer f.Close()
	last := make([]byte, 1)
	if _, err := f.ReadAt(last, size-1); err != nil {
		return false, fmt.Errorf("audit: reading %s: %w", path, err)
	}
	return last[0] == '\n', nil
}

func (rf *rotFile) open() error {
	f, err := os.OpenFile(rf.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, fileMode)
	if err != nil {
		return fmt.Errorf("audit: opening log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("audit: opening log: %w", err)
	}
	rf.f, rf.size = f, st.Size()
	if rf.bw == nil {
		rf.bw = bufio.NewWriterSize(f, 64<<10)
	} else {
		rf.bw.Reset(f)
	}
	return nil
}

// write appends line (which ends in a newline), rotating first when the line
// would take the file past maxSize. A line longer than maxSize still goes into
// a file of its own. It reports whether it rotated.
func (rf *rotFile) write(line []byte) (rotated bool, err error) {
	if rf.f == nil {
		return false, fmt.Errorf("audit: %s is not open", rf.path)
	}
	if rf.maxSize > 0 && rf.size > 0 && rf.size+int64(len(line)) > rf.maxSize {
		if err := rf.rotate(); err != nil {
			return false, err
		}
		rotated = true
	}
	if rf.needNL {
		line = append([]byte{'\n'}, line...)
		rf.needNL = false
	}
	n, err := rf.bw.Write(line)
	rf.size += int64(n)
	if err != nil {
		return rotated, fmt.Errorf("audit: writing %s: %w", rf.path, err)
	}
	return rotated, nil
}

// appendDirect writes b to the file with one write, bypassing the buffer
// (which must be empty). When the write fails after writing part of b, the
// file is truncated back to where b started, so that it never ends in part
// of a line; if that fails too, the next appendDirect tries again first.
// A closed file (after a failed rotation) is opened again.
func (rf *rotFile) appendDirect(b []byte) error {
	if rf.f == nil {
		if err := rf.open(); err != nil {
			return err
		}
	}
	if rf.dirty {
		if err := rf.f.Truncate(rf.size); err != nil {
			return fmt.Errorf("audit: cutting a partial write off %s: %w", rf.path, err)
		}
		rf.dirty = false
	}
	if rf.needNL {
		b = append([]byte{'\n'}, b...)
	}
	var n int
	var err error
	if rf.writeHook != nil {
		n, err = rf.writeHook(rf.f, b)
	} else {
		n, err = rf.f.Write(b)
	}
	if err != nil {
		if n > 0 {
			rf.dirty = rf.f.Truncate(rf.size) != nil
		}
		return fmt.Errorf("audit: writing %s: %w", rf.path, err)
	}
	rf.size += int64(n)
	rf.needNL = false
	return nil
}

func (rf *rotFile) flush() error {
	if rf.f == nil {
		return nil
	}
	if err := rf.bw.Flush(); err != nil {
		return fmt.Errorf("audit: writing %s: %w", rf.path, err)
	}
	return nil
}

// close flushes, syncs and closes the file. Calling it again is a no-op.
func (rf *rotFile) close() error {
	if rf.f == nil {
		return nil
	}
	err := rf.flush()
	if e := rf.f.Sync(); e != nil && err == nil {
		err = fmt.Errorf("audit: syncing %s: %w", rf.path, e)
	}
	if e := rf.f.Close(); e != nil && err == nil {
		err = fmt.Errorf("audit: closing %s: %w", rf.path, e)
	}
	rf.f = nil
	return err
}

// rotate closes the current file and shifts the set: path.K for K >= maxFiles
// is removed, path.K becomes path.K+1, path becomes path.1, and a new, empty
// path is opened.
func (rf *rotFile) rotate() error {
	if err := rf.close(); err != nil {
		return err
	}
	old, err := rotatedFiles(rf.path)
	if err != nil {
		return err
	}
	for _, r := range old {
		if r.n >= rf.maxFiles {
			if err := os.Remove(r.name); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("audit: rotating: %w", err)
			}
		}
	}
	for i := rf.maxFiles - 1; i >= 1; i-- {
		err := os.Rename(rotatedName(rf.path, i), rotatedName(rf.path, i+1))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("audit: rotating: %w", err)
		}
	}
	if err := os.Rename(rf.path, rotatedName(rf.path, 1)); err != nil {
		return fmt.Errorf("audit: rotating: %w", err)
	}
	if err := rf.open(); err != nil {
		return err
	}
	rf.needNL = false // the new file is empty
	syncDir(filepath.Dir(rf.path))
	return nil
}

// syncDir makes renames in dir durable where the platform supports it; it is
// best effort.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

func rotatedName(path string, n int) string { return path + "." + strconv.Itoa(n) }

type rotated struct {
	n    int
	name string
}

// rotatedFiles lists the existing path.N files (N ≥ 1, written without
// leading zeros), highest N (oldest) first.
func rotatedFiles(path string) ([]rotated, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("audit: listing rotated files of %s: %w", path, err)
	}
	var out []rotated
	for _, e := range ents {
		suffix, ok := strings.CutPrefix(e.Name(), base+".")
		if !ok || e.IsDir() {
			continue
		}
		n, err := strconv.Atoi(suffix)
		if err != nil || n < 1 || strconv.Itoa(n) != suffix {
			continue
		}
		out = append(out, rotated{n: n, name: rotatedName(path, n)})
	}
	slices.SortFunc(out, func(a, b rotated) int { return b.n - a.n })
	return out, nil
}

// RotatedSet returns the files of the rotated set of path that exist, oldest
// first: path.N, …, path.2, path.1, path. Give the result to [Verify] to check
// the whole set. A gap in the numbering is kept as is (Verify will then report
// the missing records). It is an error if none of the files exists.
func RotatedSet(path string) ([]string, error) {
	old, err := rotatedFiles(path)
	if err != nil {
		return nil, err
	}
	files := make([]string, 0, len(old)+1)
	for _, r := range old {
		files = append(files, r.name)
	}
	if _, err := os.Stat(path); err == nil {
		files = append(files, path)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("audit: %w", err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("audit: no log at %s: %w", path, fs.ErrNotExist)
	}
	return files, nil
}

// lineNumber returns the 1-based number of the line that contains byte offset
// off of the file at path (1 + the newlines before off). It reads the file up
// to off, so it is meant for error messages.
func lineNumber(path string, off int64) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	lines := 1
	buf := make([]byte, 64<<10)
	r := io.NewSectionReader(f, 0, off)
	for {
		k, err := r.Read(buf)
		lines += bytes.Count(buf[:k], []byte{'\n'})
		if err == io.EOF {
			return lines, nil
		}
		if err != nil {
			return 0, err
		}
	}
}

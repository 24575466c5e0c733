package audit

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
)

// Report summarizes what Verify checked.
type Report struct {
	// Files is the number of files read to the end.
	Files int
	// Records is the number of records whose place in the chain was checked.
	Records int
	// First and Last are the seq of the first and last valid records.
	First, Last uint64
	// LastHash is the hash of the last valid line: compare it with a head
	// published by the Writer to detect records cut off the end.
	LastHash string
	// Genesis reports whether the first record is the start of a chain
	// (seq 1, prev = Genesis) rather than an anchor left by rotation.
	Genesis bool
}

// ChainError locates the first record where the chain breaks.
type ChainError struct {
	// File and Line locate the record (Line is 1-based).
	File string
	Line int
	// Seq is the record's seq; it is 0 when the line is not a valid record.
	Seq uint64
	// Reason says what is wrong.
	Reason string

	parsed bool // Seq is meaningful
}

// Error formats the error as "file:line: record seq N: reason".
func (e *ChainError) Error() string {
	if !e.parsed {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Reason)
	}
	return fmt.Sprintf("%s:%d: record seq %d: %s", e.File, e.Line, e.Seq, e.Reason)
}

// Verify checks the chain across files, given oldest first (for a rotated
// set, the order RotatedSet returns: log.2, log.1, log). Every line must be a
// record; each record's seq must be one more than the previous record's and
// its prev must equal the SHA-256 of the previous line, across file
// boundaries. The first record of the first file is the anchor: its prev is
// accepted as it is. Empty files are allowed (a log just rotated).
//
// On a broken chain Verify returns a [*ChainError] for the first bad record,
// with the Report of what was valid up to it. Other errors (a file that
// cannot be read) are returned as they are.
func Verify(files ...string) (Report, error) {
	v := verifier{}
	for _, name := range files {
		if err := v.file(name); err != nil {
			return v.rep, err
		}
		v.rep.Files++
	}
	return v.rep, nil
}

type verifier struct {
	rep      Report
	have     bool   // a previous record exists
	prevSeq  uint64 // its seq
	prevHash string // its line hash
	prevFile string // where it is
	prevLine int
	buf      []byte
}

func (v *verifier) file(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 64<<10)
	for lineNo := 1; ; lineNo++ {
		line, err := v.readLine(br)
		if errors.Is(err, errLineTooLong) {
			return &ChainError{File: name, Line: lineNo, Reason: fmt.Sprintf("line longer than %d bytes", MaxLineSize)}
		}
		if err == io.EOF && len(line) == 0 {
			return nil
		}
		if err != nil && err != io.EOF {
			return fmt.Errorf("audit: reading %s:%d: %w", name, lineNo, err)
		}
		if cerr := v.record(name, lineNo, line); cerr != nil {
			return cerr
		}
		if err == io.EOF {
			return nil
		}
	}
}

var errLineTooLong = errors.New("line too long")

// readLine returns the next line without its newline, io.EOF with the last
// line when it has no newline, or io.EOF and nothing at the end.
func (v *verifier) readLine(br *bufio.Reader) ([]byte, error) {
	v.buf = v.buf[:0]
	for {
		frag, err := br.ReadSlice('\n')
		if len(v.buf)+len(frag) > MaxLineSize+1 {
			return nil, errLineTooLong
		}
		v.buf = append(v.buf, frag...)
		switch err {
		case bufio.ErrBufferFull:
			continue
		case nil:
			return v.buf[:len(v.buf)-1], nil
		default:
			return v.buf, err
		}
	}
}

// record checks one line against the previous record and makes it the
// previous record.
func (v *verifier) record(name string, lineNo int, line []byte) error {
	r, err := parseRecord(line)
	if err != nil {
		return &ChainError{File: name, Line: lineNo, Reason: err.Error()}
	}
	bad := func(format string, args ...any) error {
		return &ChainError{File: name, Line: lineNo, Seq: r.Seq, Reason: fmt.Sprintf(format, args...), parsed: true}
	}
	if v.have {
		where := fmt.Sprintf("line %d", v.prevLine)
		if v.prevFile != name {
			where = fmt.Sprintf("%s:%d", v.prevFile, v.prevLine)
		}
		switch {
		case r.Seq == v.prevSeq+1:
		case r.Seq > v.prevSeq+1 && v.prevSeq+1 != 0:
			return bad("does not follow seq %d at %s: %d record(s) missing (deleted record or file)",
				v.prevSeq, where, r.Seq-v.prevSeq-1)
		default:
			return bad("does not follow seq %d at %s (reordered, duplicated or renumbered record)", v.prevSeq, where)
		}
		if r.Prev != v.prevHash {
			return bad("prev hash does not match %s (edited or deleted record)", where)
		}
	} else {
		v.rep.First = r.Seq
		v.rep.Genesis = r.Prev == Genesis && r.Seq == 1
	}
	v.have = true
	v.prevSeq, v.prevHash, v.prevFile, v.prevLine = r.Seq, lineHash(line), name, lineNo
	v.rep.Records++
	v.rep.Last, v.rep.LastHash = r.Seq, v.prevHash
	return nil
}

package audit

import (
	"bufio"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
)

// Report summarizes what Verify checked.
type Report struct {
	// Files is the number of files read to the end.
	Files int `json:"files"`
	// Records is the number of lines (records and events) whose place in
	// the chain was checked.
	Records int `json:"records"`
	// First and Last are the seq of the first and last valid records.
	First uint64 `json:"first"`
	Last  uint64 `json:"last"`
	// LastHash is the hash of the last valid line: compare it with a head
	// published by the Writer to detect records cut off the end.
	LastHash string `json:"last_hash"`
	// Genesis reports whether the first record is the start of a chain
	// (seq 1, prev = Genesis) rather than an anchor left by rotation.
	Genesis bool `json:"genesis"`
	// Checkpoints is the number of checkpoint lines; LastCheckpoint is the
	// count the last one covers.
	Checkpoints    int    `json:"checkpoints"`
	LastCheckpoint uint64 `json:"last_checkpoint"`
	// Signed reports that the checkpoints were verified with a public key;
	// Unsigned is then the number of lines after the last checkpoint, which
	// no signature covers yet.
	Signed   bool `json:"signed"`
	Unsigned int  `json:"unsigned"`
	// CheckpointMatched reports that the checkpoint given in VerifyOptions
	// was found in the log.
	CheckpointMatched bool `json:"checkpoint_matched"`
}

// VerifyOptions configure [VerifyWith].
type VerifyOptions struct {
	// PublicKey verifies the signed checkpoints. With it, the chain must
	// start at genesis or with a signed rotate checkpoint, every
	// checkpoint's signature must hold, and at least one checkpoint must
	// exist.
	PublicKey ed25519.PublicKey
	// Checkpoint is one kept outside the log (from /api/status or
	// /metrics); it needs PublicKey. The log must hold the line it names,
	// unchanged: a log that ends before it was cut.
	Checkpoint *Checkpoint
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
// accepted as it is. Empty files are allowed (a log just rotated). A
// checkpoint line must name its own place (count = seq-1, head = prev); its
// signature is not checked (see VerifyWith).
//
// On a broken chain Verify returns a [*ChainError] for the first bad record,
// with the Report of what was valid up to it. Other errors (a file that
// cannot be read) are returned as they are.
func Verify(files ...string) (Report, error) {
	return VerifyWith(VerifyOptions{}, files...)
}

// VerifyWith is Verify with checkpoint signatures checked (see
// VerifyOptions). Without a public key, anyone who can write the files can
// re-compute the whole chain; with it, an edited, re-chained or head-deleted
// log fails at the first checkpoint (or line) it changed, and with a
// checkpoint kept elsewhere, a log cut short of it fails too.
func VerifyWith(opts VerifyOptions, files ...string) (Report, error) {
	v := verifier{pub: opts.PublicKey, cp: opts.Checkpoint}
	v.rep.Signed = v.pub != nil
	if v.cp != nil {
		if v.pub == nil {
			return v.rep, errors.New("audit: a checkpoint to check needs the public key")
		}
		if err := v.cp.Verify(v.pub); err != nil {
			return v.rep, fmt.Errorf("audit: the checkpoint given: %w", err)
		}
	}
	for _, name := range files {
		if err := v.file(name); err != nil {
			return v.rep, err
		}
		v.rep.Files++
	}
	return v.rep, v.end(files)
}

// end applies the checks that need the whole log.
func (v *verifier) end(files []string) error {
	file, line := v.prevFile, v.prevLine
	if !v.have && len(files) > 0 {
		file, line = files[len(files)-1], 1
	}
	tail := &ChainError{File: file, Line: line, Seq: v.prevSeq, parsed: v.have}
	if v.cp != nil && !v.rep.CheckpointMatched {
		if !v.have {
			tail.Reason = fmt.Sprintf("the log is empty, but the checkpoint given covers %d line(s): the log was cut", v.cp.Count)
		} else {
			tail.Reason = fmt.Sprintf("the log ends here, but the checkpoint given covers %d line(s): %d line(s) cut from the end",
				v.cp.Count, v.cp.Count-v.prevSeq)
		}
		return tail
	}
	if v.pub != nil && v.rep.Checkpoints == 0 {
		tail.Reason = "no checkpoint in the log: it was re-written without its checkpoints, or not written with a signing key"
		return tail
	}
	return nil
}

type verifier struct {
	pub      ed25519.PublicKey
	cp       *Checkpoint
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
		if v.cp != nil && v.cp.Count+1 < r.Seq {
			return bad("the checkpoint given covers %d line(s), but the files start here: "+
				"it cannot be checked without the older files; give a newer checkpoint or the older files too", v.cp.Count)
		}
		if v.cp != nil && v.cp.Count+1 == r.Seq {
			if r.Prev != v.cp.Head {
				return bad("prev does not match the head of the checkpoint given (count %d): "+
					"the lines before it were changed", v.cp.Count)
			}
			v.rep.CheckpointMatched = true
		}
		if v.pub != nil && !v.rep.Genesis && !(r.Event == EventCheckpoint && r.Checkpoint != nil &&
			(r.Checkpoint.Reason == ReasonRotate || r.Checkpoint.Reason == ReasonOpen && r.Checkpoint.Count == 0)) {
			return bad("the chain starts here without an anchor: the %d line(s) before it were deleted "+
				"(a log starts at seq 1, and every file the writer starts with a signed rotate checkpoint)", r.Seq-1)
		}
	}
	hash := lineHash(line)
	if r.Event == EventCheckpoint {
		c := r.Checkpoint
		switch {
		case c == nil:
			return bad("checkpoint event without a checkpoint")
		case c.Count+1 != r.Seq || c.Head != r.Prev:
			return bad("checkpoint names count %d and head %s, which are not the lines before it: "+
				"the lines before it were changed (edited or re-chained) or the checkpoint was moved", c.Count, shortHash(c.Head))
		}
		if v.pub != nil {
			if err := c.Verify(v.pub); err != nil {
				return bad("checkpoint: %v", err)
			}
		}
		v.rep.Checkpoints++
		v.rep.LastCheckpoint = c.Count
		v.rep.Unsigned = 0
	} else if v.pub != nil {
		v.rep.Unsigned++
	}
	if v.cp != nil && r.Seq == v.cp.Count && v.cp.Count > 0 {
		if hash != v.cp.Head {
			return bad("does not match the head of the checkpoint given (count %d): "+
				"this line or lines before it were changed (edited or re-chained)", v.cp.Count)
		}
		v.rep.CheckpointMatched = true
	}
	v.have = true
	v.prevSeq, v.prevHash, v.prevFile, v.prevLine = r.Seq, hash, name, lineNo
	v.rep.Records++
	v.rep.Last, v.rep.LastHash = r.Seq, v.prevHash
	return nil
}

func shortHash(h string) string {
	if len(h) > 16 {
		return h[:16] + "…"
	}
	return h
}

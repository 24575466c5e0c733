package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Options configures a [Writer] or a [QueryLog].
type Options struct {
	// Path is the log file. It is created (mode 0640) if missing; its parent
	// directory must exist.
	Path string
	// MaxSize is the size in bytes a file may reach before it is rotated; a
	// record that would take the file past it goes into a new file. 0 means
	// never rotate.
	MaxSize int64
	// MaxFiles is how many rotated files (Path.1 … Path.MaxFiles, Path.1 the
	// newest) are kept; at rotation older ones are removed. 0 means
	// DefaultMaxFiles. Removing the oldest file cannot be detected from the
	// files that remain: Verify of the remaining contiguous set still
	// succeeds, anchored at its oldest record (Report.Genesis is then false).
	MaxFiles int
	// QueueSize is the number of records that may wait for the writer
	// goroutine; when the queue is full, Log drops the record and counts it.
	// 0 means DefaultQueueSize.
	QueueSize int
	// Logger receives the writer's own events (rotation, write errors, close).
	// nil discards them.
	Logger *slog.Logger
	// Now is the clock used for records logged with a zero Time. nil means
	// time.Now.
	Now func() time.Time

	// beforeWrite, when set (by tests), is called by the writer goroutine
	// before it handles each record.
	beforeWrite func()
}

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Writer appends hash-chained records to the enforcement log. Its methods are
// safe for concurrent use.
type Writer struct {
	q           *queue[Record]
	file        *rotFile
	log         *slog.Logger
	now         func() time.Time
	beforeWrite func()

	// Owned by the writer goroutine.
	buf bytes.Buffer
	enc *json.Encoder

	mu   sync.Mutex // guards seq, prev and err
	seq  uint64     // seq of the last record written (0: none yet)
	prev string     // hash of the last line written, or Genesis
	err  error      // first write error; once set, records are no longer written

	written atomic.Uint64
	failed  atomic.Uint64

	closeOnce sync.Once
	closeErr  error
}

// Open opens the enforcement log at opts.Path and starts its writer
// goroutine. If the file already holds records, the chain continues from its
// last line (seq and prev); if it is empty or missing, the chain continues from
// the last line of Path.1 if that exists, and otherwise starts at seq 1 with
// prev Genesis. A last line that is not a valid record is an error naming
// file:line; the file is left untouched (move it aside, after verifying it,
// to start a new chain). Only the last line is read: use Verify to check the
// whole file.
//
// Only one Writer may use a path at a time.
func Open(opts Options) (*Writer, error) {
	opts.defaults()
	seq, prev, err := chainHead(opts.Path)
	if err != nil {
		return nil, err
	}
	rf, err := openRotFile(opts.Path, opts.MaxSize, opts.MaxFiles)
	if err != nil {
		return nil, err
	}
	w := &Writer{
		q:           newQueue[Record](opts.QueueSize),
		file:        rf,
		log:         opts.Logger,
		now:         opts.Now,
		beforeWrite: opts.beforeWrite,
		seq:         seq,
		prev:        prev,
	}
	w.enc = json.NewEncoder(&w.buf)
	go w.q.run(w.write, w.flush)
	return w, nil
}

// chainHead finds where the chain of the log at path continues: the seq and
// line hash of its last record, taken from path or, when path holds no line,
// from path.1. It returns 0 and Genesis when neither holds a record.
func chainHead(path string) (seq uint64, prev string, err error) {
	for _, p := range []string{path, rotatedName(path, 1)} {
		line, start, ok, err := lastLine(p)
		if err != nil {
			return 0, "", err
		}
		if !ok {
			continue
		}
		r, err := parseRecord(line)
		if err != nil {
			lineNo, lerr := lineNumber(p, start)
			if lerr != nil {
				return 0, "", fmt.Errorf("audit: %s: last record is corrupt: %w", p, err)
			}
			return 0, "", fmt.Errorf("audit: %s:%d: last record is corrupt: %w", p, lineNo, err)
		}
		return r.Seq, lineHash(line), nil
	}
	return 0, Genesis, nil
}

// Log queues r for writing and returns at once. It sets r.Time from the
// clock when it is zero; Seq and Prev are assigned by the writer. Log returns
// false when the record was not queued: the queue is full (the record is
// dropped and counted by Dropped) or the Writer is closed.
func (w *Writer) Log(r Record) bool {
	if r.Time.IsZero() {
		r.Time = w.now()
	}
	return w.q.put(r)
}

// write runs on the writer goroutine: it chains, encodes and writes one record.
func (w *Writer) write(r Record) {
	if w.beforeWrite != nil {
		w.beforeWrite()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		w.failed.Add(1)
		return
	}
	r.Time = r.Time.UTC()
	clipFields(&r)
	r.Seq, r.Prev = w.seq+1, w.prev
	w.buf.Reset()
	if err := w.enc.Encode(&r); err != nil {
		// Only a Time outside years 0–9999 can fail; skip that record.
		w.failed.Add(1)
		w.log.Error("enforcement log: record not written", "err", err, "name", r.Name)
		return
	}
	line := w.buf.Bytes() // ends in the newline added by Encode
	hash := lineHash(line[:len(line)-1])
	oldSeq, oldHash := w.seq, w.prev
	rotated, err := w.file.write(line)
	if err != nil {
		w.fail(err)
		return
	}
	w.seq, w.prev = r.Seq, hash
	w.written.Add(1)
	if rotated {
		w.log.Info("enforcement log rotated", "path", w.file.path,
			"rotated_to", rotatedName(w.file.path, 1), "last_seq", oldSeq, "last_hash", oldHash)
	}
}

// fail records the first write error; the caller holds w.mu.
func (w *Writer) fail(err error) {
	w.failed.Add(1)
	if w.err == nil {
		w.err = err
		w.log.Error("enforcement log: writing stopped", "err", err)
	}
}

func (w *Writer) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return
	}
	if err := w.file.flush(); err != nil {
		w.fail(err)
	}
}

// Dropped returns how many records Log dropped because the queue was full.
func (w *Writer) Dropped() uint64 { return w.q.dropped.Load() }

// Written returns how many records were written (handed to the file; they
// reach the disk when the queue runs empty, at rotation and on Close).
func (w *Writer) Written() uint64 { return w.written.Load() }

// Failed returns how many queued records were not written because of a write
// error (see Err).
func (w *Writer) Failed() uint64 { return w.failed.Load() }

// Err returns the first write error, or nil. After a write error the Writer
// stops writing (to keep the file a valid chain) and counts records as Failed.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Head returns the seq and line hash of the last record of the chain: the
// last one written, or the one Open continued from (0 and Genesis for a new
// chain). Publishing it elsewhere lets an operator
// detect records cut off the end of the log later.
func (w *Writer) Head() (seq uint64, hash string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seq, w.prev
}

// Close stops accepting records, writes everything already queued, then
// flushes, syncs and closes the file. It logs the head of the chain at info
// level. It returns the first write error, if any; calling it again returns
// the same result. Log after Close returns false.
func (w *Writer) Close() error {
	w.closeOnce.Do(func() {
		w.q.close()
		w.mu.Lock()
		defer w.mu.Unlock()
		err := w.err
		if cerr := w.file.close(); err == nil {
			err = cerr
		}
		w.closeErr = err
		w.log.Info("enforcement log closed", "path", w.file.path, "last_seq", w.seq, "last_hash", w.prev,
			"written", w.written.Load(), "dropped", w.q.dropped.Load(), "failed", w.failed.Load())
	})
	return w.closeErr
}

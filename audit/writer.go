package audit

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of the outage handling.
const (
	// DefaultRetryInterval is Options.RetryInterval when it is 0.
	DefaultRetryInterval = time.Second
	// DefaultMaxBuffered is Options.MaxBuffered when it is 0: about 2,500
	// records.
	DefaultMaxBuffered = 1 << 20
)

// flushAt is how many bytes of pending lines make the Writer write them out
// even while its queue is not empty.
const flushAt = 64 << 10

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

	// SigningKey, when set, makes the Writer add signed checkpoints to the
	// chain (enforcement log only): when it opens the log, as the first line
	// of every file it starts, every CheckpointRecords records, every
	// CheckpointInterval, and on Close.
	SigningKey ed25519.PrivateKey
	// CheckpointRecords is the number of records after which a checkpoint
	// is written; 0 means none by count.
	CheckpointRecords int
	// CheckpointInterval is the time after which a checkpoint is written
	// when records came in since the last one; 0 means none by time.
	CheckpointInterval time.Duration
	// RetryInterval is how often the Writer tries to write again after a
	// write error (a full disk). 0 means DefaultRetryInterval.
	RetryInterval time.Duration
	// MaxBuffered is how many bytes of records the Writer keeps in memory
	// while it cannot write; records beyond it are lost and counted. 0 means
	// DefaultMaxBuffered.
	MaxBuffered int

	// beforeWrite, when set (by tests), is called by the writer goroutine
	// before it handles each record.
	beforeWrite func()
	// writeHook, when set (by tests), replaces the write of the
	// enforcement log's file (see rotFile.writeHook).
	writeHook func(f *os.File, b []byte) (int, error)
}

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.RetryInterval <= 0 {
		o.RetryInterval = DefaultRetryInterval
	}
	if o.MaxBuffered <= 0 {
		o.MaxBuffered = DefaultMaxBuffered
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
	key         ed25519.PrivateKey
	cpRecords   int
	cpInterval  time.Duration
	retry       time.Duration
	maxBuffered int

	// Owned by the writer goroutine (and Open and Close, which run before
	// and after it).
	buf bytes.Buffer
	enc *json.Encoder

	mu          sync.Mutex // guards everything below
	seq         uint64     // seq of the last line chained (0: none yet)
	prev        string     // hash of the last line chained, or Genesis
	headCP      bool       // the last line chained is a checkpoint
	pending     []byte     // lines chained but not yet in the file
	pendingRecs uint64     // records among them
	sinceCP     int        // records chained since the last checkpoint
	lastCPAt    time.Time  // when it was made (wall clock, for the interval)
	lastCP      *Checkpoint
	out         *outage // non-nil while writes fail
	torn        *Torn   // what Open moved aside

	failing     atomic.Bool // w.out != nil, readable without w.mu
	written     atomic.Uint64
	failed      atomic.Uint64
	writeErrors atomic.Uint64

	closeOnce sync.Once
	closeErr  error
}

// outage is a period during which writes fail.
type outage struct {
	from     time.Time
	err      error
	buffered uint64 // records kept in pending during it
	lost     uint64 // records not kept
}

// Open opens the enforcement log at opts.Path and starts its writer
// goroutine. If the file already holds records, the chain continues from its
// last line (seq and prev); if it is empty or missing, the chain continues from
// the last line of Path.1 if that exists, and otherwise starts at seq 1 with
// prev Genesis. Only the last line is read: use Verify to check the whole
// file.
//
// A last line that is not a valid record (a write torn by a crash or a full
// disk) is moved aside: its bytes are appended to Path.torn, it is cut off
// the log, and the chain records it as a "torn" event (see [Torn]). If the
// line before it is not valid either, Open fails naming file:line and
// changes nothing.
//
// A failed write does not fail Open: the Writer keeps the lines and retries
// (see [Writer.Err]).
//
// Only one Writer may use a path at a time.
func Open(opts Options) (*Writer, error) {
	opts.defaults()
	h, err := findHead(opts.Path)
	if err != nil {
		return nil, err
	}
	rf, err := openRotFile(opts.Path, opts.MaxSize, opts.MaxFiles)
	if err != nil {
		return nil, err
	}
	rf.writeHook = opts.writeHook
	w := &Writer{
		q:           newQueue[Record](opts.QueueSize),
		file:        rf,
		log:         opts.Logger,
		now:         opts.Now,
		beforeWrite: opts.beforeWrite,
		key:         opts.SigningKey,
		cpRecords:   opts.CheckpointRecords,
		cpInterval:  opts.CheckpointInterval,
		retry:       opts.RetryInterval,
		maxBuffered: opts.MaxBuffered,
		seq:         h.seq,
		prev:        h.hash,
		headCP:      h.checkpoint,
		lastCPAt:    time.Now(),
		torn:        h.torn,
	}
	w.enc = json.NewEncoder(&w.buf)
	w.mu.Lock()
	if w.key != nil && h.fileEmpty && h.seq > 0 {
		w.checkpoint(ReasonRotate) // the first line of the file anchors it
	}
	if h.torn != nil {
		w.log.Warn("enforcement log: moved a torn last line aside", "path", opts.Path,
			"line", h.torn.Line, "bytes", h.torn.Bytes, "to", h.torn.File, "reason", h.torn.Reason, "err", h.torn.Error)
		w.addEvent(&eventLine{Event: EventTorn, Torn: h.torn})
	}
	if w.key != nil && !w.headCP {
		w.checkpoint(ReasonOpen)
	}
	_ = w.flushPending()
	w.mu.Unlock()
	go w.run()
	return w, nil
}

// run is the writer goroutine: records from the queue, and a ticker for
// retries and interval checkpoints.
func (w *Writer) run() {
	defer close(w.q.done)
	period := w.retry
	if w.key != nil && w.cpInterval > 0 {
		period = min(period, w.cpInterval)
	}
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		select {
		case r, ok := <-w.q.ch:
			if !ok {
				return
			}
			w.write(r)
			if len(w.q.ch) == 0 {
				w.flush()
			}
		case <-tick.C:
			w.onTick()
		}
	}
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
	r.Time = r.Time.UTC()
	r.Event, r.Checkpoint, r.Torn, r.Resumed = "", nil, nil, nil
	clipFields(&r)
	encode := func() ([]byte, error) {
		r.Seq, r.Prev = w.seq+1, w.prev
		return w.encode(&r)
	}
	line, err := encode()
	if err != nil {
		// Only a Time outside years 0–9999 can fail; skip that record.
		w.failed.Add(1)
		w.log.Error("enforcement log: record not written", "err", err, "name", r.Name)
		return
	}
	if w.file.maxSize > 0 && w.file.size+int64(len(w.pending)) > 0 &&
		w.file.size+int64(len(w.pending)+len(line)) > w.file.maxSize && w.flushIfWriting() == nil {
		if w.rotate() {
			line, _ = encode()
		}
	}
	if w.out != nil && len(w.pending)+len(line) > w.maxBuffered {
		w.out.lost++
		w.failed.Add(1)
		return
	}
	w.appendLine(line, false)
	w.pendingRecs++
	w.sinceCP++
	if w.out != nil {
		w.out.buffered++
	}
	if len(w.pending) >= flushAt {
		_ = w.flushIfWriting()
	}
	if w.key != nil && w.cpRecords > 0 && w.sinceCP >= w.cpRecords {
		w.checkpoint(ReasonRecords)
	}
}

// encode returns the JSON line of v (ending in a newline); it is valid
// until the next call.
func (w *Writer) encode(v any) ([]byte, error) {
	w.buf.Reset()
	if err := w.enc.Encode(v); err != nil {
		return nil, err
	}
	return w.buf.Bytes(), nil
}

// appendLine adds an encoded line to pending and makes it the head.
func (w *Writer) appendLine(line []byte, cp bool) {
	w.seq, w.prev, w.headCP = w.seq+1, lineHash(line[:len(line)-1]), cp
	w.pending = append(w.pending, line...)
}

// addEvent chains one event line; the caller holds w.mu.
func (w *Writer) addEvent(ev *eventLine) {
	if w.out != nil && len(w.pending) >= w.maxBuffered {
		return
	}
	ev.Time, ev.Seq, ev.Prev = w.now().UTC(), w.seq+1, w.prev
	line, err := w.encode(ev)
	if err != nil {
		w.log.Error("enforcement log: event not written", "event", ev.Event, "err", err)
		return
	}
	w.appendLine(line, ev.Event == EventCheckpoint)
}

// checkpoint chains a signed checkpoint of the chain so far; the caller
// holds w.mu.
func (w *Writer) checkpoint(reason string) {
	if w.key == nil || w.out != nil && len(w.pending) >= w.maxBuffered {
		return
	}
	cp := &Checkpoint{Count: w.seq, Head: w.prev, Time: w.now().UTC(), Reason: reason}
	cp.sign(w.key)
	w.addEvent(&eventLine{Event: EventCheckpoint, Checkpoint: cp})
	w.sinceCP, w.lastCPAt, w.lastCP = 0, time.Now(), cp
}

// rotate starts a new file (pending is empty); it reports whether it did.
// With a signing key, the new file starts with a checkpoint.
func (w *Writer) rotate() bool {
	oldSeq, oldHash := w.seq, w.prev
	if err := w.file.rotate(); err != nil {
		// The file is closed; the next write opens Path again and goes on.
		w.writeErrors.Add(1)
		w.log.Error("enforcement log: rotation failed; going on in the same file", "err", err)
		return false
	}
	w.log.Info("enforcement log rotated", "path", w.file.path,
		"rotated_to", rotatedName(w.file.path, 1), "last_seq", oldSeq, "last_hash", oldHash)
	w.checkpoint(ReasonRotate)
	return true
}

// flushPending writes the pending lines; the caller holds w.mu. A failure
// starts (or continues) an outage: the lines stay pending for the next try.
// The first success after an outage chains a "resumed" event.
func (w *Writer) flushPending() error {
	if len(w.pending) == 0 {
		return nil
	}
	if err := w.file.appendDirect(w.pending); err != nil {
		w.writeErrors.Add(1)
		if w.out == nil {
			w.out = &outage{from: w.now().UTC(), err: err, buffered: w.pendingRecs}
			w.failing.Store(true)
			w.log.Error("enforcement log: writing failed; retrying", "err", err, "retry_every", w.retry,
				"buffer_bytes", w.maxBuffered)
		}
		return err
	}
	w.written.Add(w.pendingRecs)
	w.pending, w.pendingRecs = w.pending[:0], 0
	if o := w.out; o != nil {
		w.out = nil
		w.failing.Store(false)
		res := &Resumed{From: o.from, Until: w.now().UTC(), Error: o.err.Error(), Buffered: o.buffered, Lost: o.lost}
		w.log.Warn("enforcement log: writing resumed", "since", o.from, "buffered", o.buffered, "lost", o.lost)
		w.addEvent(&eventLine{Event: EventResumed, Resumed: res})
		return w.flushPending()
	}
	return nil
}

// flushIfWriting writes the pending lines unless an outage is going on:
// then only the ticker tries again (every RetryInterval), so that a flood
// of records does not turn into a flood of failing writes.
func (w *Writer) flushIfWriting() error {
	if w.out != nil {
		return w.out.err
	}
	return w.flushPending()
}

func (w *Writer) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	_ = w.flushIfWriting()
}

// onTick retries after a write error and writes interval checkpoints.
func (w *Writer) onTick() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.key != nil && w.cpInterval > 0 && w.sinceCP > 0 && time.Since(w.lastCPAt) >= w.cpInterval {
		w.checkpoint(ReasonInterval)
	}
	_ = w.flushPending()
}

// Dropped returns how many records Log dropped because the queue was full.
func (w *Writer) Dropped() uint64 { return w.q.dropped.Load() }

// Written returns how many records were written to the file (they reach
// the disk when the file is synced: at rotation and on Close).
func (w *Writer) Written() uint64 { return w.written.Load() }

// Failed returns how many queued records were not written: lost during an
// outage (the buffer was full, or still unwritten at Close), or not
// encodable.
func (w *Writer) Failed() uint64 { return w.failed.Load() }

// WriteErrors returns how many writes to the file failed.
func (w *Writer) WriteErrors() uint64 { return w.writeErrors.Load() }

// Err returns the error of the current outage, or nil while the log is
// being written. During an outage the Writer retries every RetryInterval,
// keeps up to MaxBuffered bytes of records (chained as usual) and counts
// the rest as Failed; when a write succeeds again it writes what it kept,
// then a "resumed" event (see [Resumed]) that says how many were lost.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.out == nil {
		return nil
	}
	return w.out.err
}

// Writing reports whether the log is being written (no outage). Unlike
// Err it takes no lock, so a readiness probe never waits for a slow write.
func (w *Writer) Writing() bool { return !w.failing.Load() }

// Head returns the seq and line hash of the last line of the chain: the
// last one chained (it may still be in memory; see Err), or the one Open
// continued from (0 and Genesis for a new chain).
func (w *Writer) Head() (seq uint64, hash string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seq, w.prev
}

// LastCheckpoint returns the last checkpoint the Writer made, if any.
// Publish it (the status API and /metrics do): whoever keeps a copy can
// later detect lines cut off the end of the log with VerifyOptions.Checkpoint.
func (w *Writer) LastCheckpoint() (Checkpoint, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.lastCP == nil {
		return Checkpoint{}, false
	}
	return *w.lastCP, true
}

// State is a summary of a Writer for status pages and metrics.
type State struct {
	Path string `json:"path"`
	// Writing is false during an outage: Error is its first error and
	// FailingSince when it began.
	Writing      bool      `json:"writing"`
	Error        string    `json:"error,omitempty"`
	FailingSince time.Time `json:"failing_since,omitzero"`
	// BufferedBytes are chained lines waiting to be written.
	BufferedBytes int    `json:"buffered_bytes"`
	Written       uint64 `json:"written"`
	Dropped       uint64 `json:"dropped"`
	Failed        uint64 `json:"failed"`
	WriteErrors   uint64 `json:"write_errors"`
	// HeadSeq and HeadHash are the last line of the chain.
	HeadSeq  uint64 `json:"head_seq"`
	HeadHash string `json:"head_hash"`
	// Signed says whether the Writer signs checkpoints; Checkpoint is the
	// last one.
	Signed     bool        `json:"signed"`
	Checkpoint *Checkpoint `json:"checkpoint,omitempty"`
	// Torn is what Open moved aside, if anything.
	Torn *Torn `json:"torn,omitempty"`
}

// State returns the current state of w.
func (w *Writer) State() State {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := State{
		Path: w.file.path, Writing: w.out == nil, BufferedBytes: len(w.pending),
		Written: w.written.Load(), Dropped: w.q.dropped.Load(), Failed: w.failed.Load(),
		WriteErrors: w.writeErrors.Load(), HeadSeq: w.seq, HeadHash: w.prev, Signed: w.key != nil, Torn: w.torn,
	}
	if w.out != nil {
		s.Error, s.FailingSince = w.out.err.Error(), w.out.from
	}
	if w.lastCP != nil {
		cp := *w.lastCP
		s.Checkpoint = &cp
	}
	return s
}

// Close stops accepting records, writes everything already queued and, with
// a signing key, a closing checkpoint, then syncs and closes the file. It
// logs the head of the chain at info level. If writing still fails, the
// lines not written are lost (counted by Failed) and Close returns the
// error; calling it again returns the same result. Log after Close returns
// false.
func (w *Writer) Close() error {
	w.closeOnce.Do(func() {
		w.q.close()
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.key != nil && !w.headCP {
			w.checkpoint(ReasonClose)
		}
		err := w.flushPending()
		if w.out != nil {
			err = fmt.Errorf("%w (%d record(s) not written)", w.out.err, w.pendingRecs+w.out.lost)
			w.failed.Add(w.pendingRecs)
			w.log.Error("enforcement log: closed with records not written", "err", err)
		}
		if cerr := w.file.close(); err == nil {
			err = cerr
		}
		w.closeErr = err
		w.log.Info("enforcement log closed", "path", w.file.path, "last_seq", w.seq, "last_hash", w.prev,
			"written", w.written.Load(), "dropped", w.q.dropped.Load(), "failed", w.failed.Load())
	})
	return w.closeErr
}

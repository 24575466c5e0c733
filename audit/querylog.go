package audit

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// QueryEntry is one line of the general query log.
type QueryEntry struct {
	// Time is when the query was answered; Log sets it when zero.
	Time time.Time `json:"time"`
	// Client is the client as rendered by ClientString.
	Client string `json:"client"`
	// Name is the queried name.
	Name string `json:"name"`
	// Type is the query type ("A", "AAAA", ...).
	Type string `json:"type"`
	// Rcode is the response code of the answer ("NOERROR", "NXDOMAIN", ...).
	Rcode string `json:"rcode"`
	// DurationUS is the time taken to answer, in microseconds.
	DurationUS int64 `json:"duration_us"`
	// Cached reports an answer from the cache.
	Cached bool `json:"cached"`
	// Blocked reports an answer synthesized by the policy.
	Blocked bool `json:"blocked"`
}

// QueryLog writes one plain JSON line per query, without a hash chain,
// through a bounded non-blocking queue, with the same size-based rotation as
// the enforcement log. Its methods are safe for concurrent use.
type QueryLog struct {
	q           *queue[QueryEntry]
	file        *rotFile
	log         *slog.Logger
	now         func() time.Time
	beforeWrite func()

	buf bytes.Buffer // owned by the writer goroutine
	enc *json.Encoder

	mu      sync.Mutex // guards err
	err     error
	written atomic.Uint64
	failed  atomic.Uint64

	closeOnce sync.Once
	closeErr  error
}

// OpenQueryLog opens (or creates, mode 0640) the query log at opts.Path,
// appending to what it holds, and starts its writer goroutine.
func OpenQueryLog(opts Options) (*QueryLog, error) {
	opts.defaults()
	rf, err := openRotFile(opts.Path, opts.MaxSize, opts.MaxFiles)
	if err != nil {
		return nil, err
	}
	l := &QueryLog{
		q:           newQueue[QueryEntry](opts.QueueSize),
		file:        rf,
		log:         opts.Logger,
		now:         opts.Now,
		beforeWrite: opts.beforeWrite,
	}
	l.enc = json.NewEncoder(&l.buf)
	go l.q.run(l.write, l.flush)
	return l, nil
}

// Log queues e and returns at once; it sets e.Time from the clock when it is
// zero. It returns false when e was not queued: the queue is full (the entry
// is dropped and counted by Dropped) or the log is closed.
func (l *QueryLog) Log(e QueryEntry) bool {
	if e.Time.IsZero() {
		e.Time = l.now()
	}
	return l.q.put(e)
}

func (l *QueryLog) write(e QueryEntry) {
	if l.beforeWrite != nil {
		l.beforeWrite()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		l.failed.Add(1)
		return
	}
	e.Time = e.Time.UTC()
	e.Client, e.Name, e.Type, e.Rcode = clip(e.Client, maxFieldLen), clip(e.Name, maxFieldLen),
		clip(e.Type, maxFieldLen), clip(e.Rcode, maxFieldLen)
	l.buf.Reset()
	if err := l.enc.Encode(&e); err != nil {
		l.failed.Add(1)
		return
	}
	if _, err := l.file.write(l.buf.Bytes()); err != nil {
		l.fail(err)
		return
	}
	l.written.Add(1)
}

// fail records the first write error; the caller holds l.mu.
func (l *QueryLog) fail(err error) {
	l.failed.Add(1)
	if l.err == nil {
		l.err = err
		l.log.Error("query log: writing stopped", "err", err)
	}
}

func (l *QueryLog) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return
	}
	if err := l.file.flush(); err != nil {
		l.fail(err)
	}
}

// Dropped returns how many entries Log dropped because the queue was full.
func (l *QueryLog) Dropped() uint64 { return l.q.dropped.Load() }

// Written returns how many entries were written to the file.
func (l *QueryLog) Written() uint64 { return l.written.Load() }

// Failed returns how many queued entries were not written because of a write
// error (see Err).
func (l *QueryLog) Failed() uint64 { return l.failed.Load() }

// Err returns the first write error, or nil; after it the log stops writing.
func (l *QueryLog) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// Close stops accepting entries, writes everything already queued, then
// flushes, syncs and closes the file. It returns the first write error, if
// any; calling it again returns the same result.
func (l *QueryLog) Close() error {
	l.closeOnce.Do(func() {
		l.q.close()
		l.mu.Lock()
		defer l.mu.Unlock()
		err := l.err
		if cerr := l.file.close(); err == nil {
			err = cerr
		}
		l.closeErr = err
	})
	return l.closeErr
}

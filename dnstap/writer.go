// Package dnstap sends jurisdns's queries and answers, and its exchanges
// with upstreams, as dnstap (https://dnstap.info): protobuf messages over a
// Frame Streams connection (unix socket or TCP) to a collector such as
// fstrm_capture, dnstap-ldns, dnscollector or a SIEM's receiver.
//
// The writer never slows the DNS server: Log copies the event into a
// bounded queue and returns; a full queue drops the event and counts it.
// One goroutine encodes the events and writes them, and when the collector
// is unreachable or goes away it reconnects with exponential backoff while
// the queue (then the drop counter) absorbs what arrives meanwhile.
//
// Each event carries dnstap's Policy when the policy acted on the query: the
// jurisdiction and list entry (rule), the action, match QNAME and the
// jurisdiction's instrument (value). golang-dnstap's released generated code
// predates Policy, so frames are encoded here with protowire (which is also
// cheaper than building and marshalling the generated structs for every
// query); golang-dnstap provides the Frame Streams writer and, in the tests,
// the reader and decoder.
package dnstap

import (
	"bufio"
	"context"
	"encoding/binary"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	tap "github.com/dnstap/golang-dnstap"
)

// Defaults of Options.
const (
	DefaultQueueSize  = 10000
	defaultTimeout    = 5 * time.Second
	defaultMinBackoff = 250 * time.Millisecond
	defaultMaxBackoff = 30 * time.Second
	defaultFlushDelay = 100 * time.Millisecond
	// maxPooledBuf is the largest record buffer kept for reuse: a rare
	// 64 KB TCP answer should not pin that much per pooled record.
	maxPooledBuf = 8 << 10
)

// Stats counts events across writers (a reload that changes the collector
// replaces the writer, not the counts).
type Stats struct {
	// Sent counts events (a query and its response) written to a collector.
	Sent atomic.Uint64
	// Dropped counts events lost: the queue was full (the collector is too
	// slow or away), or the connection failed before they were flushed.
	Dropped atomic.Uint64
}

// Options configure a Writer.
type Options struct {
	// Network is "unix" or "tcp"; Address the socket path or host:port.
	Network, Address string
	// Identity and Version go into every frame (dnstap's identity and
	// version fields).
	Identity, Version string
	// Client and Forwarder select the messages: CLIENT_QUERY and
	// CLIENT_RESPONSE, FORWARDER_QUERY and FORWARDER_RESPONSE.
	Client, Forwarder bool
	// QueueSize bounds the events waiting to be written; 0 means
	// DefaultQueueSize.
	QueueSize int
	// Stats receives the counts; nil means the writer's own.
	Stats *Stats
	// Logger receives connection changes; nil discards.
	Logger *slog.Logger
	// Timeout bounds a dial, the Frame Streams handshake and one write;
	// 0 means 5s.
	Timeout time.Duration
	// MinBackoff and MaxBackoff bound the wait between connection attempts
	// (doubling from the first to the second); 0 means 250ms and 30s.
	MinBackoff, MaxBackoff time.Duration
	// FlushDelay is the longest a written event waits in the buffer before
	// it is sent (it goes sooner when 64 KB have collected); 0 means 100ms.
	FlushDelay time.Duration
}

// Writer sends events to one collector. Its methods are safe for
// concurrent use.
type Writer struct {
	opts      Options
	identity  []byte
	version   []byte
	log       *slog.Logger
	stats     *Stats
	q         chan *record
	stop      chan struct{}
	done      chan struct{}
	closed    atomic.Bool
	closeOnce sync.Once
	connected atomic.Bool
	pool      sync.Pool

	// owned by the writer goroutine
	frame, scratch []byte
}

// record is a queued event with its own copies of the messages and strings.
type record struct {
	ev  Event
	pol Policy
	buf []byte
}

// New starts a writer that connects to the collector in the background: it
// returns at once, even when the collector is not there yet.
func New(opts Options) *Writer {
	if opts.QueueSize <= 0 {
		opts.QueueSize = DefaultQueueSize
	}
	if opts.Timeout <= 0 {
		opts.Timeout = defaultTimeout
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = defaultMinBackoff
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = defaultMaxBackoff
	}
	if opts.FlushDelay <= 0 {
		opts.FlushDelay = defaultFlushDelay
	}
	w := &Writer{
		opts:     opts,
		identity: []byte(opts.Identity),
		version:  []byte(opts.Version),
		log:      opts.Logger,
		stats:    opts.Stats,
		q:        make(chan *record, opts.QueueSize),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	if w.stats == nil {
		w.stats = new(Stats)
	}
	w.pool.New = func() any { return new(record) }
	go w.run()
	return w
}

// Options returns the options the writer was built with (defaults filled).
func (w *Writer) Options() Options { return w.opts }

// Connected reports whether a collector is connected now.
func (w *Writer) Connected() bool { return w.connected.Load() }

// Stats returns the writer's counts.
func (w *Writer) Stats() *Stats { return w.stats }

// Log queues ev without blocking and reports whether it was queued. Events
// of a kind the writer does not send are ignored (true). A full queue drops
// ev and counts it. ev and what it points to are copied: the caller may
// reuse them once Log returns.
func (w *Writer) Log(ev *Event) bool {
	if ev.Forwarder && !w.opts.Forwarder || !ev.Forwarder && !w.opts.Client {
		return true
	}
	if w.closed.Load() {
		return false
	}
	if len(w.q) == cap(w.q) { // full: do not even copy
		w.stats.Dropped.Add(1)
		return false
	}
	r := w.pool.Get().(*record)
	r.fill(ev)
	select {
	case w.q <- r:
		return true
	default:
		w.release(r)
		w.stats.Dropped.Add(1)
		return false
	}
}

// fill copies ev into r.
func (r *record) fill(ev *Event) {
	b := append(r.buf[:0], ev.Query...)
	b = append(b, ev.Response...)
	p := ev.Policy
	if p != nil {
		b = append(b, p.Jurisdiction...)
		b = append(b, p.Entry...)
		b = append(b, p.Target...)
		b = append(b, p.Value...)
	}
	r.buf = b
	r.ev = *ev
	nq, nr := len(ev.Query), len(ev.Response)
	r.ev.Query = b[:nq:nq]
	if ev.Response != nil {
		r.ev.Response = b[nq : nq+nr : nq+nr]
	}
	if p != nil {
		at := nq + nr
		take := func(n int) string {
			s := bytesString(b[at : at+n])
			at += n
			return s
		}
		r.pol = Policy{Action: p.Action}
		r.pol.Jurisdiction = take(len(p.Jurisdiction))
		r.pol.Entry = take(len(p.Entry))
		r.pol.Target = take(len(p.Target))
		r.pol.Value = take(len(p.Value))
		r.ev.Policy = &r.pol
	}
}

// bytesString views b as a string; the record owns b and does not change
// it until the record is released.
func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

func (w *Writer) release(r *record) {
	if cap(r.buf) > maxPooledBuf {
		return
	}
	r.ev, r.pol = Event{}, Policy{}
	w.pool.Put(r)
}

// Close stops accepting events, writes out what is queued when a collector
// is connected (each write bounded by the timeout), ends the Frame Streams
// session and closes the connection. With no collector connected, what is
// queued is dropped and counted. It is safe to call more than once.
func (w *Writer) Close() error {
	w.closeOnce.Do(func() {
		w.closed.Store(true)
		close(w.stop)
	})
	<-w.done
	return nil
}

// run connects, writes, and reconnects with backoff until Close.
func (w *Writer) run() {
	defer close(w.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-w.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	backoff := w.opts.MinBackoff
	failing := false
	for {
		sess, err := w.connect(ctx)
		if err != nil {
			if ctx.Err() != nil {
				w.discard()
				return
			}
			if !failing {
				w.log.Warn("dnstap: cannot reach the collector; retrying with backoff (events are queued, then dropped and counted)",
					"network", w.opts.Network, "addr", w.opts.Address, "err", err)
				failing = true
			} else {
				w.log.Debug("dnstap: collector still unreachable", "addr", w.opts.Address, "err", err, "retry_in", backoff)
			}
			t := time.NewTimer(backoff)
			select {
			case <-w.stop:
				t.Stop()
				w.discard()
				return
			case <-t.C:
			}
			backoff = min(backoff*2, w.opts.MaxBackoff)
			continue
		}
		w.log.Info("dnstap: connected to the collector", "network", w.opts.Network, "addr", w.opts.Address)
		failing = false
		backoff = w.opts.MinBackoff
		w.connected.Store(true)
		stopped, err := w.pump(sess)
		w.connected.Store(false)
		_ = sess.conn.Close()
		if stopped {
			return
		}
		w.log.Warn("dnstap: lost the collector; reconnecting", "addr", w.opts.Address, "err", err)
		failing = true
	}
}

// writeBuffer is the size of the buffer frames collect in before a write to
// the collector (the Frame Streams writer's own is 4 KB: a system call per
// few events).
const writeBuffer = 64 << 10

// session is one Frame Streams session with the collector.
type session struct {
	conn net.Conn
	fw   tap.Writer
	bc   *bufConn
}

// flush sends the frames in the session's buffer.
func (s *session) flush() error { return s.bc.w.Flush() }

// bufConn puts a large buffer between the Frame Streams writer and the
// connection. A read (the handshake's ACCEPT, the closing FINISH) first
// sends what is buffered, so the control frames it answers have gone out.
// Every write to and read from the connection is bounded by timeout.
type bufConn struct {
	c       net.Conn
	w       *bufio.Writer
	timeout time.Duration
}

func (b *bufConn) Write(p []byte) (int, error) { return b.w.Write(p) }

func (b *bufConn) Read(p []byte) (int, error) {
	if err := b.w.Flush(); err != nil {
		return 0, err
	}
	_ = b.c.SetReadDeadline(time.Now().Add(b.timeout))
	return b.c.Read(p)
}

// deadlineWriter bounds every write to c by timeout: a collector that stops
// reading fails the session instead of blocking the writer for ever.
type deadlineWriter struct {
	c       net.Conn
	timeout time.Duration
}

func (d deadlineWriter) Write(p []byte) (int, error) {
	_ = d.c.SetWriteDeadline(time.Now().Add(d.timeout))
	return d.c.Write(p)
}

// connect dials the collector and completes the bidirectional Frame Streams
// handshake (content type protobuf:dnstap.Dnstap).
func (w *Writer) connect(ctx context.Context) (*session, error) {
	d := net.Dialer{Timeout: w.opts.Timeout}
	conn, err := d.DialContext(ctx, w.opts.Network, w.opts.Address)
	if err != nil {
		return nil, err
	}
	bc := &bufConn{c: conn, w: bufio.NewWriterSize(deadlineWriter{conn, w.opts.Timeout}, writeBuffer), timeout: w.opts.Timeout}
	fw, err := tap.NewWriter(bc, &tap.WriterOptions{Bidirectional: true})
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	return &session{conn: conn, fw: fw, bc: bc}, nil
}

// pump writes queued events to the session s. Frames collect in a large
// buffer that goes out when it is full or flushDelay after the first frame
// put into it: a write system call per many events rather than per event.
// pump returns stopped=true after Close (having written what was queued and
// ended the session), or the write error that lost the connection; events
// written since the last flush then count as dropped.
func (w *Writer) pump(s *session) (stopped bool, err error) {
	var pending uint64
	flush := func() error {
		if err := s.flush(); err != nil {
			return err
		}
		w.stats.Sent.Add(pending)
		pending = 0
		return nil
	}
	fail := func(err error) (bool, error) {
		w.stats.Dropped.Add(pending)
		return false, err
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	armed := false
	for {
		var r *record
		select {
		case r = <-w.q:
		case <-timer.C:
			armed = false
			if err := flush(); err != nil {
				return fail(err)
			}
			continue
		case <-w.stop:
			// Write out what is queued, then end the session.
			for len(w.q) > 0 {
				if err := w.write(s, <-w.q); err != nil {
					w.stats.Dropped.Add(pending + 1)
					w.discard()
					return true, nil
				}
				pending++
			}
			if err := flush(); err != nil {
				w.stats.Dropped.Add(pending)
				return true, nil
			}
			_ = s.fw.Close() // STOP, then FINISH from the collector (bounded by the timeout)
			return true, nil
		}
		if err := w.write(s, r); err != nil {
			pending++
			return fail(err)
		}
		pending++
		// Then what else is queued, with plain receives (this goroutine is
		// the only reader: they do not block), cheaper than a select each.
		for n := len(w.q); n > 0; n-- {
			if err := w.write(s, <-w.q); err != nil {
				pending++
				return fail(err)
			}
			pending++
		}
		if !armed {
			timer.Reset(w.opts.FlushDelay)
			armed = true
		}
	}
}

// write encodes r as its query and response frames into the session's
// buffer and releases r. Data frames are written here (a big-endian 32-bit
// length, then the payload: Frame Streams' data frame) rather than through
// the Frame Streams writer, which costs an allocation per frame; it only
// does the control frames, and its own buffer is empty between them.
func (w *Writer) write(s *session, r *record) error {
	defer w.release(r)
	qt, rt := ClientQuery, ClientResponse
	if r.ev.Forwarder {
		qt, rt = ForwarderQuery, ForwarderResponse
	}
	if err := w.writeFrame(s, qt, r); err != nil || r.ev.Response == nil {
		return err // a query without a response: nothing was sent (policy action drop) or received
	}
	return w.writeFrame(s, rt, r)
}

// writeFrame writes one data frame: its length, the head of the Dnstap
// protobuf, the Message (encoded into scratch, then copied once, into the
// session's buffer) and the tail.
func (w *Writer) writeFrame(s *session, mt MessageType, r *record) error {
	w.scratch = appendMessage(w.scratch[:0], mt, &r.ev)
	head := appendHead(append(w.frame[:0], 0, 0, 0, 0), w.identity, w.version, len(w.scratch))
	w.frame = appendTail(head)
	tail := w.frame[len(head):]
	binary.BigEndian.PutUint32(head, uint32(len(head)-4+len(w.scratch)+len(tail)))
	if _, err := s.bc.w.Write(head); err != nil {
		return err
	}
	if _, err := s.bc.w.Write(w.scratch); err != nil {
		return err
	}
	_, err := s.bc.w.Write(tail)
	return err
}

// discard drops what is queued (no collector to write it to), counting it.
func (w *Writer) discard() {
	for {
		select {
		case r := <-w.q:
			w.release(r)
			w.stats.Dropped.Add(1)
		default:
			return
		}
	}
}

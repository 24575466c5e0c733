package resolver

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// tcpPipeline is the most queries one TCP connection may have in flight
// (RFC 7766 §6.2.1.1 pipelining). At the bound the server stops reading
// the connection until an answer has been written: a client that sends
// without reading stalls only itself, with at most tcpPipeline goroutines.
const tcpPipeline = 32

// tcpConn is one accepted stream connection: plain TCP, or any transport
// that frames DNS messages with a 2-byte length over a net.Conn (DoT uses
// the same admit and serveConn, with its own Proto).
type tcpConn struct {
	net.Conn
	proto  Proto
	client netip.Addr
	// pending counts the queries begun (length read) and not yet answered;
	// the connection is idle when it is 0.
	pending atomic.Int32
	// last is the time (unix nanoseconds) of the last query read or answer
	// written, to find the oldest idle connection.
	last atomic.Int64
	// closed is set once the connection has left the server's table.
	closed atomic.Bool
}

func (c *tcpConn) touch() { c.last.Store(time.Now().UnixNano()) }

// TCPConnections returns the number of open client TCP connections.
func (s *Server) TCPConnections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

func (s *Server) serveTCP(l net.Listener) {
	defer s.wg.Done()
	for {
		conn, err := l.Accept()
		if err != nil {
			if s.closing.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		c := s.admit(conn, TCP)
		if c == nil {
			continue
		}
		s.wg.Add(1)
		go s.serveConn(c)
	}
}

// admit decides at accept whether conn is served. A client outside
// access.allow is closed at once and never counted, whatever
// access.action says (a TCP client's address cannot be spoofed, and
// nothing it could be told is worth a slot). A client at its own
// connection cap is closed. At the global cap the oldest idle connection
// is closed to admit the new one (RFC 7766 §6.2.3); when every connection
// is busy the new one is closed.
func (s *Server) admit(conn net.Conn, proto Proto) *tcpConn {
	var client netip.Addr
	if ta, ok := conn.RemoteAddr().(*net.TCPAddr); ok {
		client = ta.AddrPort().Addr().Unmap()
	}
	rt := s.rt.Load()
	if rt == nil || !client.IsValid() || !rt.allowed(client) {
		s.obs.Refused("acl")
		_ = conn.Close()
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		_ = conn.Close()
		return nil
	}
	if s.perClient[client] >= rt.maxTCPPerClient {
		s.obs.Overloaded()
		_ = conn.Close()
		return nil
	}
	if len(s.conns) >= s.maxTCP {
		var victim *tcpConn
		for c := range s.conns {
			if c.pending.Load() == 0 && (victim == nil || c.last.Load() < victim.last.Load()) {
				victim = c
			}
		}
		if victim == nil {
			s.obs.Overloaded()
			_ = conn.Close()
			return nil
		}
		s.forget(victim)
		_ = victim.Close()
	}
	c := &tcpConn{Conn: conn, proto: proto, client: client}
	c.touch()
	s.conns[c] = struct{}{}
	s.perClient[client]++
	return c
}

// forget removes c from the connection table (once); s.mu is held.
func (s *Server) forget(c *tcpConn) {
	if c.closed.Swap(true) {
		return
	}
	delete(s.conns, c)
	if n := s.perClient[c.client]; n <= 1 {
		delete(s.perClient, c.client)
	} else {
		s.perClient[c.client] = n - 1
	}
}

// serveConn serves one TCP connection (RFC 7766): several queries, each
// answered as soon as it is resolved (out of order is allowed), until the
// client closes, stays idle for the idle timeout, or does not read its
// answers within it (the connection is then closed, failing every other
// answer still waiting for it at once). A query the wire fast path answers
// (a block, a cache hit) is answered by the reading goroutine itself, with
// the connection's buffers, and its answer waits in the writer until the
// reader has nothing more to read without waiting (streamWriter); any
// other gets a goroutine of its own, at most tcpPipeline at a time.
func (s *Server) serveConn(c *tcpConn) {
	defer s.wg.Done()
	var idle atomic.Int64 // the idle timeout the reader read last
	// A client that does not read its answers: the connection is closed,
	// so that every answer still queued for it fails now instead of
	// waiting out its own deadline.
	sw := newStreamWriter(c, func() { _ = c.Close() })
	var cwg sync.WaitGroup
	slots := make(chan struct{}, tcpPipeline)
	defer func() {
		// The queries still being answered are written before the
		// connection closes: a client may half-close after its last query
		// (RFC 7766 §6.2.4 lets it) and still read every answer. The wait
		// is bounded: each answer by the query timeout, each write by the
		// idle timeout (a write that fails closes the connection), and
		// Shutdown closes every connection.
		cwg.Wait()
		sw.flush(time.Duration(idle.Load()))
		_ = c.Close()
		s.mu.Lock()
		s.forget(c)
		s.mu.Unlock()
	}()
	client := netip.AddrPortFrom(c.client, 0)
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		client = netip.AddrPortFrom(c.client, ta.AddrPort().Port())
	}
	write := func(out []byte) error { // one message of a zone transfer
		err := sw.writeSync(out, time.Duration(idle.Load()))
		if err == nil {
			c.touch()
		}
		return err
	}
	br := bufio.NewReaderSize(c, streamReadBuf)
	w := newStreamWorker()
	var lenBuf [2]byte
	for !s.closing.Load() {
		timeout := s.rt.Load().TCPIdleTimeout
		idle.Store(int64(timeout))
		if br.Buffered() < 2 {
			sw.flush(timeout) // the next read may wait: send what is ready
		}
		_ = c.SetReadDeadline(time.Now().Add(timeout))
		if _, err := io.ReadFull(br, lenBuf[:]); err != nil {
			return
		}
		c.pending.Add(1)
		n := int(binary.BigEndian.Uint16(lenBuf[:]))
		if n == 0 {
			return
		}
		if br.Buffered() < n {
			sw.flush(timeout)
		}
		pkt := w.readBuf(n)
		if _, err := io.ReadFull(br, pkt); err != nil {
			return
		}
		c.touch()
		rt := s.rt.Load() // the query's one load of the snapshot
		if out, ok := s.fastAnswer(w, rt, pkt, client, TCP); ok {
			if sw.queue(out) >= streamFlushBytes {
				sw.flush(timeout)
			}
			c.pending.Add(-1)
			continue
		}
		pkt = append([]byte(nil), pkt...) // the goroutine's own copy
		// Back-pressure: no more reading while tcpPipeline queries of
		// this connection are unanswered.
		select {
		case slots <- struct{}{}:
		case <-s.quit:
			return
		}
		if !s.begin() {
			<-slots
			return
		}
		cwg.Add(1)
		go func() {
			defer func() {
				c.pending.Add(-1)
				<-slots
				s.qwg.Done()
				cwg.Done()
			}()
			// rpz_out: SOA, AXFR and IXFR of a published zone, every
			// message written by the handler (xfr.go).
			if s.tcpXfr(pkt, client, write) {
				return
			}
			if out := s.streamAnswer(rt, pkt, client, TCP); out != nil {
				sw.write(out, time.Duration(idle.Load()))
				c.touch()
			}
		}()
	}
}

// streamReadBuf is the read buffer of a stream connection: a pipelining
// client's queries are read with one system call (or TLS record) for
// several.
const streamReadBuf = 4096

// newStreamWorker returns the buffers of one stream connection's fast path.
func newStreamWorker() *worker {
	return &worker{in: make([]byte, 0, 512), out: make([]byte, 0, 512), name: make([]byte, 0, 256)}
}

// readBuf returns w.in sized to n bytes, grown when needed.
func (w *worker) readBuf(n int) []byte {
	if cap(w.in) < n {
		w.in = make([]byte, n)
	}
	return w.in[:n]
}

// streamAnswer resolves one query of a stream transport (TCP, DoT, DoH) on
// the full path with rt, the runtime the query loaded when it was read (its
// successor when rt has been retired since), within the in-flight budget
// shared with UDP; a query over it gets the overload SERVFAIL (nil when the
// packet does not look like a query). A DoT or DoH reply is padded (RFC
// 8467).
func (s *Server) streamAnswer(rt *Runtime, pkt []byte, client netip.AddrPort, proto Proto) []byte {
	if !s.budget.acquire(client.Addr(), rt.maxInflight, rt.maxInflightPerClient) {
		s.obs.Overloaded()
		return overloadReply(pkt) // never padded: no OPT
	}
	defer s.budget.release(client.Addr())
	if !rt.enter() {
		if rt = s.acquire(); rt == nil {
			return nil // shut down
		}
	}
	defer rt.leave()
	out := s.resolve(rt, pkt, client, proto)
	if proto == DoT || proto == DoH {
		out = padReply(out)
	}
	return out
}

// streamFlushBytes bounds the answers the reader of a stream connection
// lets wait while it reads more queries: at this many bytes it writes
// them.
const streamFlushBytes = 16 << 10

// errWriterFailed is the error of a write to a connection whose writer
// failed before.
var errWriterFailed = errors.New("connection failed")

// streamWriter writes the answers of one stream connection (TCP or DoT).
// Answers that are ready while a write is in progress are sent together by
// the writer of the moment, in one write (one TLS record over DoT): a
// pipelining client gets its answers in as few segments as possible. The
// connection's reader queues the answers it writes itself and flushes them
// before it waits for more queries.
type streamWriter struct {
	c    net.Conn
	fail func() // called once when a write fails: the reader must stop
	mu   sync.Mutex
	done sync.Cond // signalled when a writer finishes
	// buf holds the framed answers waiting for the next write; spare is
	// the buffer of the previous write, for reuse.
	buf, spare []byte
	writing    bool // a goroutine is writing; it will send buf too
	failed     bool
}

func newStreamWriter(c net.Conn, fail func()) *streamWriter {
	w := &streamWriter{c: c, fail: fail}
	w.done.L = &w.mu
	return w
}

// write queues answer out and sends everything queued (see flush).
func (w *streamWriter) write(out []byte, idle time.Duration) {
	w.queue(out)
	w.flush(idle)
}

// queue adds answer out to the answers waiting for the next write and
// returns how many bytes wait.
func (w *streamWriter) queue(out []byte) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.failed {
		w.buf = binary.BigEndian.AppendUint16(w.buf, uint16(len(out)))
		w.buf = append(w.buf, out...)
	}
	return len(w.buf)
}

// flush writes everything queued until nothing is left, unless another
// goroutine is writing (it sends what was queued meanwhile).
func (w *streamWriter) flush(idle time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.writing || w.failed || len(w.buf) == 0 {
		return
	}
	w.drain(idle)
}

// writeSync sends answer out, with whatever is queued, and returns once it
// has been written: a zone transfer's messages wait for the network
// instead of piling up (see XfrFunc).
func (w *streamWriter) writeSync(out []byte, idle time.Duration) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.writing {
		w.done.Wait()
	}
	if w.failed {
		return errWriterFailed
	}
	w.buf = binary.BigEndian.AppendUint16(w.buf, uint16(len(out)))
	w.buf = append(w.buf, out...)
	w.drain(idle)
	if w.failed {
		return errWriterFailed
	}
	return nil
}

// drain writes until nothing is queued; w.mu is held, and released during
// each write.
func (w *streamWriter) drain(idle time.Duration) {
	w.writing = true
	for len(w.buf) > 0 && !w.failed {
		b := w.buf
		w.buf, w.spare = w.spare[:0], nil
		w.mu.Unlock()
		_ = w.c.SetWriteDeadline(time.Now().Add(idle))
		_, err := w.c.Write(b)
		w.mu.Lock()
		w.spare = b[:0]
		if err != nil {
			// The client is gone or stuck: drop what is queued and stop
			// the reader, which closes the connection.
			w.failed = true
			w.buf = nil
			w.fail()
		}
	}
	w.writing = false
	w.done.Broadcast()
}

package resolver

import (
	"crypto/tls"
	"encoding/binary"
	"io"
	"sync"
	"time"
)

// dotPipeline bounds the queries of one DoT connection being answered at
// once; a client that pipelines more waits (its next query is read when one
// is answered), so a connection holds at most this many goroutines.
const dotPipeline = 64

// acceptDoT serves the connections of one DoT listener.
func (e *Encrypted) acceptDoT(l *tlsListener) {
	defer e.wg.Done()
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		tc := c.(*tls.Conn)
		e.mu.Lock()
		if e.closing.Load() || l.draining.Load() {
			e.mu.Unlock()
			_ = tc.Close()
			<-l.slots
			continue
		}
		e.conns[tc] = l
		e.wg.Add(1)
		l.conns.Add(1)
		e.mu.Unlock()
		go e.serveDoT(tc, l)
	}
}

// serveDoT serves one DoT connection (RFC 7858 over RFC 7766): queries are
// read as they come (pipelining), each answered as soon as it is resolved
// (out of order), until the client closes, stays idle for dot.idle_timeout,
// the server shuts down or a reload drops the listener.
func (e *Encrypted) serveDoT(c *tls.Conn, l *tlsListener) {
	defer e.wg.Done()
	defer l.conns.Done()
	s := e.s
	w := &dotWriter{c: c}
	var cwg sync.WaitGroup
	pending := make(chan struct{}, dotPipeline)
	defer func() {
		cwg.Wait()
		_ = c.Close()
		e.mu.Lock()
		delete(e.conns, c)
		e.mu.Unlock()
		<-l.slots
	}()
	client := remoteAddrPort(c)
	var lenBuf [2]byte
	stop := func() bool { return e.closing.Load() || l.draining.Load() }
	for !stop() {
		idle := 10 * time.Second
		if rt := s.rt.Load(); rt.Config.DoT.IdleTimeout > 0 {
			idle = rt.Config.DoT.IdleTimeout
		}
		_ = c.SetReadDeadline(time.Now().Add(idle))
		if stop() { // Shutdown or a reload may have set its deadline before ours
			return
		}
		if _, err := io.ReadFull(c, lenBuf[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(lenBuf[:]))
		if n == 0 {
			return
		}
		pkt := make([]byte, n)
		if _, err := io.ReadFull(c, pkt); err != nil {
			return
		}
		pending <- struct{}{}
		if !s.begin() {
			return
		}
		cwg.Add(1)
		go func() {
			defer func() { <-pending; s.qwg.Done(); cwg.Done() }()
			out, _ := s.answerStream(pkt, client, DoT)
			if out == nil {
				return // dropped (rate limit, access or policy drop)
			}
			w.write(out, idle)
		}()
	}
}

// dotWriter writes the answers of one DoT connection. Answers that are ready
// while a write is in progress are sent together by the writer of the moment
// in one TLS record: a pipelining client gets its answers in as few records
// and segments as possible (some clients read one record per wake-up).
type dotWriter struct {
	c       *tls.Conn
	mu      sync.Mutex
	buf     []byte // framed answers waiting for the next write
	spare   []byte // the buffer of the previous write, for reuse
	writing bool   // a goroutine is writing; it will send buf too
	failed  bool
}

// write queues answer out and, unless another goroutine is writing, writes
// everything queued until nothing is left.
func (w *dotWriter) write(out []byte, idle time.Duration) {
	w.mu.Lock()
	if w.failed {
		w.mu.Unlock()
		return
	}
	w.buf = binary.BigEndian.AppendUint16(w.buf, uint16(len(out)))
	w.buf = append(w.buf, out...)
	if w.writing {
		w.mu.Unlock()
		return
	}
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
			// The client is gone or stuck: drop what is queued and wake
			// the reader, which closes the connection.
			w.failed = true
			w.buf = nil
			_ = w.c.SetReadDeadline(time.Now())
		}
	}
	w.writing = false
	w.mu.Unlock()
}

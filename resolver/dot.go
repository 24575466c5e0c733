package resolver

import (
	"bufio"
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
// the server shuts down or a reload drops the listener. A query the wire
// fast path answers (a block, a cache hit) is answered by the reading
// goroutine with the connection's buffers, and its answer waits in the
// writer until the reader has nothing more to read without waiting: the
// answers to a burst of pipelined queries leave in one TLS record. Any
// other query gets a goroutine of its own, at most dotPipeline at a time.
func (e *Encrypted) serveDoT(c *tls.Conn, l *tlsListener) {
	defer e.wg.Done()
	defer l.conns.Done()
	s := e.s
	dw := newStreamWriter(c, func() { _ = c.SetReadDeadline(time.Now()) })
	var cwg sync.WaitGroup
	pending := make(chan struct{}, dotPipeline)
	idle := 10 * time.Second
	defer func() {
		dw.flush(idle)
		cwg.Wait()
		_ = c.Close()
		e.mu.Lock()
		delete(e.conns, c)
		e.mu.Unlock()
		<-l.slots
	}()
	client := remoteAddrPort(c)
	br := bufio.NewReaderSize(c, streamReadBuf)
	w := newStreamWorker()
	var lenBuf [2]byte
	stop := func() bool { return e.closing.Load() || l.draining.Load() }
	for !stop() {
		if br.Buffered() < 2 {
			dw.flush(idle) // the next read may wait: send what is ready
		}
		idle = 10 * time.Second
		if rt := s.rt.Load(); rt.Config.DoT.IdleTimeout > 0 {
			idle = rt.Config.DoT.IdleTimeout
		}
		_ = c.SetReadDeadline(time.Now().Add(idle))
		if stop() { // Shutdown or a reload may have set its deadline before ours
			return
		}
		if _, err := io.ReadFull(br, lenBuf[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(lenBuf[:]))
		if n == 0 {
			return
		}
		if br.Buffered() < n {
			dw.flush(idle)
		}
		pkt := w.readBuf(n)
		if _, err := io.ReadFull(br, pkt); err != nil {
			return
		}
		rt := s.rt.Load() // the query's one load of the snapshot
		if s.streamLimited(rt, client) {
			continue // dropped
		}
		if out, ok := s.fastAnswer(w, rt, pkt, client, DoT); ok {
			if dw.queue(out) >= streamFlushBytes {
				dw.flush(idle)
			}
			continue
		}
		pkt = append([]byte(nil), pkt...) // the goroutine's own copy
		pending <- struct{}{}
		if !s.begin() {
			<-pending
			return
		}
		cwg.Add(1)
		idle := idle // the reader changes its own
		go func() {
			defer func() { <-pending; s.qwg.Done(); cwg.Done() }()
			out := s.streamAnswer(rt, pkt, client, DoT)
			if out == nil {
				return // dropped (access or policy drop)
			}
			dw.write(out, idle)
		}()
	}
}

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
// the connection's buffers; any other gets a goroutine of its own, at most
// tcpPipeline at a time.
func (s *Server) serveConn(c *tcpConn) {
	defer s.wg.Done()
	var wmu sync.Mutex
	var wbuf []byte // the frame being written, under wmu
	var cwg sync.WaitGroup
	slots := make(chan struct{}, tcpPipeline)
	defer func() {
		_ = c.Close()
		cwg.Wait()
		s.mu.Lock()
		s.forget(c)
		s.mu.Unlock()
	}()
	client := netip.AddrPortFrom(c.client, 0)
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		client = netip.AddrPortFrom(c.client, ta.AddrPort().Port())
	}
	var idle atomic.Int64 // the idle timeout the reader read last
	write := func(out []byte) error {
		wmu.Lock()
		defer wmu.Unlock()
		wbuf = binary.BigEndian.AppendUint16(wbuf[:0], uint16(len(out)))
		wbuf = append(wbuf, out...)
		_ = c.SetWriteDeadline(time.Now().Add(time.Duration(idle.Load())))
		if _, err := c.Write(wbuf); err != nil {
			// A client that does not read its answers: close the
			// connection so that every answer still queued for it
			// fails now instead of waiting out its own deadline.
			_ = c.Close()
			return err
		}
		c.touch()
		return nil
	}
	br := bufio.NewReaderSize(c, streamReadBuf)
	w := newStreamWorker()
	var lenBuf [2]byte
	for !s.closing.Load() {
		timeout := s.rt.Load().TCPIdleTimeout
		idle.Store(int64(timeout))
		_ = c.SetReadDeadline(time.Now().Add(timeout))
		if _, err := io.ReadFull(br, lenBuf[:]); err != nil {
			return
		}
		c.pending.Add(1)
		n := int(binary.BigEndian.Uint16(lenBuf[:]))
		if n == 0 {
			return
		}
		pkt := w.readBuf(n)
		if _, err := io.ReadFull(br, pkt); err != nil {
			return
		}
		c.touch()
		if out, ok := s.streamFast(w, pkt, client, TCP); ok {
			err := write(out)
			c.pending.Add(-1)
			if err != nil {
				return
			}
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
			if out := s.streamAnswer(pkt, client, TCP); out != nil {
				_ = write(out)
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

// streamFast answers a query of a stream transport on the wire fast path
// with w's buffers (see fastAnswer): ok false sends it to streamAnswer.
func (s *Server) streamFast(w *worker, pkt []byte, client netip.AddrPort, proto Proto) ([]byte, bool) {
	return s.fastAnswer(w, s.rt.Load(), pkt, client, proto)
}

// streamAnswer resolves one query of a stream transport (TCP, DoT, DoH) on
// the full path, within the in-flight budget shared with UDP; a query over
// it gets the overload SERVFAIL (nil when the packet does not look like a
// query). A DoT or DoH reply is padded (RFC 8467).
func (s *Server) streamAnswer(pkt []byte, client netip.AddrPort, proto Proto) []byte {
	rt := s.rt.Load()
	if !s.budget.acquire(client.Addr(), rt.maxInflight, rt.maxInflightPerClient) {
		s.obs.Overloaded()
		return overloadReply(pkt) // never padded: no OPT
	}
	defer s.budget.release(client.Addr())
	out := s.slow(pkt, client, proto)
	if proto == DoT || proto == DoH {
		out = padReply(out)
	}
	return out
}

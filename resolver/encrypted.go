package resolver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// EncryptedOptions configures the DoT and DoH listeners.
type EncryptedOptions struct {
	// DoT and DoH are the addresses to serve (host:port; port 0 lets the
	// kernel pick one).
	DoT, DoH []string
	// DoTMaxConns and DoHMaxConns cap the concurrent connections of each
	// transport (handshakes included); a connection over the cap is closed
	// at once and counted as overload.
	DoTMaxConns, DoHMaxConns int
	// DoHMaxStreams caps the concurrent HTTP/2 streams of one connection.
	DoHMaxStreams int
	// DoHIdleTimeout closes an HTTP connection with no request for this long.
	DoHIdleTimeout time.Duration
}

// Encrypted serves DNS over TLS (RFC 7858) and DNS over HTTPS (RFC 8484)
// with the server's engine: every query takes the same path as one over
// TCP (access list, rate limit, policy, cache, logs; see answerStream).
// Certificates come from the server's current runtime at each handshake,
// so a reload changes them for new connections only.
type Encrypted struct {
	s       *Server
	dot     []*tlsListener
	doh     []*tlsListener
	httpSrv *http.Server
	closing atomic.Bool
	wg      sync.WaitGroup // DoT accept loops and connections, DoH serve loops

	mu       sync.Mutex
	conns    map[*tls.Conn]struct{} // open DoT connections
	dotAddrs []string
	dohAddrs []string
}

// ListenEncrypted binds the DoT and DoH addresses of o. Nothing is served
// until Serve. A server whose runtime has no certificate fails every
// handshake.
func (s *Server) ListenEncrypted(o EncryptedOptions) (*Encrypted, error) {
	e := &Encrypted{s: s, conns: map[*tls.Conn]struct{}{}}
	dotSlots := make(chan struct{}, max(o.DoTMaxConns, 1))
	dohSlots := make(chan struct{}, max(o.DoHMaxConns, 1))
	dotCfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: s.certificate, NextProtos: []string{"dot"}}
	dohCfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: s.certificate, NextProtos: []string{"h2", "http/1.1"}}
	listen := func(addrs []string, cfg *tls.Config, slots chan struct{}) ([]*tlsListener, []string, error) {
		var ls []*tlsListener
		var bound []string
		for _, a := range addrs {
			l, err := net.Listen("tcp", a)
			if err != nil {
				return ls, bound, fmt.Errorf("listen tcp %s: %w", a, err)
			}
			ls = append(ls, newTLSListener(l, cfg, slots, s))
			bound = append(bound, l.Addr().String())
		}
		return ls, bound, nil
	}
	var err error
	e.dot, e.dotAddrs, err = listen(o.DoT, dotCfg, dotSlots)
	if err == nil {
		e.doh, e.dohAddrs, err = listen(o.DoH, dohCfg, dohSlots)
	}
	if err != nil {
		e.closeListeners()
		return nil, err
	}
	idle := o.DoHIdleTimeout
	if idle <= 0 {
		idle = 30 * time.Second
	}
	streams := o.DoHMaxStreams
	if streams <= 0 {
		streams = 100
	}
	e.httpSrv = &http.Server{
		Handler: e,
		// The TLS handshake is done (and bounded) by the listener; this
		// bounds a client that opens a request and never finishes its
		// headers (slowloris).
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       idle,
		// A GET carries at most 64 KiB of query, in base64url.
		MaxHeaderBytes: 128 << 10,
		// net/http's HTTP/2 server runs at most MaxConcurrentStreams
		// handlers per connection, queues the streams beyond them and ends
		// a connection whose queue grows too long (its fix of
		// CVE-2023-44487, rapid reset).
		HTTP2:    &http.HTTP2Config{MaxConcurrentStreams: streams},
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		ConnState: func(c net.Conn, st http.ConnState) {
			if st == http.StateClosed || st == http.StateHijacked {
				<-dohSlots // taken by the listener before the handshake
			}
		},
	}
	return e, nil
}

// DoTAddrs returns the bound DoT addresses, useful with port 0.
func (e *Encrypted) DoTAddrs() []string { return append([]string(nil), e.dotAddrs...) }

// DoHAddrs returns the bound DoH addresses.
func (e *Encrypted) DoHAddrs() []string { return append([]string(nil), e.dohAddrs...) }

// Serve starts serving every listener and returns at once.
func (e *Encrypted) Serve() {
	for _, l := range e.dot {
		e.wg.Add(1)
		go e.acceptDoT(l)
	}
	for _, l := range e.doh {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			if err := e.httpSrv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) && !e.closing.Load() {
				e.s.log.Error("doh listener stopped", "addr", l.Addr().String(), "err", err)
			}
		}()
	}
}

// Shutdown stops accepting connections, lets the queries in flight answer
// (up to ctx), then closes every connection. Call it before the server's
// own Shutdown, which waits for the same queries.
func (e *Encrypted) Shutdown(ctx context.Context) error {
	if e.closing.Swap(true) {
		return nil
	}
	// DoT readers wake up now; each writes its pending answers and closes.
	e.mu.Lock()
	for c := range e.conns {
		_ = c.SetReadDeadline(time.Now())
	}
	e.mu.Unlock()
	// The HTTP server closes the DoH listeners itself (and says so when
	// one was closed already).
	var err error
	if e.httpSrv != nil {
		err = e.httpSrv.Shutdown(ctx)
	}
	e.closeListeners()
	done := make(chan struct{})
	go func() { e.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		e.mu.Lock()
		for c := range e.conns {
			_ = c.Close()
		}
		e.mu.Unlock()
		if e.httpSrv != nil {
			_ = e.httpSrv.Close()
		}
		<-done
		if err == nil {
			err = ctx.Err()
		}
	}
	return err
}

func (e *Encrypted) closeListeners() {
	for _, l := range append(append([]*tlsListener(nil), e.dot...), e.doh...) {
		_ = l.Close()
	}
	for _, l := range e.dot {
		l.wait()
	}
	for _, l := range e.doh {
		l.wait()
	}
}

// answerStream answers one query that arrived over an encrypted stream
// transport with rt, the runtime it loaded: the client's rate limit
// (limited reports a query over it), then the wire fast path with w's
// buffers (the answer lives in w.out until w's next query), then the
// engine's full path as for TCP; the reply is padded (RFC 8467). nil means
// no answer. The caller holds a begin.
func (s *Server) answerStream(w *worker, rt *Runtime, pkt []byte, client netip.AddrPort, proto Proto) (out []byte, limited bool) {
	if s.streamLimited(rt, client) {
		return nil, true
	}
	if out, ok := s.fastAnswer(w, rt, pkt, client, proto); ok {
		return out, false
	}
	return s.streamAnswer(rt, pkt, client, proto), false // within the in-flight budget shared with UDP and TCP
}

// streamLimited reports, and counts, a DoT or DoH query over its client's
// rate limit.
func (s *Server) streamLimited(rt *Runtime, client netip.AddrPort) bool {
	if rt.limiter != nil && !rt.limiter.Allow(client.Addr().Unmap()) {
		s.obs.RateLimited()
		return true
	}
	return false
}

// streamWorkers are the fast path's buffers of DoH requests, each handled
// in its own goroutine by net/http.
var streamWorkers = sync.Pool{New: func() any { return newStreamWorker() }}

// remoteAddrPort is the client address of a connection.
func remoteAddrPort(c net.Conn) netip.AddrPort {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(c.RemoteAddr().String())
	return ap
}

// tlsListener accepts TCP connections, caps them (slots: a connection over
// the cap is closed at once), and hands out TLS connections whose handshake
// finished within the runtime's tls.handshake_timeout; a handshake that
// fails or times out is counted and closed. The slot of a connection it
// hands out is released by whoever closes it.
type tlsListener struct {
	net.Listener
	cfg    *tls.Config
	slots  chan struct{}
	s      *Server
	ready  chan *tls.Conn
	ctx    context.Context // cancelled by Close: aborts handshakes
	cancel context.CancelFunc
	wg     sync.WaitGroup // the accept loop and the handshakes
}

func newTLSListener(l net.Listener, cfg *tls.Config, slots chan struct{}, s *Server) *tlsListener {
	ctx, cancel := context.WithCancel(context.Background())
	tl := &tlsListener{Listener: l, cfg: cfg, slots: slots, s: s, ready: make(chan *tls.Conn), ctx: ctx, cancel: cancel}
	tl.wg.Add(1)
	go tl.loop()
	return tl
}

func (l *tlsListener) loop() {
	defer l.wg.Done()
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if l.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: do not spin.
			select {
			case <-time.After(10 * time.Millisecond):
			case <-l.ctx.Done():
				return
			}
			continue
		}
		select {
		case l.slots <- struct{}{}:
		default:
			// Over the connection cap: close at once (RFC 7766 §6.2.2 lets
			// a server close connections under load).
			l.s.obs.Overloaded()
			_ = c.Close()
			continue
		}
		l.wg.Add(1)
		go l.handshake(c)
	}
}

func (l *tlsListener) handshake(c net.Conn) {
	defer l.wg.Done()
	timeout := 5 * time.Second
	if rt := l.s.rt.Load(); rt != nil && rt.Config.TLS.HandshakeTimeout > 0 {
		timeout = rt.Config.TLS.HandshakeTimeout
	}
	tc := tls.Server(c, l.cfg)
	ctx, cancel := context.WithTimeout(l.ctx, timeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		l.s.obs.Dropped("tls_handshake")
		l.s.log.Debug("tls handshake failed", "client", c.RemoteAddr().String(), "err", err)
		_ = tc.Close()
		<-l.slots
		return
	}
	select {
	case l.ready <- tc:
	case <-l.ctx.Done():
		_ = tc.Close()
		<-l.slots
	}
}

// Accept returns the next connection whose handshake is done.
func (l *tlsListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.ctx.Done():
		return nil, net.ErrClosed
	}
}

// Close stops accepting and aborts the handshakes in progress.
func (l *tlsListener) Close() error {
	l.cancel()
	return l.Listener.Close()
}

// wait waits, after Close, for the accept loop and the handshakes.
func (l *tlsListener) wait() { l.wg.Wait() }

package resolver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
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
// so a reload changes them for new connections only. The set of listeners
// changes with Prepare and ListenerChange.Commit (a reload); the limits of
// EncryptedOptions are those of ListenEncrypted for the life of the value.
type Encrypted struct {
	s                  *Server
	o                  EncryptedOptions
	dotCfg, dohCfg     *tls.Config
	dotSlots, dohSlots chan struct{} // one per connection, shared by the listeners of a transport
	closing            atomic.Bool
	wg                 sync.WaitGroup // DoT accept loops and connections, DoH serve loops, drains

	mu       sync.Mutex
	serving  bool                       // Serve was called
	dot, doh []*tlsListener             // served, in configuration order
	conns    map[*tls.Conn]*tlsListener // open DoT connections and their listener
	servers  map[*http.Server]struct{}  // the DoH servers of served and draining listeners
}

// ListenEncrypted binds the DoT and DoH addresses of o. Nothing is served
// until Serve. A server whose runtime has no certificate fails every
// handshake. An address that cannot be bound is an error naming its key
// (dot.listen[i], doh.listen[i]), and nothing stays bound.
func (s *Server) ListenEncrypted(o EncryptedOptions) (*Encrypted, error) {
	e := &Encrypted{
		s: s, o: o,
		dotCfg:   &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: s.certificate, NextProtos: []string{"dot"}},
		dohCfg:   &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: s.certificate, NextProtos: []string{"h2", "http/1.1"}},
		dotSlots: make(chan struct{}, max(o.DoTMaxConns, 1)),
		dohSlots: make(chan struct{}, max(o.DoHMaxConns, 1)),
		conns:    map[*tls.Conn]*tlsListener{},
		servers:  map[*http.Server]struct{}{},
	}
	ch, err := e.Prepare(o.DoT, o.DoH)
	if err != nil {
		return nil, err
	}
	e.dot, e.doh = ch.dot, ch.doh
	return e, nil
}

// newHTTPServer is the HTTP server of one DoH listener.
func (e *Encrypted) newHTTPServer() *http.Server {
	s := e.s
	idle := e.o.DoHIdleTimeout
	if idle <= 0 {
		idle = 30 * time.Second
	}
	streams := e.o.DoHMaxStreams
	if streams <= 0 {
		streams = 100
	}
	return &http.Server{
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
		HTTP2:          dohHTTP2Config(streams, s.obs, s.log),
		ErrorLog:       slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		ConnState: func(c net.Conn, st http.ConnState) {
			if st == http.StateClosed || st == http.StateHijacked {
				<-e.dohSlots // taken by the listener before the handshake
			}
		},
	}
}

// dohHTTP2Config bounds what one HTTP/2 connection of a DoH client can make
// the server hold, and counts in obs (dropped_total) every connection or
// stream the server ends for a protocol error (see http2DropReason):
//   - net/http's HTTP/2 server runs at most streams handlers per connection,
//     queues the streams beyond them and ends with ENHANCE_YOUR_CALM a
//     connection whose queue grows past 4×streams: its fix of rapid reset
//     (CVE-2023-44487). A stream opened beyond streams is refused.
//   - Frames are at most 16 KiB (the smallest HTTP/2 allows), and a stream
//     may send 64 KiB before it is read: a DoH query is at most 65,535
//     bytes, so a connection holds at most 1 MiB of unread request bodies.
//   - A connection whose client does not read its answers is closed when
//     no byte could be written for 10 s; control frames (PING and SETTINGS
//     acknowledgements) a client makes the server queue without reading
//     them end the connection at 10,000 (net/http's fixed bound; not
//     counted, as net/http does not report it).
//
// Header size (and so CONTINUATION floods, CVE-2023-45288) is bounded by
// the http.Server's MaxHeaderBytes, a stream that never sends its body by
// ReadTimeout, a connection with no stream by IdleTimeout.
func dohHTTP2Config(streams int, obs Observer, log *slog.Logger) *http.HTTP2Config {
	return &http.HTTP2Config{
		MaxConcurrentStreams:          streams,
		MaxReadFrameSize:              16 << 10,
		MaxReceiveBufferPerStream:     64 << 10,
		MaxReceiveBufferPerConnection: 1 << 20,
		WriteByteTimeout:              10 * time.Second,
		CountError: func(errType string) {
			obs.Dropped(http2DropReason(errType))
			log.Debug("doh: http/2 protocol error", "type", errType)
		},
	}
}

// http2DropReason is the dropped_total reason of an error type reported by
// net/http's HTTP/2 server (HTTP2Config.CountError, "conn_CODE_what",
// "stream_CODE_what" or "frame_what"): a small fixed set, whatever new
// types a Go release adds.
//   - doh_rapid_reset: a connection ended for opening and resetting
//     streams faster than they could be served (rapid reset);
//   - doh_h2_connection: a connection ended (GOAWAY) for another protocol
//     error;
//   - doh_h2_stream: a stream reset for a protocol error (opened beyond
//     doh.max_streams, flow control, bad headers...);
//   - doh_h2_frame: a malformed frame (the connection or the stream it
//     came on ends).
func http2DropReason(errType string) string {
	switch {
	case strings.HasSuffix(errType, "_too_many_early_resets"):
		return "doh_rapid_reset"
	case strings.HasPrefix(errType, "conn_"):
		return "doh_h2_connection"
	case strings.HasPrefix(errType, "stream_"):
		return "doh_h2_stream"
	default:
		return "doh_h2_frame"
	}
}

// DoTAddrs returns the bound DoT addresses, useful with port 0.
func (e *Encrypted) DoTAddrs() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return boundAddrs(e.dot)
}

// DoHAddrs returns the bound DoH addresses.
func (e *Encrypted) DoHAddrs() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return boundAddrs(e.doh)
}

func boundAddrs(ls []*tlsListener) []string {
	out := make([]string, 0, len(ls))
	for _, l := range ls {
		out = append(out, l.Addr().String())
	}
	return out
}

// Serve starts serving every listener and returns at once.
func (e *Encrypted) Serve() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.serving || e.closing.Load() {
		return
	}
	e.serving = true
	for _, l := range e.dot {
		e.serveLocked(l)
	}
	for _, l := range e.doh {
		e.serveLocked(l)
	}
}

// serveLocked starts the accept loop of l and serves what it accepts. The
// caller holds e.mu.
func (e *Encrypted) serveLocked(l *tlsListener) {
	l.start()
	e.wg.Add(1)
	if l.srv == nil {
		go e.acceptDoT(l)
		return
	}
	e.servers[l.srv] = struct{}{}
	go func() {
		defer e.wg.Done()
		if err := l.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) && !e.closing.Load() && !l.draining.Load() {
			e.s.log.Error("doh listener stopped", "addr", l.Addr().String(), "err", err)
		}
	}()
}

// ListenerChange is a change of the DoT and DoH listeners made by Prepare:
// the new addresses are bound (so that a reload fails before it changes
// anything when one cannot be), nothing else changed yet. Commit applies
// it, Abort drops it; one of the two must be called.
type ListenerChange struct {
	e              *Encrypted
	dot, doh       []*tlsListener // the listeners after the change, in configuration order
	added, removed []*tlsListener
}

// Prepare binds the addresses of dot and doh (the dot.listen and doh.listen
// lists) that no listener of the same transport serves yet, and works out
// the listeners that the lists no longer name. A listener is kept when its
// configured address (as written: "127.0.0.1:0" too) is still listed for
// its transport. An address that cannot be bound is an error naming its key,
// and nothing is kept bound; so is an address that the other transport
// serves (it is still bound: move it in two reloads). Changes are not
// merged: prepare the next only once this one is committed or aborted (the
// App serializes its reloads).
func (e *Encrypted) Prepare(dot, doh []string) (*ListenerChange, error) {
	e.mu.Lock()
	curDoT, curDoH := slices.Clone(e.dot), slices.Clone(e.doh)
	e.mu.Unlock()
	ch := &ListenerChange{e: e}
	var err error
	ch.dot, err = e.plan(ch, "dot.listen", dot, curDoT, curDoH, "doh.listen")
	if err == nil {
		ch.doh, err = e.plan(ch, "doh.listen", doh, curDoH, curDoT, "dot.listen")
	}
	if err != nil {
		ch.Abort()
		return nil, err
	}
	return ch, nil
}

// plan returns the listeners of one transport for the addresses want of
// key: those of cur whose address is listed, and new ones (added to
// ch.added) for the others; what is left of cur goes to ch.removed. other
// are the listeners of the other transport, named by otherKey.
func (e *Encrypted) plan(ch *ListenerChange, key string, want []string, cur, other []*tlsListener, otherKey string) ([]*tlsListener, error) {
	pool := slices.Clone(cur)
	var next []*tlsListener
	for i, a := range want {
		if j := slices.IndexFunc(pool, func(l *tlsListener) bool { return l.key == a }); j >= 0 {
			next = append(next, pool[j])
			pool = slices.Delete(pool, j, j+1)
			continue
		}
		if !strings.HasSuffix(a, ":0") && slices.ContainsFunc(other, func(l *tlsListener) bool { return l.key == a }) {
			return nil, fmt.Errorf("%s[%d]: %s is still served by %s: remove it from %s and reload, then add it to %s and reload again",
				key, i, a, otherKey, otherKey, key)
		}
		nl, err := net.Listen("tcp", a)
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %w", key, i, err)
		}
		l := newTLSListener(nl, a, e.dotCfg, e.dotSlots, e.s)
		if key == "doh.listen" {
			l.cfg, l.slots, l.srv = e.dohCfg, e.dohSlots, e.newHTTPServer()
		}
		ch.added = append(ch.added, l)
		next = append(next, l)
	}
	ch.removed = append(ch.removed, pool...)
	return next, nil
}

// DoTAddrs returns the bound DoT addresses the change serves.
func (ch *ListenerChange) DoTAddrs() []string { return boundAddrs(ch.dot) }

// DoHAddrs returns the bound DoH addresses the change serves.
func (ch *ListenerChange) DoHAddrs() []string { return boundAddrs(ch.doh) }

// Abort closes the listeners the change bound; the served ones stay as
// they are. Safe on nil.
func (ch *ListenerChange) Abort() {
	if ch == nil {
		return
	}
	for _, l := range ch.added {
		_ = l.Close()
	}
	ch.added = nil
}

// Commit serves the listeners the change bound and retires the ones it
// dropped: they stop accepting at once; their connections are closed once
// the queries in flight on them are answered (DoT: the connection reads no
// further query; DoH: GOAWAY, the requests in flight finish), or after
// grace. The connections of the kept listeners are not touched. After
// Shutdown it only closes what the change bound. Safe on nil.
func (ch *ListenerChange) Commit(grace time.Duration) {
	if ch == nil {
		return
	}
	e := ch.e
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closing.Load() {
		ch.Abort()
		return
	}
	e.dot, e.doh = ch.dot, ch.doh
	for _, l := range ch.added {
		if e.serving {
			e.serveLocked(l)
		}
		e.s.log.Info(transportOf(l)+": serving a new address", "addr", l.Addr().String())
	}
	for _, l := range ch.removed {
		e.retireLocked(l, grace)
	}
}

func transportOf(l *tlsListener) string {
	if l.srv != nil {
		return "doh"
	}
	return "dot"
}

// retireLocked stops l from accepting and closes its connections once
// they are drained, or after grace. The caller holds e.mu.
func (e *Encrypted) retireLocked(l *tlsListener, grace time.Duration) {
	l.draining.Store(true)
	addr := l.Addr().String()
	if l.srv == nil {
		_ = l.Close()
		// The readers wake up now; each writes its pending answers and
		// closes (serveDoT sees draining).
		for c, owner := range e.conns {
			if owner == l {
				_ = c.SetReadDeadline(time.Now())
			}
		}
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		drained := true
		if l.srv != nil {
			// Closes l, sends GOAWAY, waits for the requests in flight.
			if err := l.srv.Shutdown(ctx); err != nil {
				drained = false
				_ = l.srv.Close()
			}
			_ = l.Close() // when it was never served
			e.mu.Lock()
			delete(e.servers, l.srv)
			e.mu.Unlock()
		} else {
			done := make(chan struct{})
			go func() { l.conns.Wait(); close(done) }()
			select {
			case <-done:
			case <-ctx.Done():
				drained = false
				e.mu.Lock()
				for c, owner := range e.conns {
					if owner == l {
						_ = c.Close()
					}
				}
				e.mu.Unlock()
				<-done
			}
		}
		l.wait()
		e.s.log.Info(transportOf(l)+": stopped serving an address", "addr", addr, "drained", drained)
	}()
}

// Shutdown stops accepting connections, lets the queries in flight answer
// (up to ctx), then closes every connection. Call it before the server's
// own Shutdown, which waits for the same queries.
func (e *Encrypted) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	if e.closing.Swap(true) {
		e.mu.Unlock()
		return nil
	}
	// DoT readers wake up now; each writes its pending answers and closes.
	for c := range e.conns {
		_ = c.SetReadDeadline(time.Now())
	}
	servers := slices.Collect(maps.Keys(e.servers))
	listeners := append(slices.Clone(e.dot), e.doh...)
	e.mu.Unlock()
	// The HTTP servers close the DoH listeners themselves (and say so when
	// one was closed already).
	errs := make(chan error, len(servers))
	for _, srv := range servers {
		go func() { errs <- srv.Shutdown(ctx) }()
	}
	var err error
	for range servers {
		if serr := <-errs; err == nil {
			err = serr
		}
	}
	for _, l := range listeners {
		_ = l.Close()
	}
	for _, l := range listeners {
		l.wait()
	}
	done := make(chan struct{})
	go func() { e.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		e.mu.Lock()
		for c := range e.conns {
			_ = c.Close()
		}
		for srv := range e.servers {
			_ = srv.Close()
		}
		e.mu.Unlock()
		<-done
		if err == nil {
			err = ctx.Err()
		}
	}
	return err
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
// hands out is released by whoever closes it. It accepts from start on;
// until then the kernel queues the connections.
type tlsListener struct {
	net.Listener
	key    string       // the configured address (dot.listen or doh.listen)
	srv    *http.Server // serves a DoH listener; nil for DoT
	cfg    *tls.Config
	slots  chan struct{}
	s      *Server
	ready  chan *tls.Conn
	ctx    context.Context // cancelled by Close: aborts handshakes
	cancel context.CancelFunc
	wg     sync.WaitGroup // the accept loop and the handshakes

	draining atomic.Bool    // dropped by a reload: serves no new query
	conns    sync.WaitGroup // the DoT connections it handed out
}

// newTLSListener wraps l; see tlsListener.
func newTLSListener(l net.Listener, key string, cfg *tls.Config, slots chan struct{}, s *Server) *tlsListener {
	ctx, cancel := context.WithCancel(context.Background())
	return &tlsListener{Listener: l, key: key, cfg: cfg, slots: slots, s: s, ready: make(chan *tls.Conn), ctx: ctx, cancel: cancel}
}

// start starts the accept loop.
func (l *tlsListener) start() {
	l.wg.Add(1)
	go l.loop()
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

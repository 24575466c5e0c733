package upstream

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// DNS over TLS (RFC 7858).
//
// A dot upstream keeps up to maxConns persistent TLS connections and
// pipelines queries on them (RFC 7766 §6.2.1.1): each query gets an ID that
// is random and unique among the queries in flight on its connection, a
// writer goroutine per connection sends the length-prefixed queries
// (coalescing those queued together into one write), and a reader goroutine
// hands each reply to the query with its ID, after the question check.
// Replies that match no query in flight (a late reply to a cancelled query,
// a wrong ID, a wrong question, garbage) are ignored: they never fail
// another query.
//
// A new query goes to an idle connection, else opens a new one while there
// are fewer than maxConns, else joins the least loaded. Connections are
// dialed by their own goroutine, not by the query that caused the dial, so
// one caller's cancellation never fails the others waiting for it.
//
// A connection that breaks (read or write error, the server closing it:
// RFC 7766 allows servers to close idle connections at any time) fails only
// the queries in flight on it, and each of those is retried once on another
// connection. A dial or handshake failure is not retried. A connection with
// no query in flight for IdleTimeout is closed. A connection on which a
// query timed out and nothing at all was read since that query was sent is
// retired: it takes no new query and closes when its last query ends (it
// may be black-holed; the next query opens a fresh one).
type dot struct {
	name     string
	addr     string // IP:port
	tlsConf  *tls.Config
	timeout  time.Duration
	idle     time.Duration
	maxConns int

	ctx    context.Context // cancelled by Close: aborts dials
	cancel context.CancelFunc
	wg     sync.WaitGroup // connection goroutines
	live   atomic.Int32   // running connection goroutines (for tests)

	mu     sync.Mutex
	conns  []*dotConn            // connections new queries may use
	all    map[*dotConn]struct{} // every connection not yet killed
	closed bool
}

var (
	_ Upstream  = (*dot)(nil)
	_ io.Closer = (*dot)(nil)
)

// errBroken marks a query failed by its connection breaking: it is retried
// once on another connection.
var errBroken = errors.New("connection broken")

// errIdle is the reason a connection closed after its idle timeout (no
// query can be on it then; if one were, it would be retried).
var errIdle = fmt.Errorf("%w: idle connection closed", errBroken)

func parseDoT(s, rest string, opts Options, timeout time.Duration) (Upstream, error) {
	hostport, frag, hasFrag := strings.Cut(rest, "#")
	hostport = strings.TrimSuffix(hostport, "/")
	if strings.ContainsAny(hostport, "/?@") {
		return nil, fmt.Errorf("upstream %q: want tls://IP[:port][#servername]", s)
	}
	ap, err := parseAddrPort(hostport, 853)
	if err != nil {
		if isHostName(hostport) {
			err = errHostName("tls://192.0.2.1#dns.example")
		}
		return nil, fmt.Errorf("upstream %q: %w", s, err)
	}
	serverName := ap.Addr().String()
	name := "tls://" + ap.String()
	if hasFrag {
		if serverName, err = checkServerName(frag); err != nil {
			return nil, fmt.Errorf("upstream %q: %w", s, err)
		}
		name += "#" + serverName
	}
	u := &dot{
		name:     name,
		addr:     ap.String(),
		tlsConf:  clientTLS(serverName, opts),
		timeout:  timeout,
		idle:     opts.IdleTimeout,
		maxConns: opts.MaxConns,
		all:      make(map[*dotConn]struct{}),
	}
	if u.idle <= 0 {
		u.idle = defaultIdleTimeout
	}
	if u.maxConns <= 0 {
		u.maxConns = defaultMaxConns
	}
	u.ctx, u.cancel = context.WithCancel(context.Background())
	return u, nil
}

// isHostName reports whether hostport ("host" or "host:port") names its
// host by a name rather than an address.
func isHostName(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	if _, err := netip.ParseAddr(host); err == nil || strings.ContainsAny(host, ":[]") {
		return false
	}
	_, err := checkServerName(host)
	return err == nil
}

func (u *dot) String() string { return u.name }

// Close closes the upstream's connections, failing the queries in flight
// with net.ErrClosed, and waits for its goroutines to end. Exchange fails
// with net.ErrClosed afterwards. Close is idempotent.
func (u *dot) Close() error {
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return nil
	}
	u.closed = true
	conns := make([]*dotConn, 0, len(u.all))
	for c := range u.all {
		conns = append(conns, c)
	}
	u.mu.Unlock()
	u.cancel()
	for _, c := range conns {
		c.kill(net.ErrClosed)
	}
	u.wg.Wait()
	return nil
}

// Exchange implements Upstream.
func (u *dot) Exchange(ctx context.Context, m *dns.Msg) (*dns.Msg, error) {
	if len(m.Question) != 1 {
		return nil, fmt.Errorf("%s: %w", u.name, ErrBadRequest)
	}
	ctx, cancel := withDefaultTimeout(ctx, u.timeout)
	defer cancel()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", u.name, err)
	}
	// The frame: a 2-byte length, then the query padded (RFC 8467).
	frame, err := appendPaddedQuery(make([]byte, 2, 2+512), m)
	if err != nil {
		return nil, fmt.Errorf("%s: packing query: %w", u.name, err)
	}
	binary.BigEndian.PutUint16(frame, uint16(len(frame)-2))

	resp, err := u.exchangeOn(ctx, m.Question[0], frame)
	if errors.Is(err, errBroken) && ctx.Err() == nil {
		// The connection broke under the query (typically the server
		// closed it while idle, as RFC 7766 allows): once more on another.
		// A new frame: the writer of the broken one may still read the old.
		frame = append([]byte(nil), frame...)
		resp, err = u.exchangeOn(ctx, m.Question[0], frame)
	}
	if err != nil {
		return nil, err
	}
	resp.Id = m.Id
	return resp, nil
}

type dotCall struct {
	question dns.Question
	ch       chan dotResult // buffered: the reader or kill never blocks
	ignored  atomic.Int32   // replies with this ID that did not match
}

type dotResult struct {
	resp *dns.Msg
	err  error
}

// exchangeOn sends one query (frame, ID to be set) on a connection and
// waits for its reply.
func (u *dot) exchangeOn(ctx context.Context, question dns.Question, frame []byte) (*dns.Msg, error) {
	c, err := u.acquire()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u.name, err)
	}
	defer u.release(c)
	select {
	case <-c.ready:
	case <-ctx.Done():
		return nil, fmt.Errorf("%s: tls dial: %w", u.name, ctx.Err())
	}
	if c.dialErr != nil {
		return nil, ioErr(ctx, u.name, "tls dial", c.dialErr)
	}
	call := &dotCall{question: question, ch: make(chan dotResult, 1)}
	id, err := c.register(call)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u.name, err)
	}
	binary.BigEndian.PutUint16(frame[2:], id)
	sent := time.Now()
	select {
	case c.wq <- frame:
	case <-c.done: // kill has delivered the reason to call.ch
	case <-ctx.Done():
		c.unregister(id, call)
		return nil, fmt.Errorf("%s: tls write: %w", u.name, ctx.Err())
	}
	select {
	case r := <-call.ch:
		if r.err != nil {
			return nil, fmt.Errorf("%s: %w", u.name, r.err)
		}
		return r.resp, nil
	case <-ctx.Done():
		c.unregister(id, call)
		if errors.Is(ctx.Err(), context.DeadlineExceeded) && c.lastRead.Load() < sent.UnixNano() {
			u.retire(c)
		}
		err := fmt.Errorf("%s: tls read: %w", u.name, ctx.Err())
		if n := call.ignored.Load(); n > 0 {
			err = fmt.Errorf("%w (ignored %d non-matching replies)", err, n)
		}
		return nil, err
	}
}

// acquire picks the connection for a new query and counts the query on it.
func (u *dot) acquire() (*dotConn, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return nil, net.ErrClosed
	}
	var best *dotConn
	for _, c := range u.conns {
		if best == nil || c.load < best.load {
			best = c
		}
	}
	if best == nil || best.load > 0 && len(u.conns) < u.maxConns {
		best = &dotConn{
			u:     u,
			ready: make(chan struct{}),
			done:  make(chan struct{}),
			wq:    make(chan []byte, 64),
		}
		u.conns = append(u.conns, best)
		u.all[best] = struct{}{}
		u.wg.Add(1)
		go best.run()
	}
	best.load++
	return best, nil
}

// release ends a query's use of c.
func (u *dot) release(c *dotConn) {
	u.mu.Lock()
	c.load--
	idle := c.load == 0
	if idle {
		c.idleSince = time.Now()
	}
	retired := c.retired
	u.mu.Unlock()
	if idle && retired {
		c.kill(errIdle)
	}
}

// retire stops new queries from using c; it closes when its last query ends.
func (u *dot) retire(c *dotConn) {
	u.mu.Lock()
	u.removeLocked(c)
	c.retired = true
	u.mu.Unlock()
}

func (u *dot) removeLocked(c *dotConn) {
	for i, x := range u.conns {
		if x == c {
			u.conns = append(u.conns[:i], u.conns[i+1:]...)
			break
		}
	}
}

// idleLeft returns how long c may stay idle before it closes, or 0 if it
// must close now (it is then taken out of the pool).
func (u *dot) idleLeft(c *dotConn) time.Duration {
	u.mu.Lock()
	defer u.mu.Unlock()
	if c.load > 0 {
		return u.idle
	}
	left := u.idle - time.Since(c.idleSince)
	if left <= 0 {
		u.removeLocked(c)
		c.retired = true
		return 0
	}
	return left
}

// dotConn is one TLS connection of a dot upstream.
type dotConn struct {
	u       *dot
	ready   chan struct{} // closed when the dial is over: conn or dialErr is set
	conn    *tls.Conn
	dialErr error
	wq      chan []byte   // frames for the writer
	done    chan struct{} // closed by kill

	lastRead atomic.Int64 // UnixNano of the last frame read

	// Under u.mu.
	load      int       // queries using the connection
	idleSince time.Time // when load last dropped to 0
	retired   bool      // taken out of the pool: no new query

	mu      sync.Mutex
	pending map[uint16]*dotCall // queries sent or about to be
	err     error               // why the connection is dead; nil while it is usable
}

// register gives call an ID unique on c and records it as in flight.
func (c *dotConn) register(call *dotCall) (uint16, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if len(c.pending) >= 1<<14 {
		return 0, errors.New("too many queries in flight")
	}
	if c.pending == nil {
		c.pending = make(map[uint16]*dotCall)
	}
	for {
		id := dns.Id()
		if _, taken := c.pending[id]; !taken {
			c.pending[id] = call
			return id, nil
		}
	}
}

// unregister forgets a query that gave up; a late reply will be ignored.
func (c *dotConn) unregister(id uint16, call *dotCall) {
	c.mu.Lock()
	if c.pending[id] == call {
		delete(c.pending, id)
	}
	c.mu.Unlock()
}

// kill marks c dead for reason err, fails its queries in flight with err
// and closes it. Only the first call has an effect.
func (c *dotConn) kill(err error) {
	// Out of the pool first: a query that finds c dead (c.err set) and
	// retries must not pick c again.
	u := c.u
	u.mu.Lock()
	u.removeLocked(c)
	delete(u.all, c)
	u.mu.Unlock()

	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	pending := c.pending
	c.pending = nil
	c.mu.Unlock()
	close(c.done)

	for _, call := range pending {
		call.ch <- dotResult{err: err}
	}
	// run closes the connection if the dial is still going on.
	select {
	case <-c.ready:
		if c.conn != nil {
			_ = c.conn.Close()
		}
	default:
	}
}

// run dials c, then reads in a new goroutine and writes in this one.
func (c *dotConn) run() {
	u := c.u
	defer u.wg.Done()
	u.live.Add(1)
	defer u.live.Add(-1)

	ctx, cancel := context.WithTimeout(u.ctx, u.timeout)
	d := tls.Dialer{Config: u.tlsConf}
	nc, err := d.DialContext(ctx, "tcp", u.addr)
	timedOut := ctx.Err() != nil
	cancel()
	if err != nil {
		if u.ctx.Err() != nil {
			err = net.ErrClosed
		} else if timedOut {
			err = fmt.Errorf("%w (dial timeout %v)", context.DeadlineExceeded, u.timeout)
		}
		c.dialErr = err
		c.kill(err) // out of the pool before a waiter can return and pick it again
		close(c.ready)
		return
	}
	c.conn = nc.(*tls.Conn)
	c.lastRead.Store(time.Now().UnixNano())
	close(c.ready)
	select {
	case <-c.done: // killed during the dial: kill left the closing to us
		_ = c.conn.Close()
		return
	default:
	}
	u.wg.Add(1)
	go c.readLoop()
	c.writeLoop()
}

// writeLoop writes queued frames, coalescing those queued together, and
// closes c when it has been idle for too long.
func (c *dotConn) writeLoop() {
	u := c.u
	idle := time.NewTimer(u.idle)
	defer idle.Stop()
	var buf []byte
	for {
		select {
		case f := <-c.wq:
			buf = append(buf[:0], f...)
		more:
			for len(buf) < 16<<10 {
				select {
				case f := <-c.wq:
					buf = append(buf, f...)
				default:
					break more
				}
			}
			_ = c.conn.SetWriteDeadline(time.Now().Add(u.timeout))
			if _, err := c.conn.Write(buf); err != nil {
				c.kill(fmt.Errorf("%w: tls write: %w", errBroken, err))
				return
			}
		case <-idle.C:
			left := u.idleLeft(c)
			if left == 0 {
				c.kill(errIdle)
				return
			}
			idle.Reset(left)
		case <-c.done:
			return
		}
	}
}

// readLoop reads replies and hands each to the query in flight with its ID
// if it matches that query's question; it ignores every other frame.
func (c *dotConn) readLoop() {
	u := c.u
	defer u.wg.Done()
	u.live.Add(1)
	defer u.live.Add(-1)

	buf := make([]byte, 2+maxMsg)
	for {
		if _, err := io.ReadFull(c.conn, buf[:2]); err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("closed by the server")
			}
			c.kill(fmt.Errorf("%w: tls read: %w", errBroken, err))
			return
		}
		b := buf[2 : 2+int(binary.BigEndian.Uint16(buf))]
		if _, err := io.ReadFull(c.conn, b); err != nil {
			c.kill(fmt.Errorf("%w: tls read: %w", errBroken, err))
			return
		}
		c.lastRead.Store(time.Now().UnixNano())
		if len(b) < 12 {
			continue // garbage
		}
		id := binary.BigEndian.Uint16(b)
		c.mu.Lock()
		call := c.pending[id]
		c.mu.Unlock()
		if call == nil {
			continue // a wrong ID, or a late reply to a query that gave up
		}
		resp, err := matchReply(id, call.question, b)
		if err != nil {
			call.ignored.Add(1)
			continue
		}
		c.mu.Lock()
		mine := c.pending[id] == call
		if mine {
			delete(c.pending, id)
		}
		c.mu.Unlock()
		if mine {
			call.ch <- dotResult{resp: resp}
		}
	}
}

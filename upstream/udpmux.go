package upstream

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

// udpMux sends the UDP queries of one server over a few connected sockets,
// many queries in flight on each, the way a DNS proxy does: a query costs a
// write and a share of a batched read, not a socket, a goroutine parked on
// a read and a deadline of its own.
//
// Each of the muxSockets slots holds a socket with its own random source
// port (an ephemeral port from the kernel). A socket takes at most
// muxMaxUses queries and new queries for at most muxMaxAge; then the slot
// gets a new socket on a new port and the old one is retired: it keeps
// reading until its last query is answered or gives up, and is closed.
//
// One goroutine per socket reads the replies (recvmmsg on Linux, a batch
// per system call) and hands each to the query waiting for it, or, for a
// query started with Group.StartUDP, to its handler (see Async): the reply
// must come from the server's address and port, carry the ID of a query in
// flight on that socket and repeat its question (0x20 case included: see
// match). Anything else is dropped and counted (Options.OnDrop); a
// mismatched reply does not end the query, whose real answer may still
// come. A query that gave up is no longer in flight: its late reply is
// dropped as "id". IDs are random (crypto/rand) and never shared by two
// queries in flight on one socket. A socket has at most muxMaxUses queries
// in flight (it takes no more in its life), a server at most
// muxMaxInflight, retiring sockets included.
type udpMux struct {
	raddr    netip.AddrPort // the server, unmapped
	onDrop   func(reason string)
	rcvbuf   int          // the receive buffer asked for each socket; 0: muxReadBuffer (tests set less)
	inflight atomic.Int64 // queries in flight on every socket of the server
	sender   muxSender

	mu     sync.Mutex
	socks  [muxSockets]*muxSock // nil until first used
	next   int                  // the slot the next query goes to
	closed bool

	// The timeouts of the queries started with Group.StartUDP: one sweep
	// of the open sockets every sweepEvery while any is in flight (asyncN),
	// not a timer per query. live is every open socket, retiring ones
	// included (lock order: mu, a socket's mu, liveMu).
	asyncN  atomic.Int64
	sweepOn atomic.Bool
	sweepT  *time.Timer // under mu
	liveMu  sync.Mutex
	live    []*muxSock
}

const (
	// muxSockets is the number of sockets a server's queries are spread
	// over (round robin).
	muxSockets = 4
	// muxMaxInflight bounds the queries in flight to one server, on
	// every socket: server.max_inflight's default.
	muxMaxInflight = 4096
	// muxMaxUses and muxMaxAge bound how many queries and for how long a
	// socket (a source port) takes before its slot gets a new one. So
	// at most muxMaxUses queries are in flight on a socket: a 256th of
	// the ID space, a random ID is rarely taken.
	muxMaxUses = 256
	muxMaxAge  = 10 * time.Second
	// muxBatch is the number of replies one recvmmsg reads.
	muxBatch = 16
	// muxReadBuffer is the receive buffer asked for each socket (the
	// kernel caps it at net.core.rmem_max): the replies of up to 4096
	// queries in flight share four sockets, where they had a socket each;
	// the default (~200 KB, a few hundred small datagrams) would drop
	// replies when the process is held up for a moment under load.
	muxReadBuffer = 1 << 20
)

// ErrBusy means the server already had its most queries in flight (4096,
// see udpMux). The query was not sent; it says nothing about the server's
// health.
var ErrBusy = errors.New("too many queries in flight to the server")

// udpOpen, udpIdle and udpInflight count, across every server, the UDP
// sockets open (in use, idle or retiring), those with no query in flight,
// and the queries in flight on them.
var udpOpen, udpIdle, udpInflight atomic.Int64

// UDPSockets returns the UDP sockets to upstream servers that are open and,
// of those, idle (no query in flight), across every server.
func UDPSockets() (open, idle int64) { return udpOpen.Load(), udpIdle.Load() }

// UDPInflight returns the queries in flight on UDP sockets to upstream
// servers, across every server. Each server has at most 4096
// (muxMaxInflight).
func UDPInflight() int64 { return udpInflight.Load() }

// muxSock is one connected socket of a udpMux and its queries in flight.
type muxSock struct {
	mux *udpMux
	c   *net.UDPConn

	mu      sync.Mutex
	pending idTable
	uses    int
	born    time.Time
	retired bool // takes no new query; closed when pending empties
	closed  bool

	// overflows is how many of the datagrams the kernel dropped because
	// the receive buffer was full were counted (see overflowed).
	overflows atomic.Uint32
}

// idTable holds the queries in flight on one socket by ID: a fixed table
// of idSlots slots, open addressing with linear probing from the ID's low
// bits (IDs are random: they spread evenly), a deleted entry left as a
// tombstone. A socket takes at most muxMaxUses queries in its life, so the
// live entries and tombstones together never fill more than a quarter of
// the table and no lookup runs far: cheaper than a map (no hashing, no
// growth) on the path of every query and reply.
type idTable struct {
	slot [idSlots]*pendingQuery
	n    int // live entries
}

// idSlots is the size of an idTable: a power of two, at least 4 times
// muxMaxUses.
const idSlots = 4 * muxMaxUses

// removedQuery marks a slot of an idTable whose query is gone.
var removedQuery = new(pendingQuery)

// get returns the query in flight with ID id, or nil.
func (t *idTable) get(id uint16) *pendingQuery {
	for i := int(id) & (idSlots - 1); ; i = (i + 1) & (idSlots - 1) {
		p := t.slot[i]
		if p == nil {
			return nil
		}
		if p != removedQuery && p.q.id == id {
			return p
		}
	}
}

// put adds p, whose ID is not in t, in the first free or removed slot from
// its ID on.
func (t *idTable) put(p *pendingQuery) {
	for i := int(p.q.id) & (idSlots - 1); ; i = (i + 1) & (idSlots - 1) {
		if q := t.slot[i]; q == nil || q == removedQuery {
			t.slot[i] = p
			t.n++
			return
		}
	}
}

// remove takes p out of t and reports whether it was there.
func (t *idTable) remove(p *pendingQuery) bool {
	for i := int(p.q.id) & (idSlots - 1); ; i = (i + 1) & (idSlots - 1) {
		switch t.slot[i] {
		case nil:
			return false
		case p:
			t.slot[i] = removedQuery
			t.n--
			return true
		}
	}
}

// pendingQuery is a query in flight on a muxSock: what its reply must
// match, and where the reply goes.
type pendingQuery struct {
	q sentQuery
	// done is signalled once result holds the reply, or the error that
	// ended the query: by whoever removed the query from its socket's table
	// (pending), see finish. (An empty element: the channel is one
	// allocation, a channel of muxResult two.)
	done   chan struct{}
	result muxResult
	// mismatched counts the replies with this query's ID that did not match
	// it (under the socket's mu).
	mismatched int
	// async, when set, takes the reply instead of a waiter: the query was
	// started with Group.StartUDP (done is nil then).
	async *Async
	// sock is the socket the query is in flight on (set by add).
	sock *muxSock
}

type muxResult struct {
	resp *dns.Msg
	err  error
}

// finish hands p's waiter its result r. Only whoever removed p from its
// socket's table calls it, once.
func (p *pendingQuery) finish(r muxResult) {
	if p.async != nil {
		p.async.finish(nil, r.err)
		return
	}
	p.result = r
	p.done <- struct{}{}
}

// start registers q on the next socket in turn (a new one if that one is
// worn: see muxSock.worn), with a random ID no other query in flight there
// has (written into wire and q), and returns the socket and the query's
// entry. The caller writes wire and then waits. now is a time.Now reading
// just taken (for the sockets' age).
func (m *udpMux) start(q *sentQuery, wire []byte, now time.Time) (*muxSock, *pendingQuery, error) {
	return m.startWith(q, wire, now, nil)
}

// startWith is start with the entry p the caller made (an Async's, whose
// reply goes to its handler), or a new one when p is nil.
func (m *udpMux) startWith(q *sentQuery, wire []byte, now time.Time, p *pendingQuery) (*muxSock, *pendingQuery, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.inflight.Load() >= muxMaxInflight {
		return nil, nil, ErrBusy
	}
	i := m.next
	m.next = (m.next + 1) % muxSockets
	s := m.socks[i]
	if s == nil || s.worn(now) {
		ns, err := m.open(now)
		if err != nil {
			return nil, nil, err
		}
		if s != nil {
			s.retire()
		}
		s, m.socks[i] = ns, ns
	}
	p = s.add(q, wire, p) // s is current, so not closed
	if m.closed {
		// After Close a socket serves the one query it was opened for.
		m.socks[i] = nil
		s.retire()
	}
	return s, p, nil
}

// open opens a socket to the server and starts its reader.
func (m *udpMux) open(now time.Time) (*muxSock, error) {
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(m.raddr))
	if err != nil {
		return nil, err
	}
	rcvbuf := m.rcvbuf
	if rcvbuf == 0 {
		rcvbuf = muxReadBuffer
	}
	_ = c.SetReadBuffer(rcvbuf) // best effort: capped by the kernel
	countOverflows(c)
	udpOpen.Add(1)
	udpIdle.Add(1)
	s := &muxSock{mux: m, c: c, born: now}
	m.liveMu.Lock()
	m.live = append(m.live, s)
	m.liveMu.Unlock()
	go s.read()
	return s, nil
}

// close retires every socket: each is closed once its queries are over.
// Queries sent afterwards get a socket each.
func (m *udpMux) close() {
	m.mu.Lock()
	socks := m.socks
	m.socks = [muxSockets]*muxSock{}
	m.closed = true
	m.mu.Unlock()
	for _, s := range socks {
		if s != nil {
			s.retire()
		}
	}
}

// worn reports whether s has served its share of queries or time.
func (s *muxSock) worn(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.uses >= muxMaxUses || now.Sub(s.born) >= muxMaxAge
}

// add registers q on s with a fresh random ID, in p (a new entry with a
// channel to wait on when p is nil). s must not be retired.
func (s *muxSock) add(q *sentQuery, wire []byte, p *pendingQuery) *pendingQuery {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := binary.BigEndian.Uint16(wire)
	for s.pending.get(id) != nil {
		randomID(wire)
		id = binary.BigEndian.Uint16(wire)
	}
	q.id = id
	if p == nil {
		p = &pendingQuery{done: make(chan struct{}, 1)}
	}
	p.q = *q
	p.sock = s
	if s.pending.n == 0 {
		udpIdle.Add(-1)
	}
	s.pending.put(p)
	s.uses++
	s.mux.inflight.Add(1)
	udpInflight.Add(1)
	return p
}

// remove takes p out of s if it is still in flight there and reports
// whether it was; the caller then owns delivering p's result. Under s.mu.
func (s *muxSock) remove(p *pendingQuery) bool {
	if !s.pending.remove(p) {
		return false
	}
	s.mux.inflight.Add(-1)
	udpInflight.Add(-1)
	if s.pending.n == 0 {
		udpIdle.Add(1)
		if s.retired {
			s.closeLocked()
		}
	}
	return true
}

// abandon ends p without a reply (its waiter gave up or its write failed)
// and returns how many non-matching replies with its ID were seen.
func (s *muxSock) abandon(p *pendingQuery) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.remove(p)
	return p.mismatched
}

// retire stops s from taking new queries and closes it when none is left.
func (s *muxSock) retire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.retired = true
	if s.pending.n == 0 {
		s.closeLocked()
	}
}

// closeLocked closes the socket (its reader then returns). Under s.mu, with
// nothing in flight.
func (s *muxSock) closeLocked() {
	if s.closed {
		return
	}
	s.closed = true
	if d, ok := socketDrops(s.c); ok {
		s.overflowed(d) // the drops no later datagram reported
	}
	_ = s.c.Close()
	udpOpen.Add(-1)
	udpIdle.Add(-1)
	m := s.mux
	m.liveMu.Lock()
	for i, x := range m.live {
		if x == s {
			last := len(m.live) - 1
			m.live[i], m.live[last] = m.live[last], nil
			m.live = m.live[:last]
			break
		}
	}
	m.liveMu.Unlock()
}

// dropped counts a reply read and thrown away.
func (s *muxSock) dropped(reason string) {
	if f := s.mux.onDrop; f != nil {
		f(reason)
	}
}

// overflowed counts as dropped ("overflow") the replies the kernel dropped
// unread because the socket's receive buffer was full, given their total
// so far, d (from the socket's reader, SO_RXQ_OVFL, or from closeLocked,
// SO_MEMINFO): each drop is counted once, whoever sees it first. The
// kernel's count is a uint32 that wraps around.
func (s *muxSock) overflowed(d uint32) {
	for {
		seen := s.overflows.Load()
		if int32(d-seen) <= 0 {
			return
		}
		if s.overflows.CompareAndSwap(seen, d) {
			for range d - seen {
				s.dropped("overflow")
			}
			return
		}
	}
}

// fromServer reports whether a datagram from ap came from the server. The
// socket is connected, so the kernel delivers only the server's datagrams;
// this catches one that was queued before connect(2).
func (s *muxSock) fromServer(ap netip.AddrPort) bool {
	return ap.Port() == s.mux.raddr.Port() && ap.Addr().Unmap() == s.mux.raddr.Addr()
}

// dispatch hands the datagram b (cut short by the kernel if trunc) to the
// query in flight it answers, or drops it. b is changed. It runs in the
// socket's reader only.
func (s *muxSock) dispatch(b []byte, trunc bool) {
	if len(b) < 12 {
		s.dropped("malformed")
		return
	}
	id := binary.BigEndian.Uint16(b)
	s.mu.Lock()
	p := s.pending.get(id)
	s.mu.Unlock()
	if p == nil {
		s.dropped("id") // forged, duplicate or late
		return
	}
	if p.async != nil {
		s.dispatchAsync(p, b, trunc)
		return
	}
	var (
		resp *dns.Msg
		err  error
	)
	if trunc {
		// Bigger than udpSize asked for: Exchange asks again over TCP, if
		// what was read is the start of a reply to this query (a forger
		// must not be able to push queries to TCP either).
		if err = matchHead(p.q, b); err == nil {
			resp = &dns.Msg{MsgHdr: dns.MsgHdr{Id: id, Response: true, Truncated: true}}
		}
	} else {
		resp, err = match(p.q, b)
	}
	if s.take(p, err) {
		p.finish(muxResult{resp: resp})
	}
}

// take settles a datagram read for p's ID, given err, the outcome of
// matching it against p's query: a mismatch is dropped (counted by its
// reason, and against p while p is in flight) and take reports false;
// otherwise take takes p out of flight and reports true, or reports false
// for a query that gave up meanwhile (a late reply, dropped as "id"). The
// caller then owns delivering p's result.
func (s *muxSock) take(p *pendingQuery, err error) bool {
	s.mu.Lock()
	if err != nil {
		if s.pending.get(p.q.id) == p {
			p.mismatched++
		}
		s.mu.Unlock()
		var me *mismatchError
		if errors.As(err, &me) {
			s.dropped(me.reason)
		} else {
			s.dropped("malformed")
		}
		return false
	}
	ok := s.remove(p)
	s.mu.Unlock()
	if !ok {
		s.dropped("id") // its query gave up meanwhile: late
	}
	return ok
}

// errSocketShared marks the failure of a query ended with the others of its
// socket by one ICMP error (see fail): the error counts once against the
// server's health, for the first of them; the others go on to the next
// server without a verdict, as ErrBusy does.
var errSocketShared = errors.New("the socket's error, counted for another query")

// fail ends every query in flight on s with err: the kernel reported an
// ICMP error (port unreachable) for the socket, which is connected to the
// one server all of them were sent to. One ICMP message (a spoofed one
// too) is one failure of the server, not one per query in flight.
func (s *muxSock) fail(err error) {
	s.mu.Lock()
	var failed []*pendingQuery
	for _, p := range s.pending.slot {
		if p != nil && p != removedQuery {
			failed = append(failed, p)
		}
	}
	for _, p := range failed {
		s.remove(p)
	}
	s.mu.Unlock()
	for i, p := range failed {
		if i == 0 {
			p.finish(muxResult{err: err})
		} else {
			p.finish(muxResult{err: fmt.Errorf("%w: %w", errSocketShared, err)})
		}
	}
}

// readPlain is the reader without batching: one datagram per read.
func (s *muxSock) readPlain() {
	buf := make([]byte, udpBuf)
	for {
		n, ap, err := s.c.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if errors.Is(err, syscall.ECONNREFUSED) {
				s.fail(err)
			}
			continue
		}
		if !s.fromServer(ap) {
			s.dropped("source")
			continue
		}
		// A datagram that fills the buffer was (or may have been) cut.
		s.dispatch(buf[:n], n == len(buf))
	}
}

// timerPool holds stopped timers: a query waits on one without allocating
// (timers are not ticking when put back; Go 1.23+ Stop leaves no stale
// value in the channel).
var timerPool = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}}

// exchangeUDP sends wire over one of the server's multiplexed sockets and
// waits for the reply the socket's reader hands over, for deadline, or for
// ctx to be cancelled.
func (u *server) exchangeUDP(ctx context.Context, now, deadline time.Time, q *sentQuery, wire []byte) (*dns.Msg, error) {
	s, p, err := u.mux.start(q, wire, now)
	if err != nil {
		if errors.Is(err, ErrBusy) {
			return nil, fmt.Errorf("%s: %w", u.name, err)
		}
		return nil, u.ioErr(ctx, "udp dial", err)
	}
	if !u.mux.sender.send(s, p, wire) {
		if _, err := s.c.Write(wire); err != nil {
			s.abandon(p)
			return nil, u.ioErr(ctx, "udp write", err)
		}
	}
	t := timerPool.Get().(*time.Timer)
	t.Reset(deadline.Sub(now)) // now was read microseconds ago
	defer func() { t.Stop(); timerPool.Put(t) }()
	var cause error
	select {
	case <-p.done:
		r := p.result
		if r.err != nil {
			return nil, u.ioErr(ctx, "udp read", r.err)
		}
		return r.resp, nil
	case <-ctx.Done():
		cause = ctx.Err()
	case <-t.C:
		cause = context.DeadlineExceeded
	}
	err = fmt.Errorf("%s: udp read: %w", u.name, cause)
	if n := s.abandon(p); n > 0 {
		err = fmt.Errorf("%w (ignored %d non-matching replies)", err, n)
	}
	return nil, err
}

package upstream

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jurisdns/jurisdns/internal/dnsname"
)

// AsyncHandler takes the outcome of a query started with Group.StartUDP.
type AsyncHandler interface {
	// UDPDone is called once per query: with the upstream's reply (its ID,
	// QR bit and question checked against the query: the question as sent,
	// 0x20 case included; any rcode, TC too), or with the error that ended
	// the query (a timeout, an ICMP error, a failed write, a reply cut
	// short). reply is valid only during the call and must not be kept.
	//
	// It runs in the goroutine of the socket's reader, of a timer, or of
	// the StartUDP call itself (a write that fails at once): it must not
	// block, and should hand anything slow to a goroutine of its own.
	// Health and Observe were recorded for the try before it is called.
	UDPDone(reply []byte, err error)
}

// UDPTap is an Upstream that wraps another and records its exchanges (the
// dnstap sink's forwarder messages). When the wrapped one is a plain UDP
// upstream, StartUDP sends through it and hands the tap the query and the
// reply as they went over the wire.
type UDPTap interface {
	Upstream
	// Unwrap returns the wrapped upstream.
	Unwrap() Upstream
	// TapUDP records one StartUDP try: the query as sent, the reply (nil
	// when the try ended without one), when the query went and when the
	// try ended. Neither slice may be kept after the call. It runs where
	// AsyncHandler.UDPDone runs, just before it: it must not block.
	TapUDP(query, reply []byte, queryTime, responseTime time.Time)
}

// Async is one UDP query started with Group.StartUDP. The caller makes it
// (it may be a field of the caller's own per-query state: one allocation
// for both), sets H, and must not reuse it until H.UDPDone was called.
type Async struct {
	H AsyncHandler

	g     *Group
	mb    *member
	start time.Time // the group's clock at the start, for Observe
	dl    time.Time // the exchange's deadline (the caller's, or the group's Timeout)
	tryDL time.Time // the try's: dl or the group's TryTimeout, whichever is earlier
	tap   UDPTap    // the member's tap, if it has one
	wall  time.Time // when the query went (for the tap)
	qlen  int       // the query's length in buf
	p     pendingQuery
	buf   [asyncQueryLen]byte
}

// asyncQueryLen holds the longest query StartUDP writes: header, a 255-byte
// name, type, class and OPT.
const asyncQueryLen = 12 + 255 + 4 + optLen

// ErrCut means a UDP reply was bigger than the read buffer (and than the
// size the query advertised): it was not read whole.
var ErrCut = errors.New("reply bigger than advertised, cut short")

// StartUDP sends one try of a query to the upstream the group's strategy
// picks first, when that is a plain UDP upstream that is healthy, and
// returns without waiting: the socket's reader hands the reply to a.H
// (see AsyncHandler), so no goroutine is parked per query in flight. It
// reports false, having sent nothing and recorded nothing, when the query
// cannot go this way (the parallel strategy, a first upstream that is down,
// tcp://, DoT or DoH, too many queries in flight, a question that does not
// fit); the caller then uses ExchangeBy. A member wrapped in a UDPTap goes
// this way when the upstream it wraps does.
//
// question is the question section of the client's query in wire form
// (name, type, class: an uncompressed name); the query sent has RD, AD, CD
// if cd, the question with the name in lower case or, for a server with
// 0x20 on, in random case, and an OPT with the DO bit if do. The try ends
// by deadline and by the group's Timeout and TryTimeout. A try that ends
// without a usable reply says nothing more: the caller asks again with
// ExchangeBy (the failover and the TCP retry of a truncated reply are
// ExchangeBy's).
//
// now is the time of the call (the caller's reading of the clock, saving
// one). a.H.UDPDone may be called before StartUDP returns.
func (g *Group) StartUDP(a *Async, question []byte, cd, do bool, now, deadline time.Time) bool {
	if len(question) < 5 || len(question) > 255+4 {
		return false
	}
	mb := g.first()
	if mb == nil {
		return false
	}
	up := mb.up
	var tap UDPTap
	if t, ok := up.(UDPTap); ok {
		tap, up = t, t.Unwrap()
	}
	u, ok := up.(*server)
	if !ok || u.tcpOnly {
		return false
	}
	a.g, a.mb, a.start, a.tap, a.wall = g, mb, g.clock(now), tap, now
	a.dl = now.Add(g.opts.Timeout)
	if deadline.Before(a.dl) {
		a.dl = deadline
	}
	a.tryDL = now.Add(g.opts.TryTimeout)
	if a.dl.Before(a.tryDL) {
		a.tryDL = a.dl
	}
	return u.startUDP(a, question, cd, do, now)
}

// first returns the member the strategy tries first when it is healthy
// (not down, no recovery probe to claim), or nil: a query for a group in
// trouble takes ExchangeBy, which knows the order of the others.
func (g *Group) first() *member {
	var mb *member
	switch g.opts.Strategy {
	case StrategyFailover:
		mb = g.ups[0]
	case StrategyRandom:
		i := 0
		if len(g.ups) > 1 {
			if g.opts.Rand == nil {
				i = rand.IntN(len(g.ups))
			} else {
				g.randMu.Lock()
				i = g.opts.Rand.IntN(len(g.ups))
				g.randMu.Unlock()
			}
		}
		mb = g.ups[i]
	default:
		return nil
	}
	mb.mu.Lock()
	healthy := mb.fails == 0
	mb.mu.Unlock()
	if !healthy {
		return nil
	}
	return mb
}

// startUDP writes a's query into a.buf, registers it on one of the
// server's sockets and queues it for writing, with a timer at a.tryDL.
func (u *server) startUDP(a *Async, question []byte, cd, do bool, now time.Time) bool {
	flags := uint16(bitRD | bitAD)
	if cd {
		flags |= bitCD
	}
	b := append(a.buf[:0], 0, 0, byte(flags>>8), byte(flags), 0, 1, 0, 0, 0, 0, 0, 1)
	b = append(b, question...)
	name := b[12 : len(b)-4]
	if end, ok := nameEnd(name); !ok || end != len(name) {
		return false // not one uncompressed name
	}
	dnsname.LowerBytes(name)
	if u.caseRandom {
		randomIDAndCase(b, name)
	} else {
		randomID(b)
	}
	var ttl uint32
	if do {
		ttl = bitDO
	}
	b = append(b, 0, 0, 41, byte(udpSize>>8), byte(udpSize&0xFF),
		byte(ttl>>24), byte(ttl>>16), byte(ttl>>8), byte(ttl), 0, 0)
	a.qlen = len(b)
	q := sentQuery{sent: b[12 : 12+len(question)], caseless: !u.caseRandom}
	a.p = pendingQuery{async: a}
	s, p, err := u.mux.startWith(&q, b, now, &a.p)
	if err != nil {
		return false
	}
	u.mux.asyncN.Add(1) // finish takes it off
	u.mux.armSweep()
	if !u.mux.sender.send(s, p, b) {
		if _, err := s.c.Write(b); err != nil {
			s.failWrite(p, err)
		}
	}
	return true
}

// nameEnd returns the length of the uncompressed wire name at the start
// of b, ok false when it is not one.
func nameEnd(b []byte) (int, bool) {
	for i := 0; i < len(b); {
		l := int(b[i])
		switch {
		case l == 0:
			return i + 1, true
		case l > 63:
			return 0, false
		}
		i += l + 1
	}
	return 0, false
}

// sweepEvery is how often the queries started with StartUDP are checked
// for their try's deadline, while any is in flight: a try ends up to this
// much after its deadline.
const sweepEvery = 10 * time.Millisecond

// armSweep makes sure a sweep is due.
func (m *udpMux) armSweep() {
	if m.sweepOn.Swap(true) {
		return
	}
	m.mu.Lock()
	if m.sweepT == nil {
		m.sweepT = time.AfterFunc(sweepEvery, m.sweep)
	} else {
		m.sweepT.Reset(sweepEvery)
	}
	m.mu.Unlock()
}

// sweep ends the StartUDP queries past their try's deadline, then arms
// the next sweep if any is left in flight.
func (m *udpMux) sweep() {
	now := time.Now()
	m.liveMu.Lock()
	socks := append([]*muxSock(nil), m.live...)
	m.liveMu.Unlock()
	type late struct {
		a          *Async
		mismatched int
	}
	var expired []late
	for _, s := range socks {
		s.mu.Lock()
		n := len(expired)
		for _, p := range s.pending.slot {
			if p != nil && p != removedQuery && p.async != nil && !now.Before(p.async.tryDL) {
				expired = append(expired, late{p.async, p.mismatched})
			}
		}
		for _, x := range expired[n:] {
			s.remove(&x.a.p)
		}
		s.mu.Unlock()
	}
	for _, x := range expired {
		err := fmt.Errorf("%s: udp read: %w", x.a.mb.up.String(), context.DeadlineExceeded)
		if x.mismatched > 0 {
			err = fmt.Errorf("%w (ignored %d non-matching replies)", err, x.mismatched)
		}
		x.a.finish(nil, err)
	}
	m.sweepOn.Store(false)
	if m.asyncN.Load() > 0 {
		m.armSweep()
	}
}

// finish records the try's outcome (Observe, health) and hands it to a.H.
// Only whoever took a's query out of its socket's table calls it, once.
func (a *Async) finish(reply []byte, err error) {
	a.p.sock.mux.asyncN.Add(-1)
	g, mb := a.g, a.mb
	if g.opts.Observe != nil {
		g.opts.Observe(mb.up.String(), g.opts.Now().Sub(a.start), err)
	}
	switch {
	case err == nil:
		g.result(mb, nil)
	case errors.Is(err, errSocketShared), isTimeout(err) && !a.tryDL.Before(a.dl):
		// One ICMP error counted for another query, or the exchange's
		// own deadline (not the try's) ran out: no verdict, as in try.
	default:
		g.result(mb, err)
	}
	if a.tap != nil {
		a.tap.TapUDP(a.buf[:a.qlen], reply, a.wall, time.Now())
	}
	a.H.UDPDone(reply, err)
}

// dispatchAsync hands the datagram b, read for p's ID, to p's Async if it
// answers p's query, or drops it. It runs in the socket's reader.
func (s *muxSock) dispatchAsync(p *pendingQuery, b []byte, trunc bool) {
	if !s.take(p, matchWire(p.q, b)) {
		return
	}
	if trunc {
		p.async.finish(nil, fmt.Errorf("%s: %w", p.async.mb.up.String(), ErrCut))
		return
	}
	p.async.finish(b, nil)
}

// matchWire checks a reply's header and question against q without
// unpacking it: q's ID, QR set, one question, and the question as sent,
// byte for byte (with 0x20), or with the name in any case (q.caseless).
func matchWire(q sentQuery, b []byte) error {
	if len(b) < 12 || binary.BigEndian.Uint16(b) != q.id {
		return mismatch("id", "wrong ID")
	}
	if b[2]&0x80 == 0 {
		return mismatch("question", "QR not set")
	}
	if n := binary.BigEndian.Uint16(b[4:]); n != 1 {
		return mismatch("question", "%d questions", n)
	}
	if len(b) < 12+len(q.sent) {
		return mismatch("question", "question cut short")
	}
	got := b[12 : 12+len(q.sent)]
	if bytes.Equal(got, q.sent) {
		return nil
	}
	n := len(q.sent) - 4
	if equalFoldASCII(got[:n], q.sent[:n]) && bytes.Equal(got[n:], q.sent[n:]) {
		if q.caseless {
			return nil
		}
		return mismatch("case", "question name %q, sent %q (0x20)", got[:n], q.sent[:n])
	}
	return mismatch("question", "question differs from the one sent")
}

package resolver

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/upstream"
)

// asyncStarter is an Exchanger that can send a UDP query without a
// goroutine waiting for it (upstream.Group.StartUDP).
type asyncStarter interface {
	StartUDP(a *upstream.Async, question []byte, cd, do bool, now, deadline time.Time) bool
}

var _ asyncStarter = (*upstream.Group)(nil)

// afterExchanger goes on with a query after its StartUDP try
// (upstream.Group.ExchangeAfter).
type afterExchanger interface {
	ExchangeAfter(ctx context.Context, m *dns.Msg, a *upstream.Async, bad *dns.Msg, tryErr error) (*dns.Msg, error)
}

var _ afterExchanger = (*upstream.Group)(nil)

// afterTry is what a StartUDP try that gave no usable reply leaves the
// worker that goes on with the query: the try, its SERVFAIL or REFUSED
// reply (bad) or its error.
type afterTry struct {
	a   *upstream.Async
	bad *dns.Msg
	err error
}

// asyncMiss is a UDP cache miss in flight upstream with no goroutine parked
// on it, the way a DNS proxy forwards: the read loop that took the query
// starts the upstream try (startMiss), and the upstream socket's reader,
// when the reply comes, stores it in the cache and queues the client's
// answer in the listener's sender (UDPDone). Whatever that common case does
// not cover goes to a slow-path worker (a handover): a try that gave no
// usable reply (timeout, error, SERVFAIL or REFUSED, TC) is asked again by
// the worker through the upstreams' full strategy, and an answer the
// finish does not write (uncacheable, too big for the client, a CNAME to a
// listed name) is written by the worker from the landed flight.
//
// The miss leads its flight from the start: identical queries that arrive
// meanwhile, on any transport, join it and wait, as they wait for a
// worker's. The query keeps its runtime entered, its budget slot and its
// place in the server's in-flight count until it is answered or handed
// over.
type asyncMiss struct {
	a     upstream.Async
	s     *Server
	j     udpJob
	q     question
	req   Request
	key   flightKey
	fl    *flight
	start time.Time
	// flight is the flight m leads (fl), pkt the room for the query's
	// copy (j.pkt) when it fits: with m, one allocation, and none once
	// m is reused (asyncMisses).
	flight flight
	pkt    [512]byte
}

// asyncMisses holds asyncMiss values to reuse: a miss answered by UDPDone
// whose flight nobody joined is over with nothing left pointing at it (the
// socket's table let go of its Async before UDPDone, the tap and the sender
// keep no slice of it, the flight's callers were none). A miss handed over
// to a worker is left to the garbage collector.
var asyncMisses = sync.Pool{New: func() any { return new(asyncMiss) }}

// release puts m back in asyncMisses, cleared (it must keep no runtime,
// client or entry alive there).
func (m *asyncMiss) release() {
	*m = asyncMiss{}
	asyncMisses.Put(m)
}

// handover is what an asyncMiss gives the worker that finishes its query:
// the flight it leads, still to fly (fl set), or the landed flight's result
// (e or m).
type handover struct {
	key flightKey
	fl  *flight
	e   *entry
	m   *dns.Msg
	err error // the landed flight's failure
	// after goes with fl: how the try that led to the handover ended.
	after *afterTry
	wall  time.Time // when the query was taken up
}

// startMiss starts the upstream try of the missable UDP query j (fast
// classified it with w, whose miss fields it reads; handleUDP entered its
// runtime and took its budget slot)
// and reports true, or reports false, having changed nothing, when the
// query must go to a worker as before: the upstreams cannot start a query
// that way (see upstream.Group.StartUDP), the listener has no sender, the
// server no cache, or an identical query is already in flight.
func (s *Server) startMiss(w *worker, j *udpJob, pkt []byte) bool {
	st, ok := j.up.(asyncStarter)
	if !ok || j.snd == nil || s.cache == nil {
		return false
	}
	// fast's reading of the query pkt.
	q := w.missQ
	m := asyncMisses.Get().(*asyncMiss)
	m.s, m.j, m.q = s, *j, q
	m.j.pkt = append(m.pkt[:0], pkt...) // pkt is the read loop's buffer
	rt := j.rt
	m.req = udpRequest(&q, w.missName, j.addr, w.missClients, j.up)
	w.missClients = nil // keep no policy alive in w
	m.start = time.Now()
	m.req.wall = m.start
	m.key = flightKey{name: m.req.Name, qtype: q.qtype}
	if m.req.DO {
		m.key.flags |= keyDO
	}
	if m.req.CD {
		m.key.flags |= keyCD
	}
	if !rt.fwd.flights.leadWith(m.key, &m.flight) {
		m.release()
		return false
	}
	m.fl = &m.flight
	m.a.H = m
	s.obs.CacheMiss()
	if !st.StartUDP(&m.a, m.j.pkt[hdrLen:q.qEnd], m.req.CD, m.req.DO, m.start, m.start.Add(rt.QueryTimeout)) {
		// Not sent: the worker flies the flight this query leads.
		m.handOver(&handover{key: m.key, fl: m.fl})
	}
	return true
}

// UDPDone finishes the miss with its upstream try's outcome (see
// upstream.AsyncHandler: it runs in the socket's reader and must not
// block).
func (m *asyncMiss) UDPDone(reply []byte, err error) {
	switch {
	case errors.Is(err, upstream.ErrCut), err == nil && len(reply) >= hdrLen && reply[2]&0x02 != 0:
		// Truncated: ExchangeBy asks again, and then over TCP.
		m.handOver(&handover{key: m.key, fl: m.fl})
		return
	case err != nil:
		// The next upstream, if any, as ExchangeBy goes on.
		m.handOver(&handover{key: m.key, fl: m.fl, after: &afterTry{a: &m.a, err: err}})
		return
	}
	switch reply[3] & 0xF {
	case dns.RcodeSuccess, dns.RcodeNameError:
	case dns.RcodeServerFailure, dns.RcodeRefused:
		// The next upstream may do better; this reply is the answer if
		// none does, as in ExchangeBy.
		bad, perr := replyMsg(&m.req, reply)
		if perr != nil {
			m.handOver(&handover{key: m.key, fl: m.fl})
			return
		}
		m.handOver(&handover{key: m.key, fl: m.fl, after: &afterTry{a: &m.a, bad: bad}})
		return
	}
	shared, h := m.finish(reply)
	if h != nil {
		m.handOver(h)
		return
	}
	m.done()
	if !shared {
		m.release()
	}
}

// finish stores the reply and queues the client's answer, or returns what
// a worker needs to do it; shared reports that m may not be reused (others
// joined its flight, or it is handed over). A panic (a bug) lands the
// flight with an error and, unless the answer went out, hands the query
// over: the reader goes on, nobody waits forever.
func (m *asyncMiss) finish(reply []byte) (shared bool, h *handover) {
	s, rt := m.s, m.j.rt
	landed, sent := false, false
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("resolver: panic finishing an upstream reply", "panic", fmt.Sprint(r), "name", m.req.Name)
			if !landed {
				m.fl.err = errFlightAborted
				rt.fwd.flights.land(m.key, m.fl)
			}
			// Not reused (shared): what panicked may still hold it. A
			// query whose answer went out needs no worker's SERVFAIL.
			shared, h = true, nil
			if !sent {
				h = &handover{key: m.key, err: errFlightAborted}
			}
		}
	}()
	e, msg, err := s.storeReply(&m.req, reply)
	if err != nil {
		// A reply that does not parse: asked again by the worker.
		return true, &handover{key: m.key, fl: m.fl}
	}
	fl := m.fl
	fl.err, fl.e, fl.m = nil, e, msg
	shared = rt.fwd.flights.land(m.key, fl)
	landed = true
	if e == nil {
		if shared {
			// The callers that joined copy fl.m (flight.result): the
			// worker must not change it under them.
			msg = msg.Copy()
		}
		return true, &handover{key: m.key, m: msg}
	}
	now := e.stored
	if !fitsUDP(e, &m.q) || cnameListed(rt, e, m.req.Clients, now) {
		return true, &handover{key: m.key, e: e}
	}
	m.j.snd.sendReply(e, m.j.pkt, &m.q, now, m.j.addr)
	sent = true
	s.obs.Answered(UDP, m.q.qtype, e.rcode)
	if s.qlog != nil {
		out := e.appendReply(nil, m.j.pkt, &m.q, now, 0, false)
		s.qlog.Query(&QueryEvent{Time: now, Client: m.req.Client.Addr(), Port: m.j.addr.Port(), Proto: UDP, Name: m.req.Name,
			Qtype: m.req.Qtype, Rcode: e.rcode, Duration: time.Since(m.start), Query: m.j.pkt, Response: out})
	}
	return shared, nil
}

// storeReply caches an upstream reply for req as fly does (AA cleared,
// scrubbed, stored: Cache.putWire, or unpacked and Cache.put) and returns
// the new entry, or the message when it is not cacheable, or the error when
// it does not parse.
func (s *Server) storeReply(req *Request, reply []byte) (*entry, *dns.Msg, error) {
	// The common shapes straight from the bytes; anything else unpacked.
	if e, ok := s.cache.putWire(req, reply, s.now()); ok {
		return e, nil, nil
	}
	msg, err := replyMsg(req, reply)
	if err != nil {
		return nil, nil, err
	}
	msg.Authoritative = false
	scrub(msg, req.Name)
	if e := s.cache.put(req, msg, s.now()); e != nil {
		return e, nil, nil
	}
	return nil, msg, nil
}

// replyMsg unpacks an upstream reply to req as the upstream package's
// ExchangeBy returns it: the question and the records owned by the
// question's name (written in the query's 0x20 case) with req's name.
func replyMsg(req *Request, reply []byte) (*dns.Msg, error) {
	msg := new(dns.Msg)
	if err := msg.Unpack(reply); err != nil {
		return nil, fmt.Errorf("unpacking reply: %w", err)
	}
	// The question as the client asked it (the reply's is in 0x20 case).
	msg.Question[0].Name = req.Name
	for _, sec := range [][]dns.RR{msg.Answer, msg.Ns, msg.Extra} {
		for _, rr := range sec {
			if h := rr.Header(); h.Name != req.Name && strings.EqualFold(h.Name, req.Name) {
				h.Name = req.Name // written in the query's 0x20 case
			}
		}
	}
	return msg, nil
}

// handOver gives the query to a slow-path worker with h (see handover).
func (m *asyncMiss) handOver(h *handover) {
	if h.wall.IsZero() {
		h.wall = m.start
	}
	j := m.j
	j.h = h
	select {
	case m.s.jobs <- j:
	default:
		go m.s.udpWorker(j)
	}
}

// done ends the query: what the worker does after writing an answer.
func (m *asyncMiss) done() {
	m.j.rt.leave()
	m.s.budget.release(m.j.addr.Addr())
	m.s.qwg.Done()
}

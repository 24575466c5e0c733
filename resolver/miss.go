package resolver

import (
	"context"
	"net/netip"
	"time"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/policy"
)

// missUDP resolves a UDP query that the fast path turned away only because
// its answer was not cached: fast checked the edge, the policy, the special
// names and the local zones with rt (which the caller has entered) and found
// up, the upstreams of the name. It asks the upstreams like the forwarder
// and writes a cacheable answer straight from the new cache entry, as the
// fast path writes a hit: no unpack of the query, no unpack and pack of the
// reply. Anything else (an answer that is not cacheable, every upstream
// failing, a CNAME that reaches a listed name, an answer too big for the
// client) is finished as on the slow path, from the same upstream answer. It
// returns the reply, or nil to send nothing.
func (s *Server) missUDP(w *worker, pkt []byte, addr netip.AddrPort, rt *Runtime, up Exchanger) []byte {
	return s.missUDPFrom(w, pkt, addr, rt, up, nil)
}

// missUDPFrom is missUDP for a query an asyncMiss handed over (h not nil):
// with the flight it leads still to fly (its try did not give a usable
// answer: ExchangeBy asks again, with the failover and the TCP retry), or
// with the flight landed and its result (an answer the fast finish does
// not write: uncacheable, too big, a CNAME to a listed name).
func (s *Server) missUDPFrom(w *worker, pkt []byte, addr netip.AddrPort, rt *Runtime, up Exchanger, h *handover) []byte {
	q, canon, ok := parseQuery(pkt, w.name)
	if !ok {
		if h != nil && h.fl != nil {
			// Never here (startMiss parsed the same packet), but a
			// led flight must land whatever happens.
			rt.fwd.flights.land(h.key, h.fl)
		}
		return s.resolve(rt, pkt, addr, UDP)
	}
	w.name = canon[:0]
	client := addr.Addr().Unmap()
	r := udpRequest(&q, canon, addr, rt.Policy.ClientSet(client), up)
	req := &r
	start := time.Now()
	req.wall = start
	now := start
	if !s.wallClock {
		now = s.now()
	}
	if h != nil && !h.wall.IsZero() {
		start, req.wall = h.wall, h.wall // the query's time is its start's
	}
	old := s.cache.get(req.Name, req.Qtype, req.DO, req.CD)
	var (
		fresh *entry
		m     *dns.Msg
		err   error
	)
	switch {
	case h == nil:
		if old != nil && old.fresh(now) {
			// Cached since fast looked: the slow path answers it as a hit.
			return s.resolve(rt, pkt, addr, UDP)
		}
		s.obs.CacheMiss()
		// fetch bounds the upstream work by the query timeout.
		fresh, m, err = rt.fwd.fetch(context.Background(), req)
	case h.fl != nil:
		req.after = h.after
		fresh, m, err = rt.fwd.flyLed(context.Background(), req, h.key, h.fl)
	default:
		fresh, m, err = h.e, h.m, h.err
	}
	if err == nil && fresh != nil && fresh.stored.After(now) {
		// The entry was stored when its flight landed, just now: its
		// clock reading is the answer's (one read fewer per miss).
		now = fresh.stored
	} else {
		now = s.now()
	}
	if err == nil && fresh != nil && fitsUDP(fresh, &q) && !cnameListed(rt, fresh, req.Clients, now) {
		out := fresh.appendReply(w.out, pkt, &q, now, 0, false)
		w.out = out[:0]
		s.obs.Answered(UDP, q.qtype, fresh.rcode)
		if s.qlog != nil {
			s.qlog.Query(&QueryEvent{Time: now, Client: client, Port: addr.Port(), Proto: UDP, Name: req.Name, Qtype: req.Qtype,
				Rcode: fresh.rcode, Duration: time.Since(start), Query: pkt, Response: out})
		}
		return out
	}
	msg := new(dns.Msg)
	if msg.Unpack(pkt) != nil {
		return s.formErr(pkt, UDP)
	}
	req.Msg = msg
	if s.qlog != nil {
		req.Wire = pkt
	}
	resp, err := rt.fwd.answer(req, old, fresh, m, err, now)
	if err == nil {
		resp, err = s.cnamePolicy(rt, req, resp, now)
	}
	return s.reply(msg, req, resp, err, start)
}

// udpRequest is the request of a UDP query that fast found missable: q and
// its canonical name canon (copied), from addr, whose jurisdictions are cs,
// to the upstreams up.
func udpRequest(q *question, canon []byte, addr netip.AddrPort, cs *policy.ClientSet, up Exchanger) Request {
	return Request{
		Client:  netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port()),
		Proto:   UDP,
		Name:    string(canon),
		Qtype:   q.qtype,
		DO:      q.do,
		CD:      q.flags&flagCD != 0,
		EDNS:    q.edns,
		Clients: cs,
		up:      up,
	}
}

// fitsUDP reports whether the cached answer e, with the OPT the client gets,
// fits the client's UDP size; a bigger one is truncated by the slow path.
func fitsUDP(e *entry, q *question) bool {
	limit := 512
	if q.edns {
		limit = int(max(min(q.udpSize, maxUDPSize), 512))
	}
	return len(e.msg)+11 <= limit
}

// cnameListed reports whether a CNAME or DNAME target of e is matched by any
// of the client's jurisdictions (blocked, reported or failing closed): such
// answers go through the policy on the slow path.
func cnameListed(rt *Runtime, e *entry, cs *policy.ClientSet, now time.Time) bool {
	for _, t := range e.cnames {
		if v := rt.Policy.Match(t, cs, now); v.Decision != policy.DecisionNone || v.NReported > 0 {
			return true
		}
	}
	return false
}

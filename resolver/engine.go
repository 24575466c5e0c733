package resolver

import (
	"context"
	"time"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/policy"
	"github.com/jurisdns/jurisdns/zones"
)

// link is the part of the engine that answers a query. classify names it,
// once per query, and both ways of answering act on its word: the wire
// fast path (fastAnswer), which answers blocks and cache hits without a
// dns.Msg and leaves every other link to the full path, and the full path
// (Server.engine), which answers every link with a dns.Msg. A new link is
// added to classify and answered in Server.engine; fastAnswer leaves it to
// the full path unless it learns to write its answer byte for byte.
type link uint8

// The links, in the order classify tries them.
const (
	// linkForward: the cache, then the upstreams of route.fwd (the
	// forwarder), then stale answers.
	linkForward link = iota
	// linkHealth: server.health_name, TXT "ok".
	linkHealth
	// linkDDR: _dns.resolver.arpa SVCB with the encrypted endpoints (RFC
	// 9462), before the policy: the bypass jurisdiction's NODATA for that
	// name is for a resolver without encrypted endpoints.
	linkDDR
	// linkBlock: a jurisdiction of the client blocks the name; its block
	// answer (nothing for action drop).
	linkBlock
	// linkFailClosed: a jurisdiction of the client failed closed;
	// SERVFAIL with the EDE saying so.
	linkFailClosed
	// linkSpecial: special-use names answered locally (RFC 6761/6303,
	// resolver.arpa, single labels by option). After the policy, so that
	// a rule on a special name keeps its EDE.
	linkSpecial
	// linkANY: qtype ANY, answered with the HINFO of RFC 8482.
	linkANY
	// linkZone: a name inside a local zone, answered with AA.
	linkZone
	// linkTransfer: AXFR or IXFR of a zone not served here: REFUSED.
	// jurisdns forwards queries, it transfers no zone of its upstreams
	// (and a transfer forwarded over UDP would be answered with a partial
	// zone, if at all). A link that serves zones over transfer goes before
	// it (local zones here; rpz_out through the server's transfer hook).
	linkTransfer
)

// route is classify's decision for one query.
type route struct {
	link link
	// zone is the local zone of linkZone.
	zone *zones.Zone
	// fwd is the conditional forward of linkForward (nil: the default
	// upstreams).
	fwd *zones.Forward
}

// classify says which link answers a query for name (canonical: lower
// case, fully qualified) and qtype from a client of the jurisdiction set
// cs, at now: the health name, DDR, the policy (a block or a fail-closed
// verdict), special-use names, minimal ANY, local zones, transfers, else
// the forwarder, in that order. v receives the policy's verdict, report-mode
// hits included, once classification reaches the policy (for the health
// name and DDR it is the zero verdict). It does not allocate.
//
// The access list is not a link: both paths check it first, as an edge
// check (an outsider is refused before its message is looked at), and the
// transfer and NOTIFY hooks of the server (xfr.go) come before the engine.
func (rt *Runtime) classify(name string, qtype uint16, cs *policy.ClientSet, now time.Time, v *policy.Verdict) route {
	if rt.HealthName != "" && name == rt.HealthName {
		*v = policy.Verdict{}
		return route{link: linkHealth}
	}
	if rt.specials.DDR(name) && rt.specials.Covers(name, qtype) {
		*v = policy.Verdict{}
		return route{link: linkDDR}
	}
	rt.Policy.MatchInto(v, name, cs, now)
	switch v.Decision {
	case policy.DecisionBlock:
		return route{link: linkBlock}
	case policy.DecisionFailClosed:
		return route{link: linkFailClosed}
	}
	if rt.specials.Covers(name, qtype) {
		return route{link: linkSpecial}
	}
	return rt.classifyLocal(name, qtype)
}

// classifyLocal is the part of classify after the special names: minimal
// ANY, local zones, transfers, the forwarder. One zone lookup.
func (rt *Runtime) classifyLocal(name string, qtype uint16) route {
	if qtype == dns.TypeANY {
		return route{link: linkANY}
	}
	z, f := rt.Zones.Find(name)
	switch {
	case z != nil:
		return route{link: linkZone, zone: z}
	case qtype == dns.TypeAXFR || qtype == dns.TypeIXFR:
		return route{link: linkTransfer}
	}
	return route{link: linkForward, fwd: f}
}

// engine answers a query that passed the edge checks with rt (which the
// caller has entered): the link classify names answers it. Report-mode hits
// are logged and counted; an answer that did not come from the policy has
// its CNAME and DNAME targets checked against the policy (cnamePolicy).
// A nil message with a nil error means "send nothing" (policy action
// drop); an error becomes SERVFAIL with its EDE.
func (s *Server) engine(ctx context.Context, rt *Runtime, req *Request) (*dns.Msg, error) {
	now := s.now()
	var v policy.Verdict
	r := rt.classify(req.Name, req.Qtype, req.Clients, now, &v)
	switch r.link {
	case linkHealth:
		return healthAnswer(req), nil
	case linkDDR:
		if m := rt.specials.Answer(req.Msg); m != nil {
			return m, nil
		}
		// Covers promised an answer: go on as if the name were not
		// special.
		r = rt.classifyLocal(req.Name, req.Qtype)
	}
	s.reportHits(rt, req, req.Name, &v)
	var resp *dns.Msg
	var err error
	switch r.link {
	case linkFailClosed:
		s.policyEvent(rt, req, req.Name, &v, v.Jurisdiction, "fail_closed", "enforce")
		return nil, &EDEError{Code: dns.ExtendedErrorCodeNotReady, Text: string(v.AppendEDEText(nil))}
	case linkBlock:
		req.Blocked = true
		s.policyEvent(rt, req, req.Name, &v, v.Jurisdiction, v.Action.String(), "enforce")
		return blockAnswer(rt.serial, req.Msg, req.EDNS, &v), nil
	case linkSpecial:
		if resp = rt.specials.Answer(req.Msg); resp == nil {
			resp, err = s.answerLocal(ctx, rt, req, rt.classifyLocal(req.Name, req.Qtype))
		}
	default:
		resp, err = s.answerLocal(ctx, rt, req, r)
	}
	if err != nil || resp == nil {
		return resp, err
	}
	return s.cnamePolicy(rt, req, resp, now)
}

// answerLocal answers the links of classifyLocal.
func (s *Server) answerLocal(ctx context.Context, rt *Runtime, req *Request, r route) (*dns.Msg, error) {
	switch r.link {
	case linkANY:
		return minimalANY(req), nil
	case linkZone:
		return r.zone.Answer(req.Msg), nil
	case linkTransfer:
		return rcodeReply(req.Msg, dns.RcodeRefused), nil
	}
	req.up = rt.forwardTo(r.fwd)
	return rt.fwd.Resolve(ctx, req)
}

// healthAnswer is the answer to the health name: TXT "ok" for TXT and ANY,
// NODATA for any other type.
func healthAnswer(req *Request) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(req.Msg)
	if req.Qtype == dns.TypeTXT || req.Qtype == dns.TypeANY {
		m.Answer = []dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: req.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET}, Txt: []string{"ok"}}}
	}
	return m
}

// minimalANY answers qtype ANY with the single synthesized HINFO record of
// RFC 8482 §4.2 instead of forwarding it: ANY answers are the favourite
// tool of reflection attacks, and no client needs them.
func minimalANY(req *Request) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(req.Msg)
	m.Answer = []dns.RR{&dns.HINFO{
		Hdr: dns.RR_Header{Name: req.Msg.Question[0].Name, Rrtype: dns.TypeHINFO, Class: dns.ClassINET, Ttl: 3600},
		Cpu: "RFC8482",
	}}
	return m
}

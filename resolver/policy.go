package resolver

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/policy"
)

// health answers the health name with TXT "ok" without touching the rest of
// the chain, for probes that have no HTTP.
func (s *Server) health(rt *Runtime) Middleware {
	return func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, req *Request) (*dns.Msg, error) {
			if rt.HealthName == "" || req.Name != rt.HealthName {
				return next.Resolve(ctx, req)
			}
			m := new(dns.Msg)
			m.SetReply(req.Msg)
			if req.Qtype == dns.TypeTXT || req.Qtype == dns.TypeANY {
				m.Answer = []dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: req.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET}, Txt: []string{"ok"}}}
			}
			return m, nil
		})
	}
}

// policyMiddleware applies the jurisdictions of the client: a blocked name
// gets the jurisdiction's block answer and never reaches the cache or an
// upstream; a forwarded answer whose CNAME chain reaches a blocked name is
// replaced by the block answer for that name. Report-mode hits are logged
// and counted but change nothing.
func (s *Server) policyMiddleware(rt *Runtime) Middleware {
	return func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, req *Request) (*dns.Msg, error) {
			now := s.now()
			v := rt.Policy.Match(req.Name, req.Clients, now)
			s.reportHits(rt, req, req.Name, &v)
			switch v.Decision {
			case policy.DecisionFailClosed:
				s.policyEvent(rt, req, req.Name, &v, v.Jurisdiction, "fail_closed", "enforce")
				return nil, &EDEError{Code: dns.ExtendedErrorCodeNotReady, Text: string(v.AppendEDEText(nil))}
			case policy.DecisionBlock:
				req.Blocked = true
				s.policyEvent(rt, req, req.Name, &v, v.Jurisdiction, v.Action.String(), "enforce")
				return BlockAnswer(rt.serial, req.Msg, req.EDNS, &v), nil
			}
			resp, err := next.Resolve(ctx, req)
			if err != nil || resp == nil {
				return resp, err
			}
			return s.cnamePolicy(rt, req, resp, now)
		})
	}
}

// cnamePolicy applies the client's jurisdictions to the CNAME and DNAME
// targets of a forwarded answer: a chain that reaches a blocked name is
// replaced by the block answer for that name.
func (s *Server) cnamePolicy(rt *Runtime, req *Request, resp *dns.Msg, now time.Time) (*dns.Msg, error) {
	for _, rr := range resp.Answer {
		var target string
		switch c := rr.(type) {
		case *dns.CNAME:
			target = c.Target
		case *dns.DNAME:
			target = c.Target
		default:
			continue
		}
		target = strings.ToLower(target)
		cv := rt.Policy.Match(target, req.Clients, now)
		s.reportHits(rt, req, target, &cv)
		switch cv.Decision {
		case policy.DecisionBlock:
			req.Blocked = true
			s.policyEvent(rt, req, target, &cv, cv.Jurisdiction, cv.Action.String(), "enforce")
			return BlockAnswer(rt.serial, req.Msg, req.EDNS, &cv), nil
		case policy.DecisionFailClosed:
			return nil, &EDEError{Code: dns.ExtendedErrorCodeNotReady, Text: string(cv.AppendEDEText(nil))}
		}
	}
	return resp, nil
}

// reportHits logs and counts the report-mode jurisdictions of a verdict,
// each with the rule it matched.
func (s *Server) reportHits(rt *Runtime, req *Request, name string, v *policy.Verdict) {
	for i, j := range v.ReportedJurisdictions() {
		r := &v.ReportedRules[i]
		rv := policy.Verdict{Jurisdiction: j, Rule: r.Rule, Kind: r.Kind, Source: r.Source, Line: r.Line, Action: r.Action}
		s.policyEvent(rt, req, name, &rv, j, r.Action.String(), "report")
	}
}

// policyEvent counts a policy hit and hands it to the enforcement log.
func (s *Server) policyEvent(rt *Runtime, req *Request, name string, v *policy.Verdict, j *policy.Jurisdiction, action, mode string) {
	s.obs.PolicyHit(j.ID, action, mode)
	if s.audit == nil && s.qlog == nil {
		return
	}
	ev := newPolicyEvent(rt, s.now(), req.Client.Addr(), name, req.Qtype, v, j, v.RuleText(), action, mode)
	if s.audit != nil {
		s.audit.PolicyEvent(&ev)
	}
	if s.qlog != nil && (req.Policy == nil || mode == "enforce") {
		req.Policy = &ev // the enforced hit wins over report-mode ones
	}
}

// newPolicyEvent is the event of one policy hit: verdict v of jurisdiction
// j on name, the rule as the log shows it.
func newPolicyEvent(rt *Runtime, now time.Time, client netip.Addr, name string, qtype uint16, v *policy.Verdict, j *policy.Jurisdiction, rule, action, mode string) PolicyEvent {
	instrument := j.Instrument
	if v.Instrument != nil {
		instrument = v.Instrument.Name
	}
	return PolicyEvent{
		Instrument:   instrument,
		Time:         now,
		Client:       client,
		Name:         name,
		Qtype:        qtype,
		Jurisdiction: j,
		Rule:         rule,
		Source:       v.Source,
		Line:         v.Line,
		Action:       action,
		Mode:         mode,
		PolicyHash:   rt.Policy.Hash(),
	}
}

// BlockAnswer synthesizes the answer to query q blocked by verdict v:
// NXDOMAIN or NODATA with the SOA of a synthesized policy zone (minimum =
// block TTL, so clients cache the block for that long), null (0.0.0.0/::
// for A/AAAA), sinkhole addresses, REFUSED, or nil for drop. Every type of
// a blocked name is blocked. Policy answers never carry AD. With EDNS the
// client gets EDE 16/15 naming jurisdiction, instrument and rule.
// serial is the SOA serial of the synthesized policy zone; edns says
// whether the client sent an OPT.
func BlockAnswer(serial uint32, q *dns.Msg, edns bool, v *policy.Verdict) *dns.Msg {
	j := v.Jurisdiction
	qname := strings.ToLower(dns.Fqdn(q.Question[0].Name))
	qtype := q.Question[0].Qtype
	m := new(dns.Msg)
	m.SetReply(q)
	m.Authoritative = false
	m.AuthenticatedData = false
	ttl := uint32(j.TTL.Seconds())
	soa := func() {
		apex := v.Rule
		if apex == "" || !strings.HasSuffix(qname, apex+".") {
			apex = strings.TrimSuffix(qname, ".")
		}
		m.Ns = []dns.RR{&dns.SOA{
			Hdr:     dns.RR_Header{Name: dns.Fqdn(apex), Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: ttl},
			Ns:      j.ID + ".policy.jurisdns.",
			Mbox:    "hostmaster.jurisdns.invalid.",
			Serial:  serial,
			Refresh: 3600, Retry: 600, Expire: 86400,
			Minttl: ttl,
		}}
	}
	addrs := func(ips []net.IP) {
		for _, ip := range ips {
			switch {
			case qtype == dns.TypeA && ip.To4() != nil:
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: ttl}, A: ip.To4()})
			case qtype == dns.TypeAAAA && ip.To4() == nil:
				m.Answer = append(m.Answer, &dns.AAAA{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: ttl}, AAAA: ip})
			}
		}
		if len(m.Answer) == 0 {
			soa()
		}
	}
	switch v.Action {
	case policy.ActionDrop:
		return nil
	case policy.ActionRefused:
		m.Rcode = dns.RcodeRefused
	case policy.ActionNoData:
		soa()
	case policy.ActionNull:
		addrs([]net.IP{net.IPv4zero.To4(), net.IPv6zero})
	case policy.ActionIP:
		ips := make([]net.IP, 0, len(v.Addrs))
		for _, a := range v.Addrs {
			ips = append(ips, net.IP(a.AsSlice()))
		}
		addrs(ips)
	default: // nxdomain
		m.Rcode = dns.RcodeNameError
		soa()
	}
	if edns {
		code, _ := v.EDE()
		addEDE(m, code, string(v.AppendEDEText(nil)))
	}
	return m
}

// minimalANY answers qtype ANY with the single synthesized HINFO record of
// RFC 8482 §4.2 instead of forwarding it: ANY answers are the favourite
// tool of reflection attacks, and no client needs them.
func minimalANY(next Handler) Handler {
	return HandlerFunc(func(ctx context.Context, req *Request) (*dns.Msg, error) {
		if req.Qtype != dns.TypeANY {
			return next.Resolve(ctx, req)
		}
		m := new(dns.Msg)
		m.SetReply(req.Msg)
		m.Answer = []dns.RR{&dns.HINFO{
			Hdr: dns.RR_Header{Name: req.Msg.Question[0].Name, Rrtype: dns.TypeHINFO, Class: dns.ClassINET, Ttl: 3600},
			Cpu: "RFC8482",
		}}
		return m, nil
	})
}

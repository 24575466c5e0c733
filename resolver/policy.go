package resolver

import (
	"context"
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
				return blockAnswer(rt.serial, req.Msg, req.EDNS, &v), nil
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
			return blockAnswer(rt.serial, req.Msg, req.EDNS, &cv), nil
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

// policyEvent hands a policy hit to the auditor (the enforcement log, the
// status page, the metrics) and keeps it for the query log.
func (s *Server) policyEvent(rt *Runtime, req *Request, name string, v *policy.Verdict, j *policy.Jurisdiction, action, mode string) {
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
func newPolicyEvent(rt *Runtime, now time.Time, client netip.Addr, name string, qtype uint16, v *policy.Verdict, j *policy.Jurisdiction, rule, action, mode string) policy.Event {
	instrument := j.Instrument
	if v.Instrument != nil {
		instrument = v.Instrument.Name
	}
	return policy.Event{
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

// blockAnswer is the policy's block answer to q (policy.BlockAnswer) with,
// when the client sent EDNS, the EDE naming jurisdiction, instrument and
// rule. serial is the SOA serial of the synthesized policy zone. It returns
// nil for action drop.
func blockAnswer(serial uint32, q *dns.Msg, edns bool, v *policy.Verdict) *dns.Msg {
	m := policy.BlockAnswer(serial, q, v)
	if m != nil && edns {
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

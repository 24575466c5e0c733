package resolver

import (
	"net/netip"
	"time"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/internal/dnsname"
	"github.com/jurisdns/jurisdns/policy"
)

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
		target = dnsname.Lower(target)
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

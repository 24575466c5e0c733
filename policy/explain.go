package policy

import (
	"net/netip"
	"slices"
	"time"

	"github.com/jurisdns/jurisdns/blocklists"
	"github.com/jurisdns/jurisdns/spec"
)

// Explanation is the whole resolution of one name for one client, as
// `jurisdns check` prints it (its JSON with --json). The lead's renderer adds
// the DNS answer from Verdict.
type Explanation struct {
	// Name is the name as asked; Canonical its canonical form ("" and
	// NameError set when it is not a valid name).
	Name      string `json:"name"`
	Canonical string `json:"canonical"`
	NameError string `json:"name_error,omitempty"`
	// Client is the client address ("" when none was given: the default
	// set); ClientEntry the client entry that applies ("default" when
	// none matches) and ClientSubnet the prefix that matched.
	Client       string    `json:"client,omitempty"`
	ClientEntry  string    `json:"client_entry"`
	ClientSubnet string    `json:"client_subnet,omitempty"`
	Time         time.Time `json:"time"`
	PolicyHash   string    `json:"policy_hash"`
	// Jurisdictions are the client's jurisdictions in order, with their
	// status at Time.
	Jurisdictions []ExplainJurisdiction `json:"jurisdictions"`
	// Matches lists every rule of the client's jurisdictions that covers
	// the name, including those of inactive and report-mode jurisdictions,
	// and what became of each.
	Matches []ExplainMatch `json:"matches"`
	// Elsewhere lists the jurisdictions that do not apply to this client
	// but have a rule covering the name, in policy order.
	Elsewhere []string `json:"elsewhere,omitempty"`

	// Decision is "none", "block" or "fail_closed".
	Decision string `json:"decision"`
	// The named jurisdiction and rule (when Decision is not "none").
	Jurisdiction string    `json:"jurisdiction,omitempty"`
	Tier         spec.Tier `json:"tier,omitempty"`
	Instrument   string    `json:"instrument,omitempty"`
	// InstrumentInfo is the deciding instrument in full (issuer, date,
	// scope, links) when the jurisdiction has instruments.
	InstrumentInfo *Instrument `json:"instrument_info,omitempty"`
	Rule           string      `json:"rule,omitempty"`
	Source         string      `json:"source,omitempty"`
	Line           int         `json:"line,omitempty"`
	Action         spec.Action `json:"action,omitempty"`
	Addrs          []string    `json:"addrs,omitempty"`
	EDE            *uint16     `json:"ede,omitempty"`
	EDEText        string      `json:"ede_text,omitempty"`
	TTLSeconds     int         `json:"ttl,omitempty"`
	// Reported are the report-mode jurisdictions that matched (they log,
	// they do not block).
	Reported []string `json:"reported,omitempty"`

	// Verdict is what Match returns for the same query.
	Verdict Verdict `json:"-"`
}

// ExplainJurisdiction is one of the client's jurisdictions.
type ExplainJurisdiction struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	Terms
	Status        string             `json:"status"`
	Loaded        bool               `json:"loaded"`
	OnLoadFailure spec.OnLoadFailure `json:"on_load_failure"`
	Entries       int                `json:"entries"`
}

// ExplainMatch is one rule that covers the name.
type ExplainMatch struct {
	Jurisdiction string    `json:"jurisdiction"`
	Tier         spec.Tier `json:"tier"`
	Mode         spec.Mode `json:"mode"`
	// Status of the jurisdiction at the query time (see
	// Jurisdiction.Status).
	Status string `json:"status"`
	// Rule as written ("deepseek.com", "*.x.example"); Kind is "suffix",
	// "exact" or "below"; Allow is set for allow entries.
	Rule  string `json:"rule"`
	Kind  string `json:"kind"`
	Allow bool   `json:"allow"`
	// Action is the rule's own action when it has one ("nxdomain",
	// "nodata", "drop", "local-data"), "" when the jurisdiction's action
	// applies.
	Action string `json:"action,omitempty"`
	Source string `json:"source"`
	Origin string `json:"origin"`
	Line   int    `json:"line"`
	// Outcome is one of: "decides" (this rule names the verdict),
	// "blocks" (a block, but another rule decides), "allows" (an allow
	// entry in force), "lifted" (a block lifted: see LiftedBy), "report"
	// (a report-mode block: logged, not enforced), "inactive" (the
	// jurisdiction is outside its dates), "failed" (its source failed to
	// load).
	Outcome string `json:"outcome"`
	// LiftedBy names the allow entry that lifted the block:
	// "jurisdiction: rule (source:line)".
	LiftedBy string `json:"lifted_by,omitempty"`
}

// KindString names a rule kind: "suffix", "exact" or "below".
func KindString(k blocklists.Kind) string {
	switch k {
	case blocklists.Suffix:
		return "suffix"
	case blocklists.Exact:
		return "exact"
	case blocklists.Below:
		return "below"
	}
	return "kind(" + itoa(int(k)) + ")"
}

// Explain resolves qname for client at now like Match and records every
// step. An invalid client address means the default set.
func (p *Policy) Explain(qname string, client netip.Addr, now time.Time) Explanation {
	cs := p.ClientSet(client)
	e := Explanation{
		Name:        qname,
		ClientEntry: cs.Name,
		Time:        now,
		PolicyHash:  p.hash,
	}
	if client.IsValid() {
		e.Client = client.String()
		a := client.Unmap().WithZone("")
		for _, pf := range cs.Subnets {
			if pf.Contains(a) && (e.ClientSubnet == "" || pf.Bits() > mustPrefix(e.ClientSubnet).Bits()) {
				e.ClientSubnet = pf.String()
			}
		}
	}
	if c, err := blocklists.Canonical(qname); err != nil {
		e.NameError = err.Error()
	} else {
		e.Canonical = c
	}
	for _, j := range cs.Jurisdictions {
		e.Jurisdictions = append(e.Jurisdictions, ExplainJurisdiction{
			ID: j.ID, Title: j.Title, Terms: j.Terms(), Status: j.Status(now), Loaded: j.Loaded,
			OnLoadFailure: j.OnLoadFailure.Spec(), Entries: j.Entries,
		})
	}

	v := p.Match(qname, cs, now)
	e.Verdict = v
	e.Decision = v.Decision.String()

	all := p.lookup(qname, nil)
	for _, h := range all {
		m := p.meta(h.Tag)
		if id := p.jurs[m.jur].ID; !m.dead && !cs.Applies(p.jurs[m.jur]) && !slices.Contains(e.Elsewhere, id) {
			e.Elsewhere = append(e.Elsewhere, id)
		}
	}
	for _, h := range all {
		// Rules of failed sources, for the record.
		if m := p.meta(h.Tag); m.dead && cs.Applies(p.jurs[m.jur]) {
			e.Matches = append(e.Matches, p.explainMatch(h, m, now, "failed"))
		}
	}
	ev := p.newEval(slices.Clone(all), nil, cs, now)
	for i, h := range ev.hits {
		m := ev.metas[i]
		st := ev.classify(i)
		var x ExplainMatch
		switch st.outcome {
		case outInactive:
			x = p.explainMatch(h, m, now, "inactive")
		case outAllow:
			x = p.explainMatch(h, m, now, "allows")
		case outLifted:
			x = p.explainMatch(h, m, now, "lifted")
			lh, lm := ev.hits[st.by], ev.metas[st.by]
			src, origin, line := p.sourceOf(lm)
			if lm.src == srcAllow {
				src = origin
			}
			x.LiftedBy = p.jurs[lm.jur].ID + ": " + ruleText(lh.Name, lh.Kind) + " (" + src + ":" + itoa(line) + ")"
		case outReport:
			x = p.explainMatch(h, m, now, "report")
		case outBlock:
			x = p.explainMatch(h, m, now, "blocks")
			if v.Decision == DecisionBlock && v.Jurisdiction == p.jurs[m.jur] && v.Rule == h.Name && v.Kind == h.Kind && v.Line == int(m.line) {
				x.Outcome = "decides"
			}
		}
		e.Matches = append(e.Matches, x)
	}

	if v.Decision != DecisionNone {
		j := v.Jurisdiction
		e.Jurisdiction = j.ID
		e.Tier = j.Tier.Spec()
		e.Instrument = j.Instrument
		if v.Instrument != nil {
			e.Instrument = v.Instrument.Name
			e.InstrumentInfo = v.Instrument
		}
		code, _ := v.EDE()
		e.EDE = &code
		e.EDEText = string(v.AppendEDEText(nil))
	}
	if v.Decision == DecisionBlock {
		e.Rule = v.RuleText()
		e.Source = v.Source
		e.Line = v.Line
		e.Action = v.Action.Spec()
		for _, a := range v.Addrs {
			e.Addrs = append(e.Addrs, a.String())
		}
		e.TTLSeconds = int(v.Jurisdiction.TTL / time.Second)
	}
	for _, r := range v.ReportedJurisdictions() {
		e.Reported = append(e.Reported, r.ID)
	}
	return e
}

// explainMatch describes one rule.
func (p *Policy) explainMatch(h blocklists.Hit, m ruleMeta, now time.Time, outcome string) ExplainMatch {
	j := p.jurs[m.jur]
	x := ExplainMatch{
		Jurisdiction: j.ID,
		Tier:         j.Tier.Spec(),
		Mode:         j.Mode.Spec(),
		Status:       j.Status(now),
		Rule:         ruleText(h.Name, h.Kind),
		Kind:         KindString(h.Kind),
		Allow:        m.action == blocklists.Allow,
		Outcome:      outcome,
	}
	x.Source, x.Origin, x.Line = p.sourceOf(m)
	switch m.action {
	case blocklists.NXDomain:
		x.Action = "nxdomain"
	case blocklists.NoData:
		x.Action = "nodata"
	case blocklists.Drop:
		x.Action = "drop"
	case blocklists.LocalData:
		x.Action = "local-data"
	}
	return x
}

// sourceOf names the source of a rule, its origin and the rule's line.
func (p *Policy) sourceOf(m ruleMeta) (name, origin string, line int) {
	j := p.jurs[m.jur]
	if m.src == srcAllow {
		// Allow rules carry 1 + their index in Jurisdiction.Allow.
		if k := int(m.line) - 1; k >= 0 && k < len(j.Allow) {
			return "allow", j.Allow[k].Origin, j.Allow[k].Line
		}
		return "allow", "allow", 0
	}
	s := j.Sources[m.src]
	return s.Name, s.Origin, int(m.line)
}

func ruleText(name string, k blocklists.Kind) string {
	if k == blocklists.Below {
		return "*." + name
	}
	return name
}

func mustPrefix(s string) netip.Prefix {
	p, _ := netip.ParsePrefix(s)
	return p
}

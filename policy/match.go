package policy

import (
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jurisdns/jurisdns/blocklists"
)

// Decision is the outcome of Match.
type Decision uint8

// The decisions.
const (
	// DecisionNone: no enforcing jurisdiction blocks the name; answer
	// normally (report-mode hits may still be listed).
	DecisionNone Decision = iota
	// DecisionBlock: answer with Verdict.Action.
	DecisionBlock
	// DecisionFailClosed: a jurisdiction of the client failed to load under
	// on_load_failure fail_closed; answer SERVFAIL with an EDE saying the
	// policy is not loaded.
	DecisionFailClosed
)

// String returns "none", "block" or "fail_closed".
func (d Decision) String() string {
	switch d {
	case DecisionNone:
		return "none"
	case DecisionBlock:
		return "block"
	case DecisionFailClosed:
		return "fail_closed"
	}
	return "decision(" + strconv.Itoa(int(d)) + ")"
}

// MaxReported bounds the report-mode jurisdictions a Verdict lists.
const MaxReported = 8

// hitBufSize is the number of index hits a lookup holds without
// allocating.
const hitBufSize = 64

// Verdict is the policy's answer for one query. It refers to the policy's
// own data and holds no allocation of its own.
type Verdict struct {
	Decision Decision
	// Jurisdiction is the named jurisdiction (the blocking one, or the one
	// that failed closed).
	Jurisdiction *Jurisdiction
	// Rule is the canonical text of the matched rule ("deepseek.com"; a
	// Below rule "x.example" is shown as "*.x.example" by RuleText).
	Rule string
	Kind blocklists.Kind
	// Source is the name of the rule's source ("allow" for allow entries),
	// Line its line there (for shipped entries, the line in the shipped
	// file).
	Source string
	Line   int
	// Action is the answer: the jurisdiction's action, or the rule's own
	// (RPZ NXDOMAIN / NODATA / DROP / local data as ActionIP).
	Action Action
	// Addrs are the sinkhole or local-data addresses of ActionIP.
	Addrs []netip.Addr
	// Instrument is the instrument that decides a block for this client at
	// the query time (see Jurisdiction.Instruments); nil for a jurisdiction
	// without instruments (its Instrument text names it).
	Instrument *Instrument
	// Reported holds the report-mode jurisdictions whose rules matched and
	// were not lifted (NReported of them).
	Reported  [MaxReported]*Jurisdiction
	NReported int
	// ReportedRules[i] is the rule that matched for Reported[i].
	ReportedRules [MaxReported]ReportedRule
}

// Blocked reports whether the query gets a policy answer (block or fail
// closed).
func (v *Verdict) Blocked() bool { return v.Decision != DecisionNone }

// EDE returns the EDE info code of the answer: the jurisdiction's code for a
// block, 0 (Other) for fail closed, and 0 with ok false for no decision.
func (v *Verdict) EDE() (code uint16, ok bool) {
	switch v.Decision {
	case DecisionBlock:
		return v.Jurisdiction.EDE, true
	case DecisionFailClosed:
		return 0, true
	}
	return 0, false
}

// maxEDEText bounds the EDE EXTRA-TEXT of a policy answer.
const maxEDEText = 200

// AppendEDEText appends the EDE EXTRA-TEXT of the verdict to b, at most
// 200 bytes, cut at a UTF-8 boundary: for a block
// "au-gov: PSPF Direction 001-2025; rule deepseek.com (deepseek-core)", for
// fail closed "au-gov: policy not loaded (on_load_failure fail_closed)".
//
// When the jurisdiction has a contact (its own or structured_errors), a
// block's text is instead the JSON of draft-ietf-dnsop-structured-dns-error,
// minified, with the plain text as the justification "j", cut so that the
// whole stays within 200 bytes and valid JSON:
// {"c":["mailto:it@acme.example"],"o":"ACME IT","s":6,"l":"en","j":"acme: …"}.
func (v *Verdict) AppendEDEText(b []byte) []byte {
	if v.Decision == DecisionBlock && v.Jurisdiction.sde != nil {
		return v.appendStructured(b)
	}
	return v.appendPlain(b)
}

// appendPlain appends the plain EDE text.
func (v *Verdict) appendPlain(b []byte) []byte {
	start := len(b)
	switch v.Decision {
	case DecisionBlock:
		for _, s := range v.blockText() {
			b = append(b, s...)
		}
	case DecisionFailClosed:
		b = append(b, v.Jurisdiction.ID...)
		b = append(b, ": policy not loaded (on_load_failure fail_closed)"...)
	default:
		return b
	}
	if len(b)-start > maxEDEText {
		cut := start + maxEDEText
		for cut > start && !utf8.RuneStart(b[cut]) {
			cut--
		}
		b = b[:cut]
	}
	return b
}

// blockText returns the pieces of a block's plain text: "<id>: <deciding
// instrument>; rule <rule> (<source>)".
func (v *Verdict) blockText() [9]string {
	j := v.Jurisdiction
	instr := j.Title
	switch {
	case v.Instrument != nil:
		instr = v.Instrument.Name
	case j.Instrument != "":
		instr = j.Instrument
	}
	below := ""
	if v.Kind == blocklists.Below {
		below = "*."
	}
	return [9]string{j.ID, ": ", instr, "; rule ", below, v.Rule, " (", v.Source, ")"}
}

// RuleText returns the matched rule as written in a list: "*.x.example" for
// a rule that covers only the names below x.example.
func (v *Verdict) RuleText() string {
	if v.Kind == blocklists.Below {
		return "*." + v.Rule
	}
	return v.Rule
}

// ReportedJurisdictions returns the report-mode jurisdictions that matched.
func (v *Verdict) ReportedJurisdictions() []*Jurisdiction {
	return v.Reported[:v.NReported]
}

// Match decides qname (any case, trailing dot optional) for a client set
// (nil means the default set) at now. It does not allocate.
func (p *Policy) Match(qname string, cs *ClientSet, now time.Time) Verdict {
	var v Verdict
	p.MatchInto(&v, qname, cs, now)
	return v
}

// MatchInto is Match writing the verdict into *v (overwritten whole),
// which spares a hot path the copy of the returned Verdict.
func (p *Policy) MatchInto(v *Verdict, qname string, cs *ClientSet, now time.Time) {
	if cs == nil {
		cs = p.def
	}
	*v = Verdict{}
	for _, j := range cs.failClosed {
		if j.failedClosed(now) {
			v.Decision = DecisionFailClosed
			v.Jurisdiction = j
			return
		}
	}
	var buf [hitBufSize]blocklists.Hit
	hits := p.lookup(qname, buf[:0])
	if len(hits) == 0 {
		return
	}
	var mbuf [hitBufSize]ruleMeta
	e := p.newEval(hits, mbuf[:0], cs, now)
	best := -1
	for i := range e.hits {
		switch st := e.classify(i); st.outcome {
		case outReport:
			p.addReported(v, e.hits[i], e.metas[i])
		case outBlock:
			if best < 0 || e.better(i, best) {
				best = i
			}
		}
	}
	if best >= 0 {
		m := e.metas[best]
		p.fill(v, e.hits[best], m)
		v.Instrument = v.Jurisdiction.instrumentFor(m.src, int(m.line), now)
	}
}

// addReported lists a report-mode match once per jurisdiction, with the
// rule that matched (for the enforcement log).
func (p *Policy) addReported(v *Verdict, h blocklists.Hit, m ruleMeta) {
	j := p.jurs[m.jur]
	for _, r := range v.Reported[:v.NReported] {
		if r == j {
			return
		}
	}
	if v.NReported < MaxReported {
		var rv Verdict
		p.fill(&rv, h, m)
		v.Reported[v.NReported] = j
		v.ReportedRules[v.NReported] = ReportedRule{Rule: rv.Rule, Kind: rv.Kind, Source: rv.Source, Line: rv.Line, Action: rv.Action}
		v.NReported++
	}
}

// ReportedRule is the rule of a report-mode match.
type ReportedRule struct {
	Rule   string
	Kind   blocklists.Kind
	Source string
	Line   int
	Action Action
}

// RuleText returns the rule as written in a list ("*.x" for below rules).
func (r *ReportedRule) RuleText() string {
	if r.Kind == blocklists.Below {
		return "*." + r.Rule
	}
	return r.Rule
}

// fill names the deciding rule in v.
func (p *Policy) fill(v *Verdict, h blocklists.Hit, m ruleMeta) {
	j := p.jurs[m.jur]
	v.Decision = DecisionBlock
	v.Jurisdiction = j
	v.Rule = h.Name
	v.Kind = h.Kind
	v.Line = int(m.line)
	if m.src == srcAllow {
		v.Source = "allow"
	} else {
		v.Source = j.Sources[m.src].Name
	}
	switch m.action {
	case blocklists.NXDomain:
		v.Action = ActionNXDomain
	case blocklists.NoData:
		v.Action = ActionNoData
	case blocklists.Drop:
		v.Action = ActionDrop
	case blocklists.LocalData:
		v.Action = ActionIP
		v.Addrs = p.addrsOf(h.Tag)
	default:
		v.Action = j.Action
		if j.Action == ActionIP {
			v.Addrs = j.Sinkhole
		}
	}
}

// outcome classifies one index hit for a client at a time.
type outcome uint8

const (
	outInactive outcome = iota // the jurisdiction is outside its dates
	outAllow                   // an allow entry that applies
	outLifted                  // a block lifted by an allow entry (status.by)
	outReport                  // a block of a report-mode jurisdiction
	outBlock                   // a block of an enforcing jurisdiction
)

type status struct {
	outcome outcome
	by      int // for outLifted: the index of the lifting allow hit
}

// eval holds the index hits of one query that concern the client (live
// rules of its jurisdictions), with their metadata, for the precedence
// rules. Match and Explain share it, so that `jurisdns check` shows exactly
// what Match does.
type eval struct {
	p     *Policy
	hits  []blocklists.Hit
	metas []ruleMeta
	cs    *ClientSet
	now   time.Time
	// allows is set when some hit is an allow entry in force; without
	// one, nothing is lifted.
	allows bool
}

// newEval keeps the hits of live rules of the client's jurisdictions,
// compacting hits in place, and appends their metadata to metas.
func (p *Policy) newEval(hits []blocklists.Hit, metas []ruleMeta, cs *ClientSet, now time.Time) eval {
	e := eval{p: p, cs: cs, now: now}
	n := 0
	for _, h := range hits {
		m := p.meta(h.Tag)
		if m.dead || cs.pos[m.jur] == 0 {
			continue
		}
		m.active = p.jurs[m.jur].Active(now)
		if m.action == blocklists.Allow && m.active {
			e.allows = true
		}
		hits[n] = h
		n++
		metas = append(metas, m)
	}
	e.hits, e.metas = hits[:n], metas
	return e
}

// classify applies the precedence rules to hit i.
func (e *eval) classify(i int) status {
	m := &e.metas[i]
	switch {
	case !m.active:
		return status{outcome: outInactive}
	case m.action == blocklists.Allow:
		return status{outcome: outAllow}
	}
	j := e.p.jurs[m.jur]
	if e.allows {
		if by := e.lifter(m.jur, j); by >= 0 {
			return status{outcome: outLifted, by: by}
		}
	}
	if j.Mode == ModeReport {
		return status{outcome: outReport}
	}
	return status{outcome: outBlock}
}

// lifter returns the index of an allow hit that lifts a block of
// jurisdiction j (index jur), or -1: an allow entry in force of j itself
// (preferred), or of a strictly higher tier. A report-mode jurisdiction's
// allow entries lift only report-mode blocks.
func (e *eval) lifter(jur uint16, j *Jurisdiction) int {
	found := -1
	for k := range e.metas {
		m := &e.metas[k]
		if m.action != blocklists.Allow || !m.active {
			continue
		}
		if m.jur == jur {
			return k
		}
		a := e.p.jurs[m.jur]
		if found < 0 && a.Tier > j.Tier && (a.Mode == ModeEnforce || j.Mode == ModeReport) {
			found = k
		}
	}
	return found
}

// better reports whether block hit a should name the verdict rather than
// block hit b: higher tier, then earlier in the client's order, then the
// more specific rule, then the earlier rule.
func (e *eval) better(a, b int) bool {
	ma, mb := &e.metas[a], &e.metas[b]
	ja, jb := e.p.jurs[ma.jur], e.p.jurs[mb.jur]
	if ja.Tier != jb.Tier {
		return ja.Tier > jb.Tier
	}
	if pa, pb := e.cs.pos[ma.jur], e.cs.pos[mb.jur]; pa != pb {
		return pa < pb
	}
	ha, hb := e.hits[a], e.hits[b]
	if ha.Depth != hb.Depth {
		return ha.Depth < hb.Depth // Depth 0 is the queried name itself
	}
	if ha.Kind != hb.Kind {
		return ha.Kind == blocklists.Exact
	}
	return ha.Tag < hb.Tag
}

// maxSDEPrefix bounds the JSON before the justification, so that "j" keeps
// at least 60 bytes.
const maxSDEPrefix = maxEDEText - 2 - 60

// subErrorOperatorPolicy is the draft's sub-error "DNS Operator Policy":
// the request was filtered by a policy of the DNS server's operator. It is
// sent for EDE 15 (Blocked) only; EDE 16 blocks are a government's, not the
// operator's.
const subErrorOperatorPolicy = "6"

// structuredPrefix builds {"c":[contact],"o":organisation,"s":6,"l":"en","j":"
// for j (a bare e-mail contact becomes a mailto: URI).
func structuredPrefix(j *Jurisdiction) []byte {
	contact := j.Contact
	if !strings.Contains(contact, ":") && strings.Count(contact, "@") == 1 {
		contact = "mailto:" + contact
	}
	b := append([]byte(nil), `{"c":["`...)
	b, _ = appendJSONString(b, contact, -1)
	b = append(b, `"]`...)
	if j.Organisation != "" {
		b = append(b, `,"o":"`...)
		b, _ = appendJSONString(b, j.Organisation, -1)
		b = append(b, '"')
	}
	if j.EDE == 15 {
		b = append(b, `,"s":`+subErrorOperatorPolicy...)
	}
	b = append(b, `,"l":"en","j":"`...)
	return b
}

// appendStructured appends the structured DNS error JSON of a block: the
// plain text goes into "j", escaped and cut so that the whole stays within
// maxEDEText.
func (v *Verdict) appendStructured(b []byte) []byte {
	limit := len(b) + maxEDEText - 2 // room for "}
	b = append(b, v.Jurisdiction.sde...)
	for _, s := range v.blockText() {
		var whole bool
		if b, whole = appendJSONString(b, s, limit); !whole {
			break
		}
	}
	return append(b, '"', '}')
}

// appendJSONString appends s to b escaped for the inside of a JSON string.
// With limit >= 0 it stops on a rune boundary before len(b) would pass
// limit, and whole says whether all of s was appended.
func appendJSONString(b []byte, s string, limit int) (out []byte, whole bool) {
	const hex = "0123456789abcdef"
	for i := 0; i < len(s); {
		c := s[i]
		n := 1
		var esc [6]byte
		e := esc[:0]
		switch {
		case c == '"' || c == '\\':
			e = append(e, '\\', c)
		case c < 0x20 || c == 0x7f:
			e = append(e, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		case c < utf8.RuneSelf:
			e = append(e, c)
		default:
			var r rune
			r, n = utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				e = append(e, `\ufffd`...)
			}
		}
		w := n
		if len(e) > 0 {
			w = len(e)
		}
		if limit >= 0 && len(b)+w > limit {
			return b, false
		}
		if len(e) > 0 {
			b = append(b, e...)
		} else {
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return b, true
}

package blocklists

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/internal/dnsname"
)

// RPZ apex sources, in increasing strength.
const (
	apexDefault   = iota // the root
	apexDirective        // the first $ORIGIN
	apexSOA              // the owner of the first SOA
	apexOption           // ParseOptions.Origin
)

// rpzParser reads an RPZ zone file (draft-vixie-dnsop-dns-rpz) line by line.
// It assembles each record (joining parenthesized continuation lines,
// dropping ";" comments, inheriting the previous owner for lines that start
// with white space, following $ORIGIN) and has miekg/dns's ZoneParser parse
// it, so that one bad record is reported with its line and does not stop the
// parse.
//
// Only QNAME triggers are supported: a trigger "name" is an Exact rule, a
// trigger "*.name" a Below rule; the triggers are the owner names relative to
// the RPZ apex (see ParseOptions.Origin). Actions: CNAME . (NXDomain),
// CNAME *. (NoData), CNAME rpz-passthru. or the trigger itself (Allow),
// CNAME rpz-drop. (Drop), A/AAAA records (LocalData; consecutive records of
// one trigger give one rule with every address). SOA and NS records are
// ignored. Skipped: rpz-ip, rpz-nsip, rpz-nsdname and rpz-client-ip
// triggers, CNAME rpz-tcp-only. and CNAMEs to other names, local data of
// other types. $INCLUDE and $GENERATE are bad lines.
type rpzParser struct {
	p         *parser
	origin    string // current origin, lower case, absolute ("rpz.example." or ".")
	apex      string
	apexFrom  int
	triggers  bool   // a trigger was seen: the apex is fixed
	prevOwner string // owner of the previous record, for blank owners
	rec       []byte // the record being assembled
	recLine   int
	depth     int // open parentheses in rec

	// Pending local data: consecutive A/AAAA records of one trigger.
	ldName  []byte
	ldKind  Kind
	ldAddrs []netip.Addr
	ldLine  int
}

func newRPZParser(p *parser) (*rpzParser, error) {
	rp := &rpzParser{p: p, origin: ".", apex: "."}
	if o := p.opts.Origin; o != "" && o != "." {
		c, err := Canonical(o)
		if err != nil {
			return nil, fmt.Errorf("%s: RPZ origin: %w", p.src, err)
		}
		rp.origin, rp.apex, rp.apexFrom = c+".", c+".", apexOption
	}
	return rp, nil
}

// stripZoneComment drops a ";" comment outside quotes.
func stripZoneComment(b []byte) []byte {
	quoted := false
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			quoted = !quoted
		case ';':
			if !quoted {
				return b[:i]
			}
		}
	}
	return b
}

// parenDelta counts "(" minus ")" outside quotes.
func parenDelta(b []byte) int {
	d, quoted := 0, false
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			quoted = !quoted
		case '(':
			if !quoted {
				d++
			}
		case ')':
			if !quoted {
				d--
			}
		}
	}
	return d
}

func (r *rpzParser) line(b []byte) {
	b = stripZoneComment(b)
	if r.depth > 0 {
		r.p.st.Comments++ // a continuation line: the record counts once
		r.rec = append(append(r.rec, ' '), b...)
		if r.depth += parenDelta(b); r.depth <= 0 {
			r.record()
		}
		return
	}
	t := trimSpace(b)
	if len(t) == 0 {
		r.p.st.Comments++
		return
	}
	if b[0] == '$' {
		r.directive(t)
		return
	}
	r.recLine = r.p.line
	r.rec = append(r.rec[:0], b...)
	if r.depth = parenDelta(b); r.depth <= 0 {
		r.record()
	}
}

func (r *rpzParser) finish() {
	if r.depth > 0 {
		r.p.lineBad = false
		r.p.badAt(r.recLine, "unterminated parenthesis")
		r.depth = 0
	}
	r.flushLocal()
}

func (r *rpzParser) directive(t []byte) {
	d, rest := nextField(t)
	switch strings.ToUpper(string(d)) {
	case "$ORIGIN":
		arg, extra := nextField(rest)
		if len(arg) == 0 || len(extra) > 0 {
			r.p.bad("$ORIGIN needs one name")
			return
		}
		o, ok := r.absolute(arg)
		if !ok {
			return
		}
		r.origin = o
		if r.apexFrom < apexDirective && !r.triggers {
			r.apex, r.apexFrom = o, apexDirective
		}
	case "$TTL":
		// TTLs do not matter to a policy.
	case "$INCLUDE", "$GENERATE":
		r.p.bad(string(d) + " is not supported")
	default:
		r.p.bad("unknown directive " + quote(d))
	}
}

// absolute makes a name from a directive absolute and canonical.
func (r *rpzParser) absolute(arg []byte) (string, bool) {
	if string(arg) == "@" {
		return r.origin, true
	}
	if string(arg) == "." {
		return ".", true
	}
	s := string(arg)
	if !strings.HasSuffix(s, ".") {
		if r.origin == "." {
			s += "."
		} else {
			s += "." + r.origin
		}
	}
	c, err := Canonical(s)
	if err != nil {
		r.p.bad(err.Error())
		return "", false
	}
	return c + ".", true
}

// relative returns owner (lower case, absolute) relative to the apex: ""
// for the apex itself, ok false when owner is not under it.
func (r *rpzParser) relative(owner string) (string, bool) {
	switch a := r.apex; {
	case owner == a:
		return "", true
	case a == "." && strings.HasSuffix(owner, "."):
		return owner[:len(owner)-1], true
	case len(owner) > len(a) && strings.HasSuffix(owner, a) && owner[len(owner)-len(a)-1] == '.':
		return owner[:len(owner)-len(a)-1], true
	}
	return "", false
}

// zoneErr turns a miekg/dns parse error into a reason without the "dns:"
// prefix and the position (Parse reports the line itself).
func zoneErr(err error) string {
	s := strings.TrimPrefix(err.Error(), "dns: ")
	if i := strings.LastIndex(s, " at line: "); i >= 0 {
		s = s[:i]
	}
	return s
}

// rpzSpecial reports the trigger subtrees jurisdns does not support.
func rpzSpecial(trigger string) bool {
	last := trigger[strings.LastIndexByte(trigger, '.')+1:]
	switch strings.ToLower(last) {
	case "rpz-ip", "rpz-nsip", "rpz-nsdname", "rpz-client-ip":
		return true
	}
	return false
}

func (r *rpzParser) record() {
	line, text := r.recLine, r.rec
	r.depth = 0
	bad := func(reason string) { r.p.badAt(line, reason) }
	if isSpace(text[0]) {
		if r.prevOwner == "" {
			bad("record without an owner name")
			return
		}
		text = append([]byte(r.prevOwner+" "), trimSpace(text)...)
	}
	var rr dns.RR
	if c := simpleCNAME(text); c != nil {
		rr = c
	} else {
		zp := dns.NewZoneParser(bytes.NewReader(text), r.origin, "")
		zp.SetDefaultTTL(3600)
		var ok bool
		if rr, ok = zp.Next(); !ok {
			if err := zp.Err(); err != nil {
				bad(zoneErr(err))
			} else {
				bad("no record")
			}
			return
		}
	}
	hdr := rr.Header()
	if hdr.Name == "" {
		// The zone parser's own blank owner ("\r A …", "( ) A …"): it has
		// no previous record, and ours is not the one meant.
		bad("record without an owner name")
		return
	}
	r.prevOwner = hdr.Name
	if hdr.Class != dns.ClassINET {
		bad("class " + dns.Class(hdr.Class).String() + " in an RPZ zone")
		return
	}
	owner := dnsname.Lower(hdr.Name)
	switch rr.(type) {
	case *dns.SOA:
		if r.apexFrom < apexSOA && !r.triggers {
			r.apex, r.apexFrom = owner, apexSOA
		}
		return
	case *dns.NS:
		return
	}
	trigger, ok := r.relative(owner)
	switch {
	case !ok:
		bad(fmt.Sprintf("%q is not under the RPZ origin %q", hdr.Name, r.apex))
		return
	case trigger == "":
		return // other records at the apex
	}
	r.triggers = true
	if rpzSpecial(trigger) {
		r.p.st.Skipped++
		return
	}
	kind := Exact
	if strings.HasPrefix(trigger, "*.") {
		kind, trigger = Below, trigger[2:]
	}
	name, scratch, prob := canon(r.p.scratch, []byte(trigger))
	r.p.scratch = scratch
	if !prob.ok() {
		bad(prob.reason([]byte(trigger)))
		return
	}
	switch rr := rr.(type) {
	case *dns.CNAME:
		var action Action
		switch t := dnsname.Lower(rr.Target); {
		case t == "":
			bad("CNAME without a target")
			return
		case t == ".":
			action = NXDomain
		case t == "*.":
			action = NoData
		case t == "rpz-passthru.", t == string(name)+"." && kind == Exact:
			action = Allow
		case t == "rpz-drop.":
			action = Drop
		default: // rpz-tcp-only. or a local-data CNAME
			r.p.st.Skipped++
			return
		}
		r.flushLocal()
		r.p.emit(name, kind, action, nil, line)
	case *dns.A:
		r.local(name, kind, rr.A, true, line)
	case *dns.AAAA:
		r.local(name, kind, rr.AAAA, false, line)
	default:
		r.p.st.Skipped++
	}
}

// local adds one address to the pending local data.
func (r *rpzParser) local(name []byte, kind Kind, ip []byte, v4 bool, line int) {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		r.p.badAt(line, "bad address")
		return
	}
	if v4 {
		a = a.Unmap() // miekg may hold an A record in 16 bytes
	}
	if r.ldAddrs != nil && r.ldKind == kind && bytes.Equal(r.ldName, name) {
		r.ldAddrs = append(r.ldAddrs, a)
		return
	}
	r.flushLocal()
	r.ldName = append(r.ldName[:0], name...)
	r.ldKind, r.ldLine = kind, line
	r.ldAddrs = []netip.Addr{a}
}

func (r *rpzParser) flushLocal() {
	if r.ldAddrs == nil {
		return
	}
	r.p.emit(r.ldName, r.ldKind, LocalData, r.ldAddrs, r.ldLine)
	r.ldAddrs = nil
}

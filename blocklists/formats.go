package blocklists

import (
	"bytes"
	"net/netip"
	"unsafe"
)

// isSpace reports the white space that separates fields.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r'
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// cutComment drops everything from the first c.
func cutComment(b []byte, c byte) []byte {
	if i := bytes.IndexByte(b, c); i >= 0 {
		return b[:i]
	}
	return b
}

// nextField splits off the first field of b (b has no leading space).
func nextField(b []byte) (field, rest []byte) {
	for i, c := range b {
		if isSpace(c) {
			return b[:i], trimSpace(b[i:])
		}
	}
	return b, nil
}

func hasPrefix(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && string(b[:len(prefix)]) == prefix
}

// tmpString views b as a string for a call that does not keep it.
func tmpString(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// parseAddr parses an IP address without keeping b.
func parseAddr(b []byte) (netip.Addr, bool) {
	if len(b) == 0 || len(b) > 64 {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(tmpString(b))
	return a, err == nil
}

// domainsLine parses a line of a plain domains list.
func (p *parser) domainsLine(b []byte) {
	b = trimSpace(cutComment(b, '#'))
	if len(b) == 0 {
		p.st.Comments++
		return
	}
	tok, rest := nextField(b)
	for len(rest) > 0 {
		var f []byte
		f, rest = nextField(rest)
		if f[0] == '@' { // v2fly attribute such as @ads
			continue
		}
		if _, ok := parseAddr(tok); ok {
			p.bad("hosts-style line (address and names) in a domains list: " + quote(b))
		} else {
			p.bad("unexpected text after the name: " + quote(b))
		}
		return
	}
	kind, orig := p.opts.Match, tok
	switch {
	case hasPrefix(tok, "full:"):
		kind, tok = Exact, tok[len("full:"):]
	case hasPrefix(tok, "domain:"):
		tok = tok[len("domain:"):]
	case hasPrefix(tok, "keyword:"), hasPrefix(tok, "regexp:"), hasPrefix(tok, "include:"):
		p.st.Skipped++
		return
	case hasPrefix(tok, "*."):
		kind, tok = Below, tok[2:]
	case hasPrefix(tok, "||"), hasPrefix(tok, "@@"):
		p.bad("adblock rule in a domains list: " + quote(tok))
		return
	}
	p.name(tok, orig, kind, Block)
}

// wildcardLine parses a line of a wildcard list: "*.name" or "name".
func (p *parser) wildcardLine(b []byte) {
	b = trimSpace(cutComment(b, '#'))
	if len(b) == 0 {
		p.st.Comments++
		return
	}
	tok, rest := nextField(b)
	if len(rest) > 0 {
		p.bad("unexpected text after the name: " + quote(b))
		return
	}
	kind, orig := p.opts.Match, tok
	if hasPrefix(tok, "*.") {
		kind, tok = Below, tok[2:]
	}
	p.name(tok, orig, kind, Block)
}

// hostsLine parses a line of a hosts file.
func (p *parser) hostsLine(b []byte) {
	b = trimSpace(cutComment(b, '#'))
	if len(b) == 0 {
		p.st.Comments++
		return
	}
	p.hosts(b, p.opts.Match)
}

// hosts parses "address name [name...]" (b trimmed, without comment). The
// address only has to be valid: whatever it is, the list blocks the names
// and the jurisdiction's action decides the answer.
func (p *parser) hosts(b []byte, kind Kind) {
	addr, rest := nextField(b)
	if _, ok := parseAddr(addr); !ok {
		p.bad("not a hosts line: " + quote(addr) + " is not an IP address")
		return
	}
	if len(rest) == 0 {
		p.bad("address without names: " + quote(b))
		return
	}
	emitted := false
	for len(rest) > 0 {
		var tok []byte
		tok, rest = nextField(rest)
		if localhostLike(tok) {
			continue
		}
		if p.name(tok, tok, kind, Block) {
			emitted = true
		}
	}
	if !emitted && !p.lineBad {
		p.st.Skipped++
	}
}

// localhostLike reports the names hosts files carry for the machine itself,
// which lists must not block.
func localhostLike(tok []byte) bool {
	if n := len(tok); n > 0 && tok[n-1] == '.' {
		tok = tok[:n-1]
	}
	if len(tok) > 32 {
		return false
	}
	var a [32]byte
	for i, c := range tok {
		a[i] = lower[c]
	}
	s := a[:len(tok)]
	if hasPrefix(s, "ip6-") {
		return true
	}
	switch string(s) {
	case "localhost", "localhost.localdomain", "localhost4", "localhost4.localdomain4",
		"localhost6", "localhost6.localdomain6", "local", "broadcasthost", "0.0.0.0":
		return true
	}
	return false
}

// cosmeticMarkers separate a domain list from a cosmetic (element hiding,
// CSS, scriptlet, HTML filtering) rule.
var cosmeticMarkers = [][]byte{
	[]byte("##"), []byte("#@#"), []byte("#?#"), []byte("#@?#"), []byte("#$#"),
	[]byte("#@$#"), []byte("#%#"), []byte("#@%#"), []byte("$$"), []byte("$@$"),
}

func isCosmetic(b []byte) bool {
	if bytes.IndexByte(b, '#') < 0 && bytes.IndexByte(b, '$') < 0 {
		return false
	}
	for _, m := range cosmeticMarkers {
		if bytes.Contains(b, m) {
			return true
		}
	}
	return false
}

// okModifiers are the adblock modifiers that do not change what a DNS block
// means. Any other modifier makes the rule unsupported.
var okModifiers = []string{
	"important", "match-case", "all", "document", "doc", "third-party", "3p",
	"first-party", "1p", "~third-party", "popup",
}

func supportedModifiers(mods []byte) bool {
	for len(mods) > 0 {
		var m []byte
		if i := bytes.IndexByte(mods, ','); i >= 0 {
			m, mods = mods[:i], mods[i+1:]
		} else {
			m, mods = mods, nil
		}
		m = trimSpace(m)
		ok := false
		for _, o := range okModifiers {
			if bytes.EqualFold(m, []byte(o)) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// adblockLine parses a line of an adblock-style (AdGuard DNS) list.
func (p *parser) adblockLine(b []byte) {
	b = trimSpace(b)
	switch {
	case len(b) == 0, b[0] == '!':
		p.st.Comments++
		return
	case b[0] == '[' && b[len(b)-1] == ']':
		p.st.Comments++ // [Adblock Plus 2.0]
		return
	case isCosmetic(b):
		p.st.Skipped++
		return
	case b[0] == '#':
		p.st.Comments++
		return
	}
	for i, c := range b {
		if !isSpace(c) {
			continue
		}
		rest := trimSpace(b[i:])
		switch {
		case rest[0] == '#' || rest[0] == '!':
			b = b[:i]
		case b[0] == '<':
			p.bad("looks like HTML, not an adblock list: " + quote(b))
			return
		default:
			if _, ok := parseAddr(b[:i]); ok {
				p.hosts(trimSpace(cutComment(b, '#')), Exact)
				return
			}
			p.bad("unexpected white space in rule " + quote(b))
			return
		}
		break
	}
	if b[0] == '<' {
		p.bad("looks like HTML, not an adblock list: " + quote(b))
		return
	}
	action := Block
	if hasPrefix(b, "@@") {
		action, b = Allow, b[2:]
	}
	if len(b) > 0 && b[0] == '/' { // regex or path rule
		p.st.Skipped++
		return
	}
	if i := bytes.LastIndexByte(b, '$'); i >= 0 {
		if !supportedModifiers(b[i+1:]) {
			p.st.Skipped++
			return
		}
		b = b[:i]
	}
	kind, anchored := Exact, true
	switch {
	case hasPrefix(b, "||"):
		kind, b = Suffix, b[2:]
	case hasPrefix(b, "://"):
		p.st.Skipped++
		return
	case hasPrefix(b, "|"):
		b = b[1:]
	case hasPrefix(b, "."):
		kind, b = Below, b[1:]
	default:
		anchored = false
	}
	if n := len(b); n > 0 && b[n-1] == '|' {
		b = b[:n-1]
	}
	if n := len(b); n > 0 && b[n-1] == '^' {
		b = b[:n-1]
	}
	if len(b) == 0 {
		p.bad("empty adblock rule")
		return
	}
	if bytes.ContainsAny(b, "*^/:?&=|%,;~$@[]") { // URL or wildcard pattern
		p.st.Skipped++
		return
	}
	n, scratch, prob := canon(p.scratch, b)
	p.scratch = scratch
	switch {
	case prob.ok() && (anchored || bytes.IndexByte(n, '.') >= 0):
		p.emit(n, kind, action, nil, p.line)
	case anchored:
		p.bad(prob.reason(b))
	default: // an unanchored substring pattern such as "-ad-banner."
		p.st.Skipped++
	}
}

package blocklists

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"unsafe"
)

// Stats counts what Parse saw in one source.
type Stats struct {
	// Lines is the number of lines read.
	Lines int
	// Comments counts blank and comment lines (and the continuation lines
	// of multi-line RPZ records); the other lines are the ones the
	// rejection threshold is measured against.
	Comments int
	// Rules is the number of rules passed to the callback.
	Rules int
	// Bad counts invalid lines (a line counts once, however many of its
	// names are invalid).
	Bad int
	// Skipped counts valid lines that give no rule: unsupported rules
	// (adblock cosmetic, regex and URL rules, unsupported modifiers; RPZ
	// IP, NSDNAME and client-IP triggers and unsupported actions), hosts
	// lines naming only localhost-like entries or mapping to a real
	// address.
	Skipped int
	// Errors holds the first MaxErrors bad lines.
	Errors []LineError
}

// MaxErrors is how many bad lines Stats.Errors keeps.
const MaxErrors = 100

// DefaultMaxBadShare is the share of invalid lines above which a source is
// rejected when ParseOptions.MaxBadShare is 0.
const DefaultMaxBadShare = 0.5

// maxLine is the longest line Parse accepts; longer lines are bad.
const maxLine = 64 << 10

// RejectedError is returned by Parse when too many lines of a source are
// invalid: the whole source must then be discarded.
type RejectedError struct {
	Source string
	// Bad is the number of invalid lines, Lines the number of non-comment
	// lines.
	Bad, Lines int
	// First is the first invalid line.
	First LineError
}

// Error formats the error as
// "source: N of M lines invalid (first: source:line: reason)".
func (e *RejectedError) Error() string {
	return fmt.Sprintf("%s: %d of %d lines invalid (first: %s)", e.Source, e.Bad, e.Lines, e.First.Error())
}

// Parse reads one list from r in opts.Format and calls fn for every rule, in
// source order. Bad lines are counted and the first MaxErrors are kept in
// Stats.Errors; they do not stop the parse. When more than opts.MaxBadShare of
// the non-comment lines are bad, Parse returns a *RejectedError after reading
// everything: the caller must then discard the rules fn already received
// (e.g. drop the IndexBuilder they went to). A read error is returned
// wrapped, with the source name.
//
// Rule.Name (and the rest of the Rule) is valid only during the call to fn:
// it may alias Parse's buffers, so copy it to keep it (IndexBuilder.Add
// copies). Rule.Addrs is freshly allocated and may be kept.
//
// Formats (all: one entry per line, UTF-8 with or without BOM, LF or CRLF,
// names in any case, with or without a trailing dot, IDN in Unicode or
// punycode):
//   - domains: one name per line, "#" comments (also after the name). The
//     entry's kind is opts.Match. Also accepted: "*.name" (Below), and the
//     v2fly domain-list prefixes "full:" (Exact) and "domain:"; "keyword:",
//     "regexp:" and "include:" entries are skipped; "@attr" tokens after the
//     name are ignored.
//   - hosts: "address name [name...]", "#" comments. Any valid address
//     (0.0.0.0, 127.0.0.1, ::, ::1, or another: the jurisdiction's action
//     decides the answer, not the list); localhost-like names (localhost,
//     localhost.localdomain, localhost4/6, broadcasthost, local, ip6-*,
//     0.0.0.0) are skipped, not blocked. Kind is opts.Match.
//   - adblock (AdGuard DNS syntax): "||name^" (Suffix), "|name^" (Exact),
//     ".name" (Below), bare "name" (Exact, as AdGuard), "@@" exceptions
//     (Action Allow), hosts-style lines (Exact), modifiers $important,
//     $match-case, $all, $document, $third-party (others, and $badfilter,
//     $denyallow, $client, $ctag, $dnstype, $dnsrewrite, make the rule
//     skipped), "!" and "#" comments, "[Adblock Plus 2.0]" headers. Cosmetic
//     rules ("##", "#@#", ...), regex rules "/.../" and URL or wildcard
//     patterns are skipped; opts.Match does not apply.
//   - wildcard: "*.name" (Below) or "name" (opts.Match), "#" comments.
//   - rpz: a response policy zone file, ";" comments, parenthesized
//     multi-line records, $ORIGIN, $TTL; each record is parsed by miekg/dns.
//     Only QNAME triggers, the owner names relative to the RPZ origin (see
//     ParseOptions.Origin; names outside it are bad lines): "name" gives an
//     Exact rule, "*.name" a Below rule, opts.Match does not apply. Actions:
//     CNAME . (NXDomain), CNAME *. (NoData), CNAME rpz-passthru. or CNAME to
//     the trigger itself (Allow), CNAME rpz-drop. (Drop), A and AAAA records
//     (LocalData; consecutive records of one trigger give one rule with all
//     the addresses). SOA and NS records are ignored. Skipped: rpz-ip,
//     rpz-nsip, rpz-nsdname and rpz-client-ip triggers, CNAME rpz-tcp-only.,
//     CNAMEs to other names and local data of other types. $INCLUDE and
//     $GENERATE are bad lines.
func Parse(r io.Reader, opts ParseOptions, fn func(Rule)) (Stats, error) {
	p := &parser{opts: opts, fn: fn, src: opts.Source}
	if p.src == "" {
		p.src = "<input>"
	}
	switch opts.Match {
	case Suffix, Exact:
	default:
		return p.st, fmt.Errorf("%s: match must be suffix or exact, not %v", p.src, opts.Match)
	}
	var line func([]byte)
	switch opts.Format {
	case FormatDomains, "":
		line = p.domainsLine
	case FormatHosts:
		line = p.hostsLine
	case FormatAdblock:
		line = p.adblockLine
	case FormatWildcard:
		line = p.wildcardLine
	case FormatRPZ:
		rp, err := newRPZParser(p)
		if err != nil {
			return p.st, err
		}
		line = rp.line
		p.finishHook = rp.finish
	default:
		return p.st, fmt.Errorf("%s: unknown list format %q", p.src, opts.Format)
	}
	if err := p.read(r, line); err != nil {
		return p.st, err
	}
	return p.st, nil
}

// parser holds the state shared by the formats.
type parser struct {
	opts    ParseOptions
	src     string
	fn      func(Rule)
	st      Stats
	line    int  // current line number
	lineBad bool // the current line was already counted bad
	scratch []byte
	// finishHook, when set, runs after the last line (RPZ flushes its
	// pending record and local data).
	finishHook func()
}

// read splits r into lines and calls line for each, without the line ending
// and (on the first line) the byte-order mark. Then it applies the rejection
// threshold.
func (p *parser) read(r io.Reader, line func([]byte)) error {
	br := bufio.NewReaderSize(r, maxLine)
	for {
		b, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			p.startLine()
			p.bad(fmt.Sprintf("line longer than %d bytes", maxLine))
		} else if len(b) > 0 {
			p.startLine()
			if n := len(b); b[n-1] == '\n' {
				b = b[:n-1]
			}
			if n := len(b); n > 0 && b[n-1] == '\r' {
				b = b[:n-1]
			}
			if p.line == 1 {
				if bytes.HasPrefix(b, []byte("\xef\xbb\xbf")) {
					b = b[3:]
				} else if bytes.HasPrefix(b, []byte("\xff\xfe")) || bytes.HasPrefix(b, []byte("\xfe\xff")) {
					return fmt.Errorf("%s: UTF-16 text; lists must be UTF-8", p.src)
				}
			}
			line(b)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: read: %w", p.src, err)
		}
	}
	if p.finishHook != nil {
		p.finishHook()
	}
	return p.reject()
}

// reject applies the MaxBadShare threshold.
func (p *parser) reject() error {
	share := p.opts.MaxBadShare
	if share == 0 {
		share = DefaultMaxBadShare
	}
	lines := p.st.Lines - p.st.Comments
	if p.st.Bad == 0 || float64(p.st.Bad) <= share*float64(lines) {
		return nil
	}
	return &RejectedError{Source: p.src, Bad: p.st.Bad, Lines: lines, First: p.st.Errors[0]}
}

func (p *parser) startLine() {
	p.line++
	p.st.Lines++
	p.lineBad = false
}

// bad counts the current line invalid (once) and keeps its reason.
func (p *parser) bad(reason string) {
	p.badAt(p.line, reason)
}

// badAt counts line invalid, for records that started on an earlier line.
func (p *parser) badAt(line int, reason string) {
	if p.lineBad {
		return
	}
	p.lineBad = true
	p.st.Bad++
	if len(p.st.Errors) < MaxErrors {
		p.st.Errors = append(p.st.Errors, LineError{Source: p.src, Line: line, Reason: reason})
	}
}

// emit passes one rule to the callback. name must be canonical.
func (p *parser) emit(name []byte, kind Kind, action Action, addrs []netip.Addr, line int) {
	p.st.Rules++
	p.fn(Rule{
		Name:   unsafe.String(unsafe.SliceData(name), len(name)),
		Kind:   kind,
		Action: action,
		Addrs:  addrs,
		Line:   line,
	})
}

// name canonicalizes one name of the current line and emits it; an invalid
// name makes the line bad, reported with the entry as written (orig). It
// reports whether a rule was emitted.
func (p *parser) name(tok, orig []byte, kind Kind, action Action) bool {
	n, scratch, prob := canon(p.scratch, tok)
	p.scratch = scratch
	if !prob.ok() {
		p.bad(prob.reason(orig))
		return false
	}
	p.emit(n, kind, action, nil, p.line)
	return true
}

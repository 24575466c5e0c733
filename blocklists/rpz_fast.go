package blocklists

import (
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// simpleCNAME reads the commonest RPZ record, "owner [TTL] [IN] CNAME
// target" with absolute plain names (letters, digits, '-', '_', '*'), without
// miekg/dns's zone parser, which costs most of the time of a big RPZ zone
// (a zone transfer gives a million such lines). Anything else (a relative
// or escaped name, another type, a TTL with units, parentheses, quotes)
// returns nil and takes the zone parser, which gives the same record or the
// error. FuzzSimpleCNAME checks that they agree.
func simpleCNAME(text []byte) *dns.CNAME {
	// Fields are separated by blanks and tabs only, as the zone parser
	// separates them; any other control byte takes the zone parser.
	if len(text) == 0 || text[0] == ' ' || text[0] == '\t' {
		return nil // a blank owner: the previous record's
	}
	var f [6][]byte
	n := 0
	for i := 0; i < len(text); {
		if text[i] == ' ' || text[i] == '\t' {
			i++
			continue
		}
		if n == len(f) {
			return nil
		}
		j := i
		for j < len(text) && text[j] != ' ' && text[j] != '\t' {
			if text[j] < 0x20 || text[j] >= 0x7f {
				return nil
			}
			j++
		}
		f[n] = text[i:j]
		n++
		i = j
	}
	if n < 3 || n > 5 {
		return nil
	}
	owner, target := f[0], f[n-1]
	if !strings.EqualFold(string(f[n-2]), "CNAME") || !plainAbsolute(owner) || !plainAbsolute(target) {
		return nil
	}
	ttl := uint32(3600) // the parser's default TTL
	for _, x := range f[1 : n-2] {
		switch {
		case strings.EqualFold(string(x), "IN"):
		case x[0] >= '0' && x[0] <= '9':
			v, err := strconv.ParseUint(string(x), 10, 32)
			if err != nil {
				return nil
			}
			ttl = uint32(v)
		default:
			return nil
		}
	}
	if n == 5 && !(strings.EqualFold(string(f[2]), "IN") && f[1][0] >= '0' && f[1][0] <= '9') {
		return nil // only "owner TTL IN CNAME target" in five fields
	}
	return &dns.CNAME{
		Hdr:    dns.RR_Header{Name: string(owner), Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: ttl},
		Target: string(target),
	}
}

// plainAbsolute reports a fully qualified name of plain labels: each of 1
// to 63 letters, digits, '-', '_' or '*', at most 255 bytes on the wire; or
// the root ".".
func plainAbsolute(b []byte) bool {
	if len(b) == 1 && b[0] == '.' {
		return true
	}
	if len(b) < 2 || len(b) > 254 || b[len(b)-1] != '.' {
		return false
	}
	label := 0
	for _, c := range b[:len(b)-1] {
		switch {
		case c == '.':
			if label == 0 {
				return false
			}
			label = 0
			continue
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '*':
		default:
			return false
		}
		if label++; label > 63 {
			return false
		}
	}
	return label > 0
}

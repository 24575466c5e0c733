package blocklists

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Limits of a domain name in presentation form without the trailing dot.
const (
	maxNameLen  = 253
	maxLabelLen = 63
)

// idnaProfile converts Unicode names to punycode: the UTS #46 lookup mapping
// (case folding, width folding, U+3002 as a dot, ...), non-transitional, with
// the Bidi rule, but allowing '_' (service labels such as _dmarc).
var idnaProfile = idna.New(
	idna.MapForLookup(),
	idna.BidiRule(),
	idna.Transitional(false),
	idna.StrictDomainName(false),
)

// Byte classes of names: 0 for the bytes of canonical names ('a'-'z',
// '0'-'9', '-', '_' and '.'), and one bit for each kind of other byte, so that
// a name is classified by OR-ing the classes of its bytes.
const (
	clsUpper = 1 << iota // 'A'-'Z'
	clsHigh              // >= 0x80: IDN in Unicode (or invalid UTF-8)
	clsBad               // anything else
)

var charClass = func() (t [256]uint8) {
	for i := range t {
		switch c := byte(i); {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		case c >= 'A' && c <= 'Z':
			t[i] = clsUpper
		case c >= 0x80:
			t[i] = clsHigh
		default:
			t[i] = clsBad
		}
	}
	return t
}()

func classify(s []byte) uint8 {
	var cls uint8
	for _, c := range s {
		cls |= charClass[c]
	}
	return cls
}

// lower maps ASCII upper case to lower case and every other byte to itself.
var lower = func() (t [256]byte) {
	for i := range t {
		t[i] = byte(i)
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = byte(c) + 'a' - 'A'
	}
	return t
}()

// problem says why a name is invalid. The zero value means valid. It is kept
// cheap (no allocation) because parsers meet millions of names and only
// report the first few problems in full.
type problem struct {
	code uint8
	c    byte   // the offending byte (badChar)
	info string // extra text (the idna error)
}

const (
	probNone uint8 = iota
	probEmpty
	probTooLong
	probEmptyLabel
	probLabelTooLong
	probBadChar
	probIPAddr
	probNumericTLD
	probIDN
	probUTF8
)

func (p problem) ok() bool { return p.code == probNone }

// reason formats the problem of name for an error message.
func (p problem) reason(name []byte) string {
	q := quote(name)
	switch p.code {
	case probEmpty:
		return "empty name"
	case probTooLong:
		return "name longer than 253 bytes: " + q
	case probEmptyLabel:
		return "empty label in " + q
	case probLabelTooLong:
		return "label longer than 63 bytes in " + q
	case probBadChar:
		return fmt.Sprintf("invalid character %q in %s", rune(p.c), q)
	case probIPAddr:
		return "IP address instead of a name: " + q
	case probNumericTLD:
		return "all-digit top-level label in " + q
	case probIDN:
		return "invalid IDN " + q + ": " + p.info
	case probUTF8:
		return "invalid UTF-8 in " + q
	}
	return "invalid name " + q
}

// quote quotes a token for an error message, shortened to keep messages small.
func quote(b []byte) string {
	const max = 80
	if len(b) > max {
		return fmt.Sprintf("%q...", b[:max-3])
	}
	return fmt.Sprintf("%q", b)
}

// canon canonicalizes src (one name, no surrounding space): it drops one
// trailing dot, converts IDN to punycode, folds ASCII case and validates the
// result. The result aliases src when src is already canonical, else dst's
// storage (the grown dst is returned as scratch for reuse).
func canon(dst, src []byte) (name, scratch []byte, p problem) {
	s := src
	if n := len(s); n > 0 && s[n-1] == '.' {
		s = s[:n-1]
	}
	if len(s) == 0 {
		return nil, dst, problem{code: probEmpty}
	}
	cls := classify(s)
	switch {
	case cls&clsHigh != 0:
		return canonIDN(dst, s)
	case cls&clsBad != 0:
		return nil, dst, badChar(s, clsBad)
	case cls&clsUpper != 0:
		dst = append(dst[:0], s...)
		for i, c := range dst {
			dst[i] = lower[c]
		}
		s = dst
	}
	return s, dst, structure(s)
}

// canonIDN is canon's slow path for names with non-ASCII bytes.
func canonIDN(dst, s []byte) (name, scratch []byte, p problem) {
	if !utf8.Valid(s) {
		return nil, dst, problem{code: probUTF8}
	}
	a, err := idnaProfile.ToASCII(string(s))
	if err != nil {
		return nil, dst, problem{code: probIDN, info: err.Error()}
	}
	a = strings.TrimSuffix(a, ".")
	dst = append(dst[:0], a...)
	for i, c := range dst {
		dst[i] = lower[c]
	}
	return dst, dst, validate(dst, false)
}

// badChar reports the first byte of s in one of the classes in mask.
func badChar(s []byte, mask uint8) problem {
	for _, c := range s {
		if charClass[c]&mask != 0 {
			return problem{code: probBadChar, c: c}
		}
	}
	return problem{code: probBadChar}
}

// validate checks an ASCII name without trailing dot: characters (upper
// case only when anyCase), then structure.
func validate(s []byte, anyCase bool) problem {
	if len(s) == 0 {
		return problem{code: probEmpty}
	}
	mask := uint8(clsHigh | clsBad | clsUpper)
	if anyCase {
		mask = clsHigh | clsBad
	}
	if classify(s)&mask != 0 {
		return badChar(s, mask)
	}
	return structure(s)
}

// structure checks the length and labels of a non-empty name made of valid
// bytes, and that it is not an IP address.
func structure(s []byte) problem {
	if len(s) > maxNameLen {
		return problem{code: probTooLong}
	}
	start := 0
	for i, c := range s {
		if c == '.' {
			switch n := i - start; {
			case n == 0:
				return problem{code: probEmptyLabel}
			case n > maxLabelLen:
				return problem{code: probLabelTooLong}
			}
			start = i + 1
		}
	}
	switch n := len(s) - start; {
	case n == 0:
		return problem{code: probEmptyLabel}
	case n > maxLabelLen:
		return problem{code: probLabelTooLong}
	}
	for _, c := range s[start:] {
		if c < '0' || c > '9' {
			return problem{}
		}
	}
	if _, err := netip.ParseAddr(string(s)); err == nil {
		return problem{code: probIPAddr}
	}
	return problem{code: probNumericTLD}
}

// Canonical returns the canonical form of a domain name, the form in which
// rules are stored and compared: lower case, IDN labels in punycode (UTS #46
// lookup mapping, so "ＤｅｅｐＳｅｅｋ。com" and "DeepSeek.com." both give
// "deepseek.com"), no trailing dot. Labels may hold letters, digits, '-' and
// '_'. It fails for empty names, empty or over-long labels, names over 253
// bytes, other characters (including '*': wildcards are a Kind, not part of a
// name) and IP addresses. Surrounding white space is not trimmed.
func Canonical(name string) (string, error) {
	out, _, p := canon(nil, []byte(name))
	if !p.ok() {
		return "", errors.New(p.reason([]byte(name)))
	}
	return string(out), nil
}

// ValidName reports whether name is a valid domain name in ASCII form:
// letters of either case, digits, '-' and '_' in labels of 1 to 63 bytes,
// at most 253 bytes, one optional trailing dot, not an IP address. It does
// not convert IDN: names with non-ASCII bytes are invalid (use Canonical).
func ValidName(name string) error {
	s := name
	if n := len(s); n > 0 && s[n-1] == '.' {
		s = s[:n-1]
	}
	if p := validate([]byte(s), true); !p.ok() {
		return errors.New(p.reason([]byte(name)))
	}
	return nil
}

// String returns "suffix", "exact" or "below".
func (k Kind) String() string {
	switch k {
	case Suffix:
		return "suffix"
	case Exact:
		return "exact"
	case Below:
		return "below"
	}
	return "kind(" + itoa(int(k)) + ")"
}

// String returns the action's lower-case name ("block", "allow",
// "nxdomain", "nodata", "drop", "localdata").
func (a Action) String() string {
	switch a {
	case Block:
		return "block"
	case Allow:
		return "allow"
	case NXDomain:
		return "nxdomain"
	case NoData:
		return "nodata"
	case Drop:
		return "drop"
	case LocalData:
		return "localdata"
	}
	return "action(" + itoa(int(a)) + ")"
}

// Package dnsname lower-cases DNS names the way the DNS compares them: the
// ASCII letters A–Z only (RFC 4343), every other byte as it is.
//
// strings.ToLower and miekg/dns's CanonicalName are not that. Both read the
// name as UTF-8: a byte that is not UTF-8 (a name may hold any: a zone file
// or a list can carry raw bytes) becomes U+FFFD, three bytes, so the name
// grows and a label can pass 63; and strings.ToLower maps letters outside
// ASCII, some of them onto ASCII ones (KELVIN SIGN, U+212A, becomes "k"), so
// one name can turn into another.
package dnsname

import "github.com/miekg/dns"

// Lower returns s with its ASCII letters in lower case: s itself when it
// has none in upper case.
func Lower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			var buf [256]byte
			b, _ := AppendLower(buf[:0], s)
			return string(b)
		}
	}
	return s
}

// AppendLower appends s to b with its ASCII letters in lower case; same
// reports whether what it appended is s itself.
func AppendLower(b []byte, s string) (out []byte, same bool) {
	same = true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
			same = false
		}
		b = append(b, c)
	}
	return b, same
}

// LowerBytes lower-cases the ASCII letters of b in place (a name in wire
// form too: its length bytes are under 64, never letters).
func LowerBytes(b []byte) {
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
}

// Canonical returns name fully qualified (dns.Fqdn) and lower-cased as
// Lower does: miekg/dns's CanonicalName without its reading as UTF-8.
func Canonical(name string) string { return Lower(dns.Fqdn(name)) }

package zones

// lowerName is the DNS name s with its ASCII letters in lower case; every
// other byte stays as it is (RFC 4343: a name's case is ASCII only).
// strings.ToLower is not that: it replaces a byte that is not UTF-8 (a name
// may hold any) with U+FFFD, three bytes, and a label could then exceed 63.
// No allocation when s has no upper-case letter.
func lowerName(s string) string {
	i := 0
	for i < len(s) && (s[i] < 'A' || s[i] > 'Z') {
		i++
	}
	if i == len(s) {
		return s
	}
	b := []byte(s)
	for ; i < len(b); i++ {
		if c := b[i]; c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

package zones

// lowerName is the DNS name s with its ASCII letters in lower case; every
// other byte stays as it is (RFC 4343: a name's case is ASCII only).
// strings.ToLower is not that: it replaces a byte that is not UTF-8 (a name
// may hold any) with U+FFFD, three bytes, and a label could then exceed 63.
// s itself when it has no upper-case letter.
func lowerName(s string) string {
	var buf [256]byte
	b, same := appendLower(buf[:0], s)
	if same {
		return s
	}
	return string(b)
}

// appendLower appends name to b with its ASCII letters in lower case; same
// reports whether that is name itself.
func appendLower(b []byte, name string) (out []byte, same bool) {
	same = true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
			same = false
		}
		b = append(b, c)
	}
	return b, same
}

package upstream

import (
	"bytes"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// wireName packs name uncompressed.
func wireName(t *testing.T, name string) []byte {
	t.Helper()
	b := make([]byte, 256)
	n, err := dns.PackDomainName(dns.Fqdn(name), b, 0, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	return b[:n]
}

// Every letter of the name comes out in both cases over many draws, only
// letters change (and only their case), and the ID drawn with it varies:
// one crypto/rand read serves both.
func TestRandomIDAndCase(t *testing.T) {
	long := strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 61)
	for _, name := range []string{"abc-0.example", "x.y", long} {
		base := wireName(t, strings.ToLower(name))
		upper := make([]bool, len(base))
		lower := make([]bool, len(base))
		ids := map[[2]byte]bool{}
		for range 400 {
			q := append([]byte{0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0}, base...)
			nm := q[12:]
			randomIDAndCase(q, nm)
			ids[[2]byte{q[0], q[1]}] = true
			if !bytes.EqualFold(nm, base) || !bytes.Equal(q[2:12], []byte{1, 0, 0, 1, 0, 0, 0, 0, 0, 0}) {
				t.Fatalf("%s: changed beyond letter case: % x", name, q)
			}
			for i, c := range nm {
				if c != base[i] && c != base[i]-0x20 {
					t.Fatalf("%s: byte %d %q from %q", name, i, c, base[i])
				}
				upper[i] = upper[i] || (c >= 'A' && c <= 'Z')
				lower[i] = lower[i] || c == base[i]
			}
		}
		for i, c := range base {
			isLetter := c >= 'a' && c <= 'z'
			if isLetter && !(upper[i] && lower[i]) {
				t.Errorf("%s: letter %d (%q) never in both cases in 400 draws", name, i, c)
			}
			if !isLetter && upper[i] {
				t.Errorf("%s: byte %d (%#x) is not a letter but changed", name, i, c)
			}
		}
		if len(ids) < 300 {
			t.Errorf("%s: %d distinct IDs in 400 draws", name, len(ids))
		}
	}
}

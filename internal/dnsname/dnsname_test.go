package dnsname

import (
	"strings"
	"testing"
)

func TestLower(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"example.com.", "example.com."},
		{"ExAmPlE.CoM", "example.com"},
		{"A-Z_0-9.", "a-z_0-9."},
		// Not UTF-8: strings.ToLower would write U+FFFD (3 bytes) for each.
		{"\xff\xfeAB.\xc3", "\xff\xfeab.\xc3"},
		// KELVIN SIGN stays: strings.ToLower makes it an ASCII "k".
		{"\u212aEEP.example.", "\u212aeep.example."},
		// Letters outside ASCII keep their case (RFC 4343).
		{"ÉCOLE.fr", "École.fr"},
		{`A\.B\065.`, `a\.b\065.`},
	} {
		got := Lower(c.in)
		if got != c.want {
			t.Errorf("Lower(%q) = %q, want %q", c.in, got, c.want)
		}
		if len(got) != len(c.in) {
			t.Errorf("Lower(%q) changed the length", c.in)
		}
		b, same := AppendLower([]byte("x"), c.in)
		if string(b) != "x"+c.want || same != (c.in == c.want) {
			t.Errorf("AppendLower(%q) = %q, %v", c.in, b, same)
		}
		w := []byte(c.in)
		LowerBytes(w)
		if string(w) != c.want {
			t.Errorf("LowerBytes(%q) = %q", c.in, w)
		}
	}
	if strings.ToLower("\xffA") == "\xffa" || strings.ToLower("\u212a") != "k" {
		t.Fatal("strings.ToLower no longer does what the package doc says")
	}
}

// TestLowerSame: a name with no upper-case letter comes back as itself,
// without a copy.
func TestLowerSame(t *testing.T) {
	s := strings.Repeat("abc.", 10)
	if allocs := testing.AllocsPerRun(100, func() { _ = Lower(s) }); allocs != 0 {
		t.Errorf("Lower of a lower-case name: %v allocations", allocs)
	}
}

func TestCanonical(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"Example.COM", "example.com."},
		{"example.com.", "example.com."},
		{".", "."},
		{"", "."},
		{`a\.`, `a\..`}, // an escaped dot is not the root's
		{`a\\.`, `a\\.`},
		{"\xffX", "\xffx."},
	} {
		if got := Canonical(c.in); got != c.want {
			t.Errorf("Canonical(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

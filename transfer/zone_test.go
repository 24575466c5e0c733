package transfer

import (
	"testing"

	"github.com/miekg/dns"
)

func TestInZone(t *testing.T) {
	for _, tc := range []struct {
		name, origin string
	}{
		{"rpz.test.", "rpz.test."},
		{"a.rpz.test.", "rpz.test."},
		{"a.b.rpz.test.", "rpz.test."},
		{"xrpz.test.", "rpz.test."},
		{"rpz.test.", "a.rpz.test."},
		{`a\.rpz.test.`, "rpz.test."},
		{"a.example.", "."},
		{"test.", "rpz.test."},
	} {
		if got, want := inZone(tc.name, tc.origin), dns.IsSubDomain(tc.origin, tc.name); got != want {
			t.Errorf("inZone(%q, %q) = %v, dns.IsSubDomain says %v", tc.name, tc.origin, got, want)
		}
	}
}

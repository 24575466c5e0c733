package audit

import (
	"net/netip"
	"regexp"
	"testing"
)

func TestClientString(t *testing.T) {
	salt := []byte("secret")
	hexRE := regexp.MustCompile(`^[0-9a-f]{16}$`)
	tests := []struct {
		name    string
		addr    string // "" = the zero Addr
		privacy string
		want    string // checked unless wantHash
		hash    bool   // expect a 16-hex-char hash
	}{
		{name: "full_v4", addr: "192.0.2.7", privacy: PrivacyFull, want: "192.0.2.7"},
		{name: "full_v6", addr: "2001:db8::1", privacy: PrivacyFull, want: "2001:db8::1"},
		{name: "full_v6_zone_dropped", addr: "fe80::1%eth0", privacy: PrivacyFull, want: "fe80::1"},
		{name: "full_mapped_v4", addr: "::ffff:192.0.2.7", privacy: PrivacyFull, want: "192.0.2.7"},
		{name: "truncate_v4", addr: "192.0.2.7", privacy: PrivacyTruncate, want: "192.0.2.0/24"},
		{name: "truncate_mapped_v4", addr: "::ffff:198.51.100.200", privacy: PrivacyTruncate, want: "198.51.100.0/24"},
		{name: "truncate_v6", addr: "2001:db8:0:abcd:1:2:3:4", privacy: PrivacyTruncate, want: "2001:db8:0:ab00::/56"},
		{name: "truncate_v6_zone", addr: "fe80::1%eth0", privacy: PrivacyTruncate, want: "fe80::/56"},
		{name: "hash_v4", addr: "192.0.2.7", privacy: PrivacyHash, hash: true},
		{name: "hash_v6", addr: "2001:db8::1", privacy: PrivacyHash, hash: true},
		{name: "none", addr: "192.0.2.7", privacy: PrivacyNone, want: ""},
		{name: "unknown_mode_records_nothing", addr: "192.0.2.7", privacy: "partial", want: ""},
		{name: "empty_mode_records_nothing", addr: "192.0.2.7", privacy: "", want: ""},
		{name: "invalid_addr_full", addr: "", privacy: PrivacyFull, want: ""},
		{name: "invalid_addr_hash", addr: "", privacy: PrivacyHash, want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var a netip.Addr
			if tc.addr != "" {
				a = netip.MustParseAddr(tc.addr)
			}
			got := ClientString(a, tc.privacy, salt)
			if tc.hash {
				if !hexRE.MatchString(got) {
					t.Fatalf("ClientString(%s, hash) = %q, want 16 hex chars", tc.addr, got)
				}
				return
			}
			if got != tc.want {
				t.Fatalf("ClientString(%s, %q) = %q, want %q", tc.addr, tc.privacy, got, tc.want)
			}
		})
	}
}

func TestClientStringHashProperties(t *testing.T) {
	a := netip.MustParseAddr("192.0.2.7")
	b := netip.MustParseAddr("192.0.2.8")
	h := ClientString(a, PrivacyHash, []byte("s1"))
	if again := ClientString(a, PrivacyHash, []byte("s1")); again != h {
		t.Errorf("hash not stable: %q then %q", h, again)
	}
	if other := ClientString(b, PrivacyHash, []byte("s1")); other == h {
		t.Errorf("two addresses share hash %q", h)
	}
	if salted := ClientString(a, PrivacyHash, []byte("s2")); salted == h {
		t.Errorf("salt does not change the hash %q", h)
	}
	if mapped := ClientString(netip.MustParseAddr("::ffff:192.0.2.7"), PrivacyHash, []byte("s1")); mapped != h {
		t.Errorf("mapped address hashes to %q, plain one to %q", mapped, h)
	}
}

func TestValidPrivacy(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{in: "full", want: true},
		{in: "truncate", want: true},
		{in: "hash", want: true},
		{in: "none", want: true},
		{in: "", want: false},
		{in: "Full", want: false},
		{in: "anonymize", want: false},
	} {
		if got := ValidPrivacy(tc.in); got != tc.want {
			t.Errorf("ValidPrivacy(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

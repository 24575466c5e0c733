package blocklists

import (
	"strings"
	"testing"
)

func TestCanonical(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr string // substring of the error; "" for success
	}{
		{name: "plain", in: "deepseek.com", want: "deepseek.com"},
		{name: "upper case", in: "Chat.DeepSeek.COM", want: "chat.deepseek.com"},
		{name: "trailing dot", in: "deepseek.com.", want: "deepseek.com"},
		{name: "single label", in: "COM", want: "com"},
		{name: "underscore", in: "_dmarc.Example.com", want: "_dmarc.example.com"},
		{name: "hyphens", in: "r3---sn-apo3.example", want: "r3---sn-apo3.example"},
		{name: "IDN", in: "Bücher.example", want: "xn--bcher-kva.example"},
		{name: "IDN ideographic full stop", in: "例え。テスト", want: "xn--r8jz45g.xn--zckzah"},
		{name: "IDN fullwidth", in: "ＤｅｅｐＳｅｅｋ．ｃｏｍ", want: "deepseek.com"},
		{name: "IDN sharp s nontransitional", in: "faß.de", want: "xn--fa-hia.de"},
		{name: "punycode kept", in: "XN--BCHER-KVA.example", want: "xn--bcher-kva.example"},
		{name: "63-byte label", in: strings.Repeat("a", 63) + ".com", want: strings.Repeat("a", 63) + ".com"},
		{name: "253 bytes", in: strings.Repeat("a.", 126) + "b", want: strings.Repeat("a.", 126) + "b"},
		{name: "empty", in: "", wantErr: "empty name"},
		{name: "root", in: ".", wantErr: "empty name"},
		{name: "two trailing dots", in: "a.com..", wantErr: "empty label"},
		{name: "leading dot", in: ".a.com", wantErr: "empty label"},
		{name: "empty label", in: "a..com", wantErr: "empty label"},
		{name: "64-byte label", in: strings.Repeat("a", 64) + ".com", wantErr: "label longer than 63"},
		{name: "254 bytes", in: strings.Repeat("a.", 126) + "bc", wantErr: "longer than 253"},
		{name: "wildcard", in: "*.a.com", wantErr: "invalid character '*'"},
		{name: "space", in: "a b.com", wantErr: "invalid character ' '"},
		{name: "escape", in: `a\.b.com`, wantErr: `invalid character '\\'`},
		{name: "IPv4", in: "192.0.2.1", wantErr: "IP address"},
		{name: "IPv4 trailing dot", in: "192.0.2.1.", wantErr: "IP address"},
		{name: "IPv6", in: "2001:db8::1", wantErr: "invalid character ':'"},
		{name: "numeric TLD", in: "a.123", wantErr: "all-digit top-level label"},
		{name: "bad IDN", in: "a\u200d.com", wantErr: "invalid IDN"},
		{name: "invalid UTF-8", in: "a\xff.com", wantErr: "invalid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Canonical(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Canonical(%q) = %q, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Canonical(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
			if again, err := Canonical(got); err != nil || again != got {
				t.Errorf("Canonical is not idempotent: %q -> %q, %v", got, again, err)
			}
			if err := ValidName(got); err != nil {
				t.Errorf("ValidName(%q) = %v", got, err)
			}
		})
	}
}

func TestValidName(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		valid bool
	}{
		{name: "lower", in: "deepseek.com", valid: true},
		{name: "any case", in: "DeepSeek.COM", valid: true},
		{name: "trailing dot", in: "deepseek.com.", valid: true},
		{name: "underscore", in: "_sip._tcp.example", valid: true},
		{name: "unicode", in: "bücher.example", valid: false},
		{name: "empty", in: "", valid: false},
		{name: "root", in: ".", valid: false},
		{name: "empty label", in: "a..b", valid: false},
		{name: "two trailing dots", in: "a.b..", valid: false},
		{name: "IP", in: "10.0.0.1", valid: false},
		{name: "wildcard", in: "*.a.b", valid: false},
		{name: "long label", in: strings.Repeat("x", 64), valid: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := ValidName(tt.in); (err == nil) != tt.valid {
				t.Errorf("ValidName(%q) = %v, want valid %v", tt.in, err, tt.valid)
			}
		})
	}
}

func TestKindActionString(t *testing.T) {
	tests := []struct {
		name string
		got  string
		want string
	}{
		{name: "suffix", got: Suffix.String(), want: "suffix"},
		{name: "exact", got: Exact.String(), want: "exact"},
		{name: "below", got: Below.String(), want: "below"},
		{name: "unknown kind", got: Kind(9).String(), want: "kind(9)"},
		{name: "block", got: Block.String(), want: "block"},
		{name: "allow", got: Allow.String(), want: "allow"},
		{name: "nxdomain", got: NXDomain.String(), want: "nxdomain"},
		{name: "nodata", got: NoData.String(), want: "nodata"},
		{name: "drop", got: Drop.String(), want: "drop"},
		{name: "localdata", got: LocalData.String(), want: "localdata"},
		{name: "unknown action", got: Action(42).String(), want: "action(42)"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: String() = %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}

package spec

import (
	"strings"
	"testing"
)

func TestCheckUpstream(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		wantErr string // "" means valid
	}{
		{name: "ipv4", in: "192.0.2.1"},
		{name: "ipv4_port", in: "192.0.2.1:5353"},
		{name: "ipv6_bare", in: "2001:db8::1"},
		{name: "ipv6_port", in: "[2001:db8::1]:53"},
		{name: "udp", in: "udp://192.0.2.1"},
		{name: "udp_no_0x20", in: "udp://192.0.2.1:53#no-0x20"},
		{name: "plain_no_0x20", in: "192.0.2.1#no-0x20"},
		{name: "plain_port_no_0x20", in: "[2001:db8::1]:53#no-0x20"},
		{name: "plain_bad_option", in: "192.0.2.1#nocase", wantErr: `"192.0.2.1#nocase": unknown option "nocase" (a UDP upstream takes #no-0x20)`},
		{name: "tcp_no_0x20", in: "tcp://192.0.2.1#no-0x20", wantErr: `"tcp://192.0.2.1#no-0x20": unknown option "no-0x20" (only udp:// takes #no-0x20)`},
		{name: "tcp_port", in: "tcp://[2001:db8::1]:53"},
		{name: "tls_ip_servername", in: "tls://192.0.2.1:853#dns.example.net"},
		{name: "tls_name", in: "tls://dns.example.net", wantErr: `"tls://dns.example.net": "dns.example.net" is not an IP address (there is no bootstrap resolver: write tls://IP#servername)`},
		{name: "https", in: "https://192.0.2.1/dns-query#dns.example.net"},
		{name: "https_ip_port", in: "https://192.0.2.1:8443/dns-query"},
		{name: "upper_case_scheme", in: "TLS://192.0.2.1#dns.example.net"},
		{name: "hostname_plain", in: "dns.google", wantErr: `"dns.google" is not IP[:port] or a udp://, tcp://, tls:// or https:// URL`},
		{name: "hostname_port", in: "dns.google:53", wantErr: `"dns.google:53": "dns.google" is not an IP address`},
		{name: "port_zero", in: "192.0.2.1:0", wantErr: `"192.0.2.1:0": port "0" is not a number from 1 to 65535`},
		{name: "url_port_too_big", in: "tcp://192.0.2.1:65536", wantErr: `"tcp://192.0.2.1:65536": port "65536" is not a number from 1 to 65535`},
		{name: "url_empty_port", in: "udp://192.0.2.1:", wantErr: `"udp://192.0.2.1:": port "" is not a number from 1 to 65535`},
		{name: "udp_hostname", in: "udp://dns.example", wantErr: `"udp://dns.example": "dns.example" is not an IP address`},
		{name: "udp_path", in: "udp://192.0.2.1/x", wantErr: `"udp://192.0.2.1/x": only udp://IP[:port] is allowed`},
		{name: "tls_path", in: "tls://192.0.2.1/x", wantErr: `"tls://192.0.2.1/x": only tls://host[:port][#servername] is allowed`},
		{name: "no_host", in: "https:///dns-query", wantErr: `"https:///dns-query" has no host`},
		{name: "bad_scheme", in: "h3://dns.example", wantErr: `"h3://dns.example": scheme "h3" is not udp, tcp, tls or https`},
		{name: "empty", in: "", wantErr: `"" is not IP[:port] or a udp://, tcp://, tls:// or https:// URL`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := checkUpstream(tc.in)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.wantErr {
				t.Errorf("checkUpstream(%q) = %q, want %q", tc.in, got, tc.wantErr)
			}
		})
	}
}

func TestCheckDomain(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		in    string
		valid bool
	}{
		{name: "plain", in: "corp.example", valid: true},
		{name: "trailing_dot", in: "corp.example.", valid: true},
		{name: "underscore_and_case", in: "_msdcs.Corp.Example", valid: true},
		{name: "punycode", in: "xn--bcher-kva.example", valid: true},
		{name: "label_63", in: strings.Repeat("a", 63) + ".example", valid: true},
		{name: "label_64", in: strings.Repeat("a", 64) + ".example"},
		{name: "too_long", in: strings.Repeat("abcdefghi.", 26)},
		{name: "root", in: "."},
		{name: "empty", in: ""},
		{name: "empty_label", in: "a..example"},
		{name: "leading_dot", in: ".example"},
		{name: "space", in: "a b.example"},
		{name: "unicode", in: "bücher.example"},
		{name: "wildcard", in: "*.example"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if err := checkDomain(tc.in); (err == nil) != tc.valid {
				t.Errorf("checkDomain(%q) = %v, want valid=%v", tc.in, err, tc.valid)
			}
		})
	}
}

// TestValidateSHA256OnInline: a pin is for a list that is read (path, url),
// and Validate says so (policy.Build no longer checks it again).
func TestValidateSHA256OnInline(t *testing.T) {
	t.Parallel()
	c := &Config{Jurisdictions: []Jurisdiction{{
		JurisdictionAttrs: JurisdictionAttrs{ID: "x"},
		Sources: []Source{
			{Name: "a", Inline: []string{"a.example"}, SHA256: strings.Repeat("0", 64)},
			{Name: "b", Path: "b.txt", SHA256: strings.Repeat("0", 64)},
		},
	}}}
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "jurisdictions[0].sources[0].sha256: only for path and url sources") {
		t.Errorf("Validate: %v", err)
	}
	if err != nil && strings.Contains(err.Error(), "sources[1].sha256") {
		t.Errorf("Validate rejected the pin of a path source: %v", err)
	}
}

// TestValidateMappedSubnets: an IPv4-mapped client subnet is the IPv4
// subnet it maps (the rule policy matches clients by), so it duplicates
// that subnet; one shorter than /96 has host bits set.
func TestValidateMappedSubnets(t *testing.T) {
	t.Parallel()
	c := &Config{Clients: []Client{
		{Name: "a", Subnets: []string{"10.0.0.0/8"}, Jurisdictions: []string{"x"}},
		{Name: "b", Subnets: []string{"::ffff:10.0.0.0/104", "::ffff:0.0.0.0/80"}, Jurisdictions: []string{"x"}},
	}}
	err := c.Validate()
	for _, want := range []string{
		"clients[1].subnets[0]: 10.0.0.0/8 is already in clients[0].subnets[0]",
		`clients[1].subnets[1]: "::ffff:0.0.0.0/80" has host bits set (did you mean ::/80?)`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: missing %q in\n%v", want, err)
		}
	}
	if p, err := ParseSubnet("::ffff:192.168.0.0/112"); err != nil || p.String() != "192.168.0.0/16" {
		t.Errorf("ParseSubnet(::ffff:192.168.0.0/112) = %v, %v", p, err)
	}
}

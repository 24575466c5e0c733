package upstream

import (
	"io"
	"testing"
)

// FuzzParse feeds arbitrary upstream strings to Parse: never a panic, an
// error or an upstream with a name, and that name parses to the same name
// (logs and metrics show what the configuration meant).
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"192.0.2.1", "192.0.2.1:5353", "udp://[2001:db8::1]:53", "2001:db8::1", "tcp://127.0.0.1:53",
		"tls://192.0.2.1#dns.example", "tls://[2001:db8::1]:853", "https://192.0.2.1/dns-query{?dns}#dns.example,get",
		"https://192.0.2.1:8443/q#post", "dns.example", "quic://192.0.2.1", "udp://192.0.2.1:0", "[::1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := Parse(s, Options{})
		if err != nil {
			if u != nil {
				t.Fatalf("Parse(%q) returned an upstream and an error", s)
			}
			return
		}
		defer func() {
			if c, ok := u.(io.Closer); ok {
				_ = c.Close()
			}
		}()
		name := u.String()
		if name == "" {
			t.Fatalf("Parse(%q): upstream without a name", s)
		}
		again, err := Parse(name, Options{})
		if err != nil {
			t.Fatalf("Parse(%q) named it %q, which does not parse: %v", s, name, err)
		}
		if c, ok := again.(io.Closer); ok {
			_ = c.Close()
		}
		if again.String() != name {
			t.Fatalf("Parse(%q) = %q, but Parse(%q) = %q", s, name, name, again.String())
		}
	})
}

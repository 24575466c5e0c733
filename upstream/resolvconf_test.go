package upstream_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jurisdns/jurisdns/upstream"
)

func TestDefaultServers(t *testing.T) {
	t.Parallel()
	const mixed = `# generated
search example.com
nameserver 192.0.2.1
nameserver 2001:db8::1
nameserver 127.0.0.1
nameserver 127.0.0.53
nameserver ::1
nameserver dns.example
options ndots:2
`
	tests := []struct {
		name    string
		conf    string
		listen  []string
		want    []string
		wantErr string
	}{
		{name: "other_port_keeps_all", conf: mixed, listen: []string{"127.0.0.1:1053"},
			want: []string{"192.0.2.1:53", "[2001:db8::1]:53", "127.0.0.1:53", "127.0.0.53:53", "[::1]:53"}},
		{name: "same_ip_and_port", conf: mixed, listen: []string{"127.0.0.1:53"},
			want: []string{"192.0.2.1:53", "[2001:db8::1]:53", "127.0.0.53:53", "[::1]:53"}},
		{name: "ipv6_listen", conf: mixed, listen: []string{"[2001:db8::1]:53", "[::1]:53"},
			want: []string{"192.0.2.1:53", "127.0.0.1:53", "127.0.0.53:53"}},
		{name: "wildcard_v4", conf: mixed, listen: []string{"0.0.0.0:53"},
			want: []string{"192.0.2.1:53", "[2001:db8::1]:53"}},
		{name: "wildcard_v6", conf: mixed, listen: []string{"[::]:53"},
			want: []string{"192.0.2.1:53", "[2001:db8::1]:53"}},
		{name: "empty_host", conf: mixed, listen: []string{":53"},
			want: []string{"192.0.2.1:53", "[2001:db8::1]:53"}},
		{name: "wildcard_other_port", conf: mixed, listen: []string{"0.0.0.0:5353"},
			want: []string{"192.0.2.1:53", "[2001:db8::1]:53", "127.0.0.1:53", "127.0.0.53:53", "[::1]:53"}},
		{name: "only_self", conf: "nameserver 127.0.0.1\n", listen: []string{"0.0.0.0:53"},
			wantErr: "127.0.0.1:53 (jurisdns listens there)"},
		{name: "empty", conf: "# nothing\n", wantErr: "no nameserver"},
		{name: "only_hostnames", conf: "nameserver dns.example\n", wantErr: "not an IP address"},
		{name: "bad_listen", conf: mixed, listen: []string{"nonsense"}, wantErr: "listen address"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "resolv.conf")
			if err := os.WriteFile(path, []byte(tc.conf), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := upstream.DefaultServers(path, tc.listen)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, %v; want error containing %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for _, s := range got { // every result is a valid upstream
				if _, err := upstream.Parse(s, upstream.Options{}); err != nil {
					t.Errorf("Parse(%q): %v", s, err)
				}
			}
		})
	}
}

func TestDefaultServersMissingFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "missing.conf")
	if _, err := upstream.DefaultServers(path, nil); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("err = %v, want an error naming %s", err, path)
	}
}

package upstream

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// clientTLS returns the TLS configuration of a tls:// or https:// upstream:
// certificates verified against opts.RootCAs (nil: the system roots) for
// serverName, which is also the SNI (Go sends no SNI for an IP address).
func clientTLS(serverName string, opts Options) *tls.Config {
	return &tls.Config{
		ServerName:         serverName,
		RootCAs:            opts.RootCAs,
		MinVersion:         tls.VersionTLS12,
		ClientSessionCache: tls.NewLRUClientSessionCache(4),
	}
}

// checkServerName validates a server name given after '#': an IP address
// or a host name (letters, digits, '-' and '_' in labels of at most 63
// bytes). It returns the name in lower case without a trailing dot.
func checkServerName(s string) (string, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.String(), nil
	}
	name := strings.ToLower(strings.TrimSuffix(s, "."))
	if name == "" || len(name) > 253 {
		return "", fmt.Errorf("server name %q is not a host name", s)
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 {
			return "", fmt.Errorf("server name %q is not a host name", s)
		}
		for i := 0; i < len(label); i++ {
			b := label[i]
			if !(b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '-' || b == '_') {
				return "", fmt.Errorf("server name %q is not a host name (IDNs must be in punycode)", s)
			}
		}
	}
	return name, nil
}

// errHostName explains why a host name cannot be the address of an
// encrypted upstream.
func errHostName(example string) error {
	return errors.New("host names are not supported (no bootstrap resolver): give the IP address and the name to verify after '#', as in " + example)
}

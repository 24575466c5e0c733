package resolver

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"
)

// LoadCertificate reads the PEM certificate chain (leaf first) and private
// key that DoT and DoH serve, and checks that they can be served at now:
// both files readable, the key matching the leaf, the leaf valid at now.
// Errors name the key (tls.cert_file, tls.key_file) and the file.
func LoadCertificate(certFile, keyFile string, now time.Time) (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		// LoadX509KeyPair does not say which file it could not use.
		if rerr := readable(certFile); rerr != nil {
			return nil, fmt.Errorf("tls.cert_file: %w", rerr)
		}
		if rerr := readable(keyFile); rerr != nil {
			return nil, fmt.Errorf("tls.key_file: %w", rerr)
		}
		return nil, fmt.Errorf("tls.cert_file %s, tls.key_file %s: %w", certFile, keyFile, err)
	}
	leaf := cert.Leaf
	if leaf == nil {
		return nil, fmt.Errorf("tls.cert_file %s: no certificate", certFile)
	}
	switch {
	case now.After(leaf.NotAfter):
		return nil, fmt.Errorf("tls.cert_file %s: the certificate expired on %s", certFile, leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(leaf.NotBefore):
		return nil, fmt.Errorf("tls.cert_file %s: the certificate is not valid before %s", certFile, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	return &cert, nil
}

// readable returns an error naming path when it cannot be read.
func readable(path string) error {
	if path == "" {
		return errors.New("not set")
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	return f.Close()
}

// UncoveredAddrs returns the addresses of addrs that the certificate's
// subjectAltName does not list: a client doing verified discovery (RFC 9462
// §4.2) checks that the certificate of the designated resolver covers the
// address of the resolver it asked.
func UncoveredAddrs(cert *tls.Certificate, addrs []netip.Addr) []netip.Addr {
	var out []netip.Addr
	for _, a := range addrs {
		if cert == nil || cert.Leaf == nil || cert.Leaf.VerifyHostname(a.Unmap().String()) != nil {
			out = append(out, a)
		}
	}
	return out
}

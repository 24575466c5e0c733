package resolver

import (
	"crypto/tls"
	"errors"
	"strings"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/zones"
)

// ddrRecords builds the SVCB records of the endpoints eps, whose target is
// the certificate's name (DDRTarget). nil when eps is empty.
func ddrRecords(cert *tls.Certificate, eps []zones.DDREndpoint) ([]dns.RR, error) {
	if len(eps) == 0 {
		return nil, nil
	}
	target, err := DDRTarget(cert)
	if err != nil {
		return nil, err
	}
	return zones.DDRRecords(target, eps), nil
}

// DDRTarget returns the target name of the DDR records: the first DNS name
// of the certificate, the name a client checks it against.
func DDRTarget(cert *tls.Certificate) (string, error) {
	if cert == nil || cert.Leaf == nil {
		return "", errors.New("ddr: no certificate (tls.cert_file) to designate the encrypted endpoints with")
	}
	if len(cert.Leaf.DNSNames) == 0 {
		return "", errors.New("ddr: the certificate of tls.cert_file lists no DNS name (subjectAltName): " +
			"DDR needs one as the target name of its SVCB records")
	}
	target := cert.Leaf.DNSNames[0]
	if _, ok := dns.IsDomainName(target); !ok || strings.HasPrefix(target, "*") {
		return "", errors.New("ddr: the first DNS name of the certificate of tls.cert_file, " + target + ", is not a host name")
	}
	return target, nil
}

// certificate returns the certificate DoT and DoH present to a new
// connection: the current runtime's, so that a reload swaps it for new
// handshakes while established connections keep theirs.
func (s *Server) certificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if rt := s.rt.Load(); rt != nil && rt.cert != nil {
		return rt.cert, nil
	}
	return nil, errors.New("no certificate configured (tls.cert_file)")
}

// Certificate returns the certificate the runtime's DoT and DoH present
// (nil when they are off). A list refresh hands it to the next runtime; a
// reload reads the files again.
func (rt *Runtime) Certificate() *tls.Certificate { return rt.cert }

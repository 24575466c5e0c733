package testtool

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"time"
)

// CA is a certificate authority made for tests: the office's internal CA
// that signs jurisdns's DoT and DoH certificate, or the one the test
// upstream servers chain to. Its functions panic when crypto/rand or x509
// fail, which they do not with these fixed parameters; so a CA can be made
// once for a whole package (sync.OnceValue), outside any test.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
	Pool *x509.CertPool // trusts this CA only
	PEM  []byte         // Cert in PEM, for a tool's --cacert
}

// NewCA makes a CA named cn, valid from an hour ago for a year.
func NewCA(cn string) *CA {
	key := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der := must(x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key))
	cert := must(x509.ParseCertificate(der))
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &CA{Cert: cert, Key: key, Pool: pool, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// Leaf is what a server certificate issued by a CA says.
type Leaf struct {
	Serial    int64 // 0 means 2 (the CA's is 1)
	DNSNames  []string
	IPs       []net.IP
	NotBefore time.Time // zero means an hour ago
	NotAfter  time.Time // zero means in 90 days
}

// Issued is a server certificate and its key.
type Issued struct {
	TLS     tls.Certificate // the leaf and its key, for a tls.Config
	CertPEM []byte          // the leaf then the CA, as a cert_file holds them
	KeyPEM  []byte          // the key, PKCS #8
}

// Issue signs a server certificate (extended key usage serverAuth) for l
// with a new P-256 key.
func (ca *CA) Issue(l Leaf) *Issued {
	key := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	if l.Serial == 0 {
		l.Serial = 2
	}
	if l.NotBefore.IsZero() {
		l.NotBefore = time.Now().Add(-time.Hour)
	}
	if l.NotAfter.IsZero() {
		l.NotAfter = time.Now().Add(90 * 24 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(l.Serial),
		Subject:      pkix.Name{CommonName: "jurisdns test server"},
		DNSNames:     l.DNSNames,
		IPAddresses:  l.IPs,
		NotBefore:    l.NotBefore,
		NotAfter:     l.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der := must(x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key))
	kder := must(x509.MarshalPKCS8PrivateKey(key))
	return &Issued{
		TLS:     tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
		CertPEM: append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), ca.PEM...),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic("testtool: " + err.Error())
	}
	return v
}

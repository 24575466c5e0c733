package testtool

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"strconv"
	"testing"
)

func TestLookFindsShell(t *testing.T) {
	if Look("sh") == "" {
		t.Fatal("sh not found on PATH")
	}
	if Look("no-such-tool-jurisdns-test") != "" {
		t.Fatal("a missing tool was found")
	}
}

func TestNeedSkipsOrFails(t *testing.T) {
	t.Setenv("CI", "")
	t.Setenv("REQUIRE_TEST_TOOLS", "")
	ok := t.Run("missing", func(t *testing.T) {
		Need(t, "no-such-tool-jurisdns-test", "no-such-package")
		t.Error("Need returned for a missing tool")
	})
	if !ok {
		t.Fatal("a missing tool failed the test outside CI instead of skipping it")
	}
	found := false
	for _, p := range Summary() {
		found = found || p == "no-such-package"
	}
	if !found {
		t.Fatalf("Summary() = %v, want it to name no-such-package", Summary())
	}
	t.Setenv("REQUIRE_TEST_TOOLS", "1")
	if !Required() {
		t.Fatal("REQUIRE_TEST_TOOLS=1 does not require tools")
	}
}

// TestFreePort: the port can be bound for UDP and for TCP at once, and is
// below the ephemeral range, where outgoing connections take their ports.
func TestFreePort(t *testing.T) {
	addr := FreeAddr(t)
	_, p, _ := net.SplitHostPort(addr)
	if port, _ := strconv.Atoi(p); ephemeralLow() > 10000 && (port >= ephemeralLow() || port < 10000) {
		t.Errorf("port %d, want one in [10000, %d)", port, ephemeralLow())
	}
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatalf("UDP %s: %v", addr, err)
	}
	defer pc.Close()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("TCP %s: %v", addr, err)
	}
	ln.Close()
}

// TestCAIssues: a certificate the CA issues verifies against its pool for
// its name and address, loads from its PEM files, and does not verify
// against another CA.
func TestCAIssues(t *testing.T) {
	ca, other := NewCA("test CA"), NewCA("other CA")
	iss := ca.Issue(Leaf{DNSNames: []string{"dns.test"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	pair, err := tls.X509KeyPair(iss.CertPEM, iss.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if len(pair.Certificate) != 2 || pair.Leaf.SerialNumber.Int64() != 2 {
		t.Errorf("cert_file chain of %d certificates, serial %v; want the leaf and the CA, serial 2", len(pair.Certificate), pair.Leaf.SerialNumber)
	}
	leaf, err := x509.ParseCertificate(iss.TLS.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"dns.test", "127.0.0.1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca.Pool, DNSName: name}); err != nil {
			t.Errorf("verify for %s: %v", name, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: other.Pool, DNSName: "dns.test"}); err == nil {
		t.Error("the leaf verifies against another CA")
	}
}

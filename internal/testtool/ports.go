package testtool

import (
	"net"
	"strconv"
	"testing"
)

// FreePort returns a port of 127.0.0.1 that was free for both UDP and TCP
// a moment ago, for a program the test starts that binds it itself (knotd,
// jurisdns serve: a DNS address takes both). Another process may take it
// in between; a listener the test opens itself binds port 0 instead.
func FreePort(t testing.TB) int {
	t.Helper()
	var lastErr error
	for range 50 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		_ = pc.Close()
		if err != nil {
			lastErr = err
			continue
		}
		_ = ln.Close()
		return port
	}
	t.Fatalf("no port of 127.0.0.1 free for both UDP and TCP: %v", lastErr)
	return 0
}

// FreeAddr is FreePort as "127.0.0.1:port".
func FreeAddr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
}

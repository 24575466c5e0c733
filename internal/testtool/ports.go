package testtool

import (
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

// FreePort returns a port of 127.0.0.1 that was free for both UDP and TCP
// a moment ago, for a program the test starts that binds it itself (knotd,
// jurisdns serve: a DNS address takes both). The port is below the kernel's
// ephemeral range (net.ipv4.ip_local_port_range), where the kernel never
// puts the local end of an outgoing connection: a download of the program
// under test, or a connection of another test, cannot take it before the
// program binds it. Another listener still could; a listener the test opens
// itself binds port 0 instead.
func FreePort(t testing.TB) int {
	t.Helper()
	low := ephemeralLow()
	var lastErr error
	for range 100 {
		port := 10000 + rand.IntN(max(low-10000, 1))
		if low <= 10000 {
			port = 0 // no room below the range: let the kernel pick
		}
		pc, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			lastErr = err
			continue
		}
		port = pc.LocalAddr().(*net.UDPAddr).Port
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
	return FreeAddrOn(t, "127.0.0.1")
}

// FreeAddrOn is FreePort on another loopback address of 127/8, as
// "host:port" (a port free on 127.0.0.1, and on no wildcard listener, is
// free on host too).
func FreeAddrOn(t testing.TB, host string) string {
	t.Helper()
	return net.JoinHostPort(host, strconv.Itoa(FreePort(t)))
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux's
// default, 32768, where it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n <= 0 {
		return 32768
	}
	return n
}

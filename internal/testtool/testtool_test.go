package testtool

import (
	"net"
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

// TestFreePort: the port can be bound for UDP and for TCP at once.
func TestFreePort(t *testing.T) {
	addr := FreeAddr(t)
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

// Package testtool finds the external programs (Debian packages) that some
// tests drive: knotd, kdig, unbound, fstrm_capture and the like.
//
// One rule for every such test: where the program is missing, the test is
// skipped with the package that installs it, unless the environment asks for
// every tool (CI=true, or REQUIRE_TEST_TOOLS=1, both set by .ci/run), in
// which case it fails. So a developer's machine with only Go runs the suite,
// and CI never passes by skipping.
//
// It also holds what such tests share: the jurisdns binary (BuildJurisdns),
// a child's output (Output), a loopback port for a program to bind
// (FreePort) and a certificate authority for TLS servers and clients (CA).
package testtool

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"testing"
)

// Required reports whether a missing tool fails the test instead of
// skipping it.
func Required() bool {
	return os.Getenv("CI") == "true" || os.Getenv("REQUIRE_TEST_TOOLS") == "1"
}

// sbin holds the places a root-only daemon is installed that a normal
// user's PATH may leave out.
var sbin = []string{"/usr/sbin", "/usr/local/sbin", "/sbin"}

// Look returns the path of bin, or "" when it is not installed.
func Look(bin string) string {
	if p, err := exec.LookPath(bin); err == nil {
		return p
	}
	for _, dir := range sbin {
		p := filepath.Join(dir, bin)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// Need returns the path of bin. When it is missing the test is skipped with
// the install hint (Debian package pkg), or fails where Required.
func Need(t testing.TB, bin, pkg string) string {
	t.Helper()
	if p := Look(bin); p != "" {
		return p
	}
	msg := bin + " not found: this test needs the Debian package " + pkg +
		" (apt-get install -y " + pkg + "); .ci/run installs it"
	if Required() {
		t.Fatal(msg)
	}
	noteSkipped(pkg)
	t.Skip(msg)
	return ""
}

var (
	skippedMu sync.Mutex
	skipped   = map[string]bool{}
)

func noteSkipped(pkg string) {
	skippedMu.Lock()
	skipped[pkg] = true
	skippedMu.Unlock()
}

// Summary returns the Debian packages whose absence skipped tests in this
// test binary, sorted. A package's TestMain prints it after m.Run so the run's
// summary says what was not tested, not only `go test -v`.
func Summary() []string {
	skippedMu.Lock()
	defer skippedMu.Unlock()
	out := make([]string, 0, len(skipped))
	for p := range skipped {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

package status

import (
	"context"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/config"
	"github.com/jurisdns/jurisdns/internal/testclock"
	"github.com/jurisdns/jurisdns/policy"
)

// testNow is the fixed time of the tests: test-mandate is active,
// old-ban expired, future-ban not yet in force.
var testNow = time.Date(2026, 3, 10, 12, 0, 30, 0, time.UTC)

// testPolicy builds the policy of testdata/config.yaml as serve would
// (without the validation that rejects its deliberately odd values).
func testPolicy(t testing.TB) *policy.Policy {
	t.Helper()
	cfg, err := config.Load(config.LoadOptions{Path: filepath.Join("testdata", "config.yaml"), Env: []string{}})
	if err != nil {
		t.Fatalf("load config: %v", err)
	}
	pol, err := policy.Build(context.Background(), cfg, policy.BuildOptions{BaseDir: "testdata"})
	if err != nil {
		t.Fatalf("build policy: %v", err)
	}
	return pol
}

// newTestStatus returns a Status over the test policy with a fixed clock.
func newTestStatus(t testing.TB, privacy string) (*Status, *policy.Policy, *testclock.Clock) {
	t.Helper()
	pol := testPolicy(t)
	clk := testclock.New(testNow)
	st := New(Options{Policy: func() *policy.Policy { return pol }, Now: clk.Now, Privacy: privacy, Version: "test"})
	return st, pol, clk
}

// hit is a policy event of jurisdiction id at t.
func hit(pol *policy.Policy, id, name, client string, t time.Time) *policy.Event {
	j := pol.Lookup(id)
	mode := "enforce"
	if j.Mode == policy.ModeReport {
		mode = "report"
	}
	return &policy.Event{
		Time:         t,
		Client:       netip.MustParseAddr(client),
		Name:         name,
		Qtype:        dns.TypeA,
		Jurisdiction: j,
		Rule:         "deepseek.com",
		Source:       "deepseek-core",
		Line:         2,
		Action:       j.Action.String(),
		Mode:         mode,
		PolicyHash:   pol.Hash(),
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

package resolver

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jurisdns/jurisdns/config"
	"github.com/jurisdns/jurisdns/policy"
)

// genServer is a server and a configuration for generation tests: no
// query ever reaches the upstreams (127.0.0.1:1 and :2 are never asked).
func genServer(t *testing.T) (*Server, *config.Config, BuildOptions) {
	t.Helper()
	cfg, err := config.Load(config.LoadOptions{Env: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Upstreams.Servers = []string{"127.0.0.1:1"}
	cfg.Upstreams.Timeout = 100 * time.Millisecond
	cfg.Upstreams.TryTimeout = 50 * time.Millisecond
	cfg.Zones = []config.Zone{{Name: "corp.example", Forward: []string{"127.0.0.1:2"}}}
	cfg.Access.RateLimit.QPS = 100
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Build(context.Background(), cfg, policy.BuildOptions{BaseDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	o := BuildOptions{
		Policy:  func(context.Context, *policy.Policy) (*policy.Policy, error) { return pol, nil },
		BaseDir: t.TempDir(),
	}
	return NewServer(ServerOptions{Cache: NewCache(CacheOptions{Size: 100})}), cfg, o
}

func genBuild(t *testing.T, s *Server, cfg *config.Config, o BuildOptions) *Runtime {
	t.Helper()
	rt, err := s.Build(context.Background(), cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

func genClosed(rt *Runtime) bool {
	select {
	case <-rt.Closed():
		return true
	default:
		return false
	}
}

// TestBuildTakesOverUnchangedParts: a rebuild with the same configuration
// (a list refresh) takes over the upstream groups, the zones and the
// limiter; a group whose servers changed is built anew, and the old one is
// closed with the last runtime holding it.
func TestBuildTakesOverUnchangedParts(t *testing.T) {
	s, cfg, o := genServer(t)
	rt1 := genBuild(t, s, cfg, o)
	s.Swap(rt1)
	rt2 := genBuild(t, s, cfg, o)
	if rt2.up != rt1.up || rt2.forwards["corp.example."] != rt1.forwards["corp.example."] {
		t.Error("unchanged upstream groups were built again")
	}
	if rt2.Zones != rt1.Zones || rt2.limiter != rt1.limiter {
		t.Error("unchanged zones or limiter were built again")
	}
	if got := rt1.up.refs.Load(); got != 2 {
		t.Errorf("the default group has %d references, want 2 (two runtimes)", got)
	}
	s.Swap(rt2)
	if !genClosed(rt1) {
		t.Fatal("a retired runtime without queries was not closed at once")
	}
	if got := rt2.up.refs.Load(); got != 1 {
		t.Errorf("after rt1 closed the default group has %d references, want 1", got)
	}

	changed := *cfg
	changed.Upstreams.Servers = []string{"127.0.0.1:3"}
	rt3 := genBuild(t, s, &changed, o)
	if rt3.up == rt2.up {
		t.Fatal("a group whose servers changed was taken over")
	}
	if rt3.forwards["corp.example."] != rt2.forwards["corp.example."] {
		t.Error("the unchanged forward group was built again")
	}
	old := rt2.up
	s.Swap(rt3)
	if got := old.refs.Load(); got != 0 {
		t.Errorf("the replaced default group has %d references after its last runtime closed, want 0 (closed)", got)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !genClosed(rt3) || rt3.up.refs.Load() != 0 || rt3.forwards["corp.example."].refs.Load() != 0 {
		t.Error("Shutdown did not close the current runtime and its groups")
	}
}

// TestFailedBuildReleases: a build that fails gives back the groups it
// took over (they close with their runtime as before) and leaves the
// current runtime serving.
func TestFailedBuildReleases(t *testing.T) {
	s, cfg, o := genServer(t)
	rt1 := genBuild(t, s, cfg, o)
	s.Swap(rt1)
	bad := o
	bad.Policy = func(context.Context, *policy.Policy) (*policy.Policy, error) { return nil, errors.New("list broken") }
	if _, err := s.Build(context.Background(), cfg, bad); err == nil {
		t.Fatal("Build with a failing policy succeeded")
	}
	if got := rt1.up.refs.Load(); got != 1 {
		t.Errorf("after a failed build the default group has %d references, want 1", got)
	}
	// Built but refused later (app's checks after Build): Close gives back.
	rt2 := genBuild(t, s, cfg, o)
	if err := rt2.Close(); err != nil {
		t.Fatal(err)
	}
	if got := rt1.up.refs.Load(); got != 1 || genClosed(rt1) || s.Runtime() != rt1 {
		t.Errorf("after closing a refused build: %d references, want 1, and rt1 still serving", got)
	}
	s.Swap(genBuild(t, s, cfg, o))
	if !genClosed(rt1) || rt1.up.refs.Load() != 1 {
		t.Error("the group rt1 handed over is not held by exactly its successor")
	}
}

// TestRetireWaitsForQueries: a retired runtime is closed when its last
// query leaves, or after its query timeout when a query never leaves; a
// query arriving after the swap takes the new runtime.
func TestRetireWaitsForQueries(t *testing.T) {
	s, cfg, o := genServer(t)
	rt1 := genBuild(t, s, cfg, o)
	s.Swap(rt1)
	if got := s.acquire(); got != rt1 {
		t.Fatal("acquire did not return the current runtime")
	}
	rt2 := genBuild(t, s, cfg, o)
	s.Swap(rt2)
	if genClosed(rt1) {
		t.Fatal("a retired runtime was closed under a query")
	}
	if rt1.enter() {
		t.Fatal("a query entered a retired runtime")
	}
	if got := s.acquire(); got != rt2 {
		t.Fatal("a query after the swap did not take the new runtime")
	}
	rt1.leave()
	if !genClosed(rt1) {
		t.Fatal("a retired runtime was not closed when its last query left")
	}

	// rt2 holds one query that never leaves: the query timeout closes it.
	s.Swap(genBuild(t, s, cfg, o))
	select {
	case <-rt2.Closed():
	case <-time.After(5 * time.Second):
		t.Fatalf("a retired runtime with a stuck query was not closed after its query timeout (%s)", rt2.QueryTimeout)
	}
	rt2.leave() // late: harmless
}

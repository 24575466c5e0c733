package upstream_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/internal/testclock"
	"github.com/jurisdns/jurisdns/resolver/resolvertest"
	"github.com/jurisdns/jurisdns/upstream"
)

// newFakeClock is an injected clock for health backoff.
func newFakeClock() *testclock.Clock {
	return testclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
}

// observed records the upstreams tried, in order, via GroupOptions.Observe.
type observed struct {
	mu    sync.Mutex
	tries []string
	errs  []error
}

func (o *observed) observe(name string, _ time.Duration, err error) {
	o.mu.Lock()
	o.tries = append(o.tries, name)
	o.errs = append(o.errs, err)
	o.mu.Unlock()
}

func (o *observed) take() (tries []string, errs []error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	tries, errs = o.tries, o.errs
	o.tries, o.errs = nil, nil
	return tries, errs
}

func newGroup(t *testing.T, opts upstream.GroupOptions, srvs ...*resolvertest.Upstream) *upstream.Group {
	t.Helper()
	ups := make([]upstream.Upstream, len(srvs))
	for i, s := range srvs {
		ups[i] = mustParse(t, s.Addr())
	}
	if opts.TryTimeout == 0 {
		opts.TryTimeout = 300 * time.Millisecond
	}
	if opts.Timeout == 0 {
		opts.Timeout = 4 * time.Second
	}
	g, err := upstream.NewGroup(ups, opts)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func wantAnswer(t *testing.T, resp *dns.Msg, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 1 {
		t.Fatalf("reply: %v", resp)
	}
}

func wantCounts(t *testing.T, want []int64, srvs ...*resolvertest.Upstream) {
	t.Helper()
	for i, s := range srvs {
		if got := s.Queries(); got != want[i] {
			t.Errorf("upstream %d got %d queries, want %d", i, got, want[i])
		}
	}
}

func TestNewGroupErrors(t *testing.T) {
	t.Parallel()
	if _, err := upstream.NewGroup(nil, upstream.GroupOptions{}); err == nil {
		t.Error("empty group accepted")
	}
	u := mustParse(t, "192.0.2.1")
	if _, err := upstream.NewGroup([]upstream.Upstream{u}, upstream.GroupOptions{Strategy: "fastest"}); err == nil {
		t.Error("unknown strategy accepted")
	}
	g, err := upstream.NewGroup([]upstream.Upstream{u, mustParse(t, "tcp://192.0.2.2")}, upstream.GroupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(g.Upstreams(), " "); got != "udp://192.0.2.1:53 tcp://192.0.2.2:53" {
		t.Errorf("Upstreams() = %s", got)
	}
	if got := g.String(); got != "failover(udp://192.0.2.1:53, tcp://192.0.2.2:53)" {
		t.Errorf("String() = %s", got)
	}
}

func TestFailoverSkipsDeadUpstream(t *testing.T) {
	t.Parallel()
	dead := resolvertest.StartUpstream(t, resolvertest.Drop())
	good := resolvertest.StartUpstream(t, resolvertest.Echo())
	g := newGroup(t, upstream.GroupOptions{Now: newFakeClock().Now}, dead, good)

	resp, err := exchange(t, g, 5*time.Second, question("a.example.", dns.TypeA))
	wantAnswer(t, resp, err)
	wantCounts(t, []int64{1, 1}, dead, good)

	resp, err = exchange(t, g, 5*time.Second, question("b.example.", dns.TypeA))
	wantAnswer(t, resp, err)
	wantCounts(t, []int64{1, 2}, dead, good) // dead is marked down: skipped
}

func TestFailoverRecoveryAfterBackoff(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	// first drops 2 queries, then answers.
	first := resolvertest.StartUpstream(t, resolvertest.Sequence(resolvertest.Drop(), resolvertest.Drop(), resolvertest.Echo()))
	second := resolvertest.StartUpstream(t, resolvertest.Echo())
	g := newGroup(t, upstream.GroupOptions{Now: clock.Now}, first, second)
	q := func() {
		t.Helper()
		resp, err := exchange(t, g, 5*time.Second, question("r.example.", dns.TypeA))
		wantAnswer(t, resp, err)
	}

	q() // first times out (down for 1s), second answers
	wantCounts(t, []int64{1, 1}, first, second)
	clock.Add(999 * time.Millisecond)
	q() // still in backoff: skipped
	wantCounts(t, []int64{1, 2}, first, second)
	clock.Add(time.Millisecond)
	q() // backoff expired: probed, times out again, down for 2s
	wantCounts(t, []int64{2, 3}, first, second)
	clock.Add(1999 * time.Millisecond)
	q() // backoff doubled: still skipped
	wantCounts(t, []int64{2, 4}, first, second)
	clock.Add(time.Millisecond)
	q() // probed, answers: healthy again
	wantCounts(t, []int64{3, 4}, first, second)
	q() // and first in line
	wantCounts(t, []int64{4, 4}, first, second)
}

func TestFailoverServfailTriesNextButDoesNotMarkDown(t *testing.T) {
	t.Parallel()
	sf := resolvertest.StartUpstream(t, resolvertest.Rcode(dns.RcodeServerFailure))
	good := resolvertest.StartUpstream(t, resolvertest.Echo())
	g := newGroup(t, upstream.GroupOptions{}, sf, good)
	for i := range 2 {
		resp, err := exchange(t, g, 5*time.Second, question("s.example.", dns.TypeA))
		wantAnswer(t, resp, err)
		wantCounts(t, []int64{int64(i + 1), int64(i + 1)}, sf, good)
	}
}

func TestFailoverReturnsServfailWhenNothingBetter(t *testing.T) {
	t.Parallel()
	sf := resolvertest.StartUpstream(t, resolvertest.Rcode(dns.RcodeServerFailure))
	refused := resolvertest.StartUpstream(t, resolvertest.Rcode(dns.RcodeRefused))
	dead := resolvertest.StartUpstream(t, resolvertest.Drop())
	g := newGroup(t, upstream.GroupOptions{}, dead, sf, refused)
	resp, err := exchange(t, g, 5*time.Second, question("s.example.", dns.TypeA))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Rcode != dns.RcodeServerFailure {
		t.Fatalf("rcode %s, want the first bad reply (SERVFAIL)", dns.RcodeToString[resp.Rcode])
	}
	wantCounts(t, []int64{1, 1, 1}, dead, sf, refused)
}

func TestAllDownTimeout(t *testing.T) {
	t.Parallel()
	a := resolvertest.StartUpstream(t, resolvertest.Drop())
	b := resolvertest.StartUpstream(t, resolvertest.Drop())
	g := newGroup(t, upstream.GroupOptions{Now: newFakeClock().Now}, a, b)
	for i := range 2 { // the second time both are down and still tried
		resp, err := exchange(t, g, 5*time.Second, question("down.example.", dns.TypeA))
		var ue *upstream.Error
		if !errors.As(err, &ue) {
			t.Fatalf("got %v, %v; want *upstream.Error", resp, err)
		}
		if ue.Code != upstream.EDENoReachableAuthority || len(ue.Errs) != 2 {
			t.Fatalf("Error = %+v, want code 22 with 2 errors", ue)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%v does not unwrap to DeadlineExceeded", err)
		}
		wantCounts(t, []int64{int64(i + 1), int64(i + 1)}, a, b)
	}
}

func TestOverallTimeoutBoundsExchange(t *testing.T) {
	t.Parallel()
	var srvs []*resolvertest.Upstream
	for range 5 {
		srvs = append(srvs, resolvertest.StartUpstream(t, resolvertest.Drop()))
	}
	// 5 tries of 300ms do not fit in 500ms: the group gives up in time.
	g := newGroup(t, upstream.GroupOptions{Timeout: 500 * time.Millisecond}, srvs...)
	_, err := exchange(t, g, time.Minute, question("slow.example.", dns.TypeA))
	var ue *upstream.Error
	if !errors.As(err, &ue) || ue.Code != upstream.EDENoReachableAuthority {
		t.Fatalf("err = %v, want *upstream.Error code 22", err)
	}
	if !strings.Contains(err.Error(), "overall timeout") {
		t.Errorf("error %q does not mention the overall timeout", err)
	}
	if n := srvs[4].Queries(); n != 0 {
		t.Errorf("fifth upstream got %d queries after the overall deadline", n)
	}
}

// TestExchangeByDeadline: the deadline given to ExchangeBy bounds the
// exchange as a context's would, tries included, without a context
// deadline.
func TestExchangeByDeadline(t *testing.T) {
	t.Parallel()
	var srvs []*resolvertest.Upstream
	for range 3 {
		srvs = append(srvs, resolvertest.StartUpstream(t, resolvertest.Drop()))
	}
	g := newGroup(t, upstream.GroupOptions{Timeout: 10 * time.Second, TryTimeout: 5 * time.Second}, srvs...)
	start := time.Now()
	_, err := g.ExchangeBy(context.Background(), question("by.example.", dns.TypeA), start.Add(300*time.Millisecond))
	if el := time.Since(start); el < 300*time.Millisecond || el > 2*time.Second {
		t.Errorf("ExchangeBy returned after %v, want about 300ms", el)
	}
	var ue *upstream.Error
	if !errors.As(err, &ue) || ue.Code != upstream.EDENoReachableAuthority || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want *upstream.Error code 22, a timeout", err)
	}
	if n := srvs[1].Queries(); n != 0 {
		t.Errorf("second upstream got %d queries after the deadline", n)
	}
}

// closedAddr returns a 127.0.0.1 address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	if err := pc.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

func TestConnectionRefusedIsNetworkError(t *testing.T) {
	t.Parallel()
	for _, scheme := range []string{"udp://", "tcp://"} {
		t.Run(strings.TrimSuffix(scheme, "://"), func(t *testing.T) {
			t.Parallel()
			g, err := upstream.NewGroup([]upstream.Upstream{mustParse(t, scheme+closedAddr(t))},
				upstream.GroupOptions{TryTimeout: 2 * time.Second, Timeout: 3 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			_, err = exchange(t, g, 5*time.Second, question("refused.example.", dns.TypeA))
			var ue *upstream.Error
			if !errors.As(err, &ue) || ue.Code != upstream.EDENetworkError {
				t.Fatalf("err = %v, want *upstream.Error code 23", err)
			}
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("%v does not unwrap to ECONNREFUSED", err)
			}
		})
	}
}

func TestRandomStrategy(t *testing.T) {
	t.Parallel()
	var srvs []*resolvertest.Upstream
	for range 3 {
		srvs = append(srvs, resolvertest.StartUpstream(t, resolvertest.Echo()))
	}
	obs := &observed{}
	g := newGroup(t, upstream.GroupOptions{
		Strategy: upstream.StrategyRandom,
		Rand:     rand.New(rand.NewPCG(1, 2)),
		Observe:  obs.observe,
	}, srvs...)
	const n = 30
	for range n {
		resp, err := exchange(t, g, 5*time.Second, question("rnd.example.", dns.TypeA))
		wantAnswer(t, resp, err)
	}
	var total int64
	for i, s := range srvs {
		if s.Queries() == 0 {
			t.Errorf("upstream %d never chosen in %d queries", i, n)
		}
		total += s.Queries()
	}
	if total != n {
		t.Errorf("%d queries reached upstreams, want %d (one try per query)", total, n)
	}
	if tries, _ := obs.take(); len(tries) != n {
		t.Errorf("Observe called %d times, want %d", len(tries), n)
	}
}

func TestParallelStrategy(t *testing.T) {
	t.Parallel()
	for _, slowFirst := range []bool{true, false} {
		name := "slow_first"
		if !slowFirst {
			name = "slow_second"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			slow := resolvertest.StartUpstream(t, resolvertest.Drop())
			good := resolvertest.StartUpstream(t, resolvertest.Echo())
			srvs := []*resolvertest.Upstream{slow, good}
			if !slowFirst {
				srvs = []*resolvertest.Upstream{good, slow}
			}
			obs := &observed{}
			// A try timeout far above the test's deadline: only cancelling
			// the loser lets Exchange return in time.
			g := newGroup(t, upstream.GroupOptions{
				Strategy:   upstream.StrategyParallel,
				TryTimeout: time.Minute,
				Timeout:    time.Minute,
				Observe:    obs.observe,
			}, srvs...)
			slowName := mustParse(t, slow.Addr()).String()
			for range 2 {
				resp, err := exchange(t, g, time.Minute, question("par.example.", dns.TypeA))
				wantAnswer(t, resp, err)
				tries, errs := obs.take()
				if len(tries) != 2 {
					t.Fatalf("tries %v, want both upstreams raced", tries)
				}
				for i := range tries {
					if tries[i] == slowName && !errors.Is(errs[i], context.Canceled) {
						t.Errorf("loser %s: err %v, want context.Canceled", tries[i], errs[i])
					}
				}
			}
			// The loser of a race is not marked down: it was raced again.
			if good.Queries() != 2 {
				t.Errorf("good upstream got %d queries, want 2", good.Queries())
			}
		})
	}
}

func TestParallelFallsThroughPairs(t *testing.T) {
	t.Parallel()
	sf1 := resolvertest.StartUpstream(t, resolvertest.Rcode(dns.RcodeServerFailure))
	sf2 := resolvertest.StartUpstream(t, resolvertest.Rcode(dns.RcodeRefused))
	good := resolvertest.StartUpstream(t, resolvertest.Echo())
	g := newGroup(t, upstream.GroupOptions{Strategy: upstream.StrategyParallel}, sf1, sf2, good)
	resp, err := exchange(t, g, 5*time.Second, question("p.example.", dns.TypeA))
	wantAnswer(t, resp, err)
	wantCounts(t, []int64{1, 1, 1}, sf1, sf2, good)
}

func TestGroupCallerCancel(t *testing.T) {
	t.Parallel()
	received := make(chan struct{}, 1)
	first := resolvertest.StartUpstream(t, resolvertest.Sequence(
		resolvertest.Func(func(*dns.Msg) *dns.Msg { received <- struct{}{}; return nil }),
		resolvertest.Echo()))
	second := resolvertest.StartUpstream(t, resolvertest.Echo())
	g := newGroup(t, upstream.GroupOptions{TryTimeout: time.Minute, Timeout: time.Minute}, first, second)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-received; cancel() }()
	_, err := g.Exchange(ctx, question("c.example.", dns.TypeA))
	var ue *upstream.Error
	if !errors.Is(err, context.Canceled) || errors.As(err, &ue) {
		t.Fatalf("err = %v, want plain context.Canceled", err)
	}
	wantCounts(t, []int64{1, 0}, first, second) // no try after the cancel
	// The cancelled try did not mark first down: it is still tried first.
	resp, err := exchange(t, g, 5*time.Second, question("c.example.", dns.TypeA))
	wantAnswer(t, resp, err)
	wantCounts(t, []int64{2, 0}, first, second)
}

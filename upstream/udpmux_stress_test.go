package upstream_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/internal/testtool"
	"github.com/jurisdns/jurisdns/resolver/resolvertest"
	"github.com/jurisdns/jurisdns/upstream"
)

// stressAnswer answers q<i>.<anything> A with the address that encodes i,
// after a random pause of up to maxDelay (the miekg server runs each query
// in a goroutine of its own: the replies come out of order).
func stressAnswer(maxDelay time.Duration) dns.HandlerFunc {
	return resolvertest.Func(func(r *dns.Msg) *dns.Msg {
		if maxDelay > 0 {
			time.Sleep(rand.N(maxDelay))
		}
		name := r.Question[0].Name
		label, _, _ := strings.Cut(name, ".")
		i, err := strconv.Atoi(strings.TrimPrefix(strings.ToLower(label), "q"))
		if err != nil {
			return nil // dropped: the query times out and the test fails
		}
		m := new(dns.Msg)
		m.SetReply(r)
		m.Answer = append(m.Answer, &dns.A{
			Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
			A:   net.IPv4(10, byte(i>>16), byte(i>>8), byte(i)),
		})
		return m
	})
}

// stressCheck sends query i and reports what is wrong with its answer.
func stressCheck(u upstream.Upstream, i int, timeout time.Duration) error {
	name := "q" + strconv.Itoa(i) + ".stress.example."
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	m.Id = uint16(i)
	resp, err := u.Exchange(ctx, m)
	if err != nil {
		return err
	}
	want := net.IPv4(10, byte(i>>16), byte(i>>8), byte(i))
	if resp.Id != m.Id || resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 1 {
		return fmt.Errorf("%s: wrong reply %v", name, resp)
	}
	a, ok := resp.Answer[0].(*dns.A)
	if !ok || a.Hdr.Name != name || !a.A.Equal(want) {
		return fmt.Errorf("%s: answer %v, want %s", name, resp.Answer[0], want)
	}
	return nil
}

// TestMuxStressRotation drives many socket rotations (each socket takes
// MuxMaxUses queries, so a slot gets a new socket every few milliseconds
// here) under concurrent load, with replies out of order and late, against
// a real server on loopback: every query must get its own answer, none may
// fail. Queries that give up early (a short deadline) are mixed in: their
// abandonment must not disturb the others.
func TestMuxStressRotation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		maxDelay time.Duration
		quitters bool // every 7th query gives up after 1ms
	}{
		{"fast", 0, false},
		{"delayed", 3 * time.Millisecond, false},
		{"quitters", 3 * time.Millisecond, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := resolvertest.StartUpstream(t, stressAnswer(tc.maxDelay))
			u := mustParse(t, "udp://"+srv.Addr())
			const workers, perWorker = 48, 250 // ~47 rotations per slot
			if testing.Short() {
				t.Skip("stress")
			}
			var (
				wg       sync.WaitGroup
				failures stressFailures
			)
			for w := range workers {
				wg.Go(func() {
					for j := range perWorker {
						i := w*perWorker + j
						if tc.quitters && i%7 == 0 {
							_ = stressCheck(u, i, time.Millisecond)
							continue
						}
						if err := stressCheck(u, i, 5*time.Second); err != nil {
							failures.add(err)
						}
					}
				})
			}
			wg.Wait()
			failures.check(t, workers*perWorker)
		})
	}
}

// startKnotWildcard runs knotd (Debian's knot, the benchmark's upstream) on
// 127.0.0.1 serving stress.example with a wildcard A record, and returns
// its address once it answers. knotd is killed in t.Cleanup.
func startKnotWildcard(t *testing.T) string {
	t.Helper()
	return testtool.KnotZone(t, "stress.example.", "$ORIGIN stress.example.\n$TTL 60\n"+
		"@ SOA ns hostmaster 1 3600 600 86400 60\n@ NS ns\nns A 127.0.0.1\n* A 10.0.0.1\n")
}

// TestMuxStressKnot is TestMuxStressRotation's load against knotd, the
// benchmark's upstream: every one of many concurrent queries, over dozens of
// socket rotations, gets its own answer (the wildcard's, owned by the name
// as asked).
func TestMuxStressKnot(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("stress")
	}
	u := mustParse(t, "udp://"+startKnotWildcard(t))
	const workers, perWorker = 48, 250
	var (
		wg       sync.WaitGroup
		failures stressFailures
	)
	for w := range workers {
		wg.Go(func() {
			for j := range perWorker {
				i := w*perWorker + j
				name := "Q" + strconv.Itoa(i) + ".stress.example."
				m := new(dns.Msg)
				m.SetQuestion(name, dns.TypeA)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				resp, err := u.Exchange(ctx, m)
				cancel()
				if err == nil && (resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 1 || resp.Answer[0].Header().Name != name) {
					err = fmt.Errorf("%s: wrong reply %v", name, resp)
				}
				if err != nil {
					failures.add(err)
				}
			}
		})
	}
	wg.Wait()
	failures.check(t, workers*perWorker)
}

// TestMuxStressGroup is the same load through a Group of two servers with
// each strategy: with parallel, every query goes to both and the loser's
// is abandoned (its late reply dropped) while its socket rotates; no query
// may fail.
func TestMuxStressGroup(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("stress")
	}
	for _, strategy := range []string{upstream.StrategyParallel, upstream.StrategyRandom, upstream.StrategyFailover} {
		t.Run(strategy, func(t *testing.T) {
			t.Parallel()
			var ups []upstream.Upstream
			for range 2 {
				srv := resolvertest.StartUpstream(t, stressAnswer(2*time.Millisecond))
				ups = append(ups, mustParse(t, "udp://"+srv.Addr()))
			}
			g, err := upstream.NewGroup(ups, upstream.GroupOptions{Strategy: strategy, Timeout: 5 * time.Second, TryTimeout: 4 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			const workers, perWorker = 32, 200
			var (
				wg       sync.WaitGroup
				failures stressFailures
			)
			for w := range workers {
				wg.Go(func() {
					for j := range perWorker {
						if err := stressCheck(g, w*perWorker+j, 5*time.Second); err != nil {
							failures.add(err)
						}
					}
				})
			}
			wg.Wait()
			failures.check(t, workers*perWorker)
		})
	}
}

// stressFailures counts the failed queries of a stress test and keeps the
// first few errors for the report.
type stressFailures struct {
	n     atomic.Int64
	mu    sync.Mutex
	first []error
}

func (f *stressFailures) add(err error) {
	f.n.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.first) < 5 {
		f.first = append(f.first, err)
	}
}

// check fails t when any of total queries failed.
func (f *stressFailures) check(t *testing.T, total int) {
	t.Helper()
	if n := f.n.Load(); n > 0 {
		t.Errorf("%d of %d queries failed; first: %v", n, total, f.first)
	}
}

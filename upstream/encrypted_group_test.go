package upstream_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/upstream"
)

// blackHole accepts TCP connections and never reads or writes: a server
// that is up but does not answer (the TLS handshake never ends).
func blackHole(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}

func TestEncryptedGroupAllDead(t *testing.T) {
	t.Parallel()
	refused, hole := closedAddr(t), blackHole(t)
	var ups []upstream.Upstream
	for _, s := range []string{
		"tls://" + refused + "#dns.test",
		"tls://" + hole + "#dns.test",
		"https://" + refused + "/dns-query#dns.test",
		"https://" + hole + "/dns-query#dns.test,get",
	} {
		ups = append(ups, parseWith(t, s, trusting()))
	}
	g, err := upstream.NewGroup(ups, upstream.GroupOptions{TryTimeout: 200 * time.Millisecond, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second time all are down and still tried
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		resp, err := g.Exchange(ctx, question("dead.example.", dns.TypeA))
		outer := ctx.Err()
		cancel()
		var ue *upstream.Error
		if !errors.As(err, &ue) {
			t.Fatalf("got %v, %v; want *upstream.Error", resp, err)
		}
		if outer != nil {
			t.Fatal("the group did not return within its own Timeout")
		}
		if ue.Code != upstream.EDENetworkError {
			t.Errorf("EDE %d, want 23 (connection refused is a network error)", ue.Code)
		}
	}
	if err := g.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestEncryptedGroupRecovery(t *testing.T) {
	t.Parallel()
	dot := startDoT(t, testPKI().good, echoDoT)
	dot.dead.Store(true) // accepts and hangs up at once
	var dohDown atomic.Bool
	dohDown.Store(true) // answers 503
	doh := startDoH(t, testPKI().good, func(w http.ResponseWriter, q *dns.Msg) {
		if dohDown.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		echoDoH(w, q)
	})

	for _, tc := range []struct {
		name string
		s    string
		up   func()
	}{
		{"dot", "tls://" + dot.addr + "#dns.test", func() { dot.dead.Store(false) }},
		{"doh", doh.URL + "/dns-query#dns.test", func() { dohDown.Store(false) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := upstream.NewGroup([]upstream.Upstream{parseWith(t, tc.s, trusting())},
				upstream.GroupOptions{Now: newFakeClock().Now, TryTimeout: 4 * time.Second, Timeout: 4 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			_, err = exchange(t, g, 5*time.Second, question("r.example.", dns.TypeA))
			var ue *upstream.Error
			if !errors.As(err, &ue) {
				t.Fatalf("err = %v, want *upstream.Error while the server is down", err)
			}
			tc.up()
			// No clock advance: the only upstream is down (in backoff) but
			// is tried as a last resort, so it recovers at once.
			resp, err := exchange(t, g, 5*time.Second, question("r.example.", dns.TypeA))
			wantAnswer(t, resp, err)
		})
	}
}

// TestEncryptedNoGoroutineLeak checks that DoT and DoH upstreams leave no
// goroutine behind once closed, on either side of their connections. It is
// not parallel: it counts all the goroutines of the process.
func TestEncryptedNoGoroutineLeak(t *testing.T) {
	dot := startDoT(t, testPKI().good, echoDoT)
	doh := startDoH(t, testPKI().good, echoDoH)
	before := runtime.NumGoroutine() // the servers idle, no connection
	var ups []upstream.Upstream
	for _, s := range []string{"tls://" + dot.addr + "#dns.test", doh.URL + "/dns-query", doh.URL + "/dns-query#get"} {
		u, err := upstream.Parse(s, trusting())
		if err != nil {
			t.Fatal(err)
		}
		ups = append(ups, u)
	}
	g, err := upstream.NewGroup(ups, upstream.GroupOptions{Strategy: upstream.StrategyParallel, Timeout: 4 * time.Second, TryTimeout: 4 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	all := append(ups[:len(ups):len(ups)], g)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			for _, u := range all {
				ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
				resp, err := u.Exchange(ctx, question("leak.example.", dns.TypeA))
				cancel()
				if err != nil || len(resp.Answer) != 1 {
					t.Errorf("%s: %v, %v", u, resp, err)
				}
			}
		})
	}
	wg.Wait()
	if n := runtime.NumGoroutine(); n <= before {
		t.Fatalf("%d goroutines with connections open, %d before: the check would see no leak", n, before)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	// The servers are still up: only closing the client side can bring the
	// count back (each connection's goroutines end on both sides).
	var n int
	for range 500 {
		if n = runtime.NumGoroutine(); n <= before {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	buf := make([]byte, 1<<20)
	t.Errorf("%d goroutines before, %d after Close:\n%s", before, n, buf[:runtime.Stack(buf, true)])
}

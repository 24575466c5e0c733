package app_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

const acmeConfig = `default_jurisdictions: [acme]
jurisdictions:
  - id: acme
    title: ACME staff policy
    tier: local
    sources: [{name: core, path: list.txt}]
`

func listOf(names []string) string { return strings.Join(names, "\n") + "\n" }

// TestReloadUnderLoad: while clients query continuously over UDP and TCP, 20
// reloads run, every other one broken (an unknown configuration key, or a
// list whose lines are mostly invalid). Every query is answered as expected,
// failed reloads return an error and change nothing, and a successful
// reload's new rule applies to the first query after Reload returns.
func TestReloadUnderLoad(t *testing.T) {
	e := newEnv(t, nil)
	names := []string{"blocked0.example"}
	e.write("list.txt", listOf(names))
	e.config(acmeConfig)
	a := e.start()
	from := e.logs.mark()

	var (
		total, failed atomic.Int64
		errMu         sync.Mutex
		errs          []string
	)
	fail := func(format string, args ...any) {
		failed.Add(1)
		errMu.Lock()
		if len(errs) < 10 {
			errs = append(errs, fmt.Sprintf(format, args...))
		}
		errMu.Unlock()
	}
	stop := make(chan struct{})
	var warm, done sync.WaitGroup
	worker := func(id int, network string) {
		defer done.Done()
		c := &dns.Client{Net: network, Timeout: 10 * time.Second}
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			// A mix: a name blocked by every list, a cached forwarded
			// name and a fresh forwarded name (a cache miss).
			var name string
			want := dns.RcodeSuccess
			switch n % 3 {
			case 0:
				name, want = fmt.Sprintf("w%d.blocked0.example.", id), dns.RcodeNameError
			case 1:
				name = "fwd.example."
			default:
				name = fmt.Sprintf("fwd-%d-%d.example.", id, n)
			}
			m := new(dns.Msg)
			m.SetQuestion(name, dns.TypeA)
			m.SetEdns0(1232, false)
			r, _, err := c.Exchange(m, e.dns)
			total.Add(1)
			switch {
			case err != nil:
				fail("%s %s: %v", network, name, err)
			case r.Rcode != want:
				fail("%s %s: rcode %s, want %s", network, name, dns.RcodeToString[r.Rcode], dns.RcodeToString[want])
			case want == dns.RcodeSuccess && len(r.Answer) != 1:
				fail("%s %s: %d answers", network, name, len(r.Answer))
			}
			if n == 0 {
				warm.Done()
			}
		}
	}
	for i, network := range []string{"udp", "udp", "udp", "tcp", "tcp"} {
		warm.Add(1)
		done.Add(1)
		go worker(i, network)
	}
	warm.Wait() // every client is querying

	ctx := context.Background()
	for i := 1; i <= 20; i++ {
		before := a.Server().Runtime()
		if i%2 == 1 {
			brokenName := fmt.Sprintf("broken%d.example", i)
			if i%4 == 1 {
				e.config(acmeConfig + "bogus_key: 1\n")
			} else {
				var b strings.Builder
				b.WriteString(listOf(append(names, brokenName)))
				for k := range 3 * (len(names) + 1) {
					fmt.Fprintf(&b, "not a domain %d!\n", k)
				}
				e.write("list.txt", b.String())
			}
			err := a.Reload(ctx)
			if err == nil {
				t.Fatalf("reload %d (broken) succeeded", i)
			}
			if want := map[bool]string{true: "bogus_key", false: "list.txt:"}[i%4 == 1]; !strings.Contains(err.Error(), want) {
				t.Errorf("reload %d: error %q does not name %q", i, err, want)
			}
			if a.Server().Runtime() != before {
				t.Fatalf("reload %d failed but swapped the runtime", i)
			}
			wantRcode(t, "name of a rejected list", e.query("udp", "x."+brokenName, dns.TypeA), dns.RcodeSuccess)
			e.config(acmeConfig)
			e.write("list.txt", listOf(names))
			continue
		}
		added := fmt.Sprintf("blocked%d.example", i)
		// Cache the name while it is still allowed: the new rule must win
		// over the cache.
		wantRcode(t, "before reload "+added, e.query("udp", "x."+added, dns.TypeA), dns.RcodeSuccess)
		names = append(names, added)
		e.write("list.txt", listOf(names))
		if err := a.Reload(ctx); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		for _, network := range []string{"udp", "tcp"} {
			r := e.query(network, "x."+added, dns.TypeA)
			wantRcode(t, fmt.Sprintf("reload %d: %s x.%s", i, network, added), r, dns.RcodeNameError)
			if x := ede(r); x == nil || !strings.Contains(x.ExtraText, "rule "+added) {
				t.Errorf("reload %d: EDE %v does not name rule %s", i, x, added)
			}
		}
	}
	close(stop)
	done.Wait()

	t.Logf("%d queries during 20 reloads, %d failed", total.Load(), failed.Load())
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d of %d queries failed: %s", n, total.Load(), strings.Join(errs, "; "))
	}
	if got := e.logs.count(from, "reloaded"); got != 10 {
		t.Errorf("%d reloaded lines, want 10", got)
	}
	last := e.logs.find(from, func(r logRecord) bool { return r.Msg == "reloaded" })
	if n := len(last); n > 0 {
		r := last[n-1]
		if want := fmt.Sprintf("acme=%d(+1/-0)", len(names)); !strings.Contains(r.Attrs["entries"], want) {
			t.Errorf("reloaded line entries %q, want %s", r.Attrs["entries"], want)
		}
		if r.Attrs["policy"] == "" || r.Attrs["took"] == "" {
			t.Errorf("reloaded line lacks policy hash or time: %v", r)
		}
	}
	if n := len(e.logs.find(from, func(r logRecord) bool {
		return r.Level == slogError && r.Msg == "reload failed; still serving the previous configuration"
	})); n < 10 {
		t.Errorf("%d reload failure lines, want at least one per failed reload", n)
	}
	if got := e.metric("reloads_total", "result=failed"); got != 10 {
		t.Errorf("reloads_total{result=failed} = %v, want 10", got)
	}
	if got := e.metric("reloads_total", "result=ok"); got != 10 {
		t.Errorf("reloads_total{result=ok} = %v, want 10", got)
	}
	if got := e.metric("list_entries", "jurisdiction=acme"); got != float64(len(names)) {
		t.Errorf("list_entries{acme} = %v, want %d", got, len(names))
	}
}

// TestReloadKeepsCacheUnlessUpstreamsChange: a reload with the same
// upstreams serves a cached answer without asking upstream again; a reload
// that changes the upstreams empties the cache. A changed listen address is
// logged as needing a restart.
func TestReloadKeepsCacheUnlessUpstreamsChange(t *testing.T) {
	e := newEnv(t, nil)
	e.write("list.txt", "blocked.example\n")
	e.config(acmeConfig)
	a := e.start()
	ctx := context.Background()

	e.query("udp", "cached.example", dns.TypeA)
	n := e.up.Queries()
	if err := a.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	e.query("udp", "cached.example", dns.TypeA)
	if got := e.up.Queries(); got != n {
		t.Errorf("after a reload with the same upstreams: %d upstream queries, want %d (cache kept)", got, n)
	}

	other := newEnv(t, nil)
	from := e.logs.mark()
	e.write("jurisdns.yaml", strings.Replace(baseConfig(other.up.Addr()), `"127.0.0.1:0"]`, `"127.0.0.1:0", "127.0.0.1:0"]`, 1)+acmeConfig)
	if err := a.Reload(ctx); err == nil {
		// duplicate listen addresses are invalid: expect a failure first
		t.Fatal("reload with a duplicate listen address succeeded")
	}
	e.write("jurisdns.yaml", strings.Replace(baseConfig(other.up.Addr()), `listen: ["127.0.0.1:0"]`, `listen: ["127.0.0.2:0"]`, 1)+acmeConfig)
	if err := a.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if len(e.logs.find(from, func(r logRecord) bool { return r.Attrs["key"] == "listen" })) == 0 {
		t.Error("changed listen address not logged as needing a restart")
	}
	e.query("udp", "cached.example", dns.TypeA)
	if other.up.Queries() != 1 {
		t.Errorf("after the upstreams changed: new upstream got %d queries, want 1 (cache emptied)", other.up.Queries())
	}
}

// TestSIGHUPReload sends a real SIGHUP to the process: App.Run, fed by
// signal.Notify as cmd/jurisdns does, reloads, and the new rule applies.
// This is the only test that sends a signal.
func TestSIGHUPReload(t *testing.T) {
	e := newEnv(t, nil)
	e.write("list.txt", "blocked.example\n")
	e.config(acmeConfig)
	a, err := newApp(e)
	if err != nil {
		t.Fatal(err)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM)
	defer signal.Stop(sigs)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- a.Run(ctx, sigs) }()

	wantRcode(t, "before SIGHUP", e.query("udp", "new.example", dns.TypeA), dns.RcodeSuccess)
	e.write("list.txt", "blocked.example\nnew.example\n")
	from := e.logs.mark()
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	e.logs.waitFrom(t, from, "reloaded", 1)
	wantRcode(t, "after SIGHUP", e.query("udp", "new.example", dns.TypeA), dns.RcodeNameError)

	cancel()
	if err := waitErr(t, runErr); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// TestRunCoalescesReloads: SIGHUPs that arrive while a reload runs queue one
// more reload, not one each.
func TestRunCoalescesReloads(t *testing.T) {
	e := newEnv(t, nil)
	release := make(chan struct{})
	entered := make(chan struct{}, 16)
	var started atomic.Bool
	srv := newListServer(t, func(w http.ResponseWriter, r *http.Request) {
		if started.Load() { // not the startup load
			entered <- struct{}{}
			<-release
		}
		_, _ = w.Write([]byte("remote.example\n"))
	})
	e.opts.HTTPClient = srv.Client()
	e.config(fmt.Sprintf(`default_jurisdictions: [remote]
jurisdictions:
  - id: remote
    sources: [{name: r, url: "%s/list.txt"}]
`, srv.URL))
	a, err := newApp(e)
	if err != nil {
		t.Fatal(err)
	}
	started.Store(true)
	sigs := make(chan os.Signal) // unbuffered: each send is taken by Run
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- a.Run(ctx, sigs) }()

	from := e.logs.mark()
	sigs <- syscall.SIGHUP
	<-entered // the first reload is downloading
	for range 10 {
		sigs <- syscall.SIGHUP
	}
	close(release)
	e.logs.waitFrom(t, from, "reloaded", 2)
	cancel()
	if err := waitErr(t, runErr); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := e.logs.count(from, "reloaded"); got != 2 {
		t.Errorf("11 SIGHUPs during a slow reload gave %d reloads, want 2", got)
	}
}

// newApp creates and starts an App without registering its Shutdown (Run
// does it).
func newApp(e *env) (*appT, error) {
	a, err := appNew(e.options())
	if err != nil {
		return nil, err
	}
	if err := a.Start(); err != nil {
		return nil, err
	}
	e.app = a
	e.dns = a.DNSAddrs()[0]
	e.admin = "http://" + a.AdminAddr()
	return a, nil
}

func waitErr(t *testing.T, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(waitLimit):
		t.Fatalf("Run did not return within %s", waitLimit)
		return nil
	}
}

// TestSIGTERMDuringReloadOfFIFO: a list path replaced by a FIFO (a list
// that blocks on open, like a hung mount) fails the reload with a clear
// error instead of hanging it, and SIGTERM then completes.
func TestSIGTERMDuringReloadOfFIFO(t *testing.T) {
	e := newEnv(t, nil)
	list := e.write("list.txt", "blocked.example\n")
	e.config(acmeConfig)
	a, err := newApp(e)
	if err != nil {
		t.Fatal(err)
	}
	sigs := make(chan os.Signal, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- a.Run(ctx, sigs) }()

	if err := os.Remove(list); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(list, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	from := e.logs.mark()
	sigs <- syscall.SIGHUP
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			for _, r := range e.logs.find(from, func(logRecord) bool { return true }) {
				if strings.Contains(r.String(), "named pipe (FIFO)") {
					return
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Error("the reload of a FIFO list did not fail with a clear error")
	}
	wantRcode(t, "last good policy", e.query("udp", "blocked.example", dns.TypeA), dns.RcodeNameError)
	start := time.Now()
	sigs <- syscall.SIGTERM
	if err := waitErr(t, runErr); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if d := time.Since(start); d > 25*time.Second {
		t.Errorf("SIGTERM took %v", d)
	}
}

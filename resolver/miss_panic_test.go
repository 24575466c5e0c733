package resolver_test

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"net"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/config"
	"github.com/jurisdns/jurisdns/policy"
	"github.com/jurisdns/jurisdns/resolver"
	"github.com/jurisdns/jurisdns/resolver/resolvertest"
)

// panicsOnce is an Observer whose first UDP Answered panics: for a query
// the upstream socket's reader answers (asyncMiss.finish), that is right
// after the answer was queued.
type panicsOnce struct{ done atomic.Bool }

func (p *panicsOnce) Answered(proto resolver.Proto, _ uint16, _ int) {
	if proto == resolver.UDP && p.done.CompareAndSwap(false, true) {
		panic("test: the observer panics once")
	}
}
func (*panicsOnce) CacheHit()      {}
func (*panicsOnce) CacheMiss()     {}
func (*panicsOnce) CacheStale()    {}
func (*panicsOnce) Refused(string) {}
func (*panicsOnce) Dropped(string) {}
func (*panicsOnce) Overloaded()    {}
func (*panicsOnce) RateLimited()   {}

// TestMissFinishPanic: a panic while the upstream socket's reader finishes
// a miss (here the observer's, after the answer was queued) is recovered:
// the client gets its answer once (no worker's SERVFAIL after it), the
// reader goes on (the next miss is answered), the process does not die.
func TestMissFinishPanic(t *testing.T) {
	up := resolvertest.StartUpstream(t, resolvertest.Echo())
	cfg, err := config.Load(config.LoadOptions{Env: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen = []string{"127.0.0.1:0"}
	cfg.Upstreams.Servers = []string{up.Addr()}
	cfg.Admin = ""
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	obs := &panicsOnce{}
	srv := resolver.NewServer(resolver.ServerOptions{
		Cache:    resolver.NewCache(resolver.CacheOptions{Size: 1000}),
		Observer: obs,
	})
	rt, err := srv.Build(context.Background(), cfg, resolver.BuildOptions{
		Policy: func(ctx context.Context, _ *policy.Policy) (*policy.Policy, error) {
			return policy.Build(ctx, cfg, policy.BuildOptions{BaseDir: t.TempDir()})
		},
		BaseDir: filepath.Join("..", "testdata", "zones"),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Swap(rt)
	if err := srv.Listen(cfg.Listen, 1, 10); err != nil {
		t.Fatal(err)
	}
	srv.Serve()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})

	c, err := net.Dial("udp", srv.Addrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	q := new(dns.Msg).SetQuestion("first.panic.example.", dns.TypeA)
	q.Id = 4711
	b, _ := q.Pack()
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no answer to the query whose finish panicked: %v", err)
	}
	r := new(dns.Msg)
	if err := r.Unpack(buf[:n]); err != nil || r.Id != 4711 || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Fatalf("answer %v (%v)", r, err)
	}
	if !obs.done.Load() {
		t.Fatal("the observer did not panic: the test tests nothing")
	}
	// No second answer for it (a SERVFAIL from a worker it was handed to).
	_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if n, err := c.Read(buf); err == nil {
		t.Fatalf("a second answer after the panic: %x", buf[:n])
	}
	// The reader survived: the next miss is answered.
	r2, err := dns.Exchange(new(dns.Msg).SetQuestion("second.panic.example.", dns.TypeA), srv.Addrs()[0])
	if err != nil || r2.Rcode != dns.RcodeSuccess || len(r2.Answer) != 1 {
		t.Fatalf("after the panic: %v, %v", r2, err)
	}
}

package resolver_test

import (
	"context"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/config"
	"github.com/jurisdns/jurisdns/resolver"
	"github.com/jurisdns/jurisdns/resolver/resolvertest"
)

// TestSlowPathAnswersAtShutdown: many misses in flight at once are each
// answered, through the listener's batched sender, with the answer to their
// own question, and a shutdown that begins while they wait for the upstream
// still sends every answer before the sockets close.
func TestSlowPathAnswersAtShutdown(t *testing.T) {
	const n = 200
	var got atomic.Int64
	release := make(chan struct{})
	up := resolvertest.StartUpstream(t, resolvertest.Func(func(r *dns.Msg) *dns.Msg {
		got.Add(1)
		<-release
		m := new(dns.Msg).SetReply(r)
		m.Answer = []dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60},
			Txt: []string{r.Question[0].Name}}}
		return m
	}))
	// The upstream holds every query until the shutdown has begun: the
	// tries must outlast that on a slow (-race) machine.
	h := start(t, []string{up.Addr()}, func(c *config.Config) {
		c.Upstreams.TryTimeout, c.Upstreams.Timeout = 3*time.Second, 4*time.Second
	})
	c, err := net.Dial("udp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range n {
		m := new(dns.Msg).SetQuestion("n"+strconv.Itoa(i)+".example.", dns.TypeTXT)
		m.Id = uint16(i)
		m.SetEdns0(1232, false)
		b, _ := m.Pack()
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	// Shut down while the upstream holds every query (all of them read:
	// the queries still unread when the listeners close are not answered).
	deadline := time.Now().Add(5 * time.Second)
	for got.Load() < n && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if g := got.Load(); g < n {
		t.Fatalf("the upstream got %d of %d queries", g, n)
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- h.srv.Shutdown(ctx)
	}()
	time.Sleep(50 * time.Millisecond) // the shutdown is under way
	close(release)
	seen := map[uint16]bool{}
	buf := make([]byte, 4096)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for len(seen) < n {
		k, err := c.Read(buf)
		if err != nil {
			t.Fatalf("%d answers of %d: %v", len(seen), n, err)
		}
		m := new(dns.Msg)
		if err := m.Unpack(buf[:k]); err != nil {
			t.Fatal(err)
		}
		want := "n" + strconv.Itoa(int(m.Id)) + ".example."
		if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 || !strings.EqualFold(m.Answer[0].(*dns.TXT).Txt[0], want) || seen[m.Id] {
			t.Fatalf("answer %d: %v", m.Id, m)
		}
		seen[m.Id] = true
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if q := resolver.QueuedAnswers(); q != 0 {
		t.Errorf("%d answers still queued", q)
	}
}

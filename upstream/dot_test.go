package upstream_test

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/resolver/resolvertest"
	"github.com/jurisdns/jurisdns/upstream"
)

func TestParseEncrypted(t *testing.T) {
	t.Parallel()
	checkParse(t, []parseCase{
		{in: "tls://192.0.2.1", want: "tls://192.0.2.1:853"},
		{in: "tls://192.0.2.1#dns.example", want: "tls://192.0.2.1:853#dns.example"},
		{in: "TLS://192.0.2.1:8853#DNS.Example.", want: "tls://192.0.2.1:8853#dns.example"},
		{in: "tls://192.0.2.1:853/", want: "tls://192.0.2.1:853"},
		{in: "tls://[2001:db8::1]#dns.example", want: "tls://[2001:db8::1]:853#dns.example"},
		{in: "tls://2001:db8::1", want: "tls://[2001:db8::1]:853"},
		{in: "tls://192.0.2.1#192.0.2.2", want: "tls://192.0.2.1:853#192.0.2.2"},
		{in: "tls://dns.example", wantErr: "host names are not supported"},
		{in: "tls://dns.example:853#dns.example", wantErr: "host names are not supported"},
		{in: "tls://192.0.2.1#bad name", wantErr: "not a host name"},
		{in: "tls://192.0.2.1#", wantErr: "not a host name"},
		{in: "tls://192.0.2.1/dns-query", wantErr: "want tls://"},
		{in: "tls://192.0.2.1:0", wantErr: "port 0"},
		{in: "https://192.0.2.1/dns-query", want: "https://192.0.2.1/dns-query"},
		{in: "https://192.0.2.1", want: "https://192.0.2.1/dns-query"},
		{in: "HTTPS://192.0.2.1:8443/q{?dns}", want: "https://192.0.2.1:8443/q"},
		{in: "https://[2001:db8::6]:8443/dns-query{?dns}", want: "https://[2001:db8::6]:8443/dns-query"},
		{in: "https://192.0.2.1/dns-query#dns.example,get", want: "https://192.0.2.1/dns-query#dns.example,get"},
		{in: "https://192.0.2.1/dns-query#GET", want: "https://192.0.2.1/dns-query#get"},
		{in: "https://192.0.2.1/dns-query#post,DNS.example", want: "https://192.0.2.1/dns-query#dns.example"},
		{in: "https://192.0.2.1/resolve?ct=x", want: "https://192.0.2.1/resolve?ct=x"},
		{in: "https://dns.example/dns-query", wantErr: "host names are not supported"},
		{in: "https://dns.example/dns-query#dns.example", wantErr: "host names are not supported"},
		{in: "https://user@192.0.2.1/", wantErr: "want https://"},
		{in: "https://192.0.2.1:0/", wantErr: "bad port"},
		{in: "https://192.0.2.1/#a.example,b.example", wantErr: "two server names"},
		{in: "https://192.0.2.1/#a b", wantErr: "not a host name"},
	})
}

// countingListener counts the connections it accepts.
type countingListener struct {
	net.Listener
	n atomic.Int32
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// startMiekgDoT serves h over DNS-over-TLS with miekg/dns's server.
func startMiekgDoT(t testing.TB, h dns.Handler) (addr string, accepts *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{Listener: ln}
	started := make(chan struct{})
	srv := &dns.Server{
		Net:               "tcp-tls",
		Listener:          tls.NewListener(cl, &tls.Config{Certificates: []tls.Certificate{testPKI().good}}),
		Handler:           h,
		MaxTCPQueries:     -1,
		NotifyStartedFunc: func() { close(started) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ActivateAndServe() }()
	select {
	case <-started:
	case err := <-errc:
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown() })
	return ln.Addr().String(), &cl.n
}

func TestDoTAnswers(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var seen []*dns.Msg
	addr, accepts := startMiekgDoT(t, resolvertest.Func(func(r *dns.Msg) *dns.Msg {
		mu.Lock()
		seen = append(seen, r.Copy())
		mu.Unlock()
		return answerA(r)
	}))
	u := parseWith(t, "tls://"+addr+"#dns.test", trusting())
	ids := map[uint16]bool{}
	for i := range 3 {
		m := question("MiXeD.Example.", dns.TypeA)
		m.Id = 4242
		m.SetEdns0(4096, true)
		resp, err := exchange(t, u, 4*time.Second, m)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Id != 4242 || len(resp.Answer) != 1 || resp.Answer[0].Header().Name != "MiXeD.Example." {
			t.Fatalf("reply: %v", resp)
		}
		mu.Lock()
		got := seen[i]
		mu.Unlock()
		ids[got.Id] = true
		// Nothing of the client's OPT but DO; the one option is our
		// block-length padding (RFC 8467).
		if opt := got.IsEdns0(); opt == nil || !opt.Do() || opt.UDPSize() != 1232 || !onlyPadding(opt) || got.Len()%128 != 0 {
			t.Errorf("OPT sent upstream (%d octets): %v", got.Len(), opt)
		}
	}
	if len(ids) < 2 {
		t.Errorf("3 queries used the IDs %v; want fresh random IDs", ids)
	}
	if n := accepts.Load(); n != 1 {
		t.Errorf("3 sequential queries used %d connections, want 1 (reuse)", n)
	}
}

func TestDoTPipelining(t *testing.T) {
	t.Parallel()
	const n = 50
	type held struct {
		sc *srvConn
		q  *dns.Msg
	}
	var (
		mu   sync.Mutex
		hold []held
	)
	// The server answers nothing until it has all 50 queries, then answers
	// them in reverse order: the client must pipeline and demultiplex.
	srv := startDoT(t, testPKI().good, func(sc *srvConn, q *dns.Msg) {
		mu.Lock()
		hold = append(hold, held{sc, q})
		var release []held
		if len(hold) == n {
			release = hold
		}
		mu.Unlock()
		for i := len(release) - 1; i >= 0; i-- {
			release[i].sc.reply(answerA(release[i].q))
		}
	})
	opts := trusting()
	opts.MaxConns = 3
	u := parseWith(t, "tls://"+srv.addr+"#dns.test", opts)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			name := fmt.Sprintf("q%d.example.", i)
			m := question(name, dns.TypeA)
			m.Id = uint16(i)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			resp, err := u.Exchange(ctx, m)
			if err == nil && (resp.Id != uint16(i) || len(resp.Answer) != 1 || resp.Answer[0].Header().Name != name) {
				err = fmt.Errorf("wrong reply for %s: %v", name, resp)
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if c := srv.accepts.Load(); c < 1 || c > 3 {
		t.Errorf("%d queries used %d connections, want 1 to MaxConns=3", n, c)
	}
	if q := srv.queries.Load(); q != n {
		t.Errorf("server got %d queries, want %d", q, n)
	}
}

func TestDoTServerClosesBetweenQueries(t *testing.T) {
	t.Parallel()
	// Answers, then closes the connection (RFC 7766 allows it at any time).
	srv := startDoT(t, testPKI().good, func(sc *srvConn, q *dns.Msg) {
		sc.reply(answerA(q))
		sc.close()
	})
	u := parseWith(t, "tls://"+srv.addr+"#dns.test", trusting())
	for range 3 {
		resp, err := exchange(t, u, 4*time.Second, question("c.example.", dns.TypeA))
		wantAnswer(t, resp, err)
	}
	if n := srv.accepts.Load(); n != 3 {
		t.Errorf("connections: %d, want 3", n)
	}
}

func TestDoTBrokenConnectionRetriedOnce(t *testing.T) {
	t.Parallel()
	t.Run("then_answers", func(t *testing.T) {
		t.Parallel()
		// The first connection dies under the query; the second answers.
		srv := startDoT(t, testPKI().good, func(sc *srvConn, q *dns.Msg) {
			if sc.n == 1 {
				sc.close()
				return
			}
			sc.reply(answerA(q))
		})
		u := parseWith(t, "tls://"+srv.addr+"#dns.test", trusting())
		resp, err := exchange(t, u, 4*time.Second, question("b.example.", dns.TypeA))
		wantAnswer(t, resp, err)
		if n := srv.accepts.Load(); n != 2 {
			t.Errorf("connections: %d, want 2", n)
		}
	})
	t.Run("always_broken", func(t *testing.T) {
		t.Parallel()
		srv := startDoT(t, testPKI().good, func(sc *srvConn, _ *dns.Msg) { sc.close() })
		u := parseWith(t, "tls://"+srv.addr+"#dns.test", trusting())
		_, err := exchange(t, u, 4*time.Second, question("b.example.", dns.TypeA))
		if err == nil || !strings.Contains(err.Error(), "closed by the server") {
			t.Fatalf("err = %v, want the connection closed by the server", err)
		}
		if n := srv.accepts.Load(); n != 2 {
			t.Errorf("connections: %d, want 2 (one retry)", n)
		}
	})
}

func TestDoTBadRepliesDoNotBreakOthers(t *testing.T) {
	t.Parallel()
	var (
		mu   sync.Mutex
		held = map[string]*dns.Msg{}
	)
	badSeen := make(chan struct{})
	// Once it has both queries on the connection, the server sends junk for
	// "bad" (and for "good"'s ID), then the good replies.
	srv := startDoT(t, testPKI().good, func(sc *srvConn, q *dns.Msg) {
		mu.Lock()
		held[q.Question[0].Name] = q
		n := len(held)
		mu.Unlock()
		if n == 1 {
			close(badSeen)
			return
		}
		bad, good := held["bad.example."], held["good.example."]
		other := bad.Id + 1
		for other == bad.Id || other == good.Id {
			other++
		}
		sc.write([]byte{1, 2, 3}) // too short for DNS
		wrongID := answerA(bad)
		wrongID.Id = other
		sc.reply(wrongID)
		wrongQ := answerA(bad)
		wrongQ.Question[0].Name = "other.example."
		sc.reply(wrongQ)
		notReply := bad.Copy() // QR clear
		sc.reply(notReply)
		junk := make([]byte, 40) // good's ID, 5 questions that are not there
		binary.BigEndian.PutUint16(junk, good.Id)
		binary.BigEndian.PutUint16(junk[2:], 0x8180)
		binary.BigEndian.PutUint16(junk[4:], 5)
		sc.write(junk)
		sc.reply(answerA(good))
		sc.reply(answerA(bad))
	})
	opts := trusting()
	opts.MaxConns = 1 // both queries on one connection
	u := parseWith(t, "tls://"+srv.addr+"#dns.test", opts)
	type result struct {
		resp *dns.Msg
		err  error
	}
	badc := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
		defer cancel()
		resp, err := u.Exchange(ctx, question("bad.example.", dns.TypeA))
		badc <- result{resp, err}
	}()
	<-badSeen
	resp, err := exchange(t, u, 4*time.Second, question("good.example.", dns.TypeA))
	wantAnswer(t, resp, err)
	if resp.Answer[0].Header().Name != "good.example." {
		t.Errorf("good got %v", resp)
	}
	r := <-badc
	wantAnswer(t, r.resp, r.err)
	if r.resp.Answer[0].Header().Name != "bad.example." {
		t.Errorf("bad got %v", r.resp)
	}
	if n := srv.accepts.Load(); n != 1 {
		t.Errorf("connections: %d, want 1: junk must not break the connection", n)
	}
}

func TestDoTSlowReplyDoesNotBlockOthers(t *testing.T) {
	t.Parallel()
	slowSeen := make(chan struct{})
	srv := startDoT(t, testPKI().good, func(sc *srvConn, q *dns.Msg) {
		if q.Question[0].Name == "slow.example." {
			close(slowSeen) // and never answer
			return
		}
		sc.reply(answerA(q))
	})
	opts := trusting()
	opts.MaxConns = 1
	u := parseWith(t, "tls://"+srv.addr+"#dns.test", opts)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	slowErr := make(chan error, 1)
	go func() {
		_, err := u.Exchange(ctx, question("slow.example.", dns.TypeA))
		slowErr <- err
	}()
	<-slowSeen
	for range 3 {
		resp, err := exchange(t, u, 4*time.Second, question("fast.example.", dns.TypeA))
		wantAnswer(t, resp, err)
	}
	cancel()
	if err := <-slowErr; !errors.Is(err, context.Canceled) {
		t.Errorf("slow query: %v, want context.Canceled", err)
	}
	resp, err := exchange(t, u, 4*time.Second, question("fast.example.", dns.TypeA))
	wantAnswer(t, resp, err)
	if n := srv.accepts.Load(); n != 1 {
		t.Errorf("connections: %d, want 1", n)
	}
}

func TestDoTSilentConnectionIsReplaced(t *testing.T) {
	t.Parallel()
	// The first connection answers once, then goes silent (black-holed)
	// while staying open; later connections answer.
	srv := startDoT(t, testPKI().good, func(sc *srvConn, q *dns.Msg) {
		if sc.n == 1 && q.Question[0].Name != "first.example." {
			return
		}
		sc.reply(answerA(q))
	})
	u := parseWith(t, "tls://"+srv.addr+"#dns.test", trusting())
	resp, err := exchange(t, u, 4*time.Second, question("first.example.", dns.TypeA))
	wantAnswer(t, resp, err)
	if _, err := exchange(t, u, 200*time.Millisecond, question("lost.example.", dns.TypeA)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a timeout", err)
	}
	// Nothing was read on the connection since the lost query was sent:
	// it is retired, and the next query goes to a fresh one.
	resp, err = exchange(t, u, 4*time.Second, question("next.example.", dns.TypeA))
	wantAnswer(t, resp, err)
	if n := srv.accepts.Load(); n != 2 {
		t.Errorf("connections: %d, want 2", n)
	}
}

func TestDoTTimeoutIgnoresMismatchedReplies(t *testing.T) {
	t.Parallel()
	// Every reply but the first has the wrong question: the query times
	// out, saying so.
	srv := startDoT(t, testPKI().good, func(sc *srvConn, q *dns.Msg) {
		r := answerA(q)
		if q.Question[0].Name != "warm.example." {
			r.Question[0].Name = "other.example."
		}
		sc.reply(r)
	})
	u := parseWith(t, "tls://"+srv.addr+"#dns.test", trusting())
	resp, err := exchange(t, u, 4*time.Second, question("warm.example.", dns.TypeA)) // connected
	wantAnswer(t, resp, err)
	_, err = exchange(t, u, time.Second, question("q.example.", dns.TypeA))
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "ignored 1 non-matching") {
		t.Fatalf("err = %v, want a timeout that ignored 1 reply", err)
	}
}

func TestDoTIdleTimeout(t *testing.T) {
	t.Parallel()
	srv := startDoT(t, testPKI().good, echoDoT)
	opts := trusting()
	opts.IdleTimeout = 20 * time.Millisecond
	u := parseWith(t, "tls://"+srv.addr+"#dns.test", opts)
	resp, err := exchange(t, u, 4*time.Second, question("i.example.", dns.TypeA))
	wantAnswer(t, resp, err)
	select {
	case n := <-srv.gone:
		if n != 1 {
			t.Fatalf("connection %d ended, want 1", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the idle connection was not closed")
	}
	resp, err = exchange(t, u, 4*time.Second, question("i.example.", dns.TypeA))
	wantAnswer(t, resp, err)
	if n := srv.accepts.Load(); n != 2 {
		t.Errorf("connections: %d, want 2", n)
	}
}

func TestDoTClose(t *testing.T) {
	t.Parallel()
	hangSeen := make(chan struct{})
	srv := startDoT(t, testPKI().good, func(sc *srvConn, q *dns.Msg) {
		if q.Question[0].Name == "hang.example." {
			close(hangSeen)
			return
		}
		sc.reply(answerA(q))
	})
	u, err := upstream.Parse("tls://"+srv.addr+"#dns.test", trusting())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
			defer cancel()
			resp, err := u.Exchange(ctx, question("a.example.", dns.TypeA))
			if err != nil || len(resp.Answer) != 1 {
				t.Errorf("reply %v, %v", resp, err)
			}
		})
	}
	wg.Wait()
	if n := upstream.DoTGoroutines(u); n == 0 {
		t.Error("no connection goroutine running after queries")
	}
	hangErr := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err := u.Exchange(ctx, question("hang.example.", dns.TypeA))
		hangErr <- err
	}()
	<-hangSeen
	if err := u.(interface{ Close() error }).Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-hangErr; !errors.Is(err, net.ErrClosed) {
		t.Errorf("query in flight at Close: %v, want net.ErrClosed", err)
	}
	if n := upstream.DoTGoroutines(u); n != 0 {
		t.Errorf("%d connection goroutines still running after Close", n)
	}
	if _, err := exchange(t, u, time.Second, question("a.example.", dns.TypeA)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Exchange after Close: %v, want net.ErrClosed", err)
	}
	if err := u.(interface{ Close() error }).Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func BenchmarkExchangeDoT(b *testing.B) {
	addr, _ := startMiekgDoT(b, resolvertest.Echo())
	u := parseWith(b, "tls://"+addr+"#dns.test", trusting())
	m := question("bench.example.", dns.TypeA)
	m.SetEdns0(1232, false)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		tctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if _, err := u.Exchange(tctx, m); err != nil {
			b.Fatal(err)
		}
		cancel()
	}
}

func BenchmarkExchangeDoTParallel(b *testing.B) {
	srv := startDoT(b, testPKI().good, echoDoT)
	u := parseWith(b, "tls://"+srv.addr+"#dns.test", trusting())
	m := question("bench.example.", dns.TypeA)
	m.SetEdns0(1232, false)
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			if _, err := u.Exchange(ctx, m); err != nil {
				b.Error(err)
			}
			cancel()
		}
	})
	b.ReportMetric(float64(srv.accepts.Load()), "conns")
}

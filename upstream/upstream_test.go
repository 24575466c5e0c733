package upstream_test

import (
	"context"
	"errors"
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

func mustParse(t testing.TB, s string) upstream.Upstream {
	t.Helper()
	u, err := upstream.Parse(s, upstream.Options{})
	if err != nil {
		t.Fatalf("Parse(%q): %v", s, err)
	}
	return u
}

// exchange runs u.Exchange with a timeout and fails the test if it did not
// return well before the test's own deadline of 5s.
func exchange(t *testing.T, u upstream.Upstream, timeout time.Duration, m *dns.Msg) (*dns.Msg, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	resp, err := u.Exchange(ctx, m)
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("Exchange took %v, past the test deadline of 5s", el)
	}
	return resp, err
}

// onlyPadding reports whether the only EDNS option of opt is padding
// (RFC 7830), which encrypted upstreams add to every query.
func onlyPadding(opt *dns.OPT) bool {
	return len(opt.Option) == 1 && opt.Option[0].Option() == dns.EDNS0PADDING
}

func question(name string, qtype uint16) *dns.Msg {
	return new(dns.Msg).SetQuestion(name, qtype)
}

// parseCase is an upstream string and the name Parse gives it, or a part of
// the error it must return.
type parseCase struct {
	in      string
	want    string
	wantErr string
}

// checkParse runs Parse on every case.
func checkParse(t *testing.T, tests []parseCase) {
	t.Helper()
	for _, tc := range tests {
		u, err := upstream.Parse(tc.in, upstream.Options{})
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Parse(%q) = %v, %v; want error containing %q", tc.in, u, err, tc.wantErr)
			}
			continue
		}
		if err != nil || u.String() != tc.want {
			t.Errorf("Parse(%q) = %v, %v; want %s", tc.in, u, err, tc.want)
		}
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	checkParse(t, []parseCase{
		{in: "192.0.2.1", want: "udp://192.0.2.1:53"},
		{in: "192.0.2.1:5353", want: "udp://192.0.2.1:5353"},
		{in: "udp://192.0.2.1", want: "udp://192.0.2.1:53"},
		{in: "UDP://192.0.2.1:54", want: "udp://192.0.2.1:54"},
		{in: "tcp://192.0.2.1", want: "tcp://192.0.2.1:53"},
		{in: "tcp://[2001:db8::1]:5353", want: "tcp://[2001:db8::1]:5353"},
		{in: "[2001:db8::1]:5353", want: "udp://[2001:db8::1]:5353"},
		{in: "[2001:db8::1]", want: "udp://[2001:db8::1]:53"},
		{in: "2001:db8::1", want: "udp://[2001:db8::1]:53"},
		{in: "tls://192.0.2.1", want: "tls://192.0.2.1:853"},
		{in: "https://192.0.2.1/dns-query", want: "https://192.0.2.1/dns-query"},
		{in: "quic://192.0.2.1", wantErr: "unknown scheme"},
		{in: "dns.example", wantErr: "host names are not supported"},
		{in: "dns.example:53", wantErr: "host names are not supported"},
		{in: "tcp://dns.example", wantErr: "host names are not supported"},
		{in: "192.0.2.1:0", wantErr: "port 0"},
		{in: "192.0.2.1:65536", wantErr: "upstream"},
		{in: "[192.0.2.1]", wantErr: "not an IPv6 address"},
		{in: "", wantErr: "upstream"},
	})
}

// TestExchangeCaseRestoredAnyLength: the client's case comes back for a
// short name (whose copy for the check lives behind the query in its
// buffer) and for a long one (which has a buffer of its own).
func TestExchangeCaseRestoredAnyLength(t *testing.T) {
	t.Parallel()
	srv := resolvertest.StartUpstream(t, resolvertest.Answer("@ 60 IN A 192.0.2.10"))
	u := mustParse(t, srv.Addr())
	label := strings.Repeat("AbCdEfGhIj", 6) // 60 letters
	for _, name := range []string{"MiXeD.Example.", label + "." + label + "." + label + ".Example."} {
		m := question(name, dns.TypeA)
		for range 3 {
			resp, err := exchange(t, u, 2*time.Second, m)
			if err != nil {
				t.Fatalf("%d-byte name: %v", len(name), err)
			}
			if len(resp.Answer) != 1 || resp.Question[0].Name != name || resp.Answer[0].Header().Name != name {
				t.Fatalf("%d-byte name: reply %v; want the client's case", len(name), resp)
			}
			if got := srv.Last().Question[0].Name; !strings.EqualFold(got, name) {
				t.Fatalf("%d-byte name went out as %q", len(name), got)
			}
		}
	}
}

func TestExchangeForwardingFidelity(t *testing.T) {
	t.Parallel()
	srv := resolvertest.StartUpstream(t, resolvertest.Answer("@ 60 IN A 192.0.2.10"))
	u := mustParse(t, srv.Addr())

	m := question("MiXeD.Example.", dns.TypeA)
	m.Id = 4242
	m.CheckingDisabled = true
	m.AuthenticatedData = true
	m.SetEdns0(4096, true)
	opt := m.IsEdns0()
	opt.Option = append(opt.Option,
		&dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: net.IPv4(198, 51, 100, 0)},
		&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"})
	before := m.String()

	seenIDs := map[uint16]bool{}
	seenNames := map[string]bool{}
	for range 3 {
		resp, err := exchange(t, u, 2*time.Second, m)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Id != m.Id || resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 1 ||
			resp.Answer[0].(*dns.A).A.String() != "192.0.2.10" {
			t.Fatalf("reply: %v", resp)
		}
		got := srv.Last()
		seenIDs[got.Id] = true
		if !got.RecursionDesired || !got.CheckingDisabled || !got.AuthenticatedData || got.Opcode != dns.OpcodeQuery {
			t.Errorf("flags sent upstream: %v", got.MsgHdr)
		}
		if len(got.Question) != 1 || !strings.EqualFold(got.Question[0].Name, m.Question[0].Name) ||
			got.Question[0].Qtype != m.Question[0].Qtype || got.Question[0].Qclass != m.Question[0].Qclass {
			t.Errorf("question sent upstream: %v", got.Question)
		} else {
			seenNames[got.Question[0].Name] = true
		}
		// 0x20 is undone in the reply: the client's case everywhere.
		if resp.Question[0].Name != m.Question[0].Name || resp.Answer[0].Header().Name != m.Question[0].Name {
			t.Errorf("reply names %q, %q; want the client's %q", resp.Question[0].Name, resp.Answer[0].Header().Name, m.Question[0].Name)
		}
		if len(got.Answer)+len(got.Ns) != 0 || len(got.Extra) != 1 {
			t.Errorf("sections sent upstream: %v", got)
		}
		gotOpt := got.IsEdns0()
		if gotOpt == nil || gotOpt.UDPSize() != 1232 || !gotOpt.Do() || len(gotOpt.Option) != 0 || gotOpt.Version() != 0 {
			t.Errorf("OPT sent upstream: %v", gotOpt)
		}
	}
	if seenIDs[m.Id] && len(seenIDs) == 1 {
		t.Errorf("upstream IDs %v reuse the client's ID %d", seenIDs, m.Id)
	}
	if len(seenNames) < 2 {
		t.Errorf("3 queries went out as %v: the name's case is not randomized (0x20)", seenNames)
	}
	if len(seenIDs) < 2 {
		t.Errorf("3 upstream queries used the IDs %v; want fresh random IDs", seenIDs)
	}
	if m.String() != before {
		t.Errorf("Exchange modified the request:\n%s\nwas\n%s", m.String(), before)
	}
}

func TestExchangeNoClientEDNS(t *testing.T) {
	t.Parallel()
	srv := resolvertest.StartUpstream(t, resolvertest.NXDomain("example. 300 IN SOA ns.example. h.example. 1 2 3 4 5"))
	u := mustParse(t, "udp://"+srv.Addr())
	m := question("nx.example.", dns.TypeAAAA)
	m.RecursionDesired = false
	resp, err := exchange(t, u, 2*time.Second, m)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Rcode != dns.RcodeNameError || len(resp.Ns) != 1 || resp.Ns[0].Header().Rrtype != dns.TypeSOA {
		t.Fatalf("reply: %v", resp)
	}
	got := srv.Last()
	if got.RecursionDesired || got.CheckingDisabled {
		t.Errorf("flags sent upstream: %v", got.MsgHdr)
	}
	if opt := got.IsEdns0(); opt == nil || opt.UDPSize() != 1232 || opt.Do() {
		t.Errorf("OPT sent upstream: %v", opt)
	}
}

func TestExchangeIgnoresSpoofedReplies(t *testing.T) {
	t.Parallel()
	good := resolvertest.Answer("@ 60 IN A 192.0.2.11")
	srv := resolvertest.StartUpstream(t, resolvertest.All(
		resolvertest.WrongID(good), resolvertest.WrongQuestion(good), good))
	u := mustParse(t, srv.Addr())
	resp, err := exchange(t, u, 2*time.Second, question("spoof.example.", dns.TypeA))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Answer) != 1 || resp.Answer[0].(*dns.A).A.String() != "192.0.2.11" {
		t.Fatalf("reply: %v", resp)
	}
	if srv.UDPQueries() != 1 || srv.TCPQueries() != 0 {
		t.Errorf("queries udp=%d tcp=%d, want 1/0: the good reply must be read from the same socket",
			srv.UDPQueries(), srv.TCPQueries())
	}
}

func TestExchangeRejectsMismatch(t *testing.T) {
	t.Parallel()
	h := resolvertest.Answer("@ 60 IN A 192.0.2.12")
	tests := []struct {
		name    string
		up      string // scheme prefix
		handler dns.Handler
		wantErr error
		drop    string // the reason the reply is counted under
	}{
		{name: "udp_wrong_question", handler: resolvertest.WrongQuestion(h), wantErr: context.DeadlineExceeded, drop: "question"},
		{name: "udp_wrong_id", handler: resolvertest.WrongID(h), wantErr: context.DeadlineExceeded, drop: "id"},
		{name: "udp_other_type", handler: resolvertest.Func(func(r *dns.Msg) *dns.Msg {
			m := new(dns.Msg).SetReply(r)
			m.Question[0].Qtype = dns.TypeAAAA
			return m
		}), wantErr: context.DeadlineExceeded, drop: "question"},
		{name: "tcp_wrong_question", up: "tcp://", handler: resolvertest.WrongQuestion(h), wantErr: upstream.ErrMismatch},
		{name: "tcp_wrong_id", up: "tcp://", handler: resolvertest.WrongID(h), wantErr: upstream.ErrMismatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := resolvertest.StartUpstream(t, tc.handler)
			var mu sync.Mutex
			drops := map[string]int{}
			u, err := upstream.Parse(tc.up+srv.Addr(), upstream.Options{OnDrop: func(r string) { mu.Lock(); drops[r]++; mu.Unlock() }})
			if err != nil {
				t.Fatal(err)
			}
			resp, err := exchange(t, u, 300*time.Millisecond, question("q.example.", dns.TypeA))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("got %v, %v; want error %v", resp, err, tc.wantErr)
			}
			// A reply with the query's ID but another question is one the
			// query saw; one with another ID belongs to no query.
			if tc.drop == "question" && !strings.Contains(err.Error(), "ignored 1 non-matching") {
				t.Errorf("error %q does not say that a reply was ignored", err)
			}
			// On a busy machine the reply may be read after the query
			// gave up: give the socket's reader a moment.
			for deadline := time.Now().Add(2 * time.Second); tc.drop != "" && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
				mu.Lock()
				n := drops[tc.drop]
				mu.Unlock()
				if n > 0 {
					break
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if tc.drop != "" && (drops[tc.drop] != 1 || len(drops) != 1) {
				t.Errorf("drops %v, want %s=1", drops, tc.drop)
			}
		})
	}
}

// TestExchangeCaseExact: UDP queries go out with 0x20 (the name's letters
// in random case) and a reply must repeat that case exactly. A server that
// lowercases the question (as a forger who does not know the case would)
// is not answered, and the dropped replies are counted as "case"; the
// upstream option #no-0x20 is the fallback for such a server.
func TestExchangeCaseExact(t *testing.T) {
	t.Parallel()
	lower := resolvertest.Func(func(r *dns.Msg) *dns.Msg {
		m := new(dns.Msg).SetReply(r)
		m.Question[0].Name = strings.ToLower(m.Question[0].Name)
		return m
	})
	srv := resolvertest.StartUpstream(t, lower)
	var mu sync.Mutex
	drops := map[string]int{}
	onDrop := func(reason string) { mu.Lock(); drops[reason]++; mu.Unlock() }

	u, err := upstream.Parse(srv.Addr(), upstream.Options{OnDrop: onDrop})
	if err != nil {
		t.Fatal(err)
	}
	// 26 letters: the chance that 0x20 leaves all of them lower case is 2^-26.
	name := "abcdefghijklmnopqrstuvwxyz.example."
	if resp, err := exchange(t, u, 300*time.Millisecond, question(name, dns.TypeA)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a reply with the question lower-cased was accepted: %v %v", resp, err)
	}
	mu.Lock()
	if drops["case"] != 1 {
		t.Errorf("drops %v, want case=1", drops)
	}
	mu.Unlock()

	u = mustParse(t, srv.Addr()+"#"+upstream.NoCaseRandomization)
	if _, err := exchange(t, u, 2*time.Second, question("UPPER.Example.", dns.TypeA)); err != nil {
		t.Fatal(err)
	}
	if got := srv.Last().Question[0].Name; got != "UPPER.Example." {
		t.Errorf("with #no-0x20 the name went out as %q, want the client's", got)
	}
	for _, bad := range []string{"tcp://" + srv.Addr() + "#no-0x20", srv.Addr() + "#nocase"} {
		if _, err := upstream.Parse(bad, upstream.Options{}); err == nil {
			t.Errorf("Parse(%q) accepted an unknown option", bad)
		}
	}
}

func TestExchangeTruncatedRetriesOverTCP(t *testing.T) {
	t.Parallel()
	srv := resolvertest.StartUpstream(t, resolvertest.Truncated("@ 60 IN A 192.0.2.13", "@ 60 IN A 192.0.2.14"))
	u := mustParse(t, srv.Addr())
	m := question("big.example.", dns.TypeA)
	m.Id = 7
	resp, err := exchange(t, u, 2*time.Second, m)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Truncated || len(resp.Answer) != 2 || resp.Id != 7 {
		t.Fatalf("reply: %v", resp)
	}
	if srv.UDPQueries() != 1 || srv.TCPQueries() != 1 {
		t.Errorf("queries udp=%d tcp=%d, want 1/1", srv.UDPQueries(), srv.TCPQueries())
	}
}

func TestExchangeTCPOnly(t *testing.T) {
	t.Parallel()
	srv := resolvertest.StartUpstream(t, resolvertest.Echo())
	u := mustParse(t, "tcp://"+srv.Addr())
	resp, err := exchange(t, u, 2*time.Second, question("tcp.example.", dns.TypeA))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Answer) != 1 {
		t.Fatalf("reply: %v", resp)
	}
	if srv.UDPQueries() != 0 || srv.TCPQueries() != 1 {
		t.Errorf("queries udp=%d tcp=%d, want 0/1", srv.UDPQueries(), srv.TCPQueries())
	}
}

func TestExchangeConcurrent(t *testing.T) {
	t.Parallel()
	srv := resolvertest.StartUpstream(t, resolvertest.Echo())
	for _, scheme := range []string{"udp://", "tcp://"} {
		u := mustParse(t, scheme+srv.Addr())
		var wg sync.WaitGroup
		errs := make(chan error, 50)
		for i := range 50 {
			wg.Go(func() {
				name := dns.Fqdn(strings.Repeat("a", i+1) + ".example")
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				defer cancel()
				resp, err := u.Exchange(ctx, question(name, dns.TypeA))
				if err == nil && (len(resp.Answer) != 1 || resp.Answer[0].Header().Name != name) {
					err = errors.New("wrong answer for " + name + ": " + resp.String())
				}
				if err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("%s: %v", scheme, err)
		}
	}
}

func TestExchangeHonoursCancel(t *testing.T) {
	t.Parallel()
	for _, scheme := range []string{"udp://", "tcp://"} {
		t.Run(strings.TrimSuffix(scheme, "://"), func(t *testing.T) {
			t.Parallel()
			received := make(chan struct{}, 1)
			srv := resolvertest.StartUpstream(t, resolvertest.Func(func(*dns.Msg) *dns.Msg {
				received <- struct{}{}
				return nil
			}))
			u := mustParse(t, scheme+srv.Addr())
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			go func() { <-received; cancel() }()
			start := time.Now()
			_, err := u.Exchange(ctx, question("slow.example.", dns.TypeA))
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
			if el := time.Since(start); el > 5*time.Second {
				t.Fatalf("Exchange returned %v after start, past the test deadline", el)
			}
		})
	}
}

func TestExchangeBadRequest(t *testing.T) {
	t.Parallel()
	u := mustParse(t, "127.0.0.1:53") // never contacted
	if _, err := u.Exchange(context.Background(), new(dns.Msg)); !errors.Is(err, upstream.ErrBadRequest) {
		t.Fatalf("err = %v, want ErrBadRequest", err)
	}
}

func BenchmarkExchangeUDP(b *testing.B) {
	srv := resolvertest.StartUpstream(b, resolvertest.Echo())
	u := mustParse(b, srv.Addr())
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

// TestExchangeOversizedUDPReplyRetriesOverTCP: an upstream that ignores the
// UDP size we advertise and sends a datagram bigger than the 4 KB a query
// reads into: the query asks again over TCP and gets the whole answer.
func TestExchangeOversizedUDPReplyRetriesOverTCP(t *testing.T) {
	t.Parallel()
	srv := resolvertest.StartUpstream(t, resolvertest.Func(func(r *dns.Msg) *dns.Msg {
		m := new(dns.Msg)
		m.SetReply(r)
		for i := 0; i < 400; i++ {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
				A: net.IPv4(192, 0, byte(i>>8), byte(i)).To4()})
		}
		return m
	}))
	u := mustParse(t, srv.Addr())
	resp, err := exchange(t, u, 2*time.Second, question("huge.example.", dns.TypeA))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Truncated || len(resp.Answer) != 400 {
		t.Fatalf("reply: truncated %v, %d answers", resp.Truncated, len(resp.Answer))
	}
	if srv.UDPQueries() != 1 || srv.TCPQueries() != 1 {
		t.Errorf("queries udp=%d tcp=%d, want 1/1", srv.UDPQueries(), srv.TCPQueries())
	}
}

// TestExchangeOversizedForgeryIgnored: an oversized datagram is taken as a
// reason to ask again over TCP only when its header and question are those
// of the query; one with another ID is ignored like any forgery.
func TestExchangeOversizedForgeryIgnored(t *testing.T) {
	t.Parallel()
	huge := resolvertest.Func(func(r *dns.Msg) *dns.Msg {
		m := new(dns.Msg)
		m.SetReply(r)
		for i := 0; i < 400; i++ {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
				A: net.IPv4(192, 0, byte(i>>8), byte(i)).To4()})
		}
		return m
	})
	srv := resolvertest.StartUpstream(t, resolvertest.WrongID(huge))
	var drops atomic.Int64
	u, err := upstream.Parse(srv.Addr(), upstream.Options{OnDrop: func(string) { drops.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := exchange(t, u, 300*time.Millisecond, question("huge.example.", dns.TypeA)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, %v; want a timeout", resp, err)
	}
	if srv.TCPQueries() != 0 || drops.Load() != 1 {
		t.Errorf("tcp queries %d, drops %d; want 0 and 1", srv.TCPQueries(), drops.Load())
	}
}

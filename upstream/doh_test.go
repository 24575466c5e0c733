package upstream_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/upstream"
)

func TestDoHPostAndGet(t *testing.T) {
	t.Parallel()
	srv := startDoH(t, testPKI().good, echoDoH)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "https://"))
	tests := []struct {
		frag, method, host string
	}{
		{frag: "", method: http.MethodPost, host: "127.0.0.1:" + port},
		{frag: "#get", method: http.MethodGet, host: "127.0.0.1:" + port},
		{frag: "#dns.test", method: http.MethodPost, host: "dns.test:" + port},
		{frag: "#dns.test,get", method: http.MethodGet, host: "dns.test:" + port},
	}
	for _, tc := range tests {
		u := parseWith(t, srv.URL+"/dns-query"+tc.frag, trusting())
		m := question("DoH.Example.", dns.TypeA)
		m.Id = 777
		m.SetEdns0(4096, true)
		resp, err := exchange(t, u, 4*time.Second, m)
		wantAnswer(t, resp, err)
		if resp.Id != 777 || resp.Answer[0].Header().Name != "DoH.Example." {
			t.Errorf("%s: reply %v", u, resp)
		}
		req := srv.last()
		if req.method != tc.method || req.protoMajor != 2 || req.host != tc.host || req.accept != "application/dns-message" {
			t.Errorf("%s: request %s HTTP/%d Host %q Accept %q; want %s HTTP/2 Host %q",
				u, req.method, req.protoMajor, req.host, req.accept, tc.method, tc.host)
		}
		if req.msg.Id != 0 {
			t.Errorf("%s: query ID %d on the wire, want 0 (RFC 8484)", u, req.msg.Id)
		}
		if opt := req.msg.IsEdns0(); opt == nil || !opt.Do() || opt.UDPSize() != 1232 || !onlyPadding(opt) || req.msg.Len()%128 != 0 {
			t.Errorf("%s: OPT sent upstream (%d octets): %v", u, req.msg.Len(), opt)
		}
		if tc.method == http.MethodGet && (!strings.HasPrefix(req.rawQuery, "dns=") || strings.Count(req.rawQuery, "=") != 1) {
			t.Errorf("%s: GET query %q, want dns=<base64url without padding>", u, req.rawQuery)
		}
	}
}

func TestDoHConnectionReuse(t *testing.T) {
	t.Parallel()
	srv := startDoH(t, testPKI().good, echoDoH)
	u := parseWith(t, srv.URL+"/dns-query#dns.test", trusting())
	resp, err := exchange(t, u, 4*time.Second, question("first.example.", dns.TypeA))
	wantAnswer(t, resp, err)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			name := "c" + strconv.Itoa(i) + ".example."
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
			defer cancel()
			resp, err := u.Exchange(ctx, question(name, dns.TypeA))
			if err != nil || len(resp.Answer) != 1 || resp.Answer[0].Header().Name != name {
				t.Errorf("%s: %v, %v", name, resp, err)
			}
		})
	}
	wg.Wait()
	if n := srv.conns.Load(); n != 1 {
		t.Errorf("21 queries used %d connections, want 1 (HTTP/2 multiplexing)", n)
	}
}

func TestDoHErrors(t *testing.T) {
	t.Parallel()
	big := make([]byte, 70000)
	tests := []struct {
		name    string
		respond func(w http.ResponseWriter, q *dns.Msg)
		wantErr string
		wantIs  error
	}{
		{name: "status", respond: func(w http.ResponseWriter, _ *dns.Msg) {
			http.Error(w, "no", http.StatusInternalServerError)
		}, wantErr: "HTTP status 500"},
		{name: "redirect", respond: func(w http.ResponseWriter, _ *dns.Msg) {
			w.Header().Set("Location", "/elsewhere")
			w.WriteHeader(http.StatusFound)
		}, wantErr: "redirects are not followed"},
		{name: "content_type", respond: func(w http.ResponseWriter, q *dns.Msg) {
			b, _ := answerA(q).Pack()
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write(b)
		}, wantErr: "Content-Type"},
		{name: "oversized_declared", respond: func(w http.ResponseWriter, _ *dns.Msg) {
			w.Header().Set("Content-Type", "application/dns-message")
			w.Header().Set("Content-Length", strconv.Itoa(len(big)))
			_, _ = w.Write(big)
		}, wantErr: "larger than a DNS message"},
		{name: "oversized_streamed", respond: func(w http.ResponseWriter, _ *dns.Msg) {
			w.Header().Set("Content-Type", "application/dns-message")
			_, _ = w.Write(big[:1000])
			w.(http.Flusher).Flush()
			_, _ = w.Write(big[1000:])
		}, wantErr: "larger than a DNS message"},
		{name: "garbage", respond: func(w http.ResponseWriter, _ *dns.Msg) {
			w.Header().Set("Content-Type", "application/dns-message")
			_, _ = w.Write([]byte("hello, world"))
		}, wantIs: upstream.ErrMismatch},
		{name: "wrong_question", respond: func(w http.ResponseWriter, q *dns.Msg) {
			r := answerA(q)
			r.Question[0].Name = "other.example."
			writeDNS(w, r)
		}, wantIs: upstream.ErrMismatch},
		{name: "wrong_id", respond: func(w http.ResponseWriter, q *dns.Msg) {
			r := answerA(q)
			r.Id = 1
			writeDNS(w, r)
		}, wantIs: upstream.ErrMismatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := startDoH(t, testPKI().good, tc.respond)
			u := parseWith(t, srv.URL+"/dns-query", trusting())
			resp, err := exchange(t, u, 4*time.Second, question("e.example.", dns.TypeA))
			if err == nil {
				t.Fatalf("got %v, want an error", resp)
			}
			if tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("err = %v, want it to contain %q", err, tc.wantErr)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("err = %v, want %v", err, tc.wantIs)
			}
		})
	}
}

func TestDoHClose(t *testing.T) {
	t.Parallel()
	hangSeen, release := make(chan struct{}), make(chan struct{})
	srv := startDoH(t, testPKI().good, func(w http.ResponseWriter, q *dns.Msg) {
		if q.Question[0].Name == "hang.example." {
			close(hangSeen)
			<-release
			return
		}
		echoDoH(w, q)
	})
	t.Cleanup(func() { close(release) }) // before the server closes
	u, err := upstream.Parse(srv.URL+"/dns-query", trusting())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := exchange(t, u, 4*time.Second, question("a.example.", dns.TypeA))
	wantAnswer(t, resp, err)
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
	if err := <-hangErr; err == nil {
		t.Error("query in flight at Close succeeded")
	}
	if _, err := exchange(t, u, time.Second, question("a.example.", dns.TypeA)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Exchange after Close: %v, want net.ErrClosed", err)
	}
}

// TestCertificateVerification runs DoT and DoH against certificates that
// must be rejected, and accepted.
func TestCertificateVerification(t *testing.T) {
	t.Parallel()
	pki := testPKI()
	unknownCA := func() any { return new(x509.UnknownAuthorityError) }
	hostname := func() any { return new(x509.HostnameError) }
	tests := []struct {
		name   string
		cert   int // 0 good, 1 name only, 2 untrusted
		frag   string
		opts   upstream.Options
		wantAs func() any // a new error target; nil: must succeed
	}{
		{name: "trusted_servername", cert: 0, frag: "#dns.test", opts: trusting()},
		{name: "trusted_ip", cert: 0, opts: trusting()},
		{name: "servername_without_ip_san", cert: 1, frag: "#dns.test", opts: trusting()},
		{name: "untrusted_ca", cert: 2, frag: "#dns.test", opts: trusting(), wantAs: unknownCA},
		{name: "system_roots_by_default", cert: 0, frag: "#dns.test", opts: upstream.Options{Timeout: 4 * time.Second}, wantAs: unknownCA},
		{name: "servername_mismatch", cert: 0, frag: "#other.test", opts: trusting(), wantAs: hostname},
		{name: "ip_not_in_certificate", cert: 1, opts: trusting(), wantAs: hostname},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.opts.RootCAs == nil {
				// Load the system roots now: it is slow under -race, and
				// the handshake would load them within its timeout.
				if _, err := x509.SystemCertPool(); err != nil {
					t.Log(err)
				}
			}
			cert := []tls.Certificate{pki.good, pki.nameOnly, pki.untrusted}[tc.cert]
			dot := startDoT(t, cert, echoDoT)
			doh := startDoH(t, cert, echoDoH)
			for _, s := range []string{"tls://" + dot.addr + tc.frag, doh.URL + "/dns-query" + tc.frag} {
				u := parseWith(t, s, tc.opts)
				resp, err := exchange(t, u, 4*time.Second, question("v.example.", dns.TypeA))
				if tc.wantAs == nil {
					wantAnswer(t, resp, err)
					continue
				}
				if target := tc.wantAs(); err == nil || !errors.As(err, target) {
					t.Errorf("%s: got %v, %v; want a %T", s, resp, err, target)
				}
			}
			if tc.wantAs != nil && dot.queries.Load() != 0 {
				t.Error("the DoT server got a query over a rejected connection")
			}
		})
	}
}

func BenchmarkExchangeDoH(b *testing.B) {
	for _, method := range []string{"post", "get"} {
		b.Run(method, func(b *testing.B) {
			srv := startDoH(b, testPKI().good, echoDoH)
			u := parseWith(b, srv.URL+"/dns-query#dns.test,"+method, trusting())
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
		})
	}
}

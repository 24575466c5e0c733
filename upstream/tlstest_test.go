package upstream_test

// Test PKI and loopback DoT/DoH servers for the encrypted upstream tests.

import (
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/internal/testtool"
	"github.com/jurisdns/jurisdns/upstream"
)

// testPKI holds the certificates of the tests, made once.
type testPKIs struct {
	ca        *testtool.CA
	good      tls.Certificate // dns.test and 127.0.0.1, by ca
	nameOnly  tls.Certificate // dns.test only, by ca
	untrusted tls.Certificate // dns.test and 127.0.0.1, by another CA
}

var testPKI = sync.OnceValue(func() *testPKIs {
	ca, other := testtool.NewCA("jurisdns test CA"), testtool.NewCA("untrusted test CA")
	lo := []net.IP{net.IPv4(127, 0, 0, 1)}
	return &testPKIs{
		ca:        ca,
		good:      ca.Issue(testtool.Leaf{DNSNames: []string{"dns.test"}, IPs: lo}).TLS,
		nameOnly:  ca.Issue(testtool.Leaf{DNSNames: []string{"dns.test"}}).TLS,
		untrusted: other.Issue(testtool.Leaf{DNSNames: []string{"dns.test"}, IPs: lo}).TLS,
	}
})

// trusting returns Options that trust the test CA, with a dial timeout
// generous enough for a loaded test machine.
func trusting() upstream.Options {
	return upstream.Options{RootCAs: testPKI().ca.Pool, Timeout: 4 * time.Second}
}

func parseWith(t testing.TB, s string, opts upstream.Options) upstream.Upstream {
	t.Helper()
	u, err := upstream.Parse(s, opts)
	if err != nil {
		t.Fatalf("Parse(%q): %v", s, err)
	}
	if c, ok := u.(io.Closer); ok {
		t.Cleanup(func() { _ = c.Close() })
	}
	return u
}

// answerA returns a reply to q with one A record for its name.
func answerA(q *dns.Msg) *dns.Msg {
	r := new(dns.Msg).SetReply(q)
	r.Answer = append(r.Answer, &dns.A{
		Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
		A:   net.IPv4(192, 0, 2, 53),
	})
	return r
}

// dotServer is a loopback DNS-over-TLS server whose handler sees every
// query with its connection and decides what to write back, and when.
type dotServer struct {
	addr    string
	accepts atomic.Int32 // connections accepted
	gone    chan int     // numbers of the connections that ended
	handle  func(*srvConn, *dns.Msg)
	ln      net.Listener
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   map[*srvConn]bool
	dead    atomic.Bool // close every new connection at once
	queries atomic.Int32
}

// srvConn is one connection of a dotServer.
type srvConn struct {
	n  int // 1 for the first connection accepted, ...
	c  net.Conn
	mu sync.Mutex
}

// write sends b as one length-prefixed frame.
func (sc *srvConn) write(b []byte) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	f := binary.BigEndian.AppendUint16(nil, uint16(len(b)))
	_, _ = sc.c.Write(append(f, b...))
}

func (sc *srvConn) reply(m *dns.Msg) {
	b, err := m.Pack()
	if err != nil {
		panic(err)
	}
	sc.write(b)
}

func (sc *srvConn) close() { _ = sc.c.Close() }

// startDoT serves DoT on 127.0.0.1 with cert until the test ends. handle is
// called in the connection's read loop, in order.
func startDoT(t testing.TB, cert tls.Certificate, handle func(*srvConn, *dns.Msg)) *dotServer {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	s := &dotServer{addr: ln.Addr().String(), gone: make(chan int, 100), handle: handle, ln: ln, conns: map[*srvConn]bool{}}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			sc := &srvConn{n: int(s.accepts.Add(1)), c: c}
			if s.dead.Load() {
				_ = c.Close()
				continue
			}
			s.mu.Lock()
			s.conns[sc] = true
			s.mu.Unlock()
			s.wg.Add(1)
			go s.serve(sc)
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		s.mu.Lock()
		for sc := range s.conns {
			sc.close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *dotServer) serve(sc *srvConn) {
	defer s.wg.Done()
	defer func() {
		sc.close()
		s.mu.Lock()
		delete(s.conns, sc)
		s.mu.Unlock()
		select {
		case s.gone <- sc.n:
		default:
		}
	}()
	var l [2]byte
	for {
		if _, err := io.ReadFull(sc.c, l[:]); err != nil {
			return
		}
		b := make([]byte, binary.BigEndian.Uint16(l[:]))
		if _, err := io.ReadFull(sc.c, b); err != nil {
			return
		}
		q := new(dns.Msg)
		if err := q.Unpack(b); err != nil {
			return
		}
		s.queries.Add(1)
		s.handle(sc, q)
	}
}

// echoDoT answers every query at once.
func echoDoT(sc *srvConn, q *dns.Msg) { sc.reply(answerA(q)) }

// dohServer is a loopback DNS-over-HTTPS server (HTTP/2) that records the
// requests it gets.
type dohServer struct {
	*httptest.Server
	conns atomic.Int32 // connections accepted

	mu       sync.Mutex
	requests []dohRequest
}

type dohRequest struct {
	method, host, accept, rawQuery string
	protoMajor                     int
	msg                            *dns.Msg
}

func (s *dohServer) last() dohRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.requests) == 0 {
		return dohRequest{}
	}
	return s.requests[len(s.requests)-1]
}

// startDoH serves DoH at any path on 127.0.0.1 with cert until the test
// ends. respond writes the response to the query q (nil when the request
// was not a valid RFC 8484 request: respond answers 400 then).
func startDoH(t testing.TB, cert tls.Certificate, respond func(w http.ResponseWriter, q *dns.Msg)) *dohServer {
	t.Helper()
	s := &dohServer{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q, err := parseDoHRequest(r)
		s.mu.Lock()
		s.requests = append(s.requests, dohRequest{
			method: r.Method, host: r.Host, accept: r.Header.Get("Accept"),
			rawQuery: r.URL.RawQuery, protoMajor: r.ProtoMajor, msg: q,
		})
		s.mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		respond(w, q)
	}))
	s.EnableHTTP2 = true
	s.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // no TLS handshake noise
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

func parseDoHRequest(r *http.Request) (*dns.Msg, error) {
	var b []byte
	switch r.Method {
	case http.MethodGet:
		var err error
		if b, err = base64.RawURLEncoding.Strict().DecodeString(r.URL.Query().Get("dns")); err != nil {
			return nil, err
		}
	case http.MethodPost:
		if r.Header.Get("Content-Type") != "application/dns-message" {
			return nil, errors.New("bad content type")
		}
		var err error
		if b, err = io.ReadAll(io.LimitReader(r.Body, 65536)); err != nil {
			return nil, err
		}
	default:
		return nil, errors.New("bad method")
	}
	q := new(dns.Msg)
	if err := q.Unpack(b); err != nil {
		return nil, err
	}
	return q, nil
}

// writeDNS writes m as an RFC 8484 response.
func writeDNS(w http.ResponseWriter, m *dns.Msg) {
	b, err := m.Pack()
	if err != nil {
		panic(err)
	}
	w.Header().Set("Content-Type", "application/dns-message")
	_, _ = w.Write(b)
}

// echoDoH answers every query.
func echoDoH(w http.ResponseWriter, q *dns.Msg) { writeDNS(w, answerA(q)) }

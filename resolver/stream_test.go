package resolver_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/config"
	"github.com/jurisdns/jurisdns/internal/testtool"
	"github.com/jurisdns/jurisdns/resolver/resolvertest"
)

// startEncrypted is start with DoT and DoH served too; the returned pool
// trusts the server's certificate.
func startEncrypted(t testing.TB, upstreams []string, mutate func(*config.Config)) (*harness, *x509.CertPool) {
	t.Helper()
	ca := testtool.NewCA("resolver test CA")
	leaf := ca.Issue(testtool.Leaf{DNSNames: []string{"resolver.test"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	return startWith(t, upstreams, mutate, &leaf.TLS), ca.Pool
}

// streamClient is one client connection of a stream transport (TCP or
// DoT) that exchanges raw messages.
type streamClient struct {
	c net.Conn
}

func dialStream(t testing.TB, netw, addr string, roots *x509.CertPool) *streamClient {
	t.Helper()
	var c net.Conn
	var err error
	if netw == "dot" {
		c, err = tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: "resolver.test", NextProtos: []string{"dot"}})
	} else {
		c, err = net.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &streamClient{c: c}
}

// exchange sends the raw query and returns the raw reply.
func (sc *streamClient) exchange(t testing.TB, pkt []byte) []byte {
	t.Helper()
	_ = sc.c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := sc.c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(pkt))), pkt...)); err != nil {
		t.Fatal(err)
	}
	return sc.read(t)
}

func (sc *streamClient) read(t testing.TB) []byte {
	t.Helper()
	var l [2]byte
	if _, err := io.ReadFull(sc.c, l[:]); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(sc.c, b); err != nil {
		t.Fatal(err)
	}
	return b
}

// dohExchange POSTs the raw query to the DoH endpoint at addr and returns
// the raw reply.
func dohExchange(t testing.TB, c *http.Client, addr string, pkt []byte) []byte {
	t.Helper()
	resp, err := c.Post("https://"+addr+"/dns-query", "application/dns-message", bytes.NewReader(pkt))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("doh: %s: %s", resp.Status, b)
	}
	return b
}

func dohClient(roots *x509.CertPool) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots, ServerName: "resolver.test"},
		ForceAttemptHTTP2: true,
	}}
}

// cpuTime is the CPU time (user and system) the process has used.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkDoTHit measures cache hits over one DoT connection on loopback,
// 32 queries in flight (as dnsperf keeps them), server and client in this
// process. cpu-ns/op is the CPU of both per query: the server's share is
// what changes between versions.
func BenchmarkDoTHit(b *testing.B) {
	benchStreamHit(b, "dot")
}

// BenchmarkTCPHit is BenchmarkDoTHit over plain TCP.
func BenchmarkTCPHit(b *testing.B) {
	benchStreamHit(b, "tcp")
}

func benchStreamHit(b *testing.B, netw string) {
	up := resolvertest.StartUpstream(b, resolvertest.Echo())
	h, roots := startEncrypted(b, []string{up.Addr()}, nil)
	addr := h.addr
	if netw == "dot" {
		addr = h.dot
	}
	m := new(dns.Msg)
	m.SetQuestion("hit.example.", dns.TypeA)
	m.SetEdns0(1232, false)
	pkt, _ := m.Pack()
	sc := dialStream(b, netw, addr, roots)
	if r := sc.exchange(b, pkt); len(r) < 12 || r[3]&0xF != 0 {
		b.Fatalf("warm-up reply %x", r)
	}
	const window = 32
	frame := append(binary.BigEndian.AppendUint16(nil, uint16(len(pkt))), pkt...)
	_ = sc.c.SetDeadline(time.Now().Add(time.Minute))
	tokens := make(chan struct{}, window)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the reader: every answer
		defer wg.Done()
		var l [2]byte
		buf := make([]byte, 4096)
		for i := 0; i < b.N; i++ {
			if _, err := io.ReadFull(sc.c, l[:]); err != nil {
				b.Error(err)
				return
			}
			if _, err := io.ReadFull(sc.c, buf[:binary.BigEndian.Uint16(l[:])]); err != nil {
				b.Error(err)
				return
			}
			<-tokens
		}
	}()
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime(b)
	var batch []byte
	for sent := 0; sent < b.N; {
		// As many queries as the window has room for, in one write.
		batch = batch[:0]
		tokens <- struct{}{}
		batch = append(batch, frame...)
		sent++
		for more := true; more && sent < b.N; {
			select {
			case tokens <- struct{}{}:
				batch = append(batch, frame...)
				sent++
			default:
				more = false
			}
		}
		if _, err := sc.c.Write(batch); err != nil {
			b.Fatal(err)
		}
	}
	wg.Wait()
	b.ReportMetric(float64(cpuTime(b)-cpu)/float64(b.N), "cpu-ns/op")
}

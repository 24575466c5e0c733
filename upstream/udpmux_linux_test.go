//go:build linux

package upstream

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

// TestMuxCountsOverflow: replies the kernel drops because a socket's receive
// buffer is full are counted as dropped, reason "overflow" (SO_RXQ_OVFL),
// when the reader next gets a datagram: every datagram sent is either read
// (here dropped as "id": no query waits for it) or counted as an overflow.
func TestMuxCountsOverflow(t *testing.T) {
	t.Parallel()
	srv, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var (
		mu     sync.Mutex
		counts = map[string]int{}
	)
	m := &udpMux{raddr: srv.LocalAddr().(*net.UDPAddr).AddrPort(), onDrop: func(reason string) {
		mu.Lock()
		counts[reason]++
		mu.Unlock()
	}}
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(m.raddr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()        // ends the reader
	_ = c.SetReadBuffer(1) // the kernel's least: a few datagrams
	countOverflows(c)
	s := &muxSock{mux: m, c: c, born: time.Now()}
	// With nothing reading yet, most of these are dropped by the kernel.
	const burst = 200
	reply := make([]byte, 200)
	reply[2] = 0x80
	to := c.LocalAddr().(*net.UDPAddr).AddrPort()
	send := func() {
		if _, err := srv.WriteToUDPAddrPort(reply, to); err != nil {
			t.Fatal(err)
		}
	}
	for range burst {
		send()
	}
	go s.read()
	// The last datagram, sent once the reader drained the buffer, carries
	// the socket's drop count.
	time.Sleep(50 * time.Millisecond)
	send()
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		overflow, id := counts["overflow"], counts["id"]
		mu.Unlock()
		if overflow+id == burst+1 && overflow > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %d datagrams: overflow %d, id %d; want overflow > 0 and a sum of %d", burst+1, overflow, id, burst+1)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestMuxBurstAccounted: a server that holds a thousand queries and then
// answers them all at once. Every query that fails must be accounted for:
// its query never reached the server, or its reply was dropped by the
// kernel and counted as an "overflow". With a tiny receive buffer some
// replies are dropped (and counted); with the one the multiplexer asks for
// (when the kernel grants it), none fail.
func TestMuxBurstAccounted(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		rcvbuf int
	}{{"tiny", 1}, {"default", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const n = 1000
			srv, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			_ = srv.SetReadBuffer(8 << 20)
			var received atomic.Int64
			go func() {
				type query struct {
					pkt  []byte
					from netip.AddrPort
				}
				var held []query
				buf := make([]byte, 512)
				for len(held) < n {
					_ = srv.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
					k, from, err := srv.ReadFromUDPAddrPort(buf)
					if err != nil {
						break // quiet for 500ms: some queries were lost on the way
					}
					held = append(held, query{append([]byte(nil), buf[:k]...), from})
				}
				received.Store(int64(len(held)))
				for _, q := range held {
					q.pkt[2] |= 0x80
					_, _ = srv.WriteToUDPAddrPort(q.pkt, q.from)
				}
			}()
			var (
				mu     sync.Mutex
				counts = map[string]int{}
			)
			up, err := Parse(srv.LocalAddr().String(), Options{OnDrop: func(reason string) {
				mu.Lock()
				counts[reason]++
				mu.Unlock()
			}})
			if err != nil {
				t.Fatal(err)
			}
			u := up.(*server)
			u.mux.rcvbuf = tc.rcvbuf
			var (
				wg       sync.WaitGroup
				failures atomic.Int64
			)
			for i := range n {
				wg.Go(func() {
					m := new(dns.Msg)
					m.SetQuestion(fmt.Sprintf("b%d.burst.example.", i), dns.TypeA)
					if _, err := u.exchangeBy(context.Background(), m, time.Now(), time.Now().Add(1500*time.Millisecond)); err != nil {
						failures.Add(1)
					}
				})
			}
			wg.Wait()
			_ = u.Close() // every socket is idle: closed now, its drops counted
			mu.Lock()
			defer mu.Unlock()
			lost := int(n - received.Load())
			t.Logf("%d queries: %d failed, %d never reached the server, %d replies dropped as overflow; other drops %v",
				n, failures.Load(), lost, counts["overflow"], counts)
			if int(failures.Load()) != lost+counts["overflow"] {
				t.Errorf("%d queries failed, but %d never reached the server and %d replies were counted as overflow",
					failures.Load(), lost, counts["overflow"])
			}
			if tc.rcvbuf == 1 && counts["overflow"] == 0 {
				t.Errorf("no overflow with a tiny receive buffer: the test shows nothing")
			}
			if tc.rcvbuf == 0 && grantedRcvbuf(t) >= muxReadBuffer && failures.Load() != 0 {
				t.Errorf("%d of %d queries failed with a %d-byte receive buffer", failures.Load(), n, muxReadBuffer)
			}
		})
	}
}

// grantedRcvbuf is the receive buffer the kernel grants a socket that asks
// for muxReadBuffer (half of what SO_RCVBUF reports: Linux doubles it).
func grantedRcvbuf(t *testing.T) int {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadBuffer(muxReadBuffer)
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	_ = rc.Control(func(fd uintptr) { v, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF) })
	return v / 2
}

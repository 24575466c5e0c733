//go:build linux

package upstream

import (
	"net"
	"sync"
	"testing"
	"time"
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
	s := &muxSock{mux: m, c: c, pending: map[uint16]*pendingQuery{}, born: time.Now()}
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

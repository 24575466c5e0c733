//go:build linux

package udpsock

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func listen(t *testing.T, network, addr string) (*net.UDPConn, int) {
	t.Helper()
	c, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		t.Skipf("no %s socket here: %v", network, err)
	}
	rc, _ := c.SyscallConn()
	fd := -1
	_ = rc.Control(func(s uintptr) { fd = int(s) })
	return c, fd
}

func taken(t *testing.T, c *net.UDPConn) *sock {
	t.Helper()
	s, ok := Take(c).(*sock)
	if !ok {
		t.Fatal("Take returned the net.UDPConn: the socket was not taken")
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// watchers lists, for every epoll set of this process, the descriptors it
// watches (from /proc/self/fdinfo): epoll fd → watched fds.
func watchers(t *testing.T) map[int][]int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	out := map[int][]int{}
	for _, e := range ents {
		if l, _ := os.Readlink("/proc/self/fd/" + e.Name()); l != "anon_inode:[eventpoll]" {
			continue
		}
		ep, _ := strconv.Atoi(e.Name())
		info, err := os.ReadFile("/proc/self/fdinfo/" + e.Name())
		if err != nil {
			continue
		}
		out[ep] = []int{}
		for _, line := range strings.Split(string(info), "\n") {
			var tfd int
			if _, err := fmt.Sscanf(line, "tfd: %d", &tfd); err == nil {
				out[ep] = append(out[ep], tfd)
			}
		}
	}
	return out
}

func watched(t *testing.T, fd int) []int {
	var eps []int
	for ep, fds := range watchers(t) {
		for _, f := range fds {
			if f == fd {
				eps = append(eps, ep)
			}
		}
	}
	return eps
}

// recvOne is a RawConn Read function: one datagram into buf, false (wait)
// when none is there; with force its first call says "not ready" without
// reading, so that the wait path runs even when the datagram is there
// already.
type recvOne struct {
	buf   []byte
	n     int
	calls int
	force bool // the first call reports "not ready" without reading
}

func (r *recvOne) read(fd uintptr) bool {
	r.calls++
	if r.force && r.calls == 1 {
		return false
	}
	n, _, err := unix.Recvfrom(int(fd), r.buf, unix.MSG_DONTWAIT)
	if err == unix.EAGAIN {
		return false
	}
	r.n = n
	return true
}

func TestTakenSocketIsInNoEpollSetWhileBusy(t *testing.T) {
	c, orig := listen(t, "udp4", "127.0.0.1:0")
	// A net.UDPConn is in Go's poller from the start: the premise.
	if len(watched(t, orig)) == 0 {
		t.Fatalf("fd %d of a net.UDPConn is in no epoll set: %v", orig, watchers(t))
	}
	s := taken(t, c)
	if eps := watched(t, orig); len(eps) != 0 {
		t.Fatalf("after Take the old fd %d is still watched by %v", orig, eps)
	}
	if eps := watched(t, s.fd); len(eps) != 0 {
		t.Fatalf("the taken socket (fd %d) is watched by %v before anyone waits", s.fd, eps)
	}
	// A reader waits: the socket is in its waiter's set, and only then.
	r := &recvOne{buf: make([]byte, 512)}
	rc, _ := s.SyscallConn()
	done := make(chan error, 1)
	go func() { done <- rc.Read(r.read) }()
	deadline := time.Now().Add(10 * time.Second)
	for len(watched(t, s.fd)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the waiting reader's socket never joined an epoll set")
		}
		time.Sleep(time.Millisecond)
	}
	cl, err := net.DialUDP("udp4", nil, s.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := cl.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if string(r.buf[:r.n]) != "hello" {
		t.Fatalf("read %q", r.buf[:r.n])
	}
	if eps := watched(t, s.fd); len(eps) != 0 {
		t.Fatalf("after the wait the socket is still watched by %v", eps)
	}
	// Busy: datagrams sent and received leave it out of every set.
	for i := 0; i < 100; i++ {
		if _, err := s.WriteToUDPAddrPort([]byte("x"), cl.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
			t.Fatal(err)
		}
	}
	if eps := watched(t, s.fd); len(eps) != 0 {
		t.Fatalf("a sending socket is watched by %v", eps)
	}
}

// A datagram that came between the caller's EAGAIN and the wait is not
// missed: the wait begins before the socket joins the set, so its
// readiness at joining wakes it.
func TestWaitSeesDatagramThatCameBefore(t *testing.T) {
	c, _ := listen(t, "udp4", "127.0.0.1:0")
	s := taken(t, c)
	cl, err := net.DialUDP("udp4", nil, s.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	rc, _ := s.SyscallConn()
	for i := 0; i < 50; i++ {
		if _, err := cl.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		r := &recvOne{buf: make([]byte, 16), force: true}
		done := make(chan error, 1)
		go func() { done <- rc.Read(r.read) }()
		select {
		case err := <-done:
			if err != nil || r.n != 1 || r.buf[0] != byte(i) {
				t.Fatalf("round %d: err %v, read %v", i, err, r.buf[:r.n])
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("round %d: the wait missed a datagram queued before it", i)
		}
	}
}

func TestDeadlineAndCloseEndWaits(t *testing.T) {
	c, _ := listen(t, "udp4", "127.0.0.1:0")
	s := taken(t, c)
	rc, _ := s.SyscallConn()
	r := &recvOne{buf: make([]byte, 16)}
	done := make(chan error, 1)
	go func() { done <- rc.Read(r.read) }()
	for len(watched(t, s.fd)) == 0 {
		time.Sleep(time.Millisecond)
	}
	_ = s.SetReadDeadline(time.Now())
	if err := <-done; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a waiting read after SetReadDeadline(now): %v, want os.ErrDeadlineExceeded", err)
	}
	// A read that would find a datagram returns at once past the deadline.
	cl, _ := net.DialUDP("udp4", nil, s.LocalAddr().(*net.UDPAddr))
	defer cl.Close()
	_, _ = cl.Write([]byte("late"))
	if _, _, err := s.ReadFromUDPAddrPort(make([]byte, 16)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a read past the deadline: %v", err)
	}
	_ = s.SetReadDeadline(time.Time{})
	if n, _, err := s.ReadFromUDPAddrPort(make([]byte, 16)); err != nil || n != 4 {
		t.Fatalf("deadline cleared: %d, %v", n, err)
	}
	go func() { done <- rc.Read(r.read) }()
	for len(watched(t, s.fd)) == 0 {
		time.Sleep(time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("a waiting read after Close: %v, want net.ErrClosed", err)
	}
	if err := rc.Control(func(uintptr) {}); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Control after Close: %v", err)
	}
	if _, err := s.WriteToUDPAddrPort([]byte("x"), cl.LocalAddr().(*net.UDPAddr).AddrPort()); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after Close: %v", err)
	}
	if err := s.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
}

func TestSendAndReceiveBothFamilies(t *testing.T) {
	for _, tc := range []struct{ network, addr, peer string }{
		{"udp4", "127.0.0.1:0", "127.0.0.1:0"},
		{"udp6", "[::1]:0", "[::1]:0"},
		{"udp", "[::]:0", "127.0.0.1:0"}, // dual stack: IPv4 clients IPv4-mapped
	} {
		t.Run(tc.network+" "+tc.addr, func(t *testing.T) {
			c, _ := listen(t, tc.network, tc.addr)
			s := taken(t, c)
			peer, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(tc.peer)))
			if err != nil {
				t.Skip(err)
			}
			defer peer.Close()
			port := s.LocalAddr().(*net.UDPAddr).Port
			to := netip.AddrPortFrom(peer.LocalAddr().(*net.UDPAddr).AddrPort().Addr(), uint16(port))
			if _, err := peer.WriteToUDPAddrPort([]byte("query"), to); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 64)
			n, from, err := s.ReadFromUDPAddrPort(buf)
			if err != nil || string(buf[:n]) != "query" {
				t.Fatalf("read %q, %v", buf[:n], err)
			}
			if from.Addr().Unmap() != peer.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap() || int(from.Port()) != peer.LocalAddr().(*net.UDPAddr).Port {
				t.Fatalf("from %v, want %v", from, peer.LocalAddr())
			}
			if _, err := s.WriteToUDPAddrPort([]byte("answer"), from); err != nil {
				t.Fatal(err)
			}
			_ = peer.SetReadDeadline(time.Now().Add(10 * time.Second))
			n, _, err = peer.ReadFromUDPAddrPort(buf)
			if err != nil || string(buf[:n]) != "answer" {
				t.Fatalf("peer read %q, %v", buf[:n], err)
			}
		})
	}
}

func TestConnectedSocket(t *testing.T) {
	srv, _ := listen(t, "udp4", "127.0.0.1:0")
	defer srv.Close()
	c, err := net.DialUDP("udp4", nil, srv.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	s := taken(t, c)
	if _, err := s.WriteToUDPAddrPort([]byte("up"), srv.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	_ = srv.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, from, err := srv.ReadFromUDPAddrPort(buf)
	if err != nil || string(buf[:n]) != "up" {
		t.Fatalf("%q %v", buf[:n], err)
	}
	if _, err := srv.WriteToUDPAddrPort([]byte("down"), from); err != nil {
		t.Fatal(err)
	}
	n, _, err = s.ReadFromUDPAddrPort(buf)
	if err != nil || string(buf[:n]) != "down" {
		t.Fatalf("%q %v", buf[:n], err)
	}
	// An IPv6 destination on an IPv4 socket is refused, not sent.
	if _, err := s.WriteToUDPAddrPort([]byte("x"), netip.MustParseAddrPort("[2001:db8::1]:53")); err == nil {
		t.Fatal("IPv6 address on an IPv4 socket accepted")
	}
}

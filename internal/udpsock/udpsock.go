// Package udpsock takes UDP sockets out of Go's network poller.
//
// Go's poller keeps every socket it serves in its epoll set, for reading and
// writing at once, for the socket's whole life. The kernel then runs the
// poller's wake-up callback for every datagram the socket sends (the send
// buffer frees: EPOLLOUT) and receives: two lock pairs with interrupts off,
// per datagram, whether anyone waits or not: on a busy DNS socket, a large
// share of a cached answer's CPU (bench/cpu.sh compares builds).
//
// A socket taken by Take is in no epoll set while it is busy. A caller that
// finds it not ready (EAGAIN) adds it to a small epoll set of its own, which
// Go's poller watches, waits there, and removes it again: two epoll_ctl calls
// per wait instead of a callback per datagram.
package udpsock

import (
	"net"
	"net/netip"
	"syscall"
	"time"
)

// Conn is what the DNS servers and the upstream client use of a UDP socket.
// *net.UDPConn is one; Take returns another where it can.
type Conn interface {
	syscall.Conn
	LocalAddr() net.Addr
	Close() error
	// SetReadDeadline makes reads waiting or starting after t return
	// os.ErrDeadlineExceeded (the zero time: no deadline).
	SetReadDeadline(t time.Time) error
	ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error)
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
}

var _ Conn = (*net.UDPConn)(nil)

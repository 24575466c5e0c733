//go:build linux

package udpsock

import (
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// Take returns a Conn on c's socket outside Go's poller, and closes c (the
// socket stays open: Take holds a copy of its descriptor). If that cannot
// be done, it returns c as it was.
func Take(c *net.UDPConn) Conn {
	s, err := take(c)
	if err != nil {
		return c
	}
	_ = c.Close() // leaves Go's poller; the socket stays open through s.fd
	return s
}

// sock is a UDP socket outside Go's poller. Each use of its descriptor (one
// non-blocking call) holds mu's read lock, so that Close (the write lock)
// never closes it under a call, nor lets its number be reused by another
// file while a call is about to use it.
type sock struct {
	mu     sync.RWMutex
	fd     int // -1 once closed
	inet6  bool
	laddr  net.Addr
	rd, wr *waiter
	// deadline is the read deadline in Unix nanoseconds, 0 for none.
	deadline atomic.Int64
}

func take(c *net.UDPConn) (*sock, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var (
		fd     = -1
		domain int
		derr   error
	)
	if err := rc.Control(func(s uintptr) {
		if domain, derr = unix.GetsockoptInt(int(s), unix.SOL_SOCKET, unix.SO_DOMAIN); derr == nil {
			fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0)
		}
	}); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, os.NewSyscallError("fcntl", derr)
	}
	s := &sock{fd: fd, inet6: domain == unix.AF_INET6, laddr: c.LocalAddr()}
	if s.rd, err = newWaiter(unix.EPOLLIN); err == nil {
		if s.wr, err = newWaiter(unix.EPOLLOUT); err != nil {
			_ = s.rd.ep.Close()
		}
	}
	if err != nil {
		_ = unix.Close(fd)
		return nil, err
	}
	return s, nil
}

// waiter waits for a socket to be ready for events (EPOLLIN or EPOLLOUT):
// the socket joins ep, an epoll set of the waiter's own that Go's poller
// watches, for the wait only.
type waiter struct {
	mu     sync.Mutex // one wait at a time: the socket joins ep once
	ep     *os.File
	rc     syscall.RawConn // ep's
	events uint32
	// What ready (made once: a method value allocates) and wait share,
	// under mu.
	ready   func(uintptr) bool
	leave   func(uintptr)
	s       *sock
	joined  bool
	joinErr error
}

func newWaiter(events uint32) (*waiter, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil { // so that os.NewFile hands it to Go's poller
		_ = unix.Close(fd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	w := &waiter{ep: os.NewFile(uintptr(fd), "udpsock-epoll"), events: events}
	if w.rc, err = w.ep.SyscallConn(); err != nil {
		_ = w.ep.Close()
		return nil, err
	}
	w.ready, w.leave = w.readyOnce, w.leaveEp
	return w, nil
}

// readyOnce is w.rc.Read's function. Its first call adds the socket to ep
// and says "not ready": Read then waits for ep in Go's poller. It joins
// there and not before Read, because Read forgets readiness Go's poller saw
// before it began: a socket ready as it joined would be missed. The next
// call says ready: the socket had an event (or Read returned first).
func (w *waiter) readyOnce(ep uintptr) bool {
	if w.joined {
		return true
	}
	w.joined = true
	w.joinErr = w.s.ctl(int(ep), unix.EPOLL_CTL_ADD, w.events)
	return w.joinErr != nil
}

// leaveEp takes the socket out of ep again.
func (w *waiter) leaveEp(ep uintptr) { _ = w.s.ctl(int(ep), unix.EPOLL_CTL_DEL, 0) }

// wait returns when s may be ready for w.events (the caller tries again),
// or with the error that ended the wait: net.ErrClosed, or
// os.ErrDeadlineExceeded after SetReadDeadline.
func (w *waiter) wait(s *sock) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.s, w.joined, w.joinErr = s, false, nil
	err := w.rc.Read(w.ready)
	if w.joined && w.joinErr == nil {
		_ = w.rc.Control(w.leave)
	}
	w.s = nil
	switch {
	case w.joinErr != nil:
		return w.joinErr
	case err == nil:
		return nil
	case os.IsTimeout(err):
		return os.ErrDeadlineExceeded
	default:
		return net.ErrClosed // ep is closed with the socket
	}
}

// ctl adds the socket to ep or removes it (op). A closed socket is in no
// set: it reports net.ErrClosed.
func (s *sock) ctl(ep, op int, events uint32) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.fd < 0 {
		return net.ErrClosed
	}
	err := unix.EpollCtl(ep, op, s.fd, &unix.EpollEvent{Events: events, Fd: int32(s.fd)})
	if err == unix.EEXIST {
		err = nil
	}
	if err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	return nil
}

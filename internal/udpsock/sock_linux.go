//go:build linux

package udpsock

import (
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// raw is a sock's syscall.RawConn: Read and Write call f with the socket's
// descriptor until f returns true, waiting for the socket between calls
// (f's calls must not block: pass MSG_DONTWAIT).
type raw struct{ s *sock }

func (s *sock) SyscallConn() (syscall.RawConn, error) { return raw{s}, nil }

func (r raw) Control(f func(fd uintptr)) error {
	r.s.mu.RLock()
	defer r.s.mu.RUnlock()
	if r.s.fd < 0 {
		return net.ErrClosed
	}
	f(uintptr(r.s.fd))
	return nil
}

func (r raw) Read(f func(fd uintptr) bool) error {
	if err := r.s.readDeadline(); err != nil {
		return err
	}
	return r.s.io(r.s.rd, f)
}

func (r raw) Write(f func(fd uintptr) bool) error { return r.s.io(r.s.wr, f) }

// io calls f until it returns true, and waits with w between calls.
func (s *sock) io(w *waiter, f func(fd uintptr) bool) error {
	for {
		s.mu.RLock()
		if s.fd < 0 {
			s.mu.RUnlock()
			return net.ErrClosed
		}
		done := f(uintptr(s.fd))
		s.mu.RUnlock()
		if done {
			return nil
		}
		if err := w.wait(s); err != nil {
			return err
		}
	}
}

// readDeadline is os.ErrDeadlineExceeded once the read deadline passed.
func (s *sock) readDeadline() error {
	if d := s.deadline.Load(); d != 0 && time.Now().UnixNano() >= d {
		return os.ErrDeadlineExceeded
	}
	return nil
}

func (s *sock) LocalAddr() net.Addr { return s.laddr }

// Close closes the socket and ends every wait on it.
func (s *sock) Close() error {
	s.mu.Lock()
	if s.fd < 0 {
		s.mu.Unlock()
		return net.ErrClosed
	}
	err := unix.Close(s.fd)
	s.fd = -1
	s.mu.Unlock()
	_ = s.rd.ep.Close()
	_ = s.wr.ep.Close()
	if err != nil {
		return os.NewSyscallError("close", err)
	}
	return nil
}

func (s *sock) SetReadDeadline(t time.Time) error {
	var d int64
	if !t.IsZero() {
		d = max(t.UnixNano(), 1)
	}
	s.deadline.Store(d)
	return s.rd.ep.SetReadDeadline(t) // ends a wait going on
}

func (s *sock) WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	to, err := s.sockaddr(addr)
	if err != nil {
		return 0, err
	}
	var serr error
	err = s.io(s.wr, func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), b, unix.MSG_DONTWAIT, to)
		return serr != unix.EAGAIN
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return 0, &net.OpError{Op: "write", Net: "udp", Source: s.laddr, Err: wrapErrno("sendto", err)}
	}
	return len(b), nil
}

func (s *sock) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	var (
		n    int
		from unix.Sockaddr
		rerr error
	)
	err := raw{s}.Read(func(fd uintptr) bool {
		n, from, rerr = unix.Recvfrom(int(fd), b, unix.MSG_DONTWAIT)
		return rerr != unix.EAGAIN
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return 0, netip.AddrPort{}, &net.OpError{Op: "read", Net: "udp", Source: s.laddr, Err: wrapErrno("recvfrom", err)}
	}
	var ap netip.AddrPort
	switch sa := from.(type) {
	case *unix.SockaddrInet4:
		ap = netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *unix.SockaddrInet6:
		ap = netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(sa.Port))
	}
	return n, ap, nil
}

// sockaddr is addr in the socket's address family (an IPv4 address
// IPv4-mapped on an IPv6 socket).
func (s *sock) sockaddr(addr netip.AddrPort) (unix.Sockaddr, error) {
	a := addr.Addr()
	if s.inet6 {
		sa := &unix.SockaddrInet6{Port: int(addr.Port()), Addr: a.As16()}
		if z := a.Zone(); z != "" {
			if ifi, err := net.InterfaceByName(z); err == nil {
				sa.ZoneId = uint32(ifi.Index)
			} else if n, err := strconv.ParseUint(z, 10, 32); err == nil {
				sa.ZoneId = uint32(n)
			}
		}
		return sa, nil
	}
	if a = a.Unmap(); !a.Is4() {
		return nil, &net.OpError{Op: "write", Net: "udp", Source: s.laddr, Err: net.InvalidAddrError("IPv6 address on an IPv4 socket: " + a.String())}
	}
	return &unix.SockaddrInet4{Port: int(addr.Port()), Addr: a.As4()}, nil
}

// wrapErrno makes an errno an *os.SyscallError, as the net package does.
func wrapErrno(call string, err error) error {
	if errno, ok := err.(unix.Errno); ok {
		return os.NewSyscallError(call, errno)
	}
	return err
}

//go:build linux

package main

import (
	"errors"
	"net"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/jurisdns/jurisdns/internal/udpsock"
)

// mmsgConn is a batchConn of raw sendmmsg/recvmmsg on a socket outside Go's
// poller (internal/udpsock): a socket in the poller costs a wake-up
// callback per datagram sent and received, on the generator's core for its
// sends and on the server's for its answers, whatever the server.
type mmsgConn struct {
	c      udpsock.Conn
	rc     syscall.RawConn
	out    []unix.Mmsghdr
	outIov []unix.Iovec
	in     []unix.Mmsghdr
	inIov  []unix.Iovec
	inBuf  [][]byte
	n      int
	errno  unix.Errno
	recv   func(fd uintptr) bool // m.recvAfterWait, made once
	waited bool                  // recvAfterWait's first call is past
}

func newBatchConn(c *net.UDPConn, batch int) (batchConn, error) {
	m := &mmsgConn{c: udpsock.Take(c), out: make([]unix.Mmsghdr, batch), outIov: make([]unix.Iovec, batch),
		in: make([]unix.Mmsghdr, batch), inIov: make([]unix.Iovec, batch), inBuf: make([][]byte, batch)}
	var err error
	if m.rc, err = m.c.SyscallConn(); err != nil {
		return nil, err
	}
	for i := range batch {
		m.out[i].Hdr.Iov = &m.outIov[i]
		m.out[i].Hdr.SetIovlen(1)
		m.inBuf[i] = make([]byte, 4096)
		m.inIov[i].Base = &m.inBuf[i][0]
		m.inIov[i].SetLen(len(m.inBuf[i]))
		m.in[i].Hdr.Iov = &m.inIov[i]
		m.in[i].Hdr.SetIovlen(1)
	}
	m.recv = m.recvAfterWait
	return m, nil
}

func (m *mmsgConn) write(bufs [][]byte) error {
	for i, b := range bufs {
		m.outIov[i].Base = &b[0]
		m.outIov[i].SetLen(len(b))
	}
	sent := 0
	var werr unix.Errno
	err := m.rc.Write(func(fd uintptr) bool {
		for sent < len(bufs) {
			r, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&m.out[sent])), uintptr(len(bufs)-sent), unix.MSG_DONTWAIT, 0, 0)
			switch e {
			case 0:
				sent += int(r)
			case unix.EAGAIN:
				return false
			default:
				werr = e
				return true
			}
		}
		return true
	})
	if err == nil && werr != 0 {
		err = os.NewSyscallError("sendmmsg", werr)
	}
	return err
}

// recvOnce reads what is there (false: nothing, wait).
func (m *mmsgConn) recvOnce(fd uintptr) bool {
	for i := range m.in {
		m.in[i].Len = 0
	}
	r, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&m.in[0])), uintptr(len(m.in)), unix.MSG_DONTWAIT, 0, 0)
	if e == unix.EAGAIN {
		return false
	}
	m.n, m.errno = int(r), e
	if e != 0 {
		m.n = 0
	}
	return true
}

// recvAfterWait is read's function for rc.Read, called first at once: read
// has just found nothing, so that call only says "wait".
func (m *mmsgConn) recvAfterWait(fd uintptr) bool {
	if !m.waited {
		m.waited = true
		return false
	}
	return m.recvOnce(fd)
}

func (m *mmsgConn) read(wait time.Duration, got func([]byte)) error {
	ready := false
	if err := m.rc.Control(func(fd uintptr) { ready = m.recvOnce(fd) }); err != nil {
		return err
	}
	if !ready {
		if wait <= 0 {
			return nil
		}
		_ = m.c.SetReadDeadline(time.Now().Add(wait))
		m.waited = false
		if err := m.rc.Read(m.recv); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return nil
			}
			return err
		}
	}
	if m.errno != 0 {
		return os.NewSyscallError("recvmmsg", m.errno)
	}
	for i := range m.n {
		got(m.inBuf[i][:m.in[i].Len])
	}
	return nil
}

func (m *mmsgConn) close() error { return m.c.Close() }

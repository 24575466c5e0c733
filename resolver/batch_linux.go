//go:build linux

package resolver

import (
	"errors"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/jurisdns/jurisdns/internal/sockaddr"
	"github.com/jurisdns/jurisdns/internal/udpsock"
)

// batchSize is the number of datagrams one recvmmsg/sendmmsg moves.
const batchSize = 32

// batchBuf is the largest query the batched loop reads; a bigger datagram
// is marked truncated by the kernel and answered by the slow path as the
// malformed query it then is.
const batchBuf = 4096

// udpBatch holds the per-worker state of the batched UDP loop: the
// recvmmsg/sendmmsg headers, their buffers and socket addresses, all
// allocated once.
type udpBatch struct {
	in       [batchSize]unix.Mmsghdr
	inIov    [batchSize]unix.Iovec
	inName   [batchSize]unix.RawSockaddrAny
	inBuf    [batchSize][]byte
	out      [batchSize]unix.Mmsghdr
	outIov   [batchSize]unix.Iovec
	outName  [batchSize]unix.RawSockaddrAny
	outBuf   [batchSize][]byte
	nout     int
	sent     int
	readErr  unix.Errno
	received int
}

func newUDPBatch() *udpBatch {
	b := &udpBatch{}
	for i := range b.in {
		b.inBuf[i] = make([]byte, batchBuf)
		b.inIov[i].Base = &b.inBuf[i][0]
		b.inIov[i].SetLen(batchBuf)
		b.in[i].Hdr.Iov = &b.inIov[i]
		b.in[i].Hdr.SetIovlen(1)
		b.in[i].Hdr.Name = (*byte)(unsafe.Pointer(&b.inName[i]))
		b.outBuf[i] = make([]byte, 0, 4096)
		b.out[i].Hdr.Iov = &b.outIov[i]
		b.out[i].Hdr.SetIovlen(1)
		b.out[i].Hdr.Name = (*byte)(unsafe.Pointer(&b.outName[i]))
	}
	return b
}

// serveUDPBatch serves c with recvmmsg/sendmmsg: one system call moves up
// to batchSize queries, and one their answers. It returns false at once if
// the socket cannot be used that way (the caller then runs the plain loop),
// true when the server shuts down.
func (s *Server) serveUDPBatch(c udpsock.Conn, snd *udpSender) bool {
	rc, err := c.SyscallConn()
	if err != nil {
		return false
	}
	b := newUDPBatch()
	w := &worker{out: make([]byte, 0, 4096), name: make([]byte, 0, 256), snd: snd}
	recv := func(fd uintptr) bool {
		for i := range b.in {
			b.in[i].Hdr.Namelen = uint32(unsafe.Sizeof(b.inName[i]))
			b.in[i].Hdr.Flags = 0
			b.in[i].Len = 0
		}
		// RawSyscall6: the call cannot block (MSG_DONTWAIT). With
		// Syscall6 the scheduler takes it for one that may, and a batch
		// lasting past sysmon's 20 µs tick gets the goroutine's P handed
		// to another thread, which wakes, finds nothing and sleeps in
		// epoll_wait, costing a loaded one-core server a few percent of
		// a cached answer's CPU. Every recvmmsg/sendmmsg with
		// MSG_DONTWAIT here and in upstream is raw for that reason.
		n, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.in[0])), batchSize, unix.MSG_DONTWAIT, 0, 0)
		if e == unix.EAGAIN || e == unix.EWOULDBLOCK {
			return false // wait in the poller
		}
		b.readErr, b.received = e, int(n)
		if e != 0 {
			b.received = 0
		}
		return true
	}
	send := func(fd uintptr) bool {
		for b.sent < b.nout {
			n, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&b.out[b.sent])), uintptr(b.nout-b.sent), unix.MSG_DONTWAIT, 0, 0)
			if e == unix.EAGAIN || e == unix.EWOULDBLOCK {
				return false // wait until the socket is writable, then go on from b.sent
			}
			if e != 0 {
				b.sent++ // skip the datagram the kernel refused (e.g. unreachable)
				continue
			}
			b.sent += int(n)
		}
		return true
	}
	for {
		if err := rc.Read(recv); err != nil {
			return true // closed or deadline set by Shutdown
		}
		if b.readErr != 0 {
			if errors.Is(b.readErr, unix.EBADF) || s.closing.Load() {
				return true
			}
			continue
		}
		b.nout = 0
		stop := false
		w.batchNow = s.now() // one clock read for the whole batch
		for i := 0; i < b.received; i++ {
			addr, ok := sockaddr.AddrPort(&b.inName[i])
			if !ok {
				continue
			}
			pkt := b.inBuf[i][:b.in[i].Len]
			if b.in[i].Hdr.Flags&unix.MSG_TRUNC != 0 {
				pkt = pkt[:0] // too big for a query: the slow path drops it
			}
			w.out = b.outBuf[b.nout][:0]
			out, st := s.handleUDP(w, c, pkt, addr)
			stop = stop || st
			if out == nil {
				continue
			}
			if &out[:1][0] != &b.outBuf[b.nout][:1][0] { // not written in place
				out = append(b.outBuf[b.nout][:0], out...)
			}
			b.outBuf[b.nout] = out
			j := b.nout
			b.outIov[j].Base = &out[0]
			b.outIov[j].SetLen(len(out))
			b.outName[j] = b.inName[i]
			b.out[j].Hdr.Namelen = b.in[i].Hdr.Namelen
			b.out[j].Hdr.Flags = 0
			b.nout++
		}
		if b.nout > 0 {
			b.sent = 0
			if err := rc.Write(send); err != nil {
				return true
			}
		}
		if stop {
			return true
		}
	}
}

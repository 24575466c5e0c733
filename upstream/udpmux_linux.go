//go:build linux

package upstream

import (
	"net"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/jurisdns/jurisdns/internal/sockaddr"
)

// muxBatchBufs holds what one recvmmsg of a socket's reader needs: muxBatch
// headers, their buffers of udpBuf bytes, the senders' addresses and room
// for the SO_RXQ_OVFL control message. They are pooled: a socket lives for
// muxMaxUses queries only.
type muxBatchBufs struct {
	hdr  [muxBatch]unix.Mmsghdr
	iov  [muxBatch]unix.Iovec
	name [muxBatch]unix.RawSockaddrAny
	oob  [muxBatch][oobLen]byte
	buf  [muxBatch][udpBuf]byte
}

// oobLen is the room for one control message with a uint32 (the socket's
// count of datagrams dropped so far, SO_RXQ_OVFL, which the kernel attaches
// to every datagram once there was a drop): unix.CmsgSpace(4), 24 bytes on
// 64-bit Linux, 16 on 32-bit.
const oobLen = 24

// countOverflows asks the kernel to attach to each datagram read from c the
// number of datagrams the socket dropped so far because its receive buffer
// was full (SO_RXQ_OVFL): see muxSock.read. Best effort.
func countOverflows(c interface {
	SyscallConn() (syscall.RawConn, error)
}) {
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RXQ_OVFL, 1)
	})
}

// socketDrops returns the number of datagrams c's socket dropped so far
// (SK_MEMINFO_DROPS of SO_MEMINFO): the count SO_RXQ_OVFL reports only
// with the next datagram read.
func socketDrops(c *net.UDPConn) (uint32, bool) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, false
	}
	const skMeminfoDrops, skMeminfoVars = 8, 9 // linux/sock_diag.h
	var (
		info [skMeminfoVars]uint32
		ok   bool
	)
	_ = rc.Control(func(fd uintptr) {
		l := uint32(unsafe.Sizeof(info))
		_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.SOL_SOCKET, unix.SO_MEMINFO,
			uintptr(unsafe.Pointer(&info[0])), uintptr(unsafe.Pointer(&l)), 0)
		ok = e == 0 && l > skMeminfoDrops*4
	})
	return info[skMeminfoDrops], ok
}

// overflowCount returns the SO_RXQ_OVFL count in the control message oob,
// if it carries one.
func overflowCount(oob []byte) (uint32, bool) {
	h := unix.CmsgLen(0)
	if len(oob) < unix.CmsgLen(4) {
		return 0, false
	}
	c := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	if c.Level != unix.SOL_SOCKET || c.Type != unix.SO_RXQ_OVFL || int(c.Len) < unix.CmsgLen(4) {
		return 0, false
	}
	return *(*uint32)(unsafe.Pointer(&oob[h])), true
}

var muxBatchPool = sync.Pool{New: func() any {
	b := new(muxBatchBufs)
	for i := range b.hdr {
		b.iov[i].Base = &b.buf[i][0]
		b.iov[i].SetLen(udpBuf)
		b.hdr[i].Hdr.Iov = &b.iov[i]
		b.hdr[i].Hdr.SetIovlen(1)
		b.hdr[i].Hdr.Name = (*byte)(unsafe.Pointer(&b.name[i]))
		b.hdr[i].Hdr.Control = &b.oob[i][0]
	}
	return b
}}

// read reads the socket's replies until it is closed, up to muxBatch per
// recvmmsg(2), and dispatches them. Replies the kernel dropped because the
// socket's receive buffer was full are counted as dropped ("overflow") when
// the next datagram tells how many there were (SO_RXQ_OVFL, set by open),
// or else when the socket is closed (closeLocked): their queries time out,
// and a rise in that count says why.
func (s *muxSock) read() {
	rc, err := s.c.SyscallConn()
	if err != nil {
		s.readPlain()
		return
	}
	b := muxBatchPool.Get().(*muxBatchBufs)
	defer muxBatchPool.Put(b)
	var (
		n     int
		errno unix.Errno
	)
	recv := func(fd uintptr) bool {
		for i := range b.hdr {
			b.hdr[i].Hdr.Namelen = uint32(unsafe.Sizeof(b.name[i]))
			b.hdr[i].Hdr.SetControllen(oobLen)
			b.hdr[i].Hdr.Flags = 0
			b.hdr[i].Len = 0
		}
		r, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.hdr[0])), muxBatch, unix.MSG_DONTWAIT, 0, 0)
		if e == unix.EAGAIN || e == unix.EWOULDBLOCK {
			return false // wait in the poller
		}
		n, errno = int(r), e
		return true
	}
	for {
		if err := rc.Read(recv); err != nil {
			return // closed
		}
		switch errno {
		case 0:
		case unix.ECONNREFUSED:
			s.fail(errno)
			continue
		case unix.EBADF:
			return
		default:
			continue
		}
		for i := 0; i < n; i++ {
			if d, ok := overflowCount(b.oob[i][:b.hdr[i].Hdr.Controllen]); ok {
				s.overflowed(d)
			}
			if ap, ok := sockaddr.AddrPort(&b.name[i]); !ok || !s.fromServer(ap) {
				s.dropped("source")
				continue
			}
			h := &b.hdr[i]
			s.dispatch(b.buf[i][:h.Len], h.Hdr.Flags&unix.MSG_TRUNC != 0)
		}
	}
}

// muxWriteBufs holds what one sendmmsg of a server's sender needs.
type muxWriteBufs struct {
	hdr [muxBatch]unix.Mmsghdr
	iov [muxBatch]unix.Iovec
}

var muxWritePool = sync.Pool{New: func() any {
	b := new(muxWriteBufs)
	for i := range b.hdr {
		b.hdr[i].Hdr.Iov = &b.iov[i]
		b.hdr[i].Hdr.SetIovlen(1)
	}
	return b
}}

// writeBatch writes the queries of batch with sendmmsg(2), muxBatch per
// call. A query the kernel refuses (an ICMP error reported on the socket,
// say) ends with that error.
func (s *muxSock) writeBatch(batch []queuedQuery) {
	rc, err := s.c.SyscallConn()
	if err != nil {
		s.writePlain(batch)
		return
	}
	b := muxWritePool.Get().(*muxWriteBufs)
	defer muxWritePool.Put(b)
	for len(batch) > 0 {
		n := min(len(batch), muxBatch)
		for i := range n {
			b.iov[i].Base = &batch[i].wire[0]
			b.iov[i].SetLen(len(batch[i].wire))
			b.hdr[i].Hdr.Flags = 0
		}
		sent := 0
		err := rc.Write(func(fd uintptr) bool {
			for sent < n {
				r, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&b.hdr[sent])), uintptr(n-sent), unix.MSG_DONTWAIT, 0, 0)
				if e == unix.EAGAIN || e == unix.EWOULDBLOCK {
					return false // wait until the socket is writable
				}
				if e != 0 {
					s.failWrite(batch[sent].p, e)
					sent++
					continue
				}
				sent += int(r)
			}
			return true
		})
		for i := range n {
			b.iov[i].Base = nil // keep no query alive
		}
		if err != nil { // closed: the queries not written fail
			for _, q := range batch[sent:n] {
				s.failWrite(q.p, err)
			}
		}
		batch = batch[n:]
	}
}

//go:build linux

package upstream

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// muxBatchBufs holds what one recvmmsg of a socket's reader needs: muxBatch
// headers, their buffers of udpBuf bytes and the senders' addresses. They
// are pooled: a socket lives for muxMaxUses queries only.
type muxBatchBufs struct {
	hdr  [muxBatch]unix.Mmsghdr
	iov  [muxBatch]unix.Iovec
	name [muxBatch]unix.RawSockaddrAny
	buf  [muxBatch][udpBuf]byte
}

var muxBatchPool = sync.Pool{New: func() any {
	b := new(muxBatchBufs)
	for i := range b.hdr {
		b.iov[i].Base = &b.buf[i][0]
		b.iov[i].SetLen(udpBuf)
		b.hdr[i].Hdr.Iov = &b.iov[i]
		b.hdr[i].Hdr.SetIovlen(1)
		b.hdr[i].Hdr.Name = (*byte)(unsafe.Pointer(&b.name[i]))
	}
	return b
}}

// read reads the socket's replies until it is closed, up to muxBatch per
// recvmmsg(2), and dispatches them.
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
			b.hdr[i].Hdr.Flags = 0
			b.hdr[i].Len = 0
		}
		r, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.hdr[0])), muxBatch, unix.MSG_DONTWAIT, 0, 0)
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
			if ap, ok := sockaddrAddrPort(&b.name[i]); !ok || !s.fromServer(ap) {
				s.dropped("source")
				continue
			}
			h := &b.hdr[i]
			s.dispatch(b.buf[i][:h.Len], h.Hdr.Flags&unix.MSG_TRUNC != 0)
		}
	}
}

// sockaddrAddrPort converts a kernel socket address to a netip.AddrPort.
func sockaddrAddrPort(sa *unix.RawSockaddrAny) (netip.AddrPort, bool) {
	switch sa.Addr.Family {
	case unix.AF_INET:
		p := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&p.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom4(p.Addr), port), true
	case unix.AF_INET6:
		p := (*unix.RawSockaddrInet6)(unsafe.Pointer(sa))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&p.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom16(p.Addr), port), true
	}
	return netip.AddrPort{}, false
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
				r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&b.hdr[sent])), uintptr(n-sent), unix.MSG_DONTWAIT, 0, 0)
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

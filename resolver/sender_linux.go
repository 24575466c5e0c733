//go:build linux

package resolver

import (
	"encoding/binary"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/jurisdns/jurisdns/internal/udpsock"
)

// batchWriter writes queued answers with sendmmsg(2), batchSize per call.
type batchWriter struct {
	c    udpsock.Conn
	rc   syscall.RawConn // nil: write one by one
	hdr  [batchSize]unix.Mmsghdr
	iov  [batchSize]unix.Iovec
	name [batchSize]unix.RawSockaddrAny
}

func newBatchWriter(c udpsock.Conn) *batchWriter {
	w := &batchWriter{c: c}
	if rc, err := c.SyscallConn(); err == nil {
		w.rc = rc
	}
	for i := range w.hdr {
		w.hdr[i].Hdr.Iov = &w.iov[i]
		w.hdr[i].Hdr.SetIovlen(1)
		w.hdr[i].Hdr.Name = (*byte)(unsafe.Pointer(&w.name[i]))
	}
	return w
}

// write sends every answer of batch, batchSize per system call. An answer
// the kernel refuses is skipped, as a failed sendto would be.
func (w *batchWriter) write(batch []queuedAnswer) {
	if w.rc == nil {
		for _, a := range batch {
			_, _ = w.c.WriteToUDPAddrPort(*a.b, a.addr)
		}
		return
	}
	for len(batch) > 0 {
		n := min(len(batch), batchSize)
		for i := range n {
			b := *batch[i].b
			w.iov[i].Base = &b[0]
			w.iov[i].SetLen(len(b))
			w.hdr[i].Hdr.Namelen = putSockaddr(&w.name[i], batch[i].addr)
			w.hdr[i].Hdr.Flags = 0
		}
		sent := 0
		err := w.rc.Write(func(fd uintptr) bool {
			for sent < n {
				r, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&w.hdr[sent])), uintptr(n-sent), unix.MSG_DONTWAIT, 0, 0)
				if e == unix.EAGAIN || e == unix.EWOULDBLOCK {
					return false // wait until the socket is writable
				}
				if e != 0 {
					sent++ // skip the datagram the kernel refused
					continue
				}
				sent += int(r)
			}
			return true
		})
		for i := range n {
			w.iov[i].Base = nil // keep no buffer alive
		}
		if err != nil {
			return // the socket is closed
		}
		batch = batch[n:]
	}
}

// putSockaddr writes addr into sa (IPv4, or IPv6 with IPv4 mapped as the
// address came from the socket) and returns its length.
func putSockaddr(sa *unix.RawSockaddrAny, addr netip.AddrPort) uint32 {
	if a := addr.Addr(); a.Is4() {
		p := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		*p = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: a.As4()}
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&p.Port))[:], addr.Port())
		return unix.SizeofSockaddrInet4
	}
	p := (*unix.RawSockaddrInet6)(unsafe.Pointer(sa))
	*p = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: addr.Addr().As16()}
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&p.Port))[:], addr.Port())
	return unix.SizeofSockaddrInet6
}

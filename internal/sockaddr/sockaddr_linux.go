//go:build linux

// Package sockaddr converts the socket addresses the kernel fills in for
// recvmmsg (the resolver's UDP listeners, the upstream multiplexer's
// sockets) to netip values.
package sockaddr

import (
	"encoding/binary"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// AddrPort converts a kernel socket address to a netip.AddrPort; ok is
// false for a family other than IPv4 and IPv6.
func AddrPort(sa *unix.RawSockaddrAny) (ap netip.AddrPort, ok bool) {
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

//go:build linux

package resolver

import (
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// udpBuffer is the receive buffer asked for every UDP socket: a burst of
// queries, or a moment without CPU (a reload building a big policy on the
// same core), then waits in the kernel instead of being dropped.
const udpBuffer = 8 << 20

// reusePort is the listeners' net.ListenConfig.Control: SO_REUSEPORT, so
// that several UDP sockets (one per worker) share one address and the
// kernel spreads the queries over them, and the UDP receive buffer.
func reusePort(network, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		if strings.HasPrefix(network, "udp") {
			// SO_RCVBUFFORCE passes net.core.rmem_max with
			// CAP_NET_ADMIN; otherwise the kernel caps SO_RCVBUF.
			if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, udpBuffer) != nil {
				_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, udpBuffer)
			}
		}
	})
	if err != nil {
		return err
	}
	return serr
}

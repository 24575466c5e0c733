//go:build !linux

package upstream

import "net"

// read reads the socket's replies until it is closed, one per read
// (recvmmsg is Linux-only), and dispatches them.
func (s *muxSock) read() { s.readPlain() }

// writeBatch writes the queries of batch (sendmmsg is Linux-only).
func (s *muxSock) writeBatch(batch []queuedQuery) { s.writePlain(batch) }

// countOverflows does nothing: SO_RXQ_OVFL is Linux-only.
func countOverflows(any) {}

// socketDrops reports nothing: SO_MEMINFO is Linux-only.
func socketDrops(*net.UDPConn) (uint32, bool) { return 0, false }

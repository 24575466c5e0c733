//go:build !linux

package resolver

import "net"

// serveUDPBatch is Linux-only (recvmmsg/sendmmsg); elsewhere the plain
// loop serves.
func (s *Server) serveUDPBatch(*net.UDPConn, *udpSender) bool { return false }

//go:build !linux

package resolver

import "github.com/jurisdns/jurisdns/internal/udpsock"

// serveUDPBatch is Linux-only (recvmmsg/sendmmsg); elsewhere the plain
// loop serves.
func (s *Server) serveUDPBatch(udpsock.Conn, *udpSender) bool { return false }

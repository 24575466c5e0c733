//go:build !linux

package resolver

import "syscall"

// reusePort sets no option outside Linux: each address gets one UDP
// socket (Listen falls back to it when a second bind fails) with the
// system's default receive buffer.
func reusePort(string, string, syscall.RawConn) error { return nil }

//go:build !linux

package resolver

import "net"

// batchWriter writes queued answers one by one (sendmmsg is Linux-only).
type batchWriter struct{ c *net.UDPConn }

func newBatchWriter(c *net.UDPConn) *batchWriter { return &batchWriter{c: c} }

func (w *batchWriter) write(batch []queuedAnswer) {
	for _, a := range batch {
		_, _ = w.c.WriteToUDPAddrPort(*a.b, a.addr)
	}
}

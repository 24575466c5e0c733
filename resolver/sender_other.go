//go:build !linux

package resolver

import "github.com/jurisdns/jurisdns/internal/udpsock"

// batchWriter writes queued answers one by one (sendmmsg is Linux-only).
type batchWriter struct{ c udpsock.Conn }

func newBatchWriter(c udpsock.Conn) *batchWriter { return &batchWriter{c: c} }

func (w *batchWriter) write(batch []queuedAnswer) {
	for _, a := range batch {
		_, _ = w.c.WriteToUDPAddrPort(*a.b, a.addr)
	}
}

//go:build !linux

package upstream

// read reads the socket's replies until it is closed, one per read
// (recvmmsg is Linux-only), and dispatches them.
func (s *muxSock) read() { s.readPlain() }

// writeBatch writes the queries of batch (sendmmsg is Linux-only).
func (s *muxSock) writeBatch(batch []queuedQuery) { s.writePlain(batch) }

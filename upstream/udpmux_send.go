package upstream

import (
	"runtime"
	"sync"
)

// muxSender writes the queries of one udpMux in batches (sendmmsg on
// Linux, one system call per socket and batch) instead of one write per
// query from each caller. A caller queues its query and goes on to wait for
// the reply; the first query queued starts a goroutine that first yields,
// so that the callers that are ready to run queue theirs too, then writes
// everything queued, and exits when nothing more is. At most
// maxQueuedQueries wait; beyond that a caller writes its own.
type muxSender struct {
	mu      sync.Mutex
	q       []queuedQuery
	running bool
}

// queuedQuery is a query to write: its wire form (the caller's, not
// changed until the reply came) on s, for p.
type queuedQuery struct {
	s    *muxSock
	p    *pendingQuery
	wire []byte
}

// maxQueuedQueries bounds the queries waiting in one server's sender.
const maxQueuedQueries = 1024

// send queues wire for s, or reports false when the queue is full (the
// caller then writes it itself).
func (w *muxSender) send(s *muxSock, p *pendingQuery, wire []byte) bool {
	w.mu.Lock()
	if len(w.q) >= maxQueuedQueries {
		w.mu.Unlock()
		return false
	}
	w.q = append(w.q, queuedQuery{s: s, p: p, wire: wire})
	start := !w.running
	w.running = true
	w.mu.Unlock()
	if start {
		go w.run()
	}
	return true
}

// run writes what is queued until the queue stays empty.
func (w *muxSender) run() {
	var spare []queuedQuery
	for {
		// Let the callers that are ready to run queue their queries first.
		runtime.Gosched()
		w.mu.Lock()
		if len(w.q) == 0 {
			w.running = false
			w.mu.Unlock()
			return
		}
		all := w.q
		w.q = spare[:0]
		w.mu.Unlock()
		// One system call per socket (a few per server).
		for rest := all; len(rest) > 0; {
			s, n := rest[0].s, 1
			for i := 1; i < len(rest); i++ {
				if rest[i].s == s {
					rest[n], rest[i] = rest[i], rest[n]
					n++
				}
			}
			s.writeBatch(rest[:n])
			rest = rest[n:]
		}
		clear(all)
		spare = all[:0]
	}
}

// failWrite ends p with the error writing its query returned, if it is
// still in flight.
func (s *muxSock) failWrite(p *pendingQuery, err error) {
	s.mu.Lock()
	ok := s.remove(p)
	s.mu.Unlock()
	if ok {
		p.finish(muxResult{err: err})
	}
}

// writePlain writes the queries of batch one by one.
func (s *muxSock) writePlain(batch []queuedQuery) {
	for _, q := range batch {
		if _, err := s.c.Write(q.wire); err != nil {
			s.failWrite(q.p, err)
		}
	}
}

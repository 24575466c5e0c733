package resolver

import (
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jurisdns/jurisdns/internal/udpsock"
)

// udpSender writes the answers of the slow-path UDP workers of one listener
// socket in batches (sendmmsg on Linux) from a goroutine of its own, instead
// of one sendto per answer from each worker: a worker queues its answer and
// goes back to waiting for a query. When it is woken the sender first
// yields, so that the workers already runnable (those whose upstream
// replies came in the same batch) queue their answers too, then writes
// whatever is queued with one system call per batch.
//
// The queue holds at most maxQueuedAnswers answers; beyond that, or for an
// answer bigger than a queue buffer, or once the sender has stopped, the
// worker writes its answer itself. The answers queued across every sender
// are jurisdns_udp_answers_queued (QueuedAnswers).
type udpSender struct {
	c udpsock.Conn

	mu      sync.Mutex
	q       []queuedAnswer
	spare   []queuedAnswer // the drained slice, for the next swap
	stopped bool
	kick    chan struct{} // capacity 1: the queue has answers
	done    chan struct{} // closed when run returns
}

type queuedAnswer struct {
	b    *[]byte // from answerBufs
	addr netip.AddrPort
}

const (
	// maxQueuedAnswers bounds the answers waiting in one sender.
	maxQueuedAnswers = 1024
	// answerBufSize is the size of a queue buffer: a UDP answer is at most
	// maxUDPSize bytes.
	answerBufSize = maxUDPSize
)

var answerBufs = sync.Pool{New: func() any { b := make([]byte, 0, answerBufSize); return &b }}

// queuedAnswers counts the answers waiting in every sender.
var queuedAnswers atomic.Int64

// QueuedAnswers returns the slow-path UDP answers queued to be written, in
// every listener socket's sender (at most 1024 each).
func QueuedAnswers() int64 { return queuedAnswers.Load() }

func newUDPSender(c udpsock.Conn) *udpSender {
	return &udpSender{c: c, kick: make(chan struct{}, 1), done: make(chan struct{})}
}

// send writes out to addr: queued for the sender, or at once. out may be
// reused as soon as send returns.
func (sn *udpSender) send(out []byte, addr netip.AddrPort) {
	if len(out) > 0 && len(out) <= answerBufSize {
		b := answerBufs.Get().(*[]byte)
		*b = append((*b)[:0], out...)
		if sn.enqueue(b, addr) {
			return
		}
		answerBufs.Put(b)
	}
	_, _ = sn.c.WriteToUDPAddrPort(out, addr)
}

// sendReply writes the cached answer e to the client query pkt (see
// entry.appendReply) to addr, written straight into a queue buffer.
func (sn *udpSender) sendReply(e *entry, pkt []byte, q *question, now time.Time, addr netip.AddrPort) {
	b := answerBufs.Get().(*[]byte)
	out := e.appendReply((*b)[:0], pkt, q, now, 0, false)
	if cap(out) == cap(*b) { // it fit: out is in *b
		*b = out
		if sn.enqueue(b, addr) {
			return
		}
	}
	_, _ = sn.c.WriteToUDPAddrPort(out, addr)
	answerBufs.Put(b)
}

// enqueue queues the answer in b (from answerBufs; the sender puts it back
// once written) for addr, or reports false when the queue is full, the
// sender has stopped or addr has a zone.
func (sn *udpSender) enqueue(b *[]byte, addr netip.AddrPort) bool {
	if addr.Addr().Zone() != "" {
		return false
	}
	sn.mu.Lock()
	if sn.stopped || len(sn.q) >= maxQueuedAnswers {
		sn.mu.Unlock()
		return false
	}
	sn.q = append(sn.q, queuedAnswer{b: b, addr: addr})
	first := len(sn.q) == 1
	sn.mu.Unlock()
	queuedAnswers.Add(1)
	if first {
		select {
		case sn.kick <- struct{}{}:
		default:
		}
	}
	return true
}

// run writes the queued answers until stop, then the last of them.
func (sn *udpSender) run(quit <-chan struct{}) {
	defer close(sn.done)
	w := newBatchWriter(sn.c)
	for {
		select {
		case <-sn.kick:
		case <-quit:
			sn.mu.Lock()
			sn.stopped = true
			sn.mu.Unlock()
			sn.flush(w)
			return
		}
		// Let the workers that are ready to run queue their answers first.
		runtime.Gosched()
		sn.flush(w)
	}
}

// flush writes what is queued.
func (sn *udpSender) flush(w *batchWriter) {
	sn.mu.Lock()
	batch := sn.q
	sn.q = sn.spare[:0]
	sn.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	w.write(batch)
	for i := range batch {
		answerBufs.Put(batch[i].b)
		batch[i] = queuedAnswer{}
	}
	queuedAnswers.Add(-int64(len(batch)))
	sn.mu.Lock()
	sn.spare = batch[:0]
	sn.mu.Unlock()
}

package audit

import (
	"sync"
	"sync/atomic"
)

// DefaultQueueSize is the queue length used when Options.QueueSize is 0.
const DefaultQueueSize = 4096

// queue is the bounded, non-blocking hand-off between the goroutines that log
// and the single goroutine that writes.
type queue[T any] struct {
	// mu orders put against close: put holds it shared while it checks closed
	// and sends, close holds it exclusively while it closes ch, so a put never
	// sends on a closed channel and nothing put before close is lost.
	mu      sync.RWMutex
	closed  bool
	ch      chan T
	dropped atomic.Uint64
	done    chan struct{}
}

func newQueue[T any](size int) *queue[T] {
	if size <= 0 {
		size = DefaultQueueSize
	}
	return &queue[T]{ch: make(chan T, size), done: make(chan struct{})}
}

// put enqueues v without blocking. It returns false, and counts a drop, when
// the queue is full; it returns false without counting when the queue is closed.
func (q *queue[T]) put(v T) bool {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		return false
	}
	select {
	case q.ch <- v:
		return true
	default:
		q.dropped.Add(1)
		return false
	}
}

// run consumes the queue until it is closed and drained: write for each item,
// flush whenever the queue runs empty and once at the end.
func (q *queue[T]) run(write func(T), flush func()) {
	defer close(q.done)
	for v := range q.ch {
		write(v)
		if len(q.ch) == 0 {
			flush()
		}
	}
	flush()
}

// close stops accepting items and waits until run has written and flushed
// everything already queued. It is safe to call more than once.
func (q *queue[T]) close() {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.ch)
	}
	q.mu.Unlock()
	<-q.done
}

package status

import (
	"sync"
	"time"
)

// DefaultRecent is how many enforcement records the page keeps by default.
const DefaultRecent = 50

// maxRecent caps Options.Recent.
const maxRecent = 10000

// Record is one enforcement record as the page shows it: the fields of the
// enforcement log, with the client rendered per the privacy setting.
type Record struct {
	Time time.Time `json:"time"`
	// Client is audit.ClientString of the client address: the address, its
	// /24 or /56, a keyed hash, or "" (privacy none).
	Client       string `json:"client"`
	Name         string `json:"name"`
	Type         string `json:"type"`
	Jurisdiction string `json:"jurisdiction"`
	Tier         string `json:"tier"`
	Instrument   string `json:"instrument,omitempty"`
	Rule         string `json:"rule,omitempty"`
	Source       string `json:"source,omitempty"`
	Line         int    `json:"line,omitempty"`
	Action       string `json:"action"`
	// Mode is "enforce" (the client got the block answer) or "report"
	// (logged only).
	Mode       string `json:"mode"`
	PolicyHash string `json:"policy_hash"`
}

// recentRing keeps the latest records in a fixed array.
type recentRing struct {
	mu   sync.Mutex
	buf  []Record
	next int // where the next record goes
	n    int // records held
	seen uint64
}

func newRecentRing(size int) *recentRing {
	return &recentRing{buf: make([]Record, size)}
}

func (r *recentRing) add(rec Record) {
	r.mu.Lock()
	r.buf[r.next] = rec
	r.next = (r.next + 1) % len(r.buf)
	if r.n < len(r.buf) {
		r.n++
	}
	r.seen++
	r.mu.Unlock()
}

// latest returns the records held, newest first, and how many were ever
// added.
func (r *recentRing) latest() ([]Record, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Record, 0, r.n)
	for k := 1; k <= r.n; k++ {
		out = append(out, r.buf[(r.next-k+len(r.buf))%len(r.buf)])
	}
	return out, r.seen
}

package status

import (
	"net/netip"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/audit"
	"github.com/jurisdns/jurisdns/policy"
	"github.com/jurisdns/jurisdns/spec"
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
	Client       string    `json:"client"`
	Name         string    `json:"name"`
	Type         string    `json:"type"`
	Jurisdiction string    `json:"jurisdiction"`
	Tier         spec.Tier `json:"tier"`
	Instrument   string    `json:"instrument,omitempty"`
	Rule         string    `json:"rule,omitempty"`
	Source       string    `json:"source,omitempty"`
	Line         int       `json:"line,omitempty"`
	Action       string    `json:"action"`
	// Mode is "enforce" (the client got the block answer) or "report"
	// (logged only).
	Mode       string `json:"mode"`
	PolicyHash string `json:"policy_hash"`
}

// recentRing keeps the latest records in a fixed array of slots. Adding a
// record allocates nothing once every slot has been used: the name and the
// rule are copied into buffers the slot keeps, and the strings of a Record
// (the client per the privacy setting, the type) are built only when the
// page asks for them. Every blocked query passes here.
type recentRing struct {
	privacy string
	salt    []byte

	mu   sync.Mutex
	buf  []slot
	next int // where the next record goes
	n    int // records held
	seen uint64
}

// slot is one record as the ring keeps it.
type slot struct {
	t          time.Time
	client     netip.Addr
	name, rule []byte
	qtype      uint16
	j          *policy.Jurisdiction
	instrument string // the deciding one: policy data, immutable
	source     string
	line       int
	action     string
	mode       string
	policyHash string
}

func newRecentRing(size int, privacy string, salt []byte) *recentRing {
	return &recentRing{buf: make([]slot, size), privacy: privacy, salt: salt}
}

// add keeps ev (with ev.Jurisdiction set), dated t. It copies what it keeps
// of ev: the event's strings may point into the caller's buffers.
func (r *recentRing) add(ev *policy.Event, t time.Time) {
	r.mu.Lock()
	sl := &r.buf[r.next]
	sl.t, sl.client, sl.qtype, sl.j, sl.instrument = t, ev.Client, ev.Qtype, ev.Jurisdiction, ev.Instrument
	if sl.instrument == "" {
		sl.instrument = ev.Jurisdiction.Instrument
	}
	sl.name = append(sl.name[:0], ev.Name...)
	sl.rule = append(sl.rule[:0], ev.Rule...)
	sl.source, sl.line, sl.action, sl.mode, sl.policyHash = ev.Source, ev.Line, ev.Action, ev.Mode, ev.PolicyHash
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
		out = append(out, r.record(&r.buf[(r.next-k+len(r.buf))%len(r.buf)]))
	}
	return out, r.seen
}

// record renders a slot as the page shows it.
func (r *recentRing) record(sl *slot) Record {
	return Record{
		Time:         sl.t,
		Client:       audit.ClientString(sl.client, r.privacy, r.salt),
		Name:         string(sl.name),
		Type:         dns.Type(sl.qtype).String(), // TYPE<n> for a type without a name
		Jurisdiction: sl.j.ID,
		Tier:         sl.j.Tier.Spec(),
		Instrument:   sl.instrument,
		Rule:         string(sl.rule),
		Source:       sl.source,
		Line:         sl.line,
		Action:       sl.action,
		Mode:         sl.mode,
		PolicyHash:   sl.policyHash,
	}
}

package policy

import (
	"net/netip"
	"time"
)

// Event is one policy hit (enforced or report-only): what the enforcement
// log writes and the status page shows. The resolver makes one per hit and
// hands it to an Auditor.
type Event struct {
	Time         time.Time
	Client       netip.Addr
	Name         string
	Qtype        uint16
	Jurisdiction *Jurisdiction
	// Instrument names the instrument that decided (the verdict's, else
	// the jurisdiction's primary one).
	Instrument string
	Rule       string
	Source     string
	Line       int
	Action     string
	Mode       string
	PolicyHash string
}

// Auditor receives policy events. It must not block: the enforcement log
// queues them and counts drops. ev is valid only during the call: Name and
// Rule may point into the caller's buffers, so an auditor that keeps them
// copies them (the other fields are immutable and may be kept).
type Auditor interface {
	PolicyEvent(ev *Event)
}

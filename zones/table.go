// Package zones holds the names jurisdns answers itself or sends to
// particular servers: local zones loaded from RFC 1035 zone files and
// answered authoritatively, conditional forwards (a zone sent to, say, the
// office's Active Directory DNS), and the special-use names of RFC 6761,
// RFC 6303 and RFC 9462 that are never forwarded.
//
// Everything here is immutable once built and safe for concurrent use; a
// reload builds a new Table and Specials. The package does no I/O after Load.
package zones

import "github.com/miekg/dns"

// Forward is a conditional forward: queries at or below Name go to Servers
// (with the same failover as the default upstreams) instead of the default
// upstreams. It is shared by every query: do not modify it.
type Forward struct {
	// Name is the canonical (lower-case, fully qualified) zone name.
	Name string
	// Servers are the configured servers, in order.
	Servers []string
}

// Table finds the local zone or conditional forward responsible for a name.
// Build it with Load.
type Table struct {
	byName map[string]entry
	tlds   map[string]bool // the last label of every name in byName ("example."): most misses stop there
	names  []string        // every zone and forward name, in configuration order
}

// add files a zone or forward under its canonical name.
func (t *Table) add(name string, e entry) {
	t.byName[name] = e
	t.tlds[name[tldOffset(name):]] = true
	t.names = append(t.names, name)
}

// tldOffset returns the offset of the last label of a fully qualified name.
func tldOffset(name string) int {
	end := len(name) - 1 // the trailing dot
	for i := end - 1; i >= 0; i-- {
		if name[i] == '.' && !escaped(name, i) {
			return i + 1
		}
	}
	return 0
}

type entry struct {
	zone *Zone
	fwd  *Forward
}

// Find returns the local zone or the forward whose name is the longest match
// for qname, which must be canonical (lower-case, fully qualified); exactly
// one of them is non-nil, or both are nil when nothing matches. It does not
// allocate. Find on a nil Table returns nil, nil.
func (t *Table) Find(qname string) (z *Zone, fwd *Forward) {
	if t == nil || len(qname) == 0 || !t.tlds[qname[tldOffset(qname):]] {
		return nil, nil
	}
	for off := 0; ; {
		if e, ok := t.byName[qname[off:]]; ok {
			return e.zone, e.fwd
		}
		next, end := dns.NextLabel(qname, off)
		if end {
			return nil, nil
		}
		off = next
	}
}

// Names returns the canonical names of every zone and forward in the
// Table, in configuration order.
func (t *Table) Names() []string {
	if t == nil {
		return nil
	}
	return append([]string(nil), t.names...)
}

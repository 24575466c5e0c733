package policy

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/jurisdns/jurisdns/spec"
)

// ClientSet is the jurisdictions that apply to one client entry (or to
// clients that match none: the default set). It is precomputed by Build.
type ClientSet struct {
	// Name is the client entry's name, or "default".
	Name string
	// Subnets are the entry's prefixes (IPv4-mapped ones as IPv4).
	Subnets []netip.Prefix
	// Jurisdictions apply in this order (ties between blocks of the same
	// tier name the first one).
	Jurisdictions []*Jurisdiction

	// pos[j] is 1 + the position of jurisdiction index j in Jurisdictions,
	// 0 when it does not apply.
	pos []uint16
	// failClosed lists the jurisdictions that failed to load under
	// on_load_failure fail_closed (filled once the sources are loaded).
	failClosed []*Jurisdiction
}

// Applies reports whether jurisdiction j applies to the client set.
func (cs *ClientSet) Applies(j *Jurisdiction) bool {
	return j != nil && j.idx < len(cs.pos) && cs.pos[j.idx] != 0
}

// prefixTable finds the longest configured prefix that contains an address:
// one map probe per distinct prefix length, longest first. Keys are the
// masked address and the length, as plain integers (cheap to hash).
type prefixTable struct {
	bits []int // distinct lengths, descending
	m    map[prefixKey]*ClientSet
}

type prefixKey struct {
	hi, lo uint64
	bits   int
}

func keyOf(p netip.Prefix) prefixKey {
	b := p.Addr().As16()
	return prefixKey{hi: binary.BigEndian.Uint64(b[:8]), lo: binary.BigEndian.Uint64(b[8:]), bits: p.Bits()}
}

func (t *prefixTable) add(p netip.Prefix, cs *ClientSet) {
	if t.m == nil {
		t.m = map[prefixKey]*ClientSet{}
	}
	t.m[keyOf(p)] = cs
	if !slices.Contains(t.bits, p.Bits()) {
		t.bits = append(t.bits, p.Bits())
		slices.Sort(t.bits)
		slices.Reverse(t.bits)
	}
}

// lookup finds the client set of a (IPv4 in its 4-byte form for the v4
// table).
func (t *prefixTable) lookup(a netip.Addr) *ClientSet {
	if len(t.bits) == 0 {
		return nil
	}
	b := a.As16()
	hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	off := 0
	if a.Is4() {
		off = 96 // an IPv4 prefix of n bits covers the last n of the 128
	}
	for _, bits := range t.bits {
		k := prefixKey{bits: bits}
		switch n := bits + off; {
		case n == 0:
		case n <= 64:
			k.hi = hi &^ (1<<(64-n) - 1)
		default:
			k.hi = hi
			k.lo = lo &^ (1<<(128-n) - 1)
			if n == 128 {
				k.lo = lo
			}
		}
		if cs, ok := t.m[k]; ok {
			return cs
		}
	}
	return nil
}

// ClientSet returns the client set of addr: the entry with the longest
// prefix containing it, or the default set. An IPv4-mapped IPv6 address is
// looked up as IPv4. It does not allocate.
func (p *Policy) ClientSet(addr netip.Addr) *ClientSet {
	if !addr.IsValid() {
		return p.def
	}
	addr = addr.Unmap().WithZone("")
	t := &p.v6
	if addr.Is4() {
		t = &p.v4
	}
	if cs := t.lookup(addr); cs != nil {
		return cs
	}
	return p.def
}

// Clients returns the configured client sets in configuration order.
func (p *Policy) Clients() []*ClientSet { return p.clients }

// DefaultClientSet returns the set of clients that match no entry.
func (p *Policy) DefaultClientSet() *ClientSet { return p.def }

// DefaultJurisdictions returns the ids of the default set.
func (p *Policy) DefaultJurisdictions() []string { return p.defaults }

// resolveClients builds the client sets and the prefix tables.
func (b *builder) resolveClients(cfg *spec.Config, p *Policy) {
	for i, c := range cfg.Clients {
		key := fmt.Sprintf("clients[%d]", i)
		name := strings.TrimSpace(c.Name)
		if name == "" {
			name = key
		}
		cs := b.clientSet(p, name, key+".jurisdictions", c.Jurisdictions)
		// spec.Validate checked the subnets (spec.ParseSubnet, no two
		// alike): they are converted, not checked again.
		for _, s := range c.Subnets {
			pf, err := spec.ParseSubnet(s)
			if err != nil {
				continue
			}
			cs.Subnets = append(cs.Subnets, pf)
			if pf.Addr().Is4() {
				p.v4.add(pf, cs)
			} else {
				p.v6.add(pf, cs)
			}
		}
		p.clients = append(p.clients, cs)
	}
	defs := cfg.DefaultJurisdictions
	if defs == nil {
		defs = ShippedDefaults()
	}
	p.def = b.clientSet(p, "default", "default_jurisdictions", defs)
	for _, j := range p.def.Jurisdictions {
		p.defaults = append(p.defaults, j.ID)
	}
	if p.defaults == nil {
		p.defaults = []string{}
	}
}

// clientSet resolves a list of jurisdiction ids; duplicates keep their first
// position.
func (b *builder) clientSet(p *Policy, name, key string, ids []string) *ClientSet {
	cs := &ClientSet{Name: name, pos: make([]uint16, len(b.specs))}
	for k, id := range ids {
		id = strings.TrimSpace(id)
		j := p.byID[id]
		if j == nil {
			b.errorf("%s[%d]: unknown jurisdiction %q", key, k, id)
			continue
		}
		if cs.pos[j.idx] != 0 {
			continue
		}
		j.InUse = true
		cs.Jurisdictions = append(cs.Jurisdictions, j)
		cs.pos[j.idx] = uint16(len(cs.Jurisdictions))
	}
	return cs
}

package policy

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/jurisdns/jurisdns/blocklists"
)

// TransferState is the state of a source pulled by zone transfer, as of the
// policy generation that holds it.
type TransferState struct {
	Zone   string `json:"zone"`
	Serial uint32 `json:"serial"`
	// Primary is the primary of the last transfer, or "cache" when the
	// zone came from the cached copy.
	Primary      string    `json:"primary,omitempty"`
	LastTransfer time.Time `json:"last_transfer,omitzero"`
	LastNotify   time.Time `json:"last_notify,omitzero"`
	// Rejected counts the transfers rejected (bad TSIG, apex mismatch,
	// malformed record, max_shrink); NotifyRefused the NOTIFY messages
	// refused.
	Rejected      int    `json:"rejected,omitempty"`
	NotifyRefused int    `json:"notify_refused,omitempty"`
	LastError     string `json:"last_error,omitempty"`
}

// TransferOrigin is SourceInfo.Origin of a transfer source of zone.
func TransferOrigin(zone string) string { return "axfr:" + zone }

// overlay holds the rules that deltas changed since the index was built:
// the base rules they removed, and the rules they added, in an index of
// their own whose tags follow the base ones.
type overlay struct {
	base  uint32              // tags below are the base index's
	dead  map[uint32]struct{} // base tags removed
	rules []overRule          // tag base+i
	idx   *blocklists.Index
	live  int
}

type overRule struct {
	name  string
	kind  blocklists.Kind
	meta  ruleMeta
	addrs []netip.Addr
}

// maxOverlay bounds the rules a chain of deltas may change before
// ApplyDelta asks for a rebuild (ErrRebuild): each delta re-indexes the
// overlay.
const maxOverlay = 50_000

// ErrRebuild is returned by ApplyDelta when the change is better done by a
// full Build.
var ErrRebuild = errors.New("delta too large: rebuild the policy")

// lookup is Index.Lookup over the base index less the rules deltas
// removed, plus the rules they added.
func (p *Policy) lookup(qname string, buf []blocklists.Hit) []blocklists.Hit {
	start := len(buf)
	buf = p.idx.Lookup(qname, buf)
	o := p.over
	if o == nil {
		return buf
	}
	if len(o.dead) > 0 {
		n := start
		for _, h := range buf[start:] {
			if _, d := o.dead[h.Tag]; !d {
				buf[n] = h
				n++
			}
		}
		buf = buf[:n]
	}
	return o.idx.Lookup(qname, buf)
}

// meta returns the metadata of the rule with the given tag.
func (p *Policy) meta(tag uint32) ruleMeta {
	if o := p.over; o != nil && tag >= o.base {
		return o.rules[tag-o.base].meta
	}
	return p.rules.get(tag)
}

// addrsOf returns the local-data addresses of a rule.
func (p *Policy) addrsOf(tag uint32) []netip.Addr {
	if o := p.over; o != nil && tag >= o.base {
		return o.rules[tag-o.base].addrs
	}
	return p.addrs[tag]
}

// each calls fn for every rule of the policy (dead ones included: see
// ruleMeta.dead), base and delta, until fn returns false.
func (p *Policy) each(fn func(name string, kind blocklists.Kind, tag uint32, m ruleMeta) bool) {
	o := p.over
	stop := false
	p.idx.Each(func(name string, kind blocklists.Kind, tag uint32) bool {
		if o != nil {
			if _, d := o.dead[tag]; d {
				return true
			}
		}
		if !fn(name, kind, tag, p.rules.get(tag)) {
			stop = true
			return false
		}
		return true
	})
	if o == nil || stop {
		return
	}
	o.idx.Each(func(name string, kind blocklists.Kind, tag uint32) bool {
		return fn(name, kind, tag, o.rules[tag-o.base].meta)
	})
}

// digestOf hashes one rule as Build does.
func digestOf(name string, kind blocklists.Kind, act blocklists.Action, addrs []netip.Addr) ruleSum {
	var b builder
	return b.ruleDigest(name, kind, act, addrs)
}

// DeltaResult says what ApplyDelta changed.
type DeltaResult struct {
	Added, Removed int
}

// ApplyDelta returns a new policy in which source `source` of jurisdiction
// id has the rules of oldText replaced by those of newText (both in the
// source's format: for a transfer source, the zone file text of the owners
// an IXFR touched, before and after). The index is not rebuilt: the removed
// rules are masked and the added ones indexed apart, so the cost follows
// the size of the change. p is not modified. It fails with ErrRebuild when
// the changes since the last Build grow past a bound, and when the source
// is not loaded (its rules came from elsewhere).
func (p *Policy) ApplyDelta(id, source string, oldText, newText []byte, st *TransferState) (*Policy, DeltaResult, error) {
	var res DeltaResult
	j := p.byID[id]
	if j == nil {
		return nil, res, fmt.Errorf("no jurisdiction %q", id)
	}
	si := slices.IndexFunc(j.Sources, func(s SourceInfo) bool { return s.Name == source })
	if si < 0 {
		return nil, res, fmt.Errorf("jurisdiction %s has no source %q", id, source)
	}
	info := j.Sources[si]
	if info.Stale || info.Err != "" || !j.Loaded {
		return nil, res, ErrRebuild
	}
	opts := blocklists.ParseOptions{Source: info.Origin, Format: info.Format, Match: blocklists.Suffix, MaxBadShare: 1}
	if info.Match == "exact" {
		opts.Match = blocklists.Exact
	}
	if info.Transfer != nil {
		opts.Origin = info.Transfer.Zone
	}
	type prule struct {
		name  string
		kind  blocklists.Kind
		act   blocklists.Action
		addrs []netip.Addr
		line  int
	}
	parse := func(text []byte) ([]prule, blocklists.Stats, error) {
		var out []prule
		st, err := blocklists.Parse(bytes.NewReader(text), opts, func(r blocklists.Rule) {
			out = append(out, prule{name: r.Name, kind: r.Kind, act: r.Action, addrs: r.Addrs, line: r.Line})
		})
		return out, st, err
	}
	olds, oldStats, err := parse(oldText)
	if err != nil {
		return nil, res, err
	}
	news, newStats, err := parse(newText)
	if err != nil {
		return nil, res, err
	}

	q := *p
	o := &overlay{base: uint32(p.rules.len()), dead: map[uint32]struct{}{}}
	if p.over != nil {
		o.dead = maps.Clone(p.over.dead)
		o.rules = slices.Clone(p.over.rules)
	}
	acc := p.accs[j.idx]
	jur, src := uint16(j.idx), uint16(si)
	var buf [hitBufSize]blocklists.Hit
	for _, r := range olds {
		qn := r.name
		if r.kind == blocklists.Below {
			qn = "x." + r.name
		}
		for _, h := range p.lookup(qn, buf[:0]) {
			if h.Name != r.name || h.Kind != r.kind {
				continue
			}
			m := p.meta(h.Tag)
			if m.dead || m.jur != jur || m.src != src || m.action != r.act {
				continue
			}
			if h.Tag < o.base {
				if _, gone := o.dead[h.Tag]; gone {
					continue
				}
				o.dead[h.Tag] = struct{}{}
			} else {
				if o.rules[h.Tag-o.base].meta.dead {
					continue
				}
				o.rules[h.Tag-o.base].meta.dead = true
			}
			acc.sub(digestOf(r.name, r.kind, r.act, r.addrs))
			res.Removed++
			break
		}
	}
	for _, r := range news {
		o.rules = append(o.rules, overRule{name: r.name, kind: r.kind, addrs: r.addrs,
			meta: ruleMeta{line: uint32(max(0, min(r.line, maxLine))), jur: jur, src: src, action: r.act}})
		acc.add(digestOf(r.name, r.kind, r.act, r.addrs))
		res.Added++
	}
	// Re-index the overlay's live rules (tags stay their positions).
	kept := o.rules[:0]
	for _, r := range o.rules {
		if !r.meta.dead {
			kept = append(kept, r)
		}
	}
	o.rules = kept
	if len(o.rules)+len(o.dead) > maxOverlay {
		return nil, res, ErrRebuild
	}
	ib := blocklists.NewIndexBuilder(len(o.rules))
	for i, r := range o.rules {
		ib.Add(r.name, r.kind, o.base+uint32(i))
	}
	o.idx = ib.Build()
	o.live = len(o.rules)
	q.over = o

	// The changed jurisdiction, and everything that points at it.
	nj := *j
	nj.Sources = slices.Clone(j.Sources)
	ni := &nj.Sources[si]
	ni.Entries += res.Added - res.Removed
	ni.Skipped += newStats.Skipped - oldStats.Skipped
	if st != nil {
		ni.Transfer = st
	}
	nj.Entries += res.Added - res.Removed
	nj.Hash = jurisdictionHash(&nj, &acc)
	q.accs = slices.Clone(p.accs)
	q.accs[j.idx] = acc
	q.replaceJurisdiction(j, &nj)
	q.hash = policyHash(&q)
	return &q, res, nil
}

// replaceJurisdiction points p (a shallow copy) at nj instead of j: the
// jurisdiction list and map, and copies of the client sets.
func (p *Policy) replaceJurisdiction(j, nj *Jurisdiction) {
	p.jurs = slices.Clone(p.jurs)
	p.jurs[j.idx] = nj
	p.byID = maps.Clone(p.byID)
	p.byID[nj.ID] = nj
	sets := map[*ClientSet]*ClientSet{}
	swap := func(cs *ClientSet) *ClientSet {
		if cs == nil {
			return nil
		}
		if n, ok := sets[cs]; ok {
			return n
		}
		n := *cs
		n.Jurisdictions = slices.Clone(cs.Jurisdictions)
		for i, x := range n.Jurisdictions {
			if x == j {
				n.Jurisdictions[i] = nj
			}
		}
		n.failClosed = slices.Clone(cs.failClosed)
		for i, x := range n.failClosed {
			if x == j {
				n.failClosed[i] = nj
			}
		}
		sets[cs] = &n
		return &n
	}
	p.def = swap(p.def)
	clients := make([]*ClientSet, len(p.clients))
	for i, cs := range p.clients {
		clients[i] = swap(cs)
	}
	p.clients = clients
	for _, t := range []*prefixTable{&p.v4, &p.v6} {
		m := make(map[prefixKey]*ClientSet, len(t.m))
		for k, cs := range t.m {
			m[k] = swap(cs)
		}
		t.m = m
	}
}

// Rule is one live rule of a jurisdiction, as Rules gives it.
type Rule struct {
	// Name is canonical (no trailing dot); Kind says which names it
	// covers.
	Name string
	Kind blocklists.Kind
	// Action is the rule's own action (Block: the jurisdiction's).
	Action blocklists.Action
	// Addrs are the addresses of a LocalData rule.
	Addrs []netip.Addr
}

// Rules calls fn for every live rule of jurisdiction id (block and allow),
// base and delta; it returns false when there is no such jurisdiction.
// Rule.Name is valid only during the call.
func (p *Policy) Rules(id string, fn func(Rule)) bool {
	j := p.byID[id]
	if j == nil {
		return false
	}
	jur := uint16(j.idx)
	p.each(func(name string, kind blocklists.Kind, tag uint32, m ruleMeta) bool {
		if m.dead || m.jur != jur {
			return true
		}
		fn(Rule{Name: name, Kind: kind, Action: m.action, Addrs: p.addrsOf(tag)})
		return true
	})
	return true
}

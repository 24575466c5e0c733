package policy

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/cespare/xxhash/v2"

	"github.com/jurisdns/jurisdns/blocklists"
	"github.com/jurisdns/jurisdns/spec"
)

// parseDate parses effective/expires dates: 2006-01-02 (midnight UTC) or
// RFC 3339.
var parseDate = spec.ParseDate

// digest is an order-independent fingerprint of a multiset of rules: the
// sum, word by word, of each rule's ruleSum. Rule order and line numbers
// do not change it, so rebuilding the same lists gives the same hash.
type digest [2]uint64

// ruleSum is one rule's 128-bit hash: xxhash-64 of its bytes, and of its
// bytes and one more. It tells rule sets apart (a policy that changed, an
// RPZ zone to serve anew); it need not resist a forger, who would have to
// write the list anyway. SHA-256 here was a sixth of the build of a
// 1M-entry list (BenchmarkBuild1M).
type ruleSum [2]uint64

func (d *digest) add(s ruleSum) {
	for i := range d {
		d[i] += s[i]
	}
}

func (d *digest) sub(s ruleSum) {
	for i := range d {
		d[i] -= s[i]
	}
}

func (d *digest) addDigest(o *digest) {
	for i := range d {
		d[i] += o[i]
	}
}

// ruleDigest hashes one rule: kind, action, name and local-data addresses.
func (b *builder) ruleDigest(name string, kind blocklists.Kind, act blocklists.Action, addrs []netip.Addr) ruleSum {
	buf := append(b.ruleBuf[:0], byte(kind), byte(act))
	buf = append(buf, name...)
	for _, a := range addrs {
		buf = append(buf, 0)
		buf = a.AppendTo(buf)
	}
	buf = append(buf, 0xff)
	b.ruleBuf = buf
	return ruleSum{xxhash.Sum64(buf[:len(buf)-1]), xxhash.Sum64(buf)}
}

// hw writes length-prefixed fields to a hash.
type hw struct{ h hash.Hash }

func (w hw) str(s string) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(s)))
	w.h.Write(n[:])
	w.h.Write([]byte(s))
}

func (w hw) u64(v uint64) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], v)
	w.h.Write(n[:])
}

// jurisdictionHash hashes the metadata that changes answers or reports,
// and the rule digest.
func jurisdictionHash(j *Jurisdiction, d *digest) string {
	w := hw{sha256.New()}
	w.str(j.ID)
	w.str(j.Title)
	w.str(j.Authority)
	w.str(j.Instrument)
	w.str(strings.Join(j.Links, "\n"))
	for _, in := range j.Instruments {
		w.str(in.Name)
		w.str(in.Issuer)
		w.str(FormatDate(in.Date))
		w.str(FormatDate(in.Repealed))
		for _, l := range in.Links {
			w.str(l.URL)
			w.str(l.Title)
		}
	}
	w.str(FormatDate(j.Effective))
	w.str(FormatDate(j.Expires))
	w.u64(uint64(j.Tier))
	w.u64(uint64(j.Mode))
	w.u64(uint64(j.Action))
	for _, a := range j.Sinkhole {
		w.str(a.String())
	}
	w.u64(uint64(j.EDE))
	w.u64(uint64(j.TTL))
	w.u64(uint64(j.OnLoadFailure))
	w.str(j.Contact)
	w.str(j.Organisation)
	if j.Loaded {
		w.u64(1)
	} else {
		w.u64(0)
	}
	for _, v := range d {
		w.u64(v)
	}
	return hex.EncodeToString(w.h.Sum(nil))
}

// policyHash hashes every jurisdiction (by id) and the client mappings (by
// prefix), so that reordering the configuration does not change it.
func policyHash(p *Policy) string {
	w := hw{sha256.New()}
	ids := make([]string, 0, len(p.jurs))
	for _, j := range p.jurs {
		ids = append(ids, j.ID)
	}
	slices.Sort(ids)
	for _, id := range ids {
		w.str(id)
		w.str(p.byID[id].Hash)
	}
	type entry struct {
		prefix string
		cs     *ClientSet
	}
	var es []entry
	for _, cs := range p.clients {
		for _, pf := range cs.Subnets {
			es = append(es, entry{pf.String(), cs})
		}
	}
	slices.SortFunc(es, func(a, b entry) int { return strings.Compare(a.prefix, b.prefix) })
	writeSet := func(cs *ClientSet) {
		w.str(cs.Name)
		w.u64(uint64(len(cs.Jurisdictions)))
		for _, j := range cs.Jurisdictions {
			w.str(j.ID)
		}
	}
	for _, e := range es {
		w.str(e.prefix)
		writeSet(e.cs)
	}
	w.str("default")
	writeSet(p.def)
	return hex.EncodeToString(w.h.Sum(nil))
}

// Hash returns the hex SHA-256 of the effective policy: every
// jurisdiction's metadata and rule set, and the client mappings. Rebuilding
// from the same input gives the same hash.
func (p *Policy) Hash() string { return p.hash }

// Serial is the SOA serial of the synthesized policy zone: the first 8 hex
// digits of Hash, so a block answer says which policy produced it.
func (p *Policy) Serial() uint32 {
	if len(p.hash) < 8 {
		return 0
	}
	v, err := strconv.ParseUint(p.hash[:8], 16, 32)
	if err != nil {
		return 0
	}
	return uint32(v)
}

// Entries returns the number of rules (block and allow) of jurisdiction id,
// or 0 when there is none.
func (p *Policy) Entries(id string) int {
	if j := p.byID[id]; j != nil {
		return j.Entries
	}
	return 0
}

// Jurisdictions returns every jurisdiction: the shipped ones by id, then
// the ones the configuration adds, in its order. The caller must not
// modify them.
func (p *Policy) Jurisdictions() []*Jurisdiction { return p.jurs }

// Lookup returns the jurisdiction with the given id, or nil.
func (p *Policy) Lookup(id string) *Jurisdiction { return p.byID[id] }

// Change counts the rules a reload added to and removed from one
// jurisdiction.
type Change struct {
	Added   int `json:"added"`
	Removed int `json:"removed"`
}

// Diff compares the rule sets of two policies jurisdiction by jurisdiction
// (a rule is its name, kind and action). The result has an entry for every
// jurisdiction of either policy whose rules changed. old may be nil.
func Diff(old, new *Policy) map[string]Change {
	out := map[string]Change{}
	if new != nil {
		for id, n := range new.countMissing(old) {
			c := out[id]
			c.Added = n
			out[id] = c
		}
	}
	if old != nil {
		for id, n := range old.countMissing(new) {
			c := out[id]
			c.Removed = n
			out[id] = c
		}
	}
	return out
}

// countMissing counts, per jurisdiction id, the live rules of p that other
// does not have in the jurisdiction with the same id.
func (p *Policy) countMissing(other *Policy) map[string]int {
	out := map[string]int{}
	// A jurisdiction whose hash is the same in other has the same live
	// rules (the hash covers them): none of its rules is looked up. A
	// refresh or reload that leaves a big list alone costs nothing for it.
	same := make([]bool, len(p.jurs))
	if other != nil {
		for i, j := range p.jurs {
			if o := other.byID[j.ID]; o != nil && o.Hash == j.Hash {
				same[i] = true
			}
		}
	}
	var buf [hitBufSize]blocklists.Hit
	p.each(func(name string, kind blocklists.Kind, _ uint32, m ruleMeta) bool {
		if m.dead || same[m.jur] {
			return true
		}
		id := p.jurs[m.jur].ID
		if other == nil || !other.hasRule(id, name, kind, m.action, buf[:0]) {
			out[id]++
		}
		return true
	})
	return out
}

// hasRule reports whether p has the rule in jurisdiction id.
func (p *Policy) hasRule(id, name string, kind blocklists.Kind, act blocklists.Action, buf []blocklists.Hit) bool {
	j := p.byID[id]
	if j == nil {
		return false
	}
	q := name
	if kind == blocklists.Below {
		q = "x." + name // a Below rule covers the names under it only
	}
	for _, h := range p.lookup(q, buf) {
		m := p.meta(h.Tag)
		if !m.dead && int(m.jur) == j.idx && m.action == act && h.Kind == kind && h.Name == name {
			return true
		}
	}
	return false
}

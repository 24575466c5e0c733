package zones

import (
	"slices"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/internal/dnsname"
)

// maxChain bounds the CNAME records followed for one answer.
const maxChain = 16

// Zone is a local zone loaded from a zone file and answered authoritatively.
// It is immutable and safe for concurrent use.
type Zone struct {
	origin string           // canonical apex
	soa    *dns.SOA         // the apex SOA
	nodes  map[string]*node // every existing name, empty non-terminals included
	table  *Table           // the Table the zone belongs to, for CNAME targets in other zones
}

// node is the data at one name.
type node struct {
	sets []rrset
	cut  bool // a delegation point: NS records below the apex
}

type rrset struct {
	t   uint16
	rrs []dns.RR
}

func (n *node) get(t uint16) []dns.RR {
	for i := range n.sets {
		if n.sets[i].t == t {
			return n.sets[i].rrs
		}
	}
	return nil
}

// put adds rr to its RRset unless an identical record is there.
func (n *node) put(rr dns.RR) {
	t := rr.Header().Rrtype
	for i := range n.sets {
		s := &n.sets[i]
		if s.t != t {
			continue
		}
		for _, old := range s.rrs {
			if dns.IsDuplicate(old, rr) {
				return
			}
		}
		s.rrs = append(s.rrs, rr)
		return
	}
	n.sets = append(n.sets, rrset{t: t, rrs: []dns.RR{rr}})
}

// Name returns the zone's canonical apex name.
func (z *Zone) Name() string { return z.origin }

// SOA returns a copy of the zone's SOA record.
func (z *Zone) SOA() *dns.SOA { return dns.Copy(z.soa).(*dns.SOA) }

// kind is the outcome of looking a name up in one zone.
type kind uint8

const (
	kindAnswer   kind = iota // rrs is the answer
	kindCNAME                // rrs is the one CNAME at the name; follow it
	kindNoData               // the name exists, the type does not
	kindNXDomain             // the name does not exist
	kindReferral             // rrs is the NS RRset of the delegation point at cut
)

type result struct {
	kind kind
	rrs  []dns.RR // copies, owner names set
	cut  string
}

// Answer returns the authoritative answer to q, whose one question must be
// at or below the zone's apex (use Table.Find): AA set, RA left to the
// caller, no OPT record (the server mirrors EDNS), the question and ID of q.
// It follows RFC 1034 §4.3.2 and RFC 4592:
//
//   - an exact match answers the RRset; qtype ANY answers every RRset at
//     the name;
//   - a CNAME is followed inside the zone and into the other local zones of
//     the Table; at a name that is not local (outside every local zone, or in
//     a conditional forward) the chain stops and the partial chain is
//     returned for the resolver to continue;
//   - a wildcard answers a name that does not exist when it is the source of
//     synthesis of the name's closest encloser; an existing name between the
//     wildcard and the name, empty non-terminals included, blocks it;
//   - a name that does not exist gets NXDOMAIN and an existing name without
//     the type NODATA, both with the zone's SOA in the authority section, TTL
//     min(SOA TTL, SOA minimum) (RFC 2308); after a CNAME the rcode is that
//     of the last name (RFC 6604);
//   - a name at or below a delegation point gets a referral: AA clear, the
//     NS RRset in the authority section, glue addresses in the additional
//     section; DS at the delegation point is answered from this side (RFC
//     4035 §3.1.4.1);
//   - addresses of MX, SRV and NS targets inside the zone go in the
//     additional section.
//
// AXFR and IXFR get REFUSED, as does a question outside the zone; a message
// without exactly one question gets FORMERR. The returned message is the
// caller's to modify: it shares nothing with the zone.
func (z *Zone) Answer(q *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(q)
	if len(q.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		return m
	}
	qt := q.Question[0].Qtype
	name := dnsname.Canonical(q.Question[0].Name)
	if qt == dns.TypeAXFR || qt == dns.TypeIXFR || !dns.IsSubDomain(z.origin, name) {
		m.Rcode = dns.RcodeRefused
		return m
	}
	m.Authoritative = true
	zone := z
	visited := []string{name}
	for {
		r := zone.lookup(name, qt)
		switch r.kind {
		case kindAnswer:
			m.Answer = append(m.Answer, r.rrs...)
			m.Extra = append(m.Extra, zone.additional(r.rrs)...)
			return m
		case kindNoData:
			m.Ns = []dns.RR{zone.negativeSOA()}
			return m
		case kindNXDomain:
			m.Rcode = dns.RcodeNameError
			m.Ns = []dns.RR{zone.negativeSOA()}
			return m
		case kindReferral:
			if len(m.Answer) == 0 {
				m.Authoritative = false
			}
			m.Ns = r.rrs
			m.Extra = zone.glue(r.rrs)
			return m
		case kindCNAME:
			m.Answer = append(m.Answer, r.rrs...)
			target := dnsname.Lower(r.rrs[0].(*dns.CNAME).Target)
			if len(visited) >= maxChain || slices.Contains(visited, target) {
				return m
			}
			next, _ := zone.table.Find(target)
			if zone.table == nil && dns.IsSubDomain(zone.origin, target) {
				next = zone
			}
			if next == nil {
				return m
			}
			visited = append(visited, target)
			zone, name = next, target
		}
	}
}

// lookup finds name, at or below the apex, in the zone.
func (z *Zone) lookup(name string, qt uint16) result {
	// The delegation point closest to the apex, if any, takes the name out
	// of the zone's authoritative data.
	cut := ""
	for off := 0; len(name)-off > len(z.origin); off, _ = dns.NextLabel(name, off) {
		if n := z.nodes[name[off:]]; n != nil && n.cut {
			cut = name[off:]
		}
	}
	if cut != "" {
		n := z.nodes[cut]
		if cut == name && qt == dns.TypeDS {
			if ds := n.get(dns.TypeDS); ds != nil {
				return result{kind: kindAnswer, rrs: copyRRs(ds, "")}
			}
			return result{kind: kindNoData}
		}
		return result{kind: kindReferral, rrs: copyRRs(n.get(dns.TypeNS), ""), cut: cut}
	}

	n := z.nodes[name]
	owner := "" // the owner of synthesized records, "" for records as they are
	if n == nil {
		// RFC 4592 §3.3.1: the closest encloser is the longest existing
		// ancestor; only its wildcard child can answer.
		ce := name
		for n == nil {
			off, _ := dns.NextLabel(ce, 0)
			ce = ce[off:]
			n = z.nodes[ce]
		}
		if n = z.nodes["*."+ce]; n == nil {
			return result{kind: kindNXDomain}
		}
		owner = name
	}
	if rrs := n.get(qt); rrs != nil {
		return result{kind: kindAnswer, rrs: copyRRs(rrs, owner)}
	}
	if qt == dns.TypeANY && len(n.sets) > 0 {
		var all []dns.RR
		for _, s := range n.sets {
			all = append(all, copyRRs(s.rrs, owner)...)
		}
		return result{kind: kindAnswer, rrs: all}
	}
	if cn := n.get(dns.TypeCNAME); cn != nil && qt != dns.TypeANY {
		return result{kind: kindCNAME, rrs: copyRRs(cn, owner)}
	}
	return result{kind: kindNoData}
}

// copyRRs copies rrs, setting the owner name when owner is not empty.
func copyRRs(rrs []dns.RR, owner string) []dns.RR {
	out := make([]dns.RR, len(rrs))
	for i, rr := range rrs {
		out[i] = dns.Copy(rr)
		if owner != "" {
			out[i].Header().Name = owner
		}
	}
	return out
}

// negativeSOA is the SOA of a negative answer (RFC 2308 §3).
func (z *Zone) negativeSOA() dns.RR {
	soa := z.SOA()
	soa.Hdr.Ttl = min(soa.Hdr.Ttl, soa.Minttl)
	return soa
}

// glue returns the A and AAAA records in the zone, occluded ones included,
// of the targets of the NS records of a referral.
func (z *Zone) glue(ns []dns.RR) []dns.RR {
	var out []dns.RR
	for _, rr := range ns {
		out = append(out, z.addresses(rr.(*dns.NS).Ns, true)...)
	}
	return out
}

// additional returns the addresses in the zone of the targets of MX, SRV
// and NS records in an answer.
func (z *Zone) additional(answer []dns.RR) []dns.RR {
	var out []dns.RR
	for _, rr := range answer {
		var target string
		switch rr := rr.(type) {
		case *dns.MX:
			target = rr.Mx
		case *dns.SRV:
			target = rr.Target
		case *dns.NS:
			target = rr.Ns
		default:
			continue
		}
		out = append(out, z.addresses(target, false)...)
	}
	return out
}

// addresses returns copies of the A and AAAA records of name when it is in
// the zone; occluded (below a delegation point) only when glue is true.
func (z *Zone) addresses(name string, glue bool) []dns.RR {
	name = dnsname.Lower(name)
	if !dns.IsSubDomain(z.origin, name) {
		return nil
	}
	n := z.nodes[name]
	if n == nil {
		return nil
	}
	if !glue {
		for off := 0; len(name)-off > len(z.origin); off, _ = dns.NextLabel(name, off) {
			if c := z.nodes[name[off:]]; c != nil && c.cut {
				return nil
			}
		}
	}
	return append(copyRRs(n.get(dns.TypeA), ""), copyRRs(n.get(dns.TypeAAAA), "")...)
}

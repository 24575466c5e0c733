package resolver

import (
	"encoding/binary"
	"strings"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/policy"
)

// fastBlock writes the policy answer for a blocked query straight into
// bytes, without building a dns.Msg. It must produce exactly what
// blockAnswer (policy.BlockAnswer and the EDE) + finish produce
// (TestFastBlockMatchesSlowPath checks it), so it emulates miekg/dns name
// compression: names are compressed only against identical
// (case-sensitive) suffixes already written. soa is the jurisdiction's SOA
// record packed for the snapshot (blockSOA); without it an answer that needs
// the SOA is left to the slow path. Over a stream transport (stream) the answer is not fitted
// to the client's UDP size. Anything unusual returns ok=false and the slow
// path answers.
func fastBlock(out, pkt []byte, q *question, canon string, v *policy.Verdict, soa []byte, stream bool) ([]byte, bool) {
	j := v.Jurisdiction
	// The synthesized SOA's names end in jurisdns. and invalid.: a query
	// name ending the same way would compress against them.
	if strings.HasSuffix(canon, "jurisdns.") || strings.HasSuffix(canon, "invalid.") {
		return nil, false
	}
	ttl := uint32(j.TTL.Seconds())
	rcode := dns.RcodeSuccess
	var addrs int // number of A/AAAA records
	withSOA := false
	switch v.Action {
	case policy.ActionDrop:
		return nil, false
	case policy.ActionRefused:
		rcode = dns.RcodeRefused
	case policy.ActionNoData:
		withSOA = true
	case policy.ActionNull:
		if q.qtype == dns.TypeA || q.qtype == dns.TypeAAAA {
			addrs = 1
		} else {
			withSOA = true
		}
	case policy.ActionIP:
		for _, a := range v.Addrs {
			if (q.qtype == dns.TypeA && a.Is4()) || (q.qtype == dns.TypeAAAA && !a.Is4()) {
				addrs++
			}
		}
		withSOA = addrs == 0
	case policy.ActionNXDomain:
		rcode = dns.RcodeNameError
		withSOA = true
	default:
		return nil, false
	}

	if withSOA && soa == nil {
		return nil, false
	}
	out = out[:0]
	out = binary.BigEndian.AppendUint16(out, q.id)
	out = binary.BigEndian.AppendUint16(out, flagQR|flagRA|q.flags&(flagRD|flagCD)|uint16(rcode))
	var ns, ar uint16
	if withSOA {
		ns = 1
	}
	if q.edns {
		ar = 1
	}
	out = append(out, 0, 1, byte(addrs>>8), byte(addrs), byte(ns>>8), byte(ns), byte(ar>>8), byte(ar))
	out = append(out, pkt[hdrLen:q.qEnd]...)

	if addrs > 0 {
		emit := func(typ uint16, ip []byte) {
			out = append(out, 0xC0, hdrLen)
			out = binary.BigEndian.AppendUint16(out, typ)
			out = append(out, 0, 1)
			out = binary.BigEndian.AppendUint32(out, ttl)
			out = binary.BigEndian.AppendUint16(out, uint16(len(ip)))
			out = append(out, ip...)
		}
		if v.Action == policy.ActionNull {
			if q.qtype == dns.TypeA {
				emit(dns.TypeA, []byte{0, 0, 0, 0})
			} else {
				emit(dns.TypeAAAA, make([]byte, 16))
			}
		} else {
			for _, a := range v.Addrs {
				switch {
				case q.qtype == dns.TypeA && a.Is4():
					b := a.As4()
					emit(dns.TypeA, b[:])
				case q.qtype == dns.TypeAAAA && !a.Is4():
					b := a.As16()
					emit(dns.TypeAAAA, b[:])
				}
			}
		}
	}

	if withSOA {
		// Owner: the apex of the synthesized policy zone (the matched
		// rule, lower case), compressed against the question as sent.
		apex := canon
		if v.Rule != "" && len(v.Rule)+1 <= len(canon) && canon[len(canon)-len(v.Rule)-1:len(canon)-1] == v.Rule &&
			(len(v.Rule)+1 == len(canon) || canon[len(canon)-len(v.Rule)-2] == '.') {
			apex = canon[len(canon)-len(v.Rule)-1:]
		}
		out = appendCompressed(out, pkt, q, canon, apex)
		out = append(out, soa...)
	}

	if q.edns {
		var flags uint16
		if q.do {
			flags = doBit
		}
		out = append(out, 0, 0, typeOPT, byte(maxUDPSize>>8), byte(maxUDPSize&0xff), 0, 0, byte(flags>>8), byte(flags))
		rdStart := len(out)
		out = append(out, 0, 0, 0, edeOption, 0, 0)
		code, _ := v.EDE()
		out = binary.BigEndian.AppendUint16(out, code)
		out = v.AppendEDEText(out)
		binary.BigEndian.PutUint16(out[rdStart:], uint16(len(out)-rdStart-2))
		binary.BigEndian.PutUint16(out[rdStart+4:], uint16(len(out)-rdStart-6))
	}
	limit := dns.MaxMsgSize
	if !stream {
		limit = 512
		if q.edns {
			limit = int(max(min(q.udpSize, maxUDPSize), 512))
		}
	}
	if len(out) > limit {
		return nil, false
	}
	return out, true
}

// blockSOA is one jurisdiction's block SOA record (policy.BlockSOA) as the
// fast path writes it after the owner name: type, class, TTL, RDLENGTH and
// RDATA, the names uncompressed (fastBlock leaves to the full path every
// query name they could be compressed against). It is packed once per
// snapshot, when the runtime is assembled.
type blockSOA struct {
	j    *policy.Jurisdiction
	tail []byte
}

// blockSOAs packs the block SOA records of every jurisdiction of pol; a
// jurisdiction whose record does not pack is left out (its blocks take the
// full path).
func blockSOAs(pol *policy.Policy, serial uint32) []blockSOA {
	js := pol.Jurisdictions()
	out := make([]blockSOA, 0, len(js))
	buf := make([]byte, 512)
	for _, j := range js {
		n, err := dns.PackRR(policy.BlockSOA(j, ".", serial), buf, 0, nil, false)
		if err != nil {
			continue
		}
		out = append(out, blockSOA{j: j, tail: append([]byte(nil), buf[1:n]...)}) // after the root owner
	}
	return out
}

// soaTail returns the packed block SOA record of jurisdiction j, nil when
// j is not one of the snapshot's. A linear scan: a policy has a few dozen
// jurisdictions at most, and comparing pointers is cheaper than hashing
// one.
func (rt *Runtime) soaTail(j *policy.Jurisdiction) []byte {
	for i := range rt.blockSOAs {
		if rt.blockSOAs[i].j == j {
			return rt.blockSOAs[i].tail
		}
	}
	return nil
}

// appendCompressed writes name (a lower-case suffix of canon) the way
// miekg/dns would after packing the question: the longest suffix of name
// that equals, byte for byte, a suffix of the question name as the client
// sent it becomes a pointer; the labels before it are written out.
func appendCompressed(out, pkt []byte, q *question, canon, name string) []byte {
	qwire := pkt[hdrLen : q.qEnd-4] // question name, wire form, as sent
	for off := 0; off < len(name) && name[off:] != "."; {
		suffix := name[off:] // e.g. "deepseek.com."
		// The same suffix in the question starts len(suffix) wire bytes
		// before the root label: presentation and wire lengths of a
		// suffix are equal (each dot stands for one length byte).
		start := len(qwire) - len(suffix) - 1
		if start >= 0 && labelBoundary(qwire, start) && wireEqualsPresentation(qwire[start:], suffix) {
			return append(out, 0xC0|byte((hdrLen+start)>>8), byte(hdrLen+start))
		}
		i := strings.IndexByte(suffix, '.')
		out = append(out, byte(i))
		out = append(out, suffix[:i]...)
		off += i + 1
	}
	return append(out, 0)
}

// labelBoundary reports whether a label starts at offset off of a wire name.
func labelBoundary(wire []byte, off int) bool {
	for i := 0; i < len(wire); i += int(wire[i]) + 1 {
		if i == off {
			return true
		}
		if wire[i] == 0 {
			break
		}
	}
	return false
}

// wireEqualsPresentation compares a wire-format name with a plain
// presentation name byte for byte (case-sensitive, as miekg's compression
// map is).
func wireEqualsPresentation(wire []byte, name string) bool {
	p := 0
	for i := 0; i < len(wire); {
		l := int(wire[i])
		if l == 0 {
			return p == len(name) || name[p:] == "."
		}
		if p+l > len(name) || i+1+l > len(wire) || string(wire[i+1:i+1+l]) != name[p:p+l] {
			return false
		}
		p += l
		if p >= len(name) || name[p] != '.' {
			return false
		}
		p++
		i += 1 + l
	}
	return false
}

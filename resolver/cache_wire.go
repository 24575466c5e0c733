package resolver

import (
	"encoding/binary"
	"time"
	"unsafe"

	"github.com/jurisdns/jurisdns/internal/dnsname"
)

// Building a cache entry straight from an upstream reply's wire bytes.
//
// put takes a *dns.Msg: a miss unpacks the reply, scrubs it and packs it
// again for the cache, which is most of what a miss costs besides the
// sockets. putWire builds the same entry from the reply's bytes: it checks
// every record the way miekg's Unpack would read it, patches the header and
// the TTLs in a copy and cuts the trailing OPT. It accepts only what it can
// prove the Msg path (Unpack, AA cleared, scrub, newEntry) turns into the
// same entry, and declines everything else, which then takes that path.
//
// The rule that makes the copy safe is the one on compression pointers: a
// pointer must name the start of a label of a name read earlier (the
// question, an owner, a name in rdata the scan reads). Such a name lies
// wholly before the pointer, is never in the header or a TTL (the bytes the
// entry patches) nor in the cut OPT, and reads the same in the entry as in
// the reply (the question's case aside).

// maxWireTargets bounds the CNAME/DNAME records of an answer the wire path
// takes (it keeps their offsets in a fixed array).
const maxWireTargets = 16

// maxPointers is miekg's limit on the compression pointers in one name.
const maxPointers = 126

// typeA and the rest are the record types whose rdata the wire path checks;
// a reply with any other type in it is declined.
const (
	typeA      = 1
	typeNS     = 2
	typeCNAME  = 5
	typePTR    = 12
	typeMX     = 15
	typeAAAA   = 28
	typeDNAME  = 39
	typeDS     = 43
	typeRRSIG  = 46
	typeDNSKEY = 48
	typeSVCB   = 64
	typeHTTPS  = 65
)

// maxWireReply is the largest reply the wire path takes. Larger ones (TCP,
// rare) take the Msg path: a few kilobytes keep the bitmap below small, and
// the Msg path's own entry (repacked, up to 255 bytes for each 2-byte
// pointer miekg does not compress again) within the 16-bit offsets of an
// entry.
const maxWireReply = 4096

// wireScan checks a reply: starts marks the offsets where a label of an
// already checked name begins.
type wireScan struct {
	b      []byte
	starts [maxWireReply / 64]uint64
}

func (s *wireScan) isStart(off int) bool {
	return off < len(s.b) && s.starts[off>>6]&(1<<(off&63)) != 0
}

// name checks the name at off as miekg's UnpackDomainName reads it, with the
// stricter rule on pointers, and returns the offset after it: its own bytes
// (up to the end byte or the first pointer) lie before end, its wire length
// is at most 255, it follows at most maxPointers pointers. Its labels are
// marked as pointer targets once the whole name is checked.
func (s *wireScan) name(off, end int) (next int, ok bool) {
	b := s.b
	wire := 0 // label bytes and length bytes, without the end byte
	p := off
	for {
		if p >= end {
			return 0, false
		}
		c := int(b[p])
		switch c & 0xC0 {
		case 0x00:
			if c == 0 {
				next = p + 1
			} else {
				if p+1+c > end {
					return 0, false
				}
				if wire += c + 1; wire >= 255 {
					return 0, false
				}
				p += 1 + c
				continue
			}
		case 0xC0:
			if p+2 > end {
				return 0, false
			}
			next = p + 2
			ptrs := 0
			for q := int(binary.BigEndian.Uint16(b[p:]) & 0x3FFF); ; {
				// q must start a label of a checked name, at every hop:
				// what follows it (labels, then the end or a pointer) was
				// checked with it.
				if ptrs++; ptrs > maxPointers || !s.isStart(q) {
					return 0, false
				}
				for b[q] != 0 && b[q]&0xC0 == 0 {
					if wire += int(b[q]) + 1; wire >= 255 {
						return 0, false
					}
					q += 1 + int(b[q])
				}
				if b[q] == 0 {
					break
				}
				q = int(binary.BigEndian.Uint16(b[q:]) & 0x3FFF)
			}
		default:
			return 0, false // 0x40 and 0x80 are reserved
		}
		break
	}
	for p = off; p < len(b) && b[p] != 0 && b[p]&0xC0 == 0; p += 1 + int(b[p]) {
		s.starts[p>>6] |= 1 << (p & 63)
	}
	return next, true
}

// plainByte reports whether miekg writes the label byte c as itself in a
// name's text form (no escape): then the lower-cased text of a name of
// such bytes is its labels, lower-cased, joined by dots.
func plainByte(c byte) bool {
	switch c {
	case '.', '\'', '@', ';', '(', ')', '"', '\\':
		return false
	}
	return c > ' ' && c <= '~'
}

// text writes the lower-cased text form of the checked name at off into
// dst and returns its length; ok is false when a label holds a byte that
// miekg escapes.
func (s *wireScan) text(off int, dst *[256]byte) (n int, ok bool) {
	b := s.b
	for {
		c := int(b[off])
		if c == 0 {
			break
		}
		if c&0xC0 == 0xC0 {
			off = int(binary.BigEndian.Uint16(b[off:]) & 0x3FFF)
			continue
		}
		for _, x := range b[off+1 : off+1+c] {
			if !plainByte(x) {
				return 0, false
			}
			if x >= 'A' && x <= 'Z' {
				x += 'a' - 'A'
			}
			dst[n] = x
			n++
		}
		dst[n] = '.'
		n++
		off += 1 + c
	}
	if n == 0 {
		dst[0] = '.'
		n = 1
	}
	return n, true
}

// under reports whether the name child is parent or below it (both
// lower-cased text forms of plain names, as dns.IsSubDomain compares them).
func under(parent, child []byte) bool {
	if len(parent) == 1 && parent[0] == '.' {
		return true
	}
	if len(child) < len(parent) || string(child[len(child)-len(parent):]) != string(parent) {
		return false
	}
	return len(child) == len(parent) || child[len(child)-len(parent)-1] == '.'
}

// record checks the resource record at off as miekg's UnpackRR reads it,
// for the types the wire path knows, and returns its fixed part.
func (s *wireScan) record(off int) (rr rrInfo, ok bool) {
	b := s.b
	n, ok := s.name(off, len(b))
	if !ok || n+10 > len(b) {
		return rr, false
	}
	rr = rrInfo{
		typ:    binary.BigEndian.Uint16(b[n:]),
		ttlOff: n + 4,
		rdOff:  n + 10,
		rdLen:  int(binary.BigEndian.Uint16(b[n+8:])),
	}
	rr.end = rr.rdOff + rr.rdLen
	if rr.end > len(b) {
		return rr, false
	}
	// Each rdata must be read whole by the type's unpack, with no field
	// left out (miekg stops early at the end of a short rdata, and the
	// repacked record would differ).
	switch rr.typ {
	case typeA:
		return rr, rr.rdLen == 4
	case typeAAAA:
		return rr, rr.rdLen == 16
	case typeNS, typeCNAME, typePTR, typeDNAME:
		next, ok := s.name(rr.rdOff, rr.end)
		return rr, ok && next == rr.end
	case typeMX:
		if rr.rdLen < 3 {
			return rr, false
		}
		next, ok := s.name(rr.rdOff+2, rr.end)
		return rr, ok && next == rr.end
	case typeSOA:
		next, ok := s.name(rr.rdOff, rr.end)
		if !ok {
			return rr, false
		}
		next, ok = s.name(next, rr.end)
		return rr, ok && next+20 == rr.end
	case typeRRSIG:
		// Type covered, algorithm, labels, original TTL, expiration,
		// inception, key tag; the signer; the signature (the rest).
		if rr.rdLen < 19 {
			return rr, false
		}
		_, ok := s.name(rr.rdOff+18, rr.end)
		return rr, ok
	case typeSVCB, typeHTTPS:
		// Priority, the target, the parameters.
		if rr.rdLen < 3 {
			return rr, false
		}
		next, ok := s.name(rr.rdOff+2, rr.end)
		return rr, ok && svcParams(b[next:rr.end])
	case typeDS, typeDNSKEY:
		// Three fixed fields (4 bytes), then the digest or key: the rest.
		return rr, rr.rdLen >= 4
	}
	return rr, false
}

// svcParams reports whether the SvcParams of an SVCB/HTTPS record hold only
// keys 1-6 (alpn, no-default-alpn, port, ipv4hint, ech, ipv6hint) in
// strictly increasing order, each with a value miekg both unpacks and packs
// again as it was (it rejects an empty alpn-id and a v4-mapped ipv6hint; it
// sorts the mandatory key's list, so key 0 is declined).
func svcParams(p []byte) bool {
	prev := -1
	for len(p) > 0 {
		if len(p) < 4 {
			return false
		}
		key := int(binary.BigEndian.Uint16(p))
		n := int(binary.BigEndian.Uint16(p[2:]))
		if 4+n > len(p) || key <= prev {
			return false
		}
		prev = key
		v := p[4 : 4+n]
		switch key {
		case 1: // alpn: non-empty length-prefixed ids
			if n == 0 {
				return false
			}
			for len(v) > 0 {
				l := int(v[0])
				if l == 0 || 1+l > len(v) {
					return false
				}
				v = v[1+l:]
			}
		case 2: // no-default-alpn
			if n != 0 {
				return false
			}
		case 3: // port
			if n != 2 {
				return false
			}
		case 4: // ipv4hint
			if n == 0 || n%4 != 0 {
				return false
			}
		case 5: // ech
		case 6: // ipv6hint
			if n == 0 || n%16 != 0 {
				return false
			}
			for ; len(v) > 0; v = v[16:] {
				if string(v[:10]) == "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" && v[10] == 0xff && v[11] == 0xff {
					return false // net.IP.To4 takes it for IPv4
				}
			}
		default:
			return false
		}
		p = p[4+n:]
	}
	return true
}

// optRecord checks the OPT record at off: the root owner, no extended rcode
// (miekg's Unpack would fold it into the rcode), and options that miekg
// unpacks without fail (NSID, cookie, padding, extended error).
func optRecord(b []byte, off int) (end int, ok bool) {
	if off+11 > len(b) || b[off] != 0 || binary.BigEndian.Uint16(b[off+1:]) != typeOPT || b[off+5] != 0 {
		return 0, false
	}
	end = off + 11 + int(binary.BigEndian.Uint16(b[off+9:]))
	if end > len(b) {
		return 0, false
	}
	for o := off + 11; o < end; {
		if o+4 > end {
			return 0, false
		}
		code := binary.BigEndian.Uint16(b[o:])
		n := int(binary.BigEndian.Uint16(b[o+2:]))
		o += 4 + n
		if o > end {
			return 0, false
		}
		switch {
		case code == 3, code == 10, code == 12:
		case code == edeOption && n >= 2:
		default:
			return 0, false
		}
	}
	return end, true
}

// putWire stores the upstream reply b for req, built without unpacking it
// (newEntryWire), and returns its entry; ok false means the wire path does
// not handle b: the caller unpacks it and takes put's path (which may
// still cache it, or find it not cacheable). b is not changed and not
// retained.
func (c *Cache) putWire(req *Request, b []byte, now time.Time) (e *entry, ok bool) {
	if c == nil {
		return nil, false
	}
	e, ok = c.newEntryWire(req, b, now)
	if !ok {
		return nil, false
	}
	c.store(c.key(e.name, e.qtype, req.DO, req.CD), e)
	return e, true
}

// newEntryWire builds the entry put would store for the reply b to req,
// from b's bytes: ok true means the entry is the one of unpacking b,
// clearing AA, scrub(m, req.Name) and newEntry (its message equal once
// unpacked, names compared case-insensitively; its rcode, lifetime, flags,
// CNAME targets and question end the same). The question, and owners that
// are the question's name, are stored in lower case (not in the upstream
// query's 0x20 case); other names keep the upstream's case.
//
// It declines (ok false) whenever that path would not cache b or would fail
// to unpack it, and whenever b has a shape it does not check: TC; an rcode
// other than NOERROR/NXDOMAIN/SERVFAIL; a record type other than A, AAAA,
// NS, CNAME, DNAME, PTR, MX, SOA, RRSIG, DS, DNSKEY, SVCB and HTTPS (their
// SvcParams as svcParams says); an authority section other than one SOA
// that scrub keeps; an additional section other than one plain OPT (cut
// from the entry); counts that do not match the records; trailing bytes; a
// reply over maxWireReply bytes; a compression pointer to anything but a
// label of an earlier name; more than maxWireTargets CNAME/DNAME records;
// names that miekg escapes where the entry needs their text.
//
// b must hold a reply (QR) whose ID and question the caller matched to the
// query; its question name is checked again here (equal to req.Name but for
// case), as are its type and class. b is not changed and not retained.
func (c *Cache) newEntryWire(req *Request, b []byte, now time.Time) (e *entry, ok bool) {
	if c == nil || len(b) < hdrLen || len(b) > maxWireReply {
		return nil, false
	}
	s := wireScan{b: b}
	flags := binary.BigEndian.Uint16(b[2:])
	rcode := int(flags & 0xF)
	if flags&flagQR == 0 || flags&flagTC != 0 || binary.BigEndian.Uint16(b[4:]) != 1 {
		return nil, false
	}
	an := int(binary.BigEndian.Uint16(b[6:]))
	ns := int(binary.BigEndian.Uint16(b[8:]))
	ar := int(binary.BigEndian.Uint16(b[10:]))

	// The question: plain labels, equal to req.Name but for case, no
	// pointer; the entry lower-cases it in place.
	off := hdrLen
	i := 0
	for {
		if off >= len(b) {
			return nil, false
		}
		l := int(b[off])
		if l == 0 {
			break
		}
		if l > 63 || off+1+l > len(b) || i+l+1 > len(req.Name) {
			return nil, false
		}
		for _, x := range b[off+1 : off+1+l] {
			if x >= 'A' && x <= 'Z' {
				x += 'a' - 'A'
			}
			if !plainByte(x) || req.Name[i] != x {
				return nil, false
			}
			i++
		}
		if req.Name[i] != '.' {
			return nil, false
		}
		i++
		off += 1 + l
	}
	if (i == 0 && req.Name != ".") || (i > 0 && i != len(req.Name)) || off-hdrLen >= 255 {
		return nil, false
	}
	if _, ok := s.name(hdrLen, off+1); !ok {
		return nil, false
	}
	off++
	if off+4 > len(b) || binary.BigEndian.Uint16(b[off:]) != req.Qtype || binary.BigEndian.Uint16(b[off+2:]) != 1 {
		return nil, false
	}
	off += 4
	qEnd := off

	// The records.
	var targets [maxWireTargets]int // rdata offsets of the CNAME/DNAME targets
	nt := 0
	posTTL := ^uint32(0) // the least clamped TTL
	for i := 0; i < an; i++ {
		rr, ok := s.record(off)
		if !ok {
			return nil, false
		}
		switch rr.typ {
		case typeCNAME, typeDNAME:
			if nt == maxWireTargets {
				return nil, false
			}
			targets[nt] = rr.rdOff
			nt++
		}
		posTTL = min(posTTL, c.clamp(binary.BigEndian.Uint32(b[rr.ttlOff:])))
		off = rr.end
	}
	soaOff := -1 // the SOA record's TTL offset
	var soa rrInfo
	switch ns {
	case 0:
	case 1:
		rr, ok := s.record(off)
		if !ok || rr.typ != typeSOA {
			return nil, false
		}
		soa, soaOff = rr, off
		off = rr.end
	default:
		return nil, false
	}
	cut := len(b) // the end of the entry's records
	switch ar {
	case 0:
	case 1:
		end, ok := optRecord(b, off)
		if !ok {
			return nil, false
		}
		cut = off
		off = end
	default:
		return nil, false
	}
	if off != len(b) {
		return nil, false
	}

	// The CNAME/DNAME targets, and whether scrub keeps the SOA: its owner
	// must be req.Name or a target, or an ancestor of one.
	var tb [256]byte
	cnLen := 0
	for _, t := range targets[:nt] {
		n, ok := s.text(t, &tb)
		if !ok {
			return nil, false
		}
		cnLen += n
	}
	if soaOff >= 0 {
		var ob [256]byte
		n, ok := s.text(soaOff, &ob)
		if !ok {
			return nil, false
		}
		owner := ob[:n]
		anchor := under(owner, unsafe.Slice(unsafe.StringData(req.Name), len(req.Name)))
		for _, t := range targets[:nt] {
			if anchor {
				break
			}
			m, _ := s.text(t, &tb)
			anchor = under(owner, tb[:m])
		}
		if !anchor {
			return nil, false // scrub drops it: a different entry, or none
		}
	}

	// newEntry's cases.
	var lifetime uint32
	nrec := an + ns
	negative := false
	switch {
	case rcode == rcodeServfail:
		if c.opts.ServfailTTL <= 0 {
			return nil, false
		}
		lifetime = max(uint32(c.opts.ServfailTTL/time.Second), 1)
		cut, nrec, nt, cnLen = qEnd, 0, 0, 0
	case rcode == rcodeNXDomain || (rcode == rcodeSuccess && an == 0):
		if soaOff < 0 {
			return nil, false // no SOA: not cacheable (RFC 2308 §5)
		}
		negative = true
		lifetime = min(binary.BigEndian.Uint32(b[soa.ttlOff:]), binary.BigEndian.Uint32(b[soa.end-4:]))
		lifetime = c.clamp(lifetime)
		if mx := uint32(c.opts.NegativeMaxTTL / time.Second); mx > 0 && lifetime > mx {
			lifetime = mx
		}
	case rcode == rcodeSuccess:
		if soaOff >= 0 {
			posTTL = min(posTTL, c.clamp(binary.BigEndian.Uint32(b[soa.ttlOff:])))
		}
		lifetime = posTTL
	default:
		return nil, false
	}
	if lifetime == 0 {
		return nil, false
	}

	// One buffer, as layout makes it: the answer, its TTL offsets, the
	// name, then the CNAME targets.
	buf := make([]byte, cut+2*nrec+len(req.Name)+cnLen)
	msg := buf[:cut:cut]
	copy(msg, b)
	binary.BigEndian.PutUint16(msg, 0)
	binary.BigEndian.PutUint16(msg[2:], flags&^flagAA)
	if rcode == rcodeServfail {
		clear(msg[6:12])
	} else if ar == 1 {
		binary.BigEndian.PutUint16(msg[10:], 0)
	}
	dnsname.LowerBytes(msg[hdrLen : qEnd-4])
	ttls := buf[cut : cut+2*nrec : cut+2*nrec]
	off = qEnd
	for j := 0; j < nrec; j++ {
		rr, err := readRR(msg, off)
		if err != nil {
			return nil, false // not reached: checked above
		}
		binary.BigEndian.PutUint16(ttls[2*j:], uint16(rr.ttlOff))
		if isName(msg, off, req.Name) && !atQuestion(msg, off) {
			// An owner that is the question's name but not the question's
			// bytes (a server that does not compress): a reply patches
			// only the question with the client's case, where the Msg
			// path's packing points the owner at it. Unpacked instead.
			return nil, false
		}
		switch {
		case !negative || j < an: // an NXDOMAIN's CNAMEs as newEntry clamps them
			binary.BigEndian.PutUint32(msg[rr.ttlOff:], c.clamp(binary.BigEndian.Uint32(msg[rr.ttlOff:])))
		case off == soaOff:
			binary.BigEndian.PutUint32(msg[rr.ttlOff:], lifetime)
		}
		off = rr.end
	}
	o := cut + 2*nrec
	e = &entry{
		qtype:  req.Qtype,
		msg:    msg,
		qEnd:   qEnd,
		ttls:   ttls,
		stored: now,
		ttl:    lifetime,
		rcode:  rcode,
	}
	if copy(buf[o:], req.Name) > 0 {
		e.name = unsafe.String(&buf[o], len(req.Name)) // never written again
	}
	o += len(req.Name)
	if nt > 0 {
		e.cnames = make([]string, nt)
		for j, t := range targets[:nt] {
			n, _ := s.text(t, &tb)
			copy(buf[o:], tb[:n])
			e.cnames[j] = unsafe.String(&buf[o], n)
			o += n
		}
	}
	if req.DO {
		e.flags |= keyDO
	}
	if req.CD {
		e.flags |= keyCD
	}
	return e, true
}

// isName reports whether the checked name at off in msg is name (plain,
// lower case) but for case.
func isName(msg []byte, off int, name string) bool {
	i := 0
	for {
		c := int(msg[off])
		if c == 0 {
			return i == len(name) || (i == 0 && name == ".")
		}
		if c&0xC0 == 0xC0 {
			off = int(binary.BigEndian.Uint16(msg[off:]) & 0x3FFF)
			continue
		}
		if i+c+1 > len(name) {
			return false
		}
		for _, x := range msg[off+1 : off+1+c] {
			if x >= 'A' && x <= 'Z' {
				x += 'a' - 'A'
			}
			if name[i] != x {
				return false
			}
			i++
		}
		if name[i] != '.' {
			return false
		}
		i++
		off += 1 + c
	}
}

// atQuestion reports whether the name at off is the question's name by
// pointers alone (a pointer to it, or to such a pointer): its letters are
// the ones a reply writes in the client's case. Pointers were checked to
// go backwards, so the chain ends.
func atQuestion(msg []byte, off int) bool {
	for msg[off]&0xC0 == 0xC0 {
		off = int(binary.BigEndian.Uint16(msg[off:]) & 0x3FFF)
	}
	return off == hdrLen
}

// The rcodes newEntry caches.
const (
	rcodeSuccess  = 0
	rcodeNXDomain = 3
	rcodeServfail = 2
)

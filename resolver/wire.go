package resolver

import (
	"encoding/binary"
	"errors"
)

// Wire-format helpers for the fast path: they read and patch packed DNS
// messages without unpacking them. Every function bounds-checks; a message
// they cannot handle simply leaves the fast path.

const (
	hdrLen = 12

	flagQR = 1 << 15
	flagAA = 1 << 10
	flagTC = 1 << 9
	flagRD = 1 << 8
	flagRA = 1 << 7
	flagZ  = 1 << 6
	flagAD = 1 << 5
	flagCD = 1 << 4

	typeOPT = 41
	typeSOA = 6

	// edeOption is the EDNS option code of Extended DNS Errors (RFC 8914).
	edeOption = 15
	// doBit is the DNSSEC OK bit in the OPT TTL field.
	doBit = 1 << 15
)

var errWire = errors.New("malformed message")

// skipName returns the offset just after the (possibly compressed) name that
// starts at off.
func skipName(msg []byte, off int) (int, error) {
	for hops := 0; ; hops++ {
		if off >= len(msg) || hops > 127 {
			return 0, errWire
		}
		c := int(msg[off])
		switch c & 0xC0 {
		case 0x00:
			if c == 0 {
				return off + 1, nil
			}
			off += 1 + c
		case 0xC0:
			if off+2 > len(msg) {
				return 0, errWire
			}
			return off + 2, nil
		default:
			return 0, errWire
		}
	}
}

// rrInfo describes one resource record inside a packed message.
type rrInfo struct {
	typ    uint16
	ttlOff int // offset of the 32-bit TTL
	rdOff  int // offset of RDATA
	rdLen  int
	end    int
}

// readRR parses the fixed part of the RR at off.
func readRR(msg []byte, off int) (rrInfo, error) {
	n, err := skipName(msg, off)
	if err != nil {
		return rrInfo{}, err
	}
	if n+10 > len(msg) {
		return rrInfo{}, errWire
	}
	rd := int(binary.BigEndian.Uint16(msg[n+8:]))
	if n+10+rd > len(msg) {
		return rrInfo{}, errWire
	}
	return rrInfo{
		typ:    binary.BigEndian.Uint16(msg[n:]),
		ttlOff: n + 4,
		rdOff:  n + 10,
		rdLen:  rd,
		end:    n + 10 + rd,
	}, nil
}

// question is the parsed question and EDNS of a query on the fast path.
type question struct {
	id       uint16
	flags    uint16
	qEnd     int // offset after the question section
	qtype    uint16
	qclass   uint16
	edns     bool
	udpSize  uint16
	do       bool
	ednsVer  uint8
	extraOpt bool // the OPT carried options (cookies, ECS, …): ignored
}

// parseQuery reads the header, the single question and an optional OPT of a
// query, writing the canonical (lower-case, dotted, fully qualified) name
// into name. ok is false whenever anything is unusual: the slow path then
// handles (and answers or rejects) the packet.
func parseQuery(pkt []byte, name []byte) (q question, canon []byte, ok bool) {
	if len(pkt) < hdrLen {
		return q, nil, false
	}
	q.id = binary.BigEndian.Uint16(pkt)
	q.flags = binary.BigEndian.Uint16(pkt[2:])
	if q.flags&flagQR != 0 || (q.flags>>11)&0xF != 0 || q.flags&0xF != 0 {
		return q, nil, false
	}
	qd := binary.BigEndian.Uint16(pkt[4:])
	an := binary.BigEndian.Uint16(pkt[6:])
	ns := binary.BigEndian.Uint16(pkt[8:])
	ar := binary.BigEndian.Uint16(pkt[10:])
	if qd != 1 || an != 0 || ns != 0 || ar > 1 {
		return q, nil, false
	}
	off := hdrLen
	canon = name[:0]
	for {
		if off >= len(pkt) {
			return q, nil, false
		}
		l := int(pkt[off])
		off++
		if l == 0 {
			break
		}
		if l > 63 || off+l > len(pkt) {
			return q, nil, false
		}
		for _, c := range pkt[off : off+l] {
			switch {
			case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
			case c >= 'A' && c <= 'Z':
				c += 'a' - 'A'
			default:
				return q, nil, false
			}
			canon = append(canon, c)
		}
		canon = append(canon, '.')
		off += l
	}
	if len(canon) == 0 {
		canon = append(canon, '.')
	}
	if len(canon) > 254 || off+4 > len(pkt) {
		return q, nil, false
	}
	q.qtype = binary.BigEndian.Uint16(pkt[off:])
	q.qclass = binary.BigEndian.Uint16(pkt[off+2:])
	off += 4
	q.qEnd = off
	if ar == 1 {
		// An OPT with the root owner name: 0, type 41, class = size,
		// TTL = ext-rcode, version, flags; rdlen; options.
		if off+11 > len(pkt) || pkt[off] != 0 || binary.BigEndian.Uint16(pkt[off+1:]) != typeOPT {
			return q, nil, false
		}
		q.edns = true
		q.udpSize = binary.BigEndian.Uint16(pkt[off+3:])
		if pkt[off+5] != 0 { // extended rcode bits in a query
			return q, nil, false
		}
		q.ednsVer = pkt[off+6]
		q.do = binary.BigEndian.Uint16(pkt[off+7:])&doBit != 0
		rd := int(binary.BigEndian.Uint16(pkt[off+9:]))
		if off+11+rd != len(pkt) {
			return q, nil, false
		}
		if !plainOptions(pkt[off+11 : off+11+rd]) {
			return q, nil, false
		}
		q.extraOpt = rd > 0
		off += 11 + rd
	}
	if off != len(pkt) {
		return q, nil, false
	}
	return q, canon, true
}

// appendOPT appends a bare OPT record (no options) with our UDP size and the
// DO bit when do is set.
func appendOPT(b []byte, udpSize uint16, do bool) []byte {
	var flags uint16
	if do {
		flags = doBit
	}
	return append(b, 0, 0, typeOPT, byte(udpSize>>8), byte(udpSize), 0, 0, byte(flags>>8), byte(flags), 0, 0)
}

// tcReply is an empty truncated reply (TC=1) echoing the query's question
// and EDNS, telling the client to retry over TCP; nil when the packet is not
// a plain query.
func tcReply(out, pkt []byte) []byte {
	var name [256]byte
	q, _, ok := parseQuery(pkt, name[:0])
	if !ok {
		return nil
	}
	out = append(out[:0], pkt[:q.qEnd]...)
	binary.BigEndian.PutUint16(out[2:], flagQR|flagTC|flagRA|q.flags&(flagRD|flagCD))
	binary.BigEndian.PutUint16(out[10:], 0)
	if q.edns {
		out = appendOPT(out, maxUDPSize, q.do)
		binary.BigEndian.PutUint16(out[10:], 1)
	}
	return out
}

// plainOptions reports whether EDNS option data is well formed and holds
// only options the fast path may ignore: cookies (RFC 7873, answered by
// ignoring them) and padding. Anything else, or a malformed option, goes to
// the full path, which parses it (and answers FORMERR where due).
func plainOptions(b []byte) bool {
	for len(b) > 0 {
		if len(b) < 4 {
			return false
		}
		code := binary.BigEndian.Uint16(b)
		n := int(binary.BigEndian.Uint16(b[2:]))
		if 4+n > len(b) || (code != 10 && code != 12) {
			return false
		}
		b = b[4+n:]
	}
	return true
}

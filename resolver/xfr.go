package resolver

import (
	"encoding/binary"
	"net/netip"

	"github.com/miekg/dns"
)

// NotifyFunc answers a NOTIFY (RFC 1996) that arrived on a DNS listener:
// pkt is the message as received (for its TSIG), m the same parsed. It
// returns the packed reply (nil to send nothing) and true, or false when
// jurisdns follows no zone at all: the NOTIFY then gets NOTIMP like any
// other opcode.
type NotifyFunc func(pkt []byte, m *dns.Msg, client netip.AddrPort) ([]byte, bool)

// XfrFunc serves a zone transfer or SOA query of a zone jurisdns publishes
// (rpz_out) when it returns true: it writes every message of the answer
// itself (over TCP write holds the connection's write lock for one
// message; over UDP only the first message is sent). It returns false for
// a query it does not serve, which then takes the normal path.
type XfrFunc func(pkt []byte, m *dns.Msg, client netip.AddrPort, tcp bool, write func([]byte) error) bool

// SetNotify installs the NOTIFY handler; nil answers NOTIFY with NOTIMP.
// Call it before Serve.
func (s *Server) SetNotify(fn NotifyFunc) { s.notify = fn }

// SetXfr installs the zone transfer handler of the TCP listeners; nil
// serves no transfer. Call it before Serve.
func (s *Server) SetXfr(fn XfrFunc) { s.xfr = fn }

// tcpXfr hands a TCP query to the transfer handler; it reports whether the
// handler took it.
func (s *Server) tcpXfr(pkt []byte, client netip.AddrPort, write func([]byte) error) bool {
	if s.xfr == nil || !xfrQtype(pkt) {
		return false
	}
	m := new(dns.Msg)
	if m.Unpack(pkt) != nil || m.Response || len(m.Question) != 1 {
		return false
	}
	return s.xfr(pkt, m, client, true, write)
}

// udpXfr hands a UDP query to the transfer handler (an SOA probe of a
// secondary); it returns the reply and whether the handler took it.
func (s *Server) udpXfr(pkt []byte, m *dns.Msg, client netip.AddrPort) ([]byte, bool) {
	if s.xfr == nil || len(m.Question) != 1 {
		return nil, false
	}
	switch m.Question[0].Qtype {
	case dns.TypeSOA, dns.TypeIXFR:
	default:
		return nil, false
	}
	var out []byte
	took := s.xfr(pkt, m, client, false, func(b []byte) error {
		if out == nil {
			out = b
		}
		return nil
	})
	return out, took
}

// xfrType reports the query types the transfer handler may take over UDP:
// those must reach slow, not the miss path.
func (s *Server) xfrType(qtype uint16) bool {
	return s.xfr != nil && (qtype == dns.TypeSOA || qtype == dns.TypeIXFR)
}

// xfrQtype reports whether the question of pkt may be one the transfer
// handler takes (SOA, AXFR, IXFR), reading only the question's type: every
// other TCP query is spared a second unpack. A compressed or cut question
// says yes and is left to the full parse.
func xfrQtype(pkt []byte) bool {
	if len(pkt) < hdrLen {
		return false
	}
	off := hdrLen
	for off < len(pkt) {
		l := int(pkt[off])
		switch {
		case l == 0:
			if off+3 > len(pkt) {
				return true
			}
			switch binary.BigEndian.Uint16(pkt[off+1:]) {
			case dns.TypeSOA, dns.TypeAXFR, dns.TypeIXFR:
				return true
			}
			return false
		case l&0xC0 != 0:
			return true
		}
		off += 1 + l
	}
	return true
}

package resolver

import "net/netip"

// SlowAnswer is the full path's answer to pkt from client over proto, as
// the transport sends it (padded for DoT and DoH): the reference the fast
// paths' answers are compared with byte for byte.
func (s *Server) SlowAnswer(pkt []byte, client netip.AddrPort, proto Proto) []byte {
	out := s.slow(append([]byte(nil), pkt...), client, proto)
	if proto == DoT || proto == DoH {
		out = padReply(out)
	}
	return out
}

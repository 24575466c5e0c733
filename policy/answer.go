package policy

import (
	"net"
	"strings"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/internal/dnsname"
)

// BlockAnswer synthesizes the answer to query q blocked by verdict v:
// NXDOMAIN or NODATA with the SOA of a synthesized policy zone (minimum =
// block TTL, so clients cache the block for that long), null (0.0.0.0/::
// for A/AAAA), sinkhole addresses, REFUSED, or nil for drop. Every type of
// a blocked name is blocked. Policy answers never carry AD. serial is the
// SOA serial of the synthesized policy zone. The answer carries no OPT: the
// server adds EDNS and the EDE of the verdict (Verdict.EDE,
// AppendEDEText) for a client that sent EDNS.
func BlockAnswer(serial uint32, q *dns.Msg, v *Verdict) *dns.Msg {
	j := v.Jurisdiction
	qname := dnsname.Canonical(q.Question[0].Name)
	qtype := q.Question[0].Qtype
	m := new(dns.Msg)
	m.SetReply(q)
	m.Authoritative = false
	m.AuthenticatedData = false
	ttl := uint32(j.TTL.Seconds())
	soa := func() {
		apex := v.Rule
		if apex == "" || !strings.HasSuffix(qname, apex+".") {
			apex = strings.TrimSuffix(qname, ".")
		}
		m.Ns = []dns.RR{BlockSOA(j, dns.Fqdn(apex), serial)}
	}
	addrs := func(ips []net.IP) {
		for _, ip := range ips {
			switch {
			case qtype == dns.TypeA && ip.To4() != nil:
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: ttl}, A: ip.To4()})
			case qtype == dns.TypeAAAA && ip.To4() == nil:
				m.Answer = append(m.Answer, &dns.AAAA{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: ttl}, AAAA: ip})
			}
		}
		if len(m.Answer) == 0 {
			soa()
		}
	}
	switch v.Action {
	case ActionDrop:
		return nil
	case ActionRefused:
		m.Rcode = dns.RcodeRefused
	case ActionNoData:
		soa()
	case ActionNull:
		addrs([]net.IP{net.IPv4zero.To4(), net.IPv6zero})
	case ActionIP:
		ips := make([]net.IP, 0, len(v.Addrs))
		for _, a := range v.Addrs {
			ips = append(ips, net.IP(a.AsSlice()))
		}
		addrs(ips)
	default: // nxdomain
		m.Rcode = dns.RcodeNameError
		soa()
	}
	return m
}

// BlockSOA is the SOA record of jurisdiction j's block answers (NXDOMAIN,
// NODATA) with owner name owner, the apex of the synthesized policy zone:
// primary "<id>.policy.jurisdns.", mailbox "hostmaster.jurisdns.invalid.",
// the policy's serial, and the block TTL as TTL and minimum (RFC 2308: the
// client caches the block that long). It is the one definition of that
// record: BlockAnswer uses it, and the server's wire fast path copies it
// packed, once per policy.
func BlockSOA(j *Jurisdiction, owner string, serial uint32) *dns.SOA {
	ttl := uint32(j.TTL.Seconds())
	return &dns.SOA{
		Hdr:     dns.RR_Header{Name: owner, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: ttl},
		Ns:      j.ID + ".policy.jurisdns.",
		Mbox:    "hostmaster.jurisdns.invalid.",
		Serial:  serial,
		Refresh: 3600, Retry: 600, Expire: 86400,
		Minttl: ttl,
	}
}

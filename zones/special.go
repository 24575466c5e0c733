package zones

import (
	"net"
	"strconv"
	"strings"
	"unsafe"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/internal/dnsname"
)

// specialTTL is the TTL of every synthesized record and the negative TTL of
// every synthesized SOA: RFC 6303 §3's 10800 seconds.
const specialTTL = 10800

// fixedSpecial are the special-use zones answered locally whatever the
// configuration says; Load rejects a configured zone at or below them.
var fixedSpecial = []string{"localhost.", "invalid.", "resolver.arpa."}

// SpecialOptions configures Specials.
type SpecialOptions struct {
	// ForwardSingleLabel turns off the single-label rule: by default (false)
	// a single-label name ("printer.", "wpad.") is answered NXDOMAIN instead
	// of being forwarded, for every type except the zone-infrastructure types
	// (SOA, NS, DS, DNSKEY, CDS, CDNSKEY, RRSIG, NSEC, NSEC3, NSEC3PARAM,
	// ZONEMD), which are forwarded so that top-level domains stay visible to
	// DNSSEC validators and tools. This is dnsmasq's domain-needed, widened
	// from A/AAAA to every host-lookup type (HTTPS, SRV, TXT, ...): a bare
	// name is a host name that must not leak upstream. The root is not a
	// single-label name.
	ForwardSingleLabel bool
	// DDR are the SVCB records answered for _dns.resolver.arpa. (see
	// DDRRecords) while the resolver serves encrypted DNS and designates
	// it; nil keeps the NODATA of every other resolver.arpa. name.
	DDR []dns.RR
}

// Specials answers the special-use names a resolver must not forward:
//
//   - localhost. and every name below it (RFC 6761 §6.3): A 127.0.0.1,
//     AAAA ::1, NODATA for other types;
//   - invalid. (RFC 6761 §6.4), local. (mDNS, RFC 6762), test. (RFC 6761
//     §6.2) and onion. (RFC 7686), the names themselves included:
//     NXDOMAIN;
//   - resolver.arpa. and every name below it (RFC 9462): NODATA, except
//     SVCB (and ANY) at _dns.resolver.arpa. when SpecialOptions.DDR holds the
//     resolver's encrypted endpoints;
//   - the locally-served zones of RFC 6303 and the IANA registry: reverse
//     zones of 0/8, 10/8, 100.64/10, 127/8, 169.254/16, 172.16/12,
//     192.0.2/24, 192.168/16, 198.51.100/24, 203.0.113/24,
//     255.255.255.255, ::, ::1, fc00::/7, fe80::/10, 2001:db8::/32, and
//     home.arpa. (RFC 8375): the apex exists (SOA and NS), names below it
//     are NXDOMAIN, except 1.0.0.127.in-addr.arpa. and the ::1 reverse name,
//     which answer PTR localhost.;
//   - single-label names, see SpecialOptions.
//
// Every negative answer carries the special zone's synthesized SOA (RFC 6303
// §3: "ZONE 10800 SOA ZONE nobody.invalid. 1 3600 1200 604800 10800"; the
// root's for a single-label name) so that clients cache it. A name covered
// by a local zone or conditional forward of the Table (Table.Find finds it)
// is left to them, except under localhost., invalid. and resolver.arpa.;
// the names between a special zone's apex and a configured zone inside it
// exist (NODATA), so that a cache never prunes the configured zone (RFC
// 8020). Specials is immutable and safe for concurrent use.
type Specials struct {
	table         *Table
	blockSingle   bool
	emptyNonTerms map[string]bool // canonical names that exist without data in special zones
	ddr           []dns.RR        // SVCB records of _dns.resolver.arpa., or nil
}

// NewSpecials returns the special-name answerer for a configuration whose
// local zones and forwards are t (nil for none).
func NewSpecials(t *Table, opt SpecialOptions) *Specials {
	s := &Specials{table: t, blockSingle: !opt.ForwardSingleLabel, emptyNonTerms: make(map[string]bool), ddr: opt.DDR}
	for _, sz := range specialZones {
		if sz.ptr != "" {
			s.addEmptyNonTerminals(sz.apex, sz.ptr)
		}
	}
	for _, name := range t.Names() {
		if sz := findSpecial(name); sz != nil && sz.overridable {
			s.addEmptyNonTerminals(sz.apex, name)
		}
	}
	return s
}

// addEmptyNonTerminals marks the names above name up to apex, apex
// included (it matters for the zones whose apex does not exist).
func (s *Specials) addEmptyNonTerminals(apex, name string) {
	for off, end := dns.NextLabel(name, 0); !end && len(name)-off >= len(apex); off, end = dns.NextLabel(name, off) {
		s.emptyNonTerms[name[off:]] = true
	}
}

// Answer returns the local answer to q when its name is special, nil when
// it is not (the query goes on down the chain). The answer has AA set, RA
// left to the caller, no OPT record, the question and ID of q. A nil
// Specials answers nothing. Answer does not allocate when the name is not
// special, whatever its case; a name in a special zone that a configured
// zone or forward covers costs one allocation when it is not in lower case.
func (s *Specials) Answer(q *dns.Msg) *dns.Msg {
	if s == nil || len(q.Question) != 1 {
		return nil
	}
	qname, qt := q.Question[0].Name, q.Question[0].Qtype
	tld, single := lastLabel(qname)
	singleRule := single && s.blockSingle && !infrastructure(qt)
	if !singleRule && !specialTLD(tld) {
		return nil
	}
	var buf [1024]byte
	if len(qname)+1 > len(buf) {
		return nil
	}
	b, same := appendLowerFQDN(buf[:0], qname)
	sz := matchSpecial(b)
	if sz == nil && !singleRule {
		return nil
	}
	name := qname // canonical already: no copy
	if !same {
		name = string(b)
	}
	if sz == nil || sz.overridable {
		if z, f := s.table.Find(name); z != nil || f != nil {
			return nil
		}
	}

	// The name is special: from here on allocation is fine.
	m := new(dns.Msg)
	m.SetReply(q)
	m.Authoritative = true
	if sz == nil { // single-label rule
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{synthSOA(".")}
		return m
	}
	owner := dns.Fqdn(qname)
	exists, rrs := sz.at(name, owner, qt)
	if name == DDRName && (qt == dns.TypeSVCB || qt == dns.TypeANY) {
		for _, rr := range s.ddr {
			rr = dns.Copy(rr)
			rr.Header().Name = owner
			rrs = append(rrs, rr)
		}
	}
	switch {
	case len(rrs) > 0:
		m.Answer = rrs
	case exists || s.emptyNonTerms[name]:
		m.Ns = []dns.RR{synthSOA(sz.apex)}
	default:
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{synthSOA(sz.apex)}
	}
	return m
}

// specialKind says what a special zone holds.
type specialKind uint8

const (
	// kindLocalZone is an RFC 6303 zone: SOA and NS at the apex, nothing
	// below it (but ptr).
	kindLocalZone specialKind = iota
	// kindLoopback is localhost.: every name has A 127.0.0.1 and AAAA ::1.
	kindLoopback
	// kindNowhere is a name space that does not exist, its apex included.
	kindNowhere
	// kindEmpty is resolver.arpa.: every name exists without data.
	kindEmpty
)

type specialZone struct {
	apex        string
	kind        specialKind
	overridable bool   // a configured zone or forward takes it over
	ptr         string // a name with PTR localhost., or ""
}

// at returns whether name (canonical, in the zone) exists by the zone's own
// data and its records of type qt (every type for ANY), owned by owner.
func (sz *specialZone) at(name, owner string, qt uint16) (exists bool, rrs []dns.RR) {
	hdr := func(t uint16) dns.RR_Header {
		return dns.RR_Header{Name: owner, Rrtype: t, Class: dns.ClassINET, Ttl: specialTTL}
	}
	var all []dns.RR
	if name == sz.apex && sz.kind != kindNowhere {
		exists = true
		soa := synthSOA(sz.apex)
		soa.Hdr.Name = owner
		all = append(all, soa, &dns.NS{Hdr: hdr(dns.TypeNS), Ns: sz.apex})
	}
	switch sz.kind {
	case kindLoopback:
		exists = true
		all = append(all,
			&dns.A{Hdr: hdr(dns.TypeA), A: net.IPv4(127, 0, 0, 1).To4()},
			&dns.AAAA{Hdr: hdr(dns.TypeAAAA), AAAA: net.IPv6loopback})
	case kindEmpty:
		exists = true
	}
	if name == sz.ptr {
		exists = true
		all = append(all, &dns.PTR{Hdr: hdr(dns.TypePTR), Ptr: "localhost."})
	}
	if qt == dns.TypeANY {
		return exists, all
	}
	for _, rr := range all {
		if rr.Header().Rrtype == qt {
			rrs = append(rrs, rr)
		}
	}
	return exists, rrs
}

// synthSOA is the RFC 6303 §3 SOA of a locally served zone.
func synthSOA(apex string) *dns.SOA {
	return &dns.SOA{
		Hdr:     dns.RR_Header{Name: apex, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: specialTTL},
		Ns:      apex,
		Mbox:    "nobody.invalid.",
		Serial:  1,
		Refresh: 3600,
		Retry:   1200,
		Expire:  604800,
		Minttl:  specialTTL,
	}
}

// specialZones maps each special zone's canonical apex to its description.
var specialZones = buildSpecialZones()

func buildSpecialZones() map[string]*specialZone {
	m := make(map[string]*specialZone)
	add := func(apex string, kind specialKind, overridable bool, ptr string) {
		m[apex] = &specialZone{apex: apex, kind: kind, overridable: overridable, ptr: ptr}
	}
	add("localhost.", kindLoopback, false, "")
	add("invalid.", kindNowhere, false, "")
	add("resolver.arpa.", kindEmpty, false, "")
	for _, apex := range []string{"local.", "test.", "onion."} {
		add(apex, kindNowhere, true, "")
	}
	local := func(apex string) { add(apex, kindLocalZone, true, "") }
	local("home.arpa.")
	// RFC 6303 §4.1-4.4 and the IANA Locally-Served DNS Zones registry.
	local("0.in-addr.arpa.")
	local("10.in-addr.arpa.")
	for i := 64; i <= 127; i++ {
		local(strconv.Itoa(i) + ".100.in-addr.arpa.")
	}
	add("127.in-addr.arpa.", kindLocalZone, true, "1.0.0.127.in-addr.arpa.")
	local("254.169.in-addr.arpa.")
	for i := 16; i <= 31; i++ {
		local(strconv.Itoa(i) + ".172.in-addr.arpa.")
	}
	local("2.0.192.in-addr.arpa.")
	local("168.192.in-addr.arpa.")
	local("100.51.198.in-addr.arpa.")
	local("113.0.203.in-addr.arpa.")
	local("255.255.255.255.in-addr.arpa.")
	local(strings.Repeat("0.", 32) + "ip6.arpa.")
	loop6 := "1." + strings.Repeat("0.", 31) + "ip6.arpa."
	add(loop6, kindLocalZone, true, loop6)
	for _, apex := range []string{"c.f", "d.f", "8.e.f", "9.e.f", "a.e.f", "b.e.f", "8.b.d.0.1.0.0.2"} {
		local(apex + ".ip6.arpa.")
	}
	return m
}

// findSpecial returns the special zone at or above the canonical name.
func findSpecial(name string) *specialZone {
	return matchSpecial([]byte(name))
}

// matchSpecial returns the special zone at or above the canonical name b,
// without allocating.
func matchSpecial(b []byte) *specialZone {
	for off := 0; off < len(b); {
		if sz, ok := specialZones[string(b[off:])]; ok {
			return sz
		}
		off = nextLabel(b, off)
	}
	return nil
}

// nextLabel returns the offset of the label after the one at off, or len(b)
// when it is the last; a backslash escapes the next byte.
func nextLabel(b []byte, off int) int {
	for i := off; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '.':
			return i + 1
		}
	}
	return len(b)
}

// lastLabel returns the last label of name (without its dot) and whether it
// is the only one. The root has no label.
func lastLabel(name string) (label string, single bool) {
	end := len(name)
	if end > 0 && name[end-1] == '.' && !escaped(name, end-1) {
		end--
	}
	for i := end - 1; i >= 0; i-- {
		if name[i] == '.' && !escaped(name, i) {
			return name[i+1 : end], false
		}
	}
	return name[:end], end > 0
}

// escaped reports whether the byte at i is escaped by an odd number of
// backslashes before it.
func escaped(s string, i int) bool {
	n := 0
	for j := i - 1; j >= 0 && s[j] == '\\'; j-- {
		n++
	}
	return n%2 == 1
}

// specialTLD reports whether a special zone may sit under the top-level
// label tld.
func specialTLD(tld string) bool {
	switch len(tld) {
	case 4:
		return strings.EqualFold(tld, "arpa") || strings.EqualFold(tld, "test")
	case 5:
		return strings.EqualFold(tld, "local") || strings.EqualFold(tld, "onion")
	case 7:
		return strings.EqualFold(tld, "invalid")
	case 9:
		return strings.EqualFold(tld, "localhost")
	}
	return false
}

// infrastructure reports whether qt is a zone-infrastructure type that is
// forwarded even for a single-label name.
func infrastructure(qt uint16) bool {
	switch qt {
	case dns.TypeSOA, dns.TypeNS, dns.TypeDS, dns.TypeDNSKEY, dns.TypeCDS, dns.TypeCDNSKEY,
		dns.TypeRRSIG, dns.TypeNSEC, dns.TypeNSEC3, dns.TypeNSEC3PARAM, dns.TypeZONEMD:
		return true
	}
	return false
}

// appendLowerFQDN appends name to b in lower case (ASCII), with a trailing
// dot; same reports whether that is name itself.
func appendLowerFQDN(b []byte, name string) (out []byte, same bool) {
	b, same = dnsname.AppendLower(b, name)
	if !dns.IsFqdn(name) {
		b = append(b, '.')
		same = false
	}
	return b, same
}

// DDR reports whether the canonical name is _dns.resolver.arpa. and DDR
// records are configured: the resolver then answers it before its policy
// (the bypass jurisdiction's NODATA is for resolvers without encrypted
// endpoints).
func (s *Specials) DDR(name string) bool {
	return s != nil && len(s.ddr) > 0 && name == DDRName
}

// Covers reports whether Answer would answer a query for name, which must
// be canonical (lower case, fully qualified), and type qt. The resolver's
// fast path uses it to leave special names to the full chain. It does not
// allocate.
func (s *Specials) Covers(name string, qt uint16) bool {
	if s == nil || name == "" {
		return false
	}
	tld, single := lastLabel(name)
	singleRule := single && s.blockSingle && !infrastructure(qt)
	if !singleRule && !specialTLD(tld) {
		return false
	}
	sz := matchSpecial(unsafe.Slice(unsafe.StringData(name), len(name)))
	if sz == nil && !singleRule {
		return false
	}
	if sz == nil || sz.overridable {
		if z, f := s.table.Find(name); z != nil || f != nil {
			return false
		}
	}
	return true
}

package resolver

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/internal/testtool"
)

// msgPathEntry is what a miss builds today from the reply b: unpack, AA
// cleared, scrub, newEntry. unpacked is false when miekg cannot unpack b.
func msgPathEntry(c *Cache, req *Request, b []byte, now time.Time) (e *entry, unpacked bool) {
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		return nil, false
	}
	m.Authoritative = false
	scrub(m, req.Name)
	return c.newEntry(req, m, now), true
}

// asyncPathEntry is what the asynchronous miss path builds from b
// (storeReply: replyMsg, AA cleared, scrub, newEntry); b must unpack.
func asyncPathEntry(c *Cache, req *Request, b []byte, now time.Time) *entry {
	m, err := replyMsg(req, b)
	if err != nil {
		panic(err)
	}
	m.Authoritative = false
	scrub(m, req.Name)
	return c.newEntry(req, m, now)
}

// checkTTLOffsets reports whether e.ttls names the TTL of every record of
// e.msg, in order, and e.qEnd the end of its question.
func checkTTLOffsets(e *entry) error {
	msg := e.msg
	if len(msg) < hdrLen {
		return errors.New("short message")
	}
	off, err := skipName(msg, hdrLen)
	if err != nil || off+4 != e.qEnd {
		return fmt.Errorf("question ends at %d, qEnd %d", off+4, e.qEnd)
	}
	n := int(binary.BigEndian.Uint16(msg[6:])) + int(binary.BigEndian.Uint16(msg[8:])) + int(binary.BigEndian.Uint16(msg[10:]))
	if len(e.ttls) != 2*n {
		return fmt.Errorf("%d TTL offsets for %d records", len(e.ttls)/2, n)
	}
	off = e.qEnd
	for i := 0; i < n; i++ {
		rr, err := readRR(msg, off)
		if err != nil {
			return fmt.Errorf("record %d: %v", i, err)
		}
		if got := int(binary.BigEndian.Uint16(e.ttls[2*i:])); got != rr.ttlOff {
			return fmt.Errorf("record %d: TTL offset %d, want %d", i, got, rr.ttlOff)
		}
		off = rr.end
	}
	if off != len(msg) {
		return fmt.Errorf("records end at %d of %d", off, len(msg))
	}
	return nil
}

// sameRRs compares two sections record by record: type, owner (case
// folded), class, TTL and rdata (dns.IsDuplicate folds the names in it).
func sameRRs(sec string, got, want []dns.RR) error {
	if len(got) != len(want) {
		return fmt.Errorf("%s: %d records, want %d:\n%v\n%v", sec, len(got), len(want), got, want)
	}
	for i := range got {
		g, w := got[i], want[i]
		gh, wh := g.Header(), w.Header()
		if gh.Rrtype == dns.TypeOPT && wh.Rrtype == dns.TypeOPT { // IsDuplicate does not compare OPTs
			if g.String() != w.String() || gh.Class != wh.Class || gh.Ttl != wh.Ttl {
				return fmt.Errorf("%s %d: %v, want %v", sec, i, g, w)
			}
			continue
		}
		if reflect.TypeOf(g) != reflect.TypeOf(w) || !strings.EqualFold(gh.Name, wh.Name) || gh.Rrtype != wh.Rrtype ||
			gh.Class != wh.Class || gh.Ttl != wh.Ttl || !dns.IsDuplicate(g, w) {
			return fmt.Errorf("%s %d: %v, want %v", sec, i, g, w)
		}
	}
	return nil
}

// sameMsgs compares two packed messages once unpacked: the header whole,
// the question and the records with names compared case-insensitively.
func sameMsgs(got, want []byte) error {
	var g, w dns.Msg
	if err := g.Unpack(got); err != nil {
		return fmt.Errorf("unpack: %v", err)
	}
	if err := w.Unpack(want); err != nil {
		return fmt.Errorf("unpack the Msg path's: %v", err)
	}
	// ID, flags (AA, AD, the rcode …) and counts, bit for bit.
	if !bytes.Equal(got[:hdrLen], want[:hdrLen]) {
		return fmt.Errorf("header %x (%+v), want %x (%+v)", got[:hdrLen], g.MsgHdr, want[:hdrLen], w.MsgHdr)
	}
	if len(g.Question) != len(w.Question) {
		return fmt.Errorf("%d questions, want %d", len(g.Question), len(w.Question))
	}
	for i := range g.Question {
		gq, wq := g.Question[i], w.Question[i]
		if !strings.EqualFold(gq.Name, wq.Name) || gq.Qtype != wq.Qtype || gq.Qclass != wq.Qclass {
			return fmt.Errorf("question %v, want %v", gq, wq)
		}
	}
	return errors.Join(sameRRs("answer", g.Answer, w.Answer), sameRRs("authority", g.Ns, w.Ns), sameRRs("additional", g.Extra, w.Extra))
}

// diffEntries compares the wire path's entry with the Msg path's, field by
// field, and the replies both give a client query (with an OPT and in
// mixed case) some seconds later.
func diffEntries(got, want *entry, req *Request, now time.Time) error {
	switch {
	case got.name != want.name || got.qtype != want.qtype || got.flags != want.flags:
		return fmt.Errorf("key %q/%d/%d, want %q/%d/%d", got.name, got.qtype, got.flags, want.name, want.qtype, want.flags)
	case got.rcode != want.rcode || got.ttl != want.ttl || !got.stored.Equal(want.stored):
		return fmt.Errorf("rcode %d ttl %d stored %v, want %d %d %v", got.rcode, got.ttl, got.stored, want.rcode, want.ttl, want.stored)
	case got.qEnd != want.qEnd:
		return fmt.Errorf("qEnd %d, want %d", got.qEnd, want.qEnd)
	case !slices.Equal(got.cnames, want.cnames) && len(got.cnames)+len(want.cnames) > 0:
		return fmt.Errorf("cnames %q, want %q", got.cnames, want.cnames)
	}
	if string(got.msg[hdrLen:got.qEnd-4]) != strings.ToLower(string(got.msg[hdrLen:got.qEnd-4])) {
		return fmt.Errorf("question not lower-cased: %q", got.msg[hdrLen:got.qEnd])
	}
	var gm dns.Msg
	if err := gm.Unpack(got.msg); err == nil {
		for _, rr := range slices.Concat(gm.Answer, gm.Ns, gm.Extra) {
			if h := rr.Header(); strings.EqualFold(h.Name, req.Name) && h.Name != req.Name {
				return fmt.Errorf("owner %q left in the upstream query's case", h.Name)
			}
		}
	}
	if err := checkTTLOffsets(got); err != nil {
		return fmt.Errorf("wire entry: %v", err)
	}
	if err := sameMsgs(got.msg, want.msg); err != nil {
		return err
	}
	// The client's view.
	cq := new(dns.Msg)
	cq.SetQuestion(mixCase(req.Name), req.Qtype)
	cq.Id = 0xbeef
	cq.SetEdns0(1232, req.DO)
	cq.CheckingDisabled = req.CD
	cq.AuthenticatedData = true
	query, err := cq.Pack()
	if err != nil {
		return err
	}
	var nb [256]byte
	q, _, ok := parseQuery(query, nb[:0])
	if !ok {
		return errors.New("test query does not parse")
	}
	later := now.Add(7 * time.Second)
	if err := sameMsgs(got.appendReply(nil, query, &q, later, 30, false), want.appendReply(nil, query, &q, later, 30, false)); err != nil {
		return fmt.Errorf("reply: %v", err)
	}
	if err := sameMsgs(got.appendReply(nil, query, &q, later, 30, true), want.appendReply(nil, query, &q, later, 30, true)); err != nil {
		return fmt.Errorf("stale reply: %v", err)
	}
	return nil
}

// mixCase is name in alternating case, as a 0x20 upstream query has it.
func mixCase(name string) string {
	b := []byte(name)
	for i, c := range b {
		if i%2 == 0 && c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

func rrHdr(name string, t uint16, ttl uint32) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: ttl}
}

// wireCase is one upstream reply, built for a question name in the 0x20
// case the query went out with (q is that name, lower-cased).
type wireCase struct {
	name  string
	qtype uint16
	do    bool
	cd    bool
	// build returns the reply to the question qn (mixed case) of type qt.
	build func(qn string) *dns.Msg
	// pack packs it (nil: with compression and an OPT of 1232 bytes).
	pack func(m *dns.Msg) []byte
	// accept is whether the wire path must take it.
	accept bool
	// msgNil is whether the Msg path finds it not cacheable (or cannot
	// unpack it).
	msgNil bool
	opts   CacheOptions
}

func baseReply(qn string, qt uint16, rcode int) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(qn, qt)
	m.Id = 0x4242
	m.Response = true
	m.RecursionDesired = true
	m.RecursionAvailable = true
	m.Rcode = rcode
	return m
}

func packWith(compress, opt, do bool) func(m *dns.Msg) []byte {
	return func(m *dns.Msg) []byte {
		m = m.Copy()
		m.Compress = compress
		if opt {
			m.SetEdns0(1232, do)
		}
		b, err := m.Pack()
		if err != nil {
			panic(err)
		}
		return b
	}
}

// patched packs the reply compressed with an OPT, then lets f change the
// bytes.
func patched(f func(b []byte) []byte) func(m *dns.Msg) []byte {
	return func(m *dns.Msg) []byte { return f(packWith(true, true, false)(m)) }
}

func soaRR(owner string, ttl, minimum uint32) *dns.SOA {
	if owner == "." {
		return &dns.SOA{Hdr: rrHdr(owner, dns.TypeSOA, ttl), Ns: "a.root-servers.net.", Mbox: "nstld.verisign-grs.com.", Serial: 2026120600, Refresh: 1800, Retry: 900, Expire: 604800, Minttl: minimum}
	}
	return &dns.SOA{Hdr: rrHdr(owner, dns.TypeSOA, ttl), Ns: "ns1." + owner, Mbox: "hostmaster." + owner, Serial: 2026120601, Refresh: 7200, Retry: 900, Expire: 1209600, Minttl: minimum}
}

func aRR(owner string, ttl uint32, last byte) *dns.A {
	return &dns.A{Hdr: rrHdr(owner, dns.TypeA, ttl), A: []byte{192, 0, 2, last}}
}

var stdWireOpts = CacheOptions{Size: 1000, ServfailTTL: 5 * time.Second}

func wireCases() []wireCase {
	rrsig := func(owner, signer string, covered uint16) *dns.RRSIG {
		return &dns.RRSIG{Hdr: rrHdr(owner, dns.TypeRRSIG, 300), TypeCovered: covered, Algorithm: 13, Labels: 3, OrigTtl: 300,
			Expiration: 1800000000, Inception: 1700000000, KeyTag: 12345, SignerName: signer, Signature: "dGhpcyBpcyBub3QgYSByZWFsIHNpZ25hdHVyZSBhdCBhbGwgYnV0IGl0IGlzIGxvbmc="}
	}
	return []wireCase{
		// A server that does not compress writes the question's name out
		// again as an owner: declined (a reply would show it in lower case,
		// not the client's, see atQuestion).
		{name: "A uncompressed no OPT", qtype: dns.TypeA, accept: false, opts: stdWireOpts, pack: packWith(false, false, false),
			build: func(qn string) *dns.Msg {
				m := baseReply(qn, dns.TypeA, dns.RcodeSuccess)
				m.Answer = []dns.RR{aRR(qn, 300, 1)}
				return m
			}},
		{name: "A compressed OPT", qtype: dns.TypeA, accept: true, opts: stdWireOpts,
			build: func(qn string) *dns.Msg {
				m := baseReply(qn, dns.TypeA, dns.RcodeSuccess)
				m.Answer = []dns.RR{aRR(qn, 300, 1), aRR(qn, 100, 2), aRR(qn, 200, 3)}
				return m
			}},
		{name: "AA and Z set", qtype: dns.TypeA, accept: true, opts: stdWireOpts,
			build: func(qn string) *dns.Msg {
				m := baseReply(qn, dns.TypeA, dns.RcodeSuccess)
				m.Authoritative, m.Zero = true, true
				m.Answer = []dns.RR{aRR(qn, 300, 1)}
				return m
			}},
		{name: "CNAME chain", qtype: dns.TypeA, accept: true, opts: stdWireOpts,
			build: func(qn string) *dns.Msg {
				m := baseReply(qn, dns.TypeA, dns.RcodeSuccess)
				m.Answer = []dns.RR{
					&dns.CNAME{Hdr: rrHdr(qn, dns.TypeCNAME, 3600), Target: "Edge.CDN.example.net."},
					&dns.CNAME{Hdr: rrHdr("edge.cdn.example.net.", dns.TypeCNAME, 60), Target: "a1.edge.cdn.example.net."},
					aRR("a1.edge.cdn.example.net.", 20, 7),
				}
				return m
			}},
		{name: "CNAME chain uncompressed", qtype: dns.TypeA, accept: false, opts: stdWireOpts, pack: packWith(false, true, false),
			build: func(qn string) *dns.Msg {
				m := baseReply(qn, dns.TypeA, dns.RcodeSuccess)
				m.Answer = []dns.RR{
					&dns.CNAME{Hdr: rrHdr(qn, dns.TypeCNAME, 3600), Target: "edge.example.net."},
					aRR("edge.example.net.", 20, 7),
				}
				return m
			}},
		{name: "DNAME", qtype: dns.TypeA, accept: true, opts: stdWireOpts,
			build: func(qn string) *dns.Msg {
				m := baseReply(qn, dns.TypeA, dns.RcodeSuccess)
				m.Answer = []dns.RR{
					&dns.DNAME{Hdr: rrHdr("example.com.", dns.TypeDNAME, 3600), Target: "example.org."},
					&dns.CNAME{Hdr: rrHdr(qn, dns.TypeCNAME, 3600), Target: "www.example.org."},
					aRR("www.example.org.", 20, 7),
				}
				return m
			}},
		{name: "DO with RRSIG and AD", qtype: dns.TypeA, do: true, accept: true, opts: stdWireOpts, pack: packWith(true, true, true),
			build: func(qn string) *dns.Msg {
				m := baseReply(qn, dns.TypeA, dns.RcodeSuccess)
				m.AuthenticatedData = true
				m.Answer = []dns.RR{aRR(qn, 300, 1), rrsig(qn, "example.com.", dns.TypeA)}
				return m
			}},
		{name: "AAAA CD", qtype: dns.TypeAAAA, cd: true, accept: true, opts: stdWireOpts,
			build: func(qn string) *dns.Msg {
				m := baseReply(qn, dns.TypeAAAA, dns.RcodeSuccess)
				m.Answer = []dns.RR{&dns.AAAA{Hdr: rrHdr(qn, dns.TypeAAAA, 300), AAAA: make([]byte, 16)}}
				return m
			}},
		{name: "MX NS PTR", qtype: dns.TypeMX, accept: true, opts: stdWireOpts,
			build: func(qn string) *dns.Msg {
				m := baseReply(qn, dns.TypeMX, dns.RcodeSuccess)
				m.Answer = []dns.RR{
					&dns.MX{Hdr: rrHdr(qn, dns.TypeMX, 300), Preference: 10, Mx: "mail." + qn},
					&dns.NS{Hdr: rrHdr(qn, dns.TypeNS, 300), Ns: "ns1.example.net."},
					&dns.PTR{Hdr: rrHdr(qn, dns.TypePTR, 300), Ptr: "ns1.example.net."},
				}
				return m
			}},
		{name: "DS DNSKEY", qtype: dns.TypeDNSKEY, do: true, accept: true, opts: stdWireOpts, pack: packWith(true, true, true),
			build: func(qn string) *dns.Msg {
				m := baseReply(qn, dns.TypeDNSKEY, dns.RcodeSuccess)
				m.Answer = []dns.RR{
					&dns.DNSKEY{Hdr: rrHdr(qn, dns.TypeDNSKEY, 300), Flags: 257, Protocol: 3, Algorithm: 13, PublicKey: "AwEAAag="},
					&dns.DS{Hdr: rrHdr(qn, dns.TypeDS, 300), KeyTag: 1, Algorithm: 13, DigestType: 2, Digest: "00ff"},
					rrsig(qn, qn, dns.TypeDNSKEY),
				}
				return m
			}},
		{name: "HTTPS", qtype: dns.TypeHTTPS, accept: true, opts: stdWireOpts,
			build: func(qn string) *dns.Msg {
				m := baseReply(qn, dns.TypeHTTPS, dns.RcodeSuccess)
				m.Answer = []dns.RR{
					&dns.HTTPS{SVCB: dns.SVCB{Hdr: rrHdr(qn, dns.TypeHTTPS, 300), Priority: 1, Target: ".", Value: []dns.SVCBKeyValue{
						&dns.SVCBAlpn{Alpn: []string{"h3", "h2"}},
						&dns.SVCBIPv4Hint{Hint: []net.IP{net.IPv4(192, 0, 2, 1).To4(), net.IPv4(192, 0, 2, 2).To4()}},
						&dns.SVCBECHConfig{ECH: []byte{0, 0x45, 0xfe, 0x0d}},
						&dns.SVCBIPv6Hint{Hint: []net.IP{net.ParseIP("2001:db8::1")}},
					}}},
					&dns.HTTPS{SVCB: dns.SVCB{Hdr: rrHdr(qn, dns.TypeHTTPS, 300), Priority: 2, Target: "alt.example.net.", Value: []dns.SVCBKeyValue{
						&dns.SVCBNoDefaultAlpn{}, &dns.SVCBPort{Port: 8443},
					}}},
					&dns.HTTPS{SVCB: dns.SVCB{Hdr: rrHdr(qn, dns.TypeHTTPS, 300), Priority: 0, Target: "alias.example.net."}},
				}
				return m
			}},
		{name: "SVCB with mandatory", qtype: dns.TypeSVCB, opts: stdWireOpts,
			build: func(qn string) *dns.Msg {
				m := baseReply(qn, dns.TypeSVCB, dns.RcodeSuccess)
				m.Answer = []dns.RR{&dns.SVCB{Hdr: rrHdr(qn, dns.TypeSVCB, 300), Priority: 1, Target: ".", Value: []dns.SVCBKeyValue{
					&dns.SVCBMandatory{Code: []dns.SVCBKey{dns.SVCB_ALPN}}, &dns.SVCBAlpn{Alpn: []string{"dot"}},
				}}}
				return m
			}},
		{name: "HTTPS empty alpn-id", qtype: dns.TypeHTTPS, msgNil: true, opts: stdWireOpts,
			pack: patched(func(b []byte) []byte {
				// The alpn value "\x02h2" becomes "\x00\x02h" (miekg unpacks
				// it; packing it again fails).
				i := bytes.Index(b, []byte{0, 1, 0, 3, 2, 'h', '2'})
				copy(b[i+4:], []byte{0, 1, 'h'})
				return b
			}),
			build: func(qn string) *dns.Msg {
				m := baseReply(qn, dns.TypeHTTPS, dns.RcodeSuccess)
				m.Answer = []dns.RR{&dns.HTTPS{SVCB: dns.SVCB{Hdr: rrHdr(qn, dns.TypeHTTPS, 300), Priority: 1, Target: ".", Value: []dns.SVCBKeyValue{
					&dns.SVCBAlpn{Alpn: []string{"h2"}},
				}}}}
				return m
			}},
		{name: "HTTPS v4-mapped ipv6hint", qtype: dns.TypeHTTPS, msgNil: true, opts: stdWireOpts,
			pack: patched(func(b []byte) []byte {
				// miekg's unpack refuses an ipv6hint that net.IP takes for
				// IPv4.
				ip := net.ParseIP("2001:db8::1")
				i := bytes.Index(b, ip)
				copy(b[i:], net.ParseIP("::ffff:192.0.2.1"))
				return b
			}),
			build: func(qn string) *dns.Msg {
				m := baseReply(qn, dns.TypeHTTPS, dns.RcodeSuccess)
				m.Answer = []dns.RR{&dns.HTTPS{SVCB: dns.SVCB{Hdr: rrHdr(qn, dns.TypeHTTPS, 300), Priority: 1, Target: ".", Value: []dns.SVCBKeyValue{
					&dns.SVCBIPv6Hint{Hint: []net.IP{net.ParseIP("2001:db8::1")}},
				}}}}
				return m
			}},
		{name: "SOA answer", qtype: dns.TypeSOA, accept: true, opts: stdWireOpts,
			build: func(qn string) *dns.Msg {
				m := baseReply(qn, dns.TypeSOA, dns.RcodeSuccess)
				m.Answer = []dns.RR{soaRR(qn, 300, 60)}
				return m
			}},
		{name: "clamped", qtype: dns.TypeA, accept: true, opts: CacheOptions{Size: 1000, MinTTL: time.Minute, MaxTTL: time.Hour},
			build: func(qn string) *dns.Msg {
				m := baseReply(qn, dns.TypeA, dns.RcodeSuccess)
				m.Answer = []dns.RR{aRR(qn, 10, 1), aRR(qn, 86400, 2)}
				return m
			}},
		{name: "CNAME then NODATA SOA", qtype: dns.TypeA, accept: true, opts: CacheOptions{Size: 1000, MaxTTL: 1000 * time.Second},
			build: func(qn string) *dns.Msg {
				m := baseReply(qn, dns.TypeA, dns.RcodeSuccess)
				m.Answer = []dns.RR{&dns.CNAME{Hdr: rrHdr(qn, dns.TypeCNAME, 3600), Target: "x.example.org."}}
				m.Ns = []dns.RR{soaRR("example.org.", 7200, 300)}
				return m
			}},
		{name: "NXDOMAIN SOA above", qtype: dns.TypeA, accept: true, opts: stdWireOpts,
			build: func(qn string) *dns.Msg {
				m := baseReply(qn, dns.TypeA, dns.RcodeNameError)
				m.Ns = []dns.RR{soaRR("example.com.", 3600, 300)}
				return m
			}},
		{name: "NXDOMAIN SOA at the root", qtype: dns.TypeA, accept: true, opts: stdWireOpts,
			build: func(qn string) *dns.Msg {
				m := baseReply(qn, dns.TypeA, dns.RcodeNameError)
				m.Ns = []dns.RR{soaRR(".", 100, 86400)}
				return m
			}},
		{name: "NODATA SOA at the name uncompressed", qtype: dns.TypeAAAA, accept: false, opts: stdWireOpts, pack: packWith(false, true, false),
			build: func(qn string) *dns.Msg {
				m := baseReply(qn, dns.TypeAAAA, dns.RcodeSuccess)
				m.Ns = []dns.RR{soaRR(qn, 60, 3600)}
				return m
			}},
		{name: "NXDOMAIN after CNAME, SOA of the target", qtype: dns.TypeA, accept: true, opts: CacheOptions{Size: 1000, MinTTL: 10 * time.Second, MaxTTL: 100 * time.Second},
			build: func(qn string) *dns.Msg {
				m := baseReply(qn, dns.TypeA, dns.RcodeNameError)
				m.Answer = []dns.RR{&dns.CNAME{Hdr: rrHdr(qn, dns.TypeCNAME, 5), Target: "gone.Example.ORG."}}
				m.Ns = []dns.RR{soaRR("example.org.", 3600, 3600)}
				return m
			}},
		{name: "negative max", qtype: dns.TypeA, accept: true, opts: CacheOptions{Size: 1000, NegativeMaxTTL: 600 * time.Second},
			build: func(qn string) *dns.Msg {
				m := baseReply(qn, dns.TypeA, dns.RcodeNameError)
				m.Ns = []dns.RR{soaRR("com.", 86400, 86400)}
				return m
			}},
		{name: "SERVFAIL with EDE", qtype: dns.TypeA, accept: true, opts: stdWireOpts,
			pack: func(m *dns.Msg) []byte {
				m = m.Copy()
				m.SetEdns0(1232, false)
				o := m.IsEdns0()
				o.Option = append(o.Option, &dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeNoReachableAuthority, ExtraText: "timeout"}, &dns.EDNS0_PADDING{Padding: make([]byte, 8)})
				b, _ := m.Pack()
				return b
			},
			build: func(qn string) *dns.Msg { return baseReply(qn, dns.TypeA, dns.RcodeServerFailure) }},

		// Declined: the Msg path caches nothing.
		{name: "SERVFAIL not cached", qtype: dns.TypeA, msgNil: true, opts: CacheOptions{Size: 1000},
			build: func(qn string) *dns.Msg { return baseReply(qn, dns.TypeA, dns.RcodeServerFailure) }},
		{name: "NXDOMAIN unrelated SOA", qtype: dns.TypeA, msgNil: true, opts: stdWireOpts,
			build: func(qn string) *dns.Msg {
				m := baseReply(qn, dns.TypeA, dns.RcodeNameError)
				m.Ns = []dns.RR{soaRR("evil.example.", 3600, 300)}
				return m
			}},
		{name: "NXDOMAIN SOA below the name", qtype: dns.TypeA, msgNil: true, opts: stdWireOpts,
			build: func(qn string) *dns.Msg {
				m := baseReply(qn, dns.TypeA, dns.RcodeNameError)
				m.Ns = []dns.RR{soaRR("sub."+qn, 3600, 300)}
				return m
			}},
		{name: "NODATA without SOA", qtype: dns.TypeA, msgNil: true, opts: stdWireOpts,
			build: func(qn string) *dns.Msg { return baseReply(qn, dns.TypeA, dns.RcodeSuccess) }},
		{name: "lifetime 0", qtype: dns.TypeA, msgNil: true, opts: stdWireOpts,
			build: func(qn string) *dns.Msg {
				m := baseReply(qn, dns.TypeA, dns.RcodeSuccess)
				m.Answer = []dns.RR{aRR(qn, 0, 1)}
				return m
			}},
		{name: "TC", qtype: dns.TypeA, msgNil: true, opts: stdWireOpts,
			build: func(qn string) *dns.Msg {
				m := baseReply(qn, dns.TypeA, dns.RcodeSuccess)
				m.Truncated = true
				m.Answer = []dns.RR{aRR(qn, 300, 1)}
				return m
			}},
		{name: "REFUSED", qtype: dns.TypeA, msgNil: true, opts: stdWireOpts,
			build: func(qn string) *dns.Msg { return baseReply(qn, dns.TypeA, dns.RcodeRefused) }},
		{name: "extended rcode", qtype: dns.TypeA, msgNil: true, opts: stdWireOpts,
			pack: func(m *dns.Msg) []byte {
				b := packWith(true, true, false)(m)
				b[len(b)-6] = 1 // the OPT's extended rcode: BADVERS
				return b
			},
			build: func(qn string) *dns.Msg {
				m := baseReply(qn, dns.TypeA, dns.RcodeSuccess)
				m.Answer = []dns.RR{aRR(qn, 300, 1)}
				return m
			}},

		// Declined: the Msg path caches something the wire path does not
		// check.
		{name: "17 CNAMEs", qtype: dns.TypeA, opts: stdWireOpts,
			build: func(qn string) *dns.Msg {
				m := baseReply(qn, dns.TypeA, dns.RcodeSuccess)
				owner := qn
				for i := range 17 {
					target := fmt.Sprintf("c%d.example.net.", i)
					m.Answer = append(m.Answer, &dns.CNAME{Hdr: rrHdr(owner, dns.TypeCNAME, 300), Target: target})
					owner = target
				}
				m.Answer = append(m.Answer, aRR(owner, 300, 1))
				return m
			}},
		{name: "TXT", qtype: dns.TypeTXT, opts: stdWireOpts,
			build: func(qn string) *dns.Msg {
				m := baseReply(qn, dns.TypeTXT, dns.RcodeSuccess)
				m.Answer = []dns.RR{&dns.TXT{Hdr: rrHdr(qn, dns.TypeTXT, 300), Txt: []string{"v=spf1 -all"}}}
				return m
			}},
		{name: "NS in authority and glue", qtype: dns.TypeA, opts: stdWireOpts,
			build: func(qn string) *dns.Msg {
				m := baseReply(qn, dns.TypeA, dns.RcodeSuccess)
				m.Answer = []dns.RR{aRR(qn, 300, 1)}
				m.Ns = []dns.RR{&dns.NS{Hdr: rrHdr("example.com.", dns.TypeNS, 300), Ns: "ns1.example.com."}}
				m.Extra = []dns.RR{aRR("ns1.example.com.", 300, 53)}
				return m
			}},
		{name: "positive, unrelated SOA", qtype: dns.TypeA, opts: stdWireOpts,
			build: func(qn string) *dns.Msg {
				m := baseReply(qn, dns.TypeA, dns.RcodeSuccess)
				m.Answer = []dns.RR{aRR(qn, 300, 1)}
				m.Ns = []dns.RR{soaRR("evil.example.", 3600, 300)}
				return m
			}},
		{name: "trailing garbage", qtype: dns.TypeA, opts: stdWireOpts,
			pack: patched(func(b []byte) []byte { return append(b, 0xde, 0xad) }),
			build: func(qn string) *dns.Msg {
				m := baseReply(qn, dns.TypeA, dns.RcodeSuccess)
				m.Answer = []dns.RR{aRR(qn, 300, 1)}
				return m
			}},
		{name: "CNAME to the root", qtype: dns.TypeA, accept: true, opts: stdWireOpts, pack: packWith(true, false, false),
			build: func(qn string) *dns.Msg {
				m := baseReply(qn, dns.TypeA, dns.RcodeSuccess)
				m.Answer = []dns.RR{&dns.CNAME{Hdr: rrHdr(qn, dns.TypeCNAME, 300), Target: "."}}
				return m
			}},
	}
}

// wireReq is the request the reply answers.
func wireReq(name string, qtype uint16, do bool) *Request {
	return &Request{Name: name, Qtype: qtype, DO: do}
}

func TestPutWireMatchesMsgPath(t *testing.T) {
	now := time.Now()
	for _, tc := range wireCases() {
		for _, name := range []string{"www.example.com.", "a.b.c.example.com."} {
			t.Run(tc.name+"/"+name, func(t *testing.T) {
				pack := tc.pack
				if pack == nil {
					pack = packWith(true, true, tc.do)
				}
				b := pack(tc.build(mixCase(name)))
				orig := bytes.Clone(b)
				req := wireReq(name, tc.qtype, tc.do)
				req.CD = tc.cd
				c := NewCache(tc.opts)
				want, unpacked := msgPathEntry(c, req, bytes.Clone(b), now)
				if !unpacked && !tc.msgNil {
					t.Fatal("the Msg path cannot unpack the reply")
				}
				if (want == nil) != tc.msgNil {
					t.Fatalf("Msg path entry %v, want nil %v", want != nil, tc.msgNil)
				}
				got, ok := c.putWire(req, b, now)
				if !bytes.Equal(b, orig) {
					t.Fatal("putWire changed the reply")
				}
				if ok != tc.accept {
					t.Fatalf("putWire ok %v, want %v", ok, tc.accept)
				}
				if !ok {
					if c.Len() != 0 {
						t.Fatal("declined but stored")
					}
					return
				}
				if err := diffEntries(got, want, req, now); err != nil {
					t.Fatal(err)
				}
				if err := diffEntries(got, asyncPathEntry(c, req, bytes.Clone(b), now), req, now); err != nil {
					t.Fatalf("against storeReply's entry: %v", err)
				}
				// Stored, and read back the same.
				back := c.get(name, tc.qtype, tc.do, tc.cd)
				if back == nil {
					t.Fatal("not stored")
				}
				if err := diffEntries(back, want, req, now); err != nil {
					t.Fatalf("stored entry: %v", err)
				}
			})
		}
	}
}

// TestPutWireDeclinesBadPointers: pointers the wire path must not follow
// (forward, into the header, to a byte that is not a label start, a loop)
// are declined whatever miekg makes of them.
func TestPutWireDeclinesBadPointers(t *testing.T) {
	now := time.Now()
	name := "www.example.com."
	m := baseReply(mixCase(name), dns.TypeA, dns.RcodeSuccess)
	m.Answer = []dns.RR{aRR(mixCase(name), 300, 1)}
	base := packWith(true, false, false)(m)
	// The answer's owner is a pointer to the question (c0 0c) at qEnd.
	qEnd := hdrLen + len(name) + 1 + 4
	if base[qEnd] != 0xC0 || base[qEnd+1] != hdrLen {
		t.Fatalf("unexpected packing %x", base)
	}
	c := NewCache(stdWireOpts)
	req := wireReq(name, dns.TypeA, false)
	if _, ok := c.newEntryWire(req, base, now); !ok {
		t.Fatal("the unpatched reply is declined")
	}
	for _, tc := range []struct {
		name string
		ptr  uint16
	}{
		{"to itself", uint16(qEnd)},
		{"forward", uint16(qEnd + 2)},
		{"into the header", 2},
		{"into a label", hdrLen + 1},
		{"to the question's type", uint16(qEnd - 4)},
		{"beyond the end", 0x3FFF},
	} {
		b := bytes.Clone(base)
		binary.BigEndian.PutUint16(b[qEnd:], 0xC000|tc.ptr)
		if _, ok := c.newEntryWire(req, b, now); ok {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	// A label start is fine: "example.com." at 12+4.
	b := bytes.Clone(base)
	binary.BigEndian.PutUint16(b[qEnd:], 0xC000|(hdrLen+4))
	if _, ok := c.newEntryWire(req, b, now); !ok {
		t.Error("pointer to a label start declined")
	}
}

// TestPutWireQuestionMismatch: the question is checked again.
func TestPutWireQuestionMismatch(t *testing.T) {
	now := time.Now()
	m := baseReply("WwW.example.com.", dns.TypeA, dns.RcodeSuccess)
	m.Answer = []dns.RR{aRR("WwW.example.com.", 300, 1)}
	b := packWith(true, true, false)(m)
	c := NewCache(stdWireOpts)
	for _, req := range []*Request{
		wireReq("ww.example.com.", dns.TypeA, false),
		wireReq("www.example.co.", dns.TypeA, false),
		wireReq("www.example.com", dns.TypeA, false),
		wireReq("www.example.com.", dns.TypeAAAA, false),
		wireReq("www.Example.com.", dns.TypeA, false),
	} {
		if _, ok := c.newEntryWire(req, b, now); ok {
			t.Errorf("%s/%d accepted", req.Name, req.Qtype)
		}
	}
	if _, ok := c.newEntryWire(wireReq("www.example.com.", dns.TypeA, false), b, now); !ok {
		t.Error("the matching request is declined")
	}
	var none *Cache
	if e, ok := none.putWire(wireReq("www.example.com.", dns.TypeA, false), b, now); ok || e != nil {
		t.Error("a nil cache took the reply")
	}
}

// fuzzName is the question of FuzzPutWire's replies, in the case the query
// went out with.
const fuzzName = "wWw.ExaMple.cOm."

// fuzzReply is the reply FuzzPutWire builds: a fixed ID and question name,
// the flags (QR forced), the counts and the question type from the first 10
// bytes of data, then the rest of data as the records.
func fuzzReply(data []byte) (b []byte, qtype uint16) {
	var h [10]byte
	copy(h[:], data)
	b = []byte{0x12, 0x34, h[0] | 0x80, h[1], 0, 1, h[2], h[3], h[4], h[5], h[6], h[7]}
	for _, l := range strings.Split(strings.TrimSuffix(fuzzName, "."), ".") {
		b = append(b, byte(len(l)))
		b = append(b, l...)
	}
	b = append(b, 0, h[8], h[9], 0, 1)
	return append(b, data[min(len(data), 10):]...), binary.BigEndian.Uint16(h[8:])
}

// fuzzSeed turns a reply to fuzzName into FuzzPutWire's input.
func fuzzSeed(b []byte) []byte {
	qEnd := hdrLen + len(fuzzName) + 1 + 4
	return append(append(append(bytes.Clone(b[2:4]), b[6:12]...), b[qEnd-4:qEnd-2]...), b[qEnd:]...)
}

// FuzzPutWire: for any reply, the wire path declines or builds the entry the
// Msg path builds (which then must have unpacked the reply and cached it).
func FuzzPutWire(f *testing.F) {
	for _, tc := range wireCases() {
		pack := tc.pack
		if pack == nil {
			pack = packWith(true, true, tc.do)
		}
		f.Add(fuzzSeed(pack(tc.build(fuzzName))))
	}
	caches := []*Cache{
		NewCache(CacheOptions{Size: 100, ServfailTTL: 3 * time.Second}),
		NewCache(CacheOptions{Size: 100, MinTTL: 30 * time.Second, MaxTTL: time.Hour, NegativeMaxTTL: 10 * time.Minute}),
	}
	now := time.Now()
	f.Fuzz(func(t *testing.T, data []byte) {
		b, qtype := fuzzReply(data)
		orig := bytes.Clone(b)
		for i, c := range caches {
			req := wireReq(strings.ToLower(fuzzName), qtype, i == 1)
			got, ok := c.newEntryWire(req, b, now)
			if !bytes.Equal(b, orig) {
				t.Fatal("newEntryWire changed the reply")
			}
			if !ok {
				continue
			}
			want, unpacked := msgPathEntry(c, req, bytes.Clone(b), now)
			if !unpacked || want == nil {
				t.Fatalf("cache %d: accepted a reply the Msg path does not cache (unpacked %v)", i, unpacked)
			}
			if err := diffEntries(got, want, req, now); err != nil {
				t.Fatalf("cache %d: %v", i, err)
			}
			if err := diffEntries(got, asyncPathEntry(c, req, bytes.Clone(b), now), req, now); err != nil {
				t.Fatalf("cache %d, against storeReply's entry: %v", i, err)
			}
		}
	})
}

// BenchmarkPutWire compares storing a typical miss's answer (one A record,
// compressed, 0x20 question, an OPT) from its bytes with the Msg path
// (unpack, scrub, put).
func BenchmarkPutWire(b *testing.B) {
	name := "www.example.com."
	m := baseReply(mixCase(name), dns.TypeA, dns.RcodeSuccess)
	m.Answer = []dns.RR{aRR(mixCase(name), 300, 1)}
	reply := packWith(true, true, false)(m)
	req := wireReq(name, dns.TypeA, false)
	now := time.Now()
	b.Run("wire", func(b *testing.B) {
		c := NewCache(CacheOptions{Size: 1000})
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := c.putWire(req, reply, now); !ok {
				b.Fatal("declined")
			}
		}
	})
	b.Run("msg", func(b *testing.B) {
		c := NewCache(CacheOptions{Size: 1000})
		b.ReportAllocs()
		for b.Loop() {
			m := new(dns.Msg)
			if err := m.Unpack(reply); err != nil {
				b.Fatal(err)
			}
			m.Authoritative = false
			scrub(m, req.Name)
			if c.put(req, m, now) == nil {
				b.Fatal("not cached")
			}
		}
	})
}

// TestPutWireKnot feeds the wire path knot's own replies (its compression,
// its OPT, AA set) to 0x20 queries: the shapes a miss meets are taken, and
// make the Msg path's entry.
func TestPutWireKnot(t *testing.T) {
	zone := "$ORIGIN wire.example.\n$TTL 300\n" +
		"@ SOA ns hostmaster 1 3600 600 86400 60\n@ NS ns\nns A 127.0.0.1\n" +
		"www A 192.0.2.1\nwww A 192.0.2.2\nwww AAAA 2001:db8::1\nwww MX 10 mail\nmail A 192.0.2.25\n" +
		"alias 60 CNAME www\nout CNAME gone.elsewhere.example.\nchain CNAME alias\n" +
		"www HTTPS 1 . alpn=h3,h2 ipv4hint=192.0.2.1 ipv6hint=2001:db8::1\n"
	addr := testtool.KnotZone(t, "wire.example.", zone)
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := NewCache(CacheOptions{Size: 100, ServfailTTL: time.Second})
	now := time.Now()
	for i, tc := range []struct {
		name   string
		qtype  uint16
		rcode  int
		accept bool
	}{
		{"www.wire.example.", dns.TypeA, dns.RcodeSuccess, true},
		{"www.wire.example.", dns.TypeAAAA, dns.RcodeSuccess, true},
		{"www.wire.example.", dns.TypeHTTPS, dns.RcodeSuccess, true},
		{"alias.wire.example.", dns.TypeA, dns.RcodeSuccess, true},
		{"chain.wire.example.", dns.TypeA, dns.RcodeSuccess, true},
		{"out.wire.example.", dns.TypeA, dns.RcodeSuccess, true},
		{"nowhere.wire.example.", dns.TypeA, dns.RcodeNameError, true},
		{"a.b.nowhere.wire.example.", dns.TypeAAAA, dns.RcodeNameError, true},
		{"www.wire.example.", dns.TypeTXT, dns.RcodeSuccess, true},
		{"wire.example.", dns.TypeSOA, dns.RcodeSuccess, true},
		// The exchange's address in the additional section, which scrub
		// drops (not below the question's name): declined.
		{"www.wire.example.", dns.TypeMX, dns.RcodeSuccess, false},
	} {
		for _, edns := range []bool{true, false} {
			q := new(dns.Msg)
			q.SetQuestion(mixCase(tc.name), tc.qtype)
			q.Id = uint16(100 + i)
			if edns {
				q.SetEdns0(1232, false)
			}
			pkt, err := q.Pack()
			if err != nil {
				t.Fatal(err)
			}
			if err := conn.SetDeadline(time.Now().Add(2 * time.Second)); err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Write(pkt); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 4096)
			n, err := conn.Read(buf)
			if err != nil {
				t.Fatalf("%s/%d: %v", tc.name, tc.qtype, err)
			}
			b := buf[:n]
			if int(binary.BigEndian.Uint16(b[2:])&0xF) != tc.rcode || binary.BigEndian.Uint16(b) != q.Id {
				t.Fatalf("%s/%d: knot answered %x", tc.name, tc.qtype, b)
			}
			req := wireReq(tc.name, tc.qtype, false)
			got, ok := c.newEntryWire(req, b, now)
			if ok != tc.accept {
				t.Errorf("%s/%d (EDNS %v): accepted %v, want %v: knot's reply %x", tc.name, tc.qtype, edns, ok, tc.accept, b)
			}
			if !ok {
				continue
			}
			want, _ := msgPathEntry(c, req, bytes.Clone(b), now)
			if want == nil {
				t.Fatalf("%s/%d: the Msg path does not cache it", tc.name, tc.qtype)
			}
			if err := diffEntries(got, want, req, now); err != nil {
				t.Errorf("%s/%d (EDNS %v): %v", tc.name, tc.qtype, edns, err)
			}
		}
	}
}

// TestNXDomainCNAMEsClamped: the CNAMEs an NXDOMAIN follows are positive
// data, and both paths clamp their TTLs to cache.min_ttl and max_ttl as a
// positive answer's (they were stored as the upstream sent them); the SOA
// keeps the negative TTL.
func TestNXDomainCNAMEsClamped(t *testing.T) {
	now := time.Now()
	const name = "www.example.com."
	opts := CacheOptions{Size: 1000, MinTTL: 10 * time.Second, MaxTTL: 100 * time.Second}
	m := baseReply(name, dns.TypeA, dns.RcodeNameError)
	m.Answer = []dns.RR{
		&dns.CNAME{Hdr: rrHdr(name, dns.TypeCNAME, 86400), Target: "a.example.org."},
		&dns.CNAME{Hdr: rrHdr("a.example.org.", dns.TypeCNAME, 5), Target: "gone.example.org."},
	}
	m.Ns = []dns.RR{soaRR("example.org.", 3600, 60)}
	b := packWith(true, true, false)(m)
	req := wireReq(name, dns.TypeA, false)
	wire, ok := NewCache(opts).putWire(req, bytes.Clone(b), now)
	if !ok {
		t.Fatal("putWire declined the reply")
	}
	msgPath, _ := msgPathEntry(NewCache(opts), req, bytes.Clone(b), now)
	for path, e := range map[string]*entry{"putWire": wire, "newEntry": msgPath} {
		var got dns.Msg
		if err := got.Unpack(e.msg); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if len(got.Answer) != 2 || got.Answer[0].Header().Ttl != 100 || got.Answer[1].Header().Ttl != 10 {
			t.Errorf("%s: answer %v, want the CNAMEs' TTLs clamped to 100 and 10", path, got.Answer)
		}
		if len(got.Ns) != 1 || got.Ns[0].Header().Ttl != 60 || e.ttl != 60 {
			t.Errorf("%s: authority %v, entry ttl %d; want the SOA's negative TTL 60", path, got.Ns, e.ttl)
		}
	}
}

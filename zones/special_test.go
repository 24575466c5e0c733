package zones

import (
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// specialTable covers parts of special zones: a whole RFC 1918 reverse zone,
// a /24 inside another, an Active Directory domain under local., a
// single-label zone, and an ordinary local zone.
func specialTable(t testing.TB) *Table {
	t.Helper()
	tab, err := Load([]Spec{
		{Name: "10.in-addr.arpa.", Forward: []string{"10.0.0.10"}},
		{Name: "20.168.192.in-addr.arpa.", Forward: []string{"10.0.0.10"}},
		{Name: "corp.local.", Forward: []string{"10.0.0.10"}},
		{Name: "lan.", Forward: []string{"10.0.0.10"}},
		{Name: "corp.example.", File: "corp.example.zone"},
	}, fixtures)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return tab
}

// soaOf is the synthesized SOA of a special zone, as rrStrings renders it.
func soaOf(apex string) string {
	return apex + " 10800 IN SOA " + apex + " nobody.invalid. 1 3600 1200 604800 10800"
}

// rev6 is the ip6.arpa name of a 32-nibble address written as hex digits.
func rev6(hex string) string {
	var b strings.Builder
	for i := len(hex) - 1; i >= 0; i-- {
		b.WriteByte(hex[i])
		b.WriteByte('.')
	}
	return b.String() + "ip6.arpa."
}

var (
	loop6    = rev6("00000000000000000000000000000001")
	unspec6  = rev6("00000000000000000000000000000000")
	ula6     = rev6("fd000000000000000000000000000001")
	ulaC6    = rev6("fc000000000000000000000000000001")
	link6    = rev6("fe800000000000000000000000000001")
	linkB6   = rev6("febf0000000000000000000000000001")
	site6    = rev6("fec00000000000000000000000000001")
	doc6     = rev6("20010db8000000000000000000000001")
	public6  = rev6("20014860486000000000000000008888")
	ulaApex  = "d.f.ip6.arpa."
	docApex6 = "8.b.d.0.1.0.0.2.ip6.arpa."
)

func TestSpecials(t *testing.T) {
	covered := specialTable(t)
	tests := []struct {
		name        string
		table       *Table // nil: no configured zones
		forward1    bool   // SpecialOptions.ForwardSingleLabel
		qname       string
		qtype       uint16
		wantHandled bool
		wantRcode   int
		wantAnswer  []string
		wantNS      []string
	}{
		// RFC 6761 §6.3 localhost.
		{name: "localhost A", qname: "localhost.", qtype: dns.TypeA, wantHandled: true, wantAnswer: []string{"localhost. 10800 IN A 127.0.0.1"}},
		{name: "localhost AAAA", qname: "localhost.", qtype: dns.TypeAAAA, wantHandled: true, wantAnswer: []string{"localhost. 10800 IN AAAA ::1"}},
		{name: "localhost in mixed case keeps the case", qname: "LocalHost.", qtype: dns.TypeA, wantHandled: true, wantAnswer: []string{"LocalHost. 10800 IN A 127.0.0.1"}},
		{name: "name below localhost", qname: "app.localhost.", qtype: dns.TypeAAAA, wantHandled: true, wantAnswer: []string{"app.localhost. 10800 IN AAAA ::1"}},
		{name: "localhost MX: NODATA", qname: "localhost.", qtype: dns.TypeMX, wantHandled: true, wantNS: []string{soaOf("localhost.")}},
		{name: "localhost SOA", qname: "localhost.", qtype: dns.TypeSOA, wantHandled: true, wantAnswer: []string{soaOf("localhost.")}},
		{
			name: "localhost ANY", qname: "localhost.", qtype: dns.TypeANY, wantHandled: true,
			wantAnswer: []string{soaOf("localhost."), "localhost. 10800 IN NS localhost.", "localhost. 10800 IN A 127.0.0.1", "localhost. 10800 IN AAAA ::1"},
		},
		{name: "localhost is never covered", table: covered, qname: "localhost.", qtype: dns.TypeA, wantHandled: true, wantAnswer: []string{"localhost. 10800 IN A 127.0.0.1"}},

		// RFC 6761 §6.4 invalid., RFC 6762 local., RFC 6761 §6.2 test., RFC 7686 onion.
		{name: "invalid.", qname: "invalid.", qtype: dns.TypeA, wantHandled: true, wantRcode: dns.RcodeNameError, wantNS: []string{soaOf("invalid.")}},
		{name: "invalid. SOA: the name does not exist", qname: "invalid.", qtype: dns.TypeSOA, wantHandled: true, wantRcode: dns.RcodeNameError, wantNS: []string{soaOf("invalid.")}},
		{name: "below invalid.", qname: "x.y.INVALID.", qtype: dns.TypeA, wantHandled: true, wantRcode: dns.RcodeNameError, wantNS: []string{soaOf("invalid.")}},
		{name: "local.", qname: "local.", qtype: dns.TypeA, wantHandled: true, wantRcode: dns.RcodeNameError, wantNS: []string{soaOf("local.")}},
		{name: "below local.", qname: "printer.local.", qtype: dns.TypeA, wantHandled: true, wantRcode: dns.RcodeNameError, wantNS: []string{soaOf("local.")}},
		{name: "AD domain under local. covered", table: covered, qname: "dc1.corp.local.", qtype: dns.TypeA},
		{name: "covered zone apex under local.", table: covered, qname: "corp.local.", qtype: dns.TypeSOA},
		{name: "local. above a covered zone exists (RFC 8020)", table: covered, qname: "local.", qtype: dns.TypeA, wantHandled: true, wantNS: []string{soaOf("local.")}},
		{name: "other names under local. with a covered zone", table: covered, qname: "printer.local.", qtype: dns.TypeA, wantHandled: true, wantRcode: dns.RcodeNameError, wantNS: []string{soaOf("local.")}},
		{name: "test.", qname: "www.test.", qtype: dns.TypeA, wantHandled: true, wantRcode: dns.RcodeNameError, wantNS: []string{soaOf("test.")}},
		{name: "onion.", qname: "duckduckgogg42xjoc72x3sjasowoarfbgcmvfimaftt6twagswzczad.onion.", qtype: dns.TypeA, wantHandled: true, wantRcode: dns.RcodeNameError, wantNS: []string{soaOf("onion.")}},

		// RFC 9462 resolver.arpa.
		{name: "resolver.arpa.", qname: "resolver.arpa.", qtype: dns.TypeA, wantHandled: true, wantNS: []string{soaOf("resolver.arpa.")}},
		{name: "resolver.arpa. SOA", qname: "resolver.arpa.", qtype: dns.TypeSOA, wantHandled: true, wantAnswer: []string{soaOf("resolver.arpa.")}},
		{name: "DDR _dns.resolver.arpa SVCB: NODATA", qname: "_dns.resolver.arpa.", qtype: dns.TypeSVCB, wantHandled: true, wantNS: []string{soaOf("resolver.arpa.")}},
		{name: "deep below resolver.arpa.", qname: "a.b.resolver.arpa.", qtype: dns.TypeTXT, wantHandled: true, wantNS: []string{soaOf("resolver.arpa.")}},

		// RFC 6303 reverse zones.
		{name: "10/8 reverse", qname: "1.0.0.10.in-addr.arpa.", qtype: dns.TypePTR, wantHandled: true, wantRcode: dns.RcodeNameError, wantNS: []string{soaOf("10.in-addr.arpa.")}},
		{name: "10/8 reverse covered by a forward", table: covered, qname: "1.0.0.10.in-addr.arpa.", qtype: dns.TypePTR},
		{name: "10/8 reverse apex covered", table: covered, qname: "10.in-addr.arpa.", qtype: dns.TypeSOA},
		{name: "reverse zone apex exists: NODATA", qname: "10.in-addr.arpa.", qtype: dns.TypePTR, wantHandled: true, wantNS: []string{soaOf("10.in-addr.arpa.")}},
		{
			name: "reverse zone apex NS", qname: "10.in-addr.arpa.", qtype: dns.TypeNS, wantHandled: true,
			wantAnswer: []string{"10.in-addr.arpa. 10800 IN NS 10.in-addr.arpa."},
		},
		{name: "172.16/12 first", qname: "1.0.16.172.in-addr.arpa.", qtype: dns.TypePTR, wantHandled: true, wantRcode: dns.RcodeNameError, wantNS: []string{soaOf("16.172.in-addr.arpa.")}},
		{name: "172.16/12 last", qname: "1.0.31.172.in-addr.arpa.", qtype: dns.TypePTR, wantHandled: true, wantRcode: dns.RcodeNameError, wantNS: []string{soaOf("31.172.in-addr.arpa.")}},
		{name: "172.15 is public", qname: "1.0.15.172.in-addr.arpa.", qtype: dns.TypePTR},
		{name: "172.32 is public", qname: "1.0.32.172.in-addr.arpa.", qtype: dns.TypePTR},
		{name: "192.168/16", qname: "5.1.168.192.in-addr.arpa.", qtype: dns.TypePTR, wantHandled: true, wantRcode: dns.RcodeNameError, wantNS: []string{soaOf("168.192.in-addr.arpa.")}},
		{name: "192.168/16 in upper case", qname: "5.1.168.192.IN-ADDR.ARPA.", qtype: dns.TypePTR, wantHandled: true, wantRcode: dns.RcodeNameError, wantNS: []string{soaOf("168.192.in-addr.arpa.")}},
		{name: "192.168.20/24 covered", table: covered, qname: "5.20.168.192.in-addr.arpa.", qtype: dns.TypePTR},
		{name: "192.168.21/24 beside a covered /24", table: covered, qname: "5.21.168.192.in-addr.arpa.", qtype: dns.TypePTR, wantHandled: true, wantRcode: dns.RcodeNameError, wantNS: []string{soaOf("168.192.in-addr.arpa.")}},
		{name: "100.64/10", qname: "1.0.64.100.in-addr.arpa.", qtype: dns.TypePTR, wantHandled: true, wantRcode: dns.RcodeNameError, wantNS: []string{soaOf("64.100.in-addr.arpa.")}},
		{name: "100.128 is public", qname: "1.0.128.100.in-addr.arpa.", qtype: dns.TypePTR},
		{name: "169.254/16", qname: "1.1.254.169.in-addr.arpa.", qtype: dns.TypePTR, wantHandled: true, wantRcode: dns.RcodeNameError, wantNS: []string{soaOf("254.169.in-addr.arpa.")}},
		{name: "0/8", qname: "0.0.0.0.in-addr.arpa.", qtype: dns.TypePTR, wantHandled: true, wantRcode: dns.RcodeNameError, wantNS: []string{soaOf("0.in-addr.arpa.")}},
		{name: "192.0.2/24 documentation", qname: "1.2.0.192.in-addr.arpa.", qtype: dns.TypePTR, wantHandled: true, wantRcode: dns.RcodeNameError, wantNS: []string{soaOf("2.0.192.in-addr.arpa.")}},
		{name: "255.255.255.255", qname: "255.255.255.255.in-addr.arpa.", qtype: dns.TypePTR, wantHandled: true, wantNS: []string{soaOf("255.255.255.255.in-addr.arpa.")}},
		{name: "127.0.0.1 PTR localhost", qname: "1.0.0.127.in-addr.arpa.", qtype: dns.TypePTR, wantHandled: true, wantAnswer: []string{"1.0.0.127.in-addr.arpa. 10800 IN PTR localhost."}},
		{name: "127.0.0.1 A: NODATA", qname: "1.0.0.127.in-addr.arpa.", qtype: dns.TypeA, wantHandled: true, wantNS: []string{soaOf("127.in-addr.arpa.")}},
		{name: "above 127.0.0.1 exists", qname: "0.0.127.in-addr.arpa.", qtype: dns.TypePTR, wantHandled: true, wantNS: []string{soaOf("127.in-addr.arpa.")}},
		{name: "127.0.0.2", qname: "2.0.0.127.in-addr.arpa.", qtype: dns.TypePTR, wantHandled: true, wantRcode: dns.RcodeNameError, wantNS: []string{soaOf("127.in-addr.arpa.")}},
		{name: "public IPv4", qname: "8.8.8.8.in-addr.arpa.", qtype: dns.TypePTR},
		{name: "::1 PTR localhost", qname: loop6, qtype: dns.TypePTR, wantHandled: true, wantAnswer: []string{loop6 + " 10800 IN PTR localhost."}},
		{name: ":: apex: NODATA", qname: unspec6, qtype: dns.TypePTR, wantHandled: true, wantNS: []string{soaOf(unspec6)}},
		{name: "ULA fd00::/8", qname: ula6, qtype: dns.TypePTR, wantHandled: true, wantRcode: dns.RcodeNameError, wantNS: []string{soaOf(ulaApex)}},
		{name: "ULA fc00::/8", qname: ulaC6, qtype: dns.TypePTR, wantHandled: true, wantRcode: dns.RcodeNameError, wantNS: []string{soaOf("c.f.ip6.arpa.")}},
		{name: "link-local fe80::/10 first", qname: link6, qtype: dns.TypePTR, wantHandled: true, wantRcode: dns.RcodeNameError, wantNS: []string{soaOf("8.e.f.ip6.arpa.")}},
		{name: "link-local fe80::/10 last", qname: linkB6, qtype: dns.TypePTR, wantHandled: true, wantRcode: dns.RcodeNameError, wantNS: []string{soaOf("b.e.f.ip6.arpa.")}},
		{name: "fec0:: is not special", qname: site6, qtype: dns.TypePTR},
		{name: "2001:db8::/32 documentation", qname: doc6, qtype: dns.TypePTR, wantHandled: true, wantRcode: dns.RcodeNameError, wantNS: []string{soaOf(docApex6)}},
		{name: "public IPv6", qname: public6, qtype: dns.TypePTR},
		{name: "home.arpa.", qname: "printer.home.arpa.", qtype: dns.TypeA, wantHandled: true, wantRcode: dns.RcodeNameError, wantNS: []string{soaOf("home.arpa.")}},
		{name: "in-addr.arpa itself", qname: "in-addr.arpa.", qtype: dns.TypeNS},

		// Single-label names.
		{name: "single-label A", qname: "printer.", qtype: dns.TypeA, wantHandled: true, wantRcode: dns.RcodeNameError, wantNS: []string{soaOf(".")}},
		{name: "single-label HTTPS in upper case", qname: "WPAD.", qtype: dns.TypeHTTPS, wantHandled: true, wantRcode: dns.RcodeNameError, wantNS: []string{soaOf(".")}},
		{name: "single-label without the trailing dot", qname: "printer", qtype: dns.TypeAAAA, wantHandled: true, wantRcode: dns.RcodeNameError, wantNS: []string{soaOf(".")}},
		{name: "single-label forwarded when the option is off", forward1: true, qname: "printer.", qtype: dns.TypeA},
		{name: "TLD SOA is forwarded", qname: "com.", qtype: dns.TypeSOA},
		{name: "TLD DS is forwarded", qname: "com.", qtype: dns.TypeDS},
		{name: "TLD DNSKEY is forwarded", qname: "org.", qtype: dns.TypeDNSKEY},
		{name: "TLD A is not", qname: "com.", qtype: dns.TypeA, wantHandled: true, wantRcode: dns.RcodeNameError, wantNS: []string{soaOf(".")}},
		{name: "single-label arpa. A", qname: "arpa.", qtype: dns.TypeA, wantHandled: true, wantRcode: dns.RcodeNameError, wantNS: []string{soaOf(".")}},
		{name: "single-label zone covered", table: covered, qname: "lan.", qtype: dns.TypeA},
		{name: "escaped dot keeps one label", qname: `a\.b.`, qtype: dns.TypeA, wantHandled: true, wantRcode: dns.RcodeNameError, wantNS: []string{soaOf(".")}},
		{name: "root", qname: ".", qtype: dns.TypeNS},
		{name: "root A", qname: ".", qtype: dns.TypeA},
		{name: "two labels", qname: "printer.corp.", qtype: dns.TypeA},
		{name: "ordinary name", qname: "www.example.com.", qtype: dns.TypeA},
		{name: "local zone name", table: covered, qname: "www.corp.example.", qtype: dns.TypeA},
		{name: "localhost as a label elsewhere", qname: "localhost.example.com.", qtype: dns.TypeA},
		{name: "arpa name that is not special", qname: "example.arpa.", qtype: dns.TypeA},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSpecials(tt.table, SpecialOptions{ForwardSingleLabel: tt.forward1})
			q := query(tt.qname, tt.qtype)
			q.RecursionDesired = true
			m := s.Answer(q)
			if (m != nil) != tt.wantHandled {
				t.Fatalf("handled = %v, want %v (answer %v)", m != nil, tt.wantHandled, m)
			}
			if m == nil {
				return
			}
			if m.Id != q.Id || !m.Response || !m.Authoritative || !m.RecursionDesired || m.RecursionAvailable {
				t.Errorf("header: id %d response %v AA %v RD %v RA %v; want id %d, response, AA, RD, no RA",
					m.Id, m.Response, m.Authoritative, m.RecursionDesired, m.RecursionAvailable, q.Id)
			}
			if len(m.Question) != 1 || m.Question[0] != q.Question[0] {
				t.Errorf("question %v, want %v", m.Question, q.Question)
			}
			if m.Rcode != tt.wantRcode {
				t.Errorf("rcode %s, want %s", dns.RcodeToString[m.Rcode], dns.RcodeToString[tt.wantRcode])
			}
			if got := rrStrings(m.Answer); !slices.Equal(got, tt.wantAnswer) {
				t.Errorf("answer:\n got %q\nwant %q", got, tt.wantAnswer)
			}
			if got := rrStrings(m.Ns); !slices.Equal(got, tt.wantNS) {
				t.Errorf("authority:\n got %q\nwant %q", got, tt.wantNS)
			}
			if len(m.Extra) != 0 {
				t.Errorf("additional %v, want none", m.Extra)
			}
			if _, err := m.Pack(); err != nil && dns.IsFqdn(tt.qname) {
				t.Errorf("answer does not pack: %v", err)
			}
		})
	}
}

func TestSpecialsNilAndEmpty(t *testing.T) {
	var s *Specials
	if m := s.Answer(query("localhost.", dns.TypeA)); m != nil {
		t.Errorf("nil Specials answered %v", m)
	}
	if m := NewSpecials(nil, SpecialOptions{}).Answer(new(dns.Msg)); m != nil {
		t.Errorf("message without a question answered %v", m)
	}
}

// TestSpecialsDoNotAllocate checks the path every query takes: a name that
// is not special, in any case, and one covered by a configured forward.
func TestSpecialsDoNotAllocate(t *testing.T) {
	tab := specialTable(t)
	tests := []struct {
		name    string
		opt     SpecialOptions
		qname   string
		qtype   uint16
		special bool // the name is answered: then allocation is allowed
	}{
		{name: "ordinary name", qname: "www.example.com.", qtype: dns.TypeA},
		{name: "ordinary name in mixed case", qname: "WWW.Example.COM.", qtype: dns.TypeAAAA},
		{name: "public reverse name", qname: "8.8.8.8.in-addr.arpa.", qtype: dns.TypePTR},
		{name: "public reverse name in upper case", qname: "8.8.8.8.IN-ADDR.ARPA.", qtype: dns.TypePTR},
		{name: "public IPv6 reverse name", qname: public6, qtype: dns.TypePTR},
		{name: "covered reverse name", qname: "5.0.0.10.in-addr.arpa.", qtype: dns.TypePTR},
		{name: "covered name under local.", qname: "dc1.corp.local.", qtype: dns.TypeA},
		{name: "single-label infrastructure type", qname: "com.", qtype: dns.TypeDS},
		{name: "single-label with the option off", opt: SpecialOptions{ForwardSingleLabel: true}, qname: "printer.", qtype: dns.TypeA},
		{name: "root", qname: ".", qtype: dns.TypeNS},
		{name: "special name answers", qname: "localhost.", qtype: dns.TypeA, special: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSpecials(tab, tt.opt)
			q := query(tt.qname, tt.qtype)
			if got := s.Answer(q) != nil; got != tt.special {
				t.Fatalf("handled = %v, want %v", got, tt.special)
			}
			n := testing.AllocsPerRun(100, func() { s.Answer(q) })
			if tt.special && n == 0 {
				t.Errorf("Answer(%s) answered without allocating: the measurement is broken", tt.qname)
			}
			if !tt.special && n != 0 {
				t.Errorf("Answer(%s) allocates %v times per call, want 0", tt.qname, n)
			}
		})
	}
}

func BenchmarkSpecialsMiss(b *testing.B) {
	s := NewSpecials(specialTable(b), SpecialOptions{})
	q := query("www.example.com.", dns.TypeA)
	for b.Loop() {
		s.Answer(q)
	}
}

func TestCoversAgreesWithAnswer(t *testing.T) {
	s := NewSpecials(specialTable(t), SpecialOptions{})
	names := []string{"localhost.", "a.localhost.", "invalid.", "x.invalid.", "local.", "printer.", "com.", "example.com.",
		"10.in-addr.arpa.", "1.0.0.10.in-addr.arpa.", "8.8.8.8.in-addr.arpa.", "resolver.arpa.", "_dns.resolver.arpa.",
		"1.0.0.127.in-addr.arpa.", "test.", "onion.", "x.onion.", "home.arpa.", "d.f.ip6.arpa.", "www.example.org."}
	for _, n := range names {
		for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeSOA, dns.TypeNS, dns.TypePTR, dns.TypeSVCB} {
			q := new(dns.Msg)
			q.SetQuestion(n, qt)
			if got, want := s.Covers(n, qt), s.Answer(q) != nil; got != want {
				t.Errorf("Covers(%s, %s) = %v, Answer != nil is %v", n, dns.TypeToString[qt], got, want)
			}
		}
	}
	if n := testing.AllocsPerRun(100, func() { s.Covers("www.example.org.", dns.TypeA) }); n != 0 {
		t.Errorf("Covers allocates %v times", n)
	}
}

package zones

import (
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// fixtures is the directory of the zone-file fixtures.
const fixtures = "../testdata/zones"

// longName is the 253-character name in corp.example.zone.
var longName = strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." +
	strings.Repeat("c", 63) + "." + strings.Repeat("d", 48) + ".corp.example."

// testTable loads the fixture configuration: two local zones, a forward
// inside one of them, a zone inside a forward, and a reverse-zone forward.
func testTable(t testing.TB) *Table {
	t.Helper()
	tab, err := Load([]Spec{
		{Name: "corp.example.", File: "corp.example.zone"},
		{Name: "AD.corp.example", Forward: []string{"10.0.0.10:53", "10.0.0.11:53"}},
		{Name: "partner.example.", Forward: []string{"192.0.2.53"}},
		{Name: "lab.partner.example.", File: "lab.partner.example.zone"},
		{Name: "10.in-addr.arpa.", Forward: []string{"10.0.0.10"}},
	}, fixtures)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return tab
}

// rrStrings renders RRs as "owner ttl class type rdata", single-spaced.
func rrStrings(rrs []dns.RR) []string {
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		out = append(out, strings.Join(strings.Fields(rr.String()), " "))
	}
	return out
}

func query(name string, qt uint16) *dns.Msg {
	q := new(dns.Msg)
	q.SetQuestion(name, qt)
	q.Id = 4242
	return q
}

const (
	soaCorp  = "corp.example. 300 IN SOA ns1.corp.example. hostmaster.corp.example. 2024010101 7200 3600 1209600 300"
	nsSub1   = "sub.corp.example. 3600 IN NS ns.sub.corp.example."
	nsSub2   = "sub.corp.example. 3600 IN NS ns.other.example."
	glueSubA = "ns.sub.corp.example. 3600 IN A 192.0.2.60"
	glueSub6 = "ns.sub.corp.example. 3600 IN AAAA 2001:db8::60"
	cA       = "c.corp.example. 3600 IN A 192.0.2.30"
)

func TestAnswer(t *testing.T) {
	tab := testTable(t)
	tests := []struct {
		name       string
		zone       string // the zone asked; corp.example. when empty
		qname      string
		qtype      uint16
		wantRcode  int
		wantAA     bool
		wantAnswer []string
		wantNS     []string
		wantExtra  []string
	}{
		{
			name: "apex SOA", qname: "corp.example.", qtype: dns.TypeSOA, wantAA: true,
			wantAnswer: []string{"corp.example. 3600 IN SOA ns1.corp.example. hostmaster.corp.example. 2024010101 7200 3600 1209600 300"},
		},
		{
			name: "apex NS with addresses of the name servers", qname: "corp.example.", qtype: dns.TypeNS, wantAA: true,
			wantAnswer: []string{"corp.example. 3600 IN NS ns1.corp.example.", "corp.example. 3600 IN NS ns2.corp.example."},
			wantExtra:  []string{"ns1.corp.example. 3600 IN A 192.0.2.1", "ns2.corp.example. 3600 IN A 192.0.2.2", "ns2.corp.example. 3600 IN AAAA 2001:db8::2"},
		},
		{
			name: "MX with the address of its target", qname: "corp.example.", qtype: dns.TypeMX, wantAA: true,
			wantAnswer: []string{"corp.example. 3600 IN MX 10 mail.corp.example."},
			wantExtra:  []string{"mail.corp.example. 600 IN A 192.0.2.25"},
		},
		{
			name: "SRV with the address of its target", qname: "_ldap._tcp.corp.example.", qtype: dns.TypeSRV, wantAA: true,
			wantAnswer: []string{"_ldap._tcp.corp.example. 3600 IN SRV 0 100 389 dc1.corp.example."},
			wantExtra:  []string{"dc1.corp.example. 3600 IN A 192.0.2.40"},
		},
		{
			name: "TXT with two strings", qname: "txt.corp.example.", qtype: dns.TypeTXT, wantAA: true,
			wantAnswer: []string{`txt.corp.example. 3600 IN TXT "hello world" "semi;colon"`},
		},
		{
			name: "apex TXT", qname: "corp.example.", qtype: dns.TypeTXT, wantAA: true,
			wantAnswer: []string{`corp.example. 3600 IN TXT "v=spf1 mx -all"`},
		},
		{
			name: "owner-less AAAA line belongs to the name above it", qname: "ns2.corp.example.", qtype: dns.TypeAAAA, wantAA: true,
			wantAnswer: []string{"ns2.corp.example. 3600 IN AAAA 2001:db8::2"},
		},
		{
			name: "record of an $INCLUDEd file", qname: "www.corp.example.", qtype: dns.TypeA, wantAA: true,
			wantAnswer: []string{"www.corp.example. 3600 IN A 192.0.2.80"},
		},
		{
			name: "explicit TTL in an $INCLUDEd file", qname: "www2.corp.example.", qtype: dns.TypeA, wantAA: true,
			wantAnswer: []string{"www2.corp.example. 300 IN A 192.0.2.81"},
		},
		{
			name: "$INCLUDE with an origin and its own $TTL", qname: "floor1.printers.corp.example.", qtype: dns.TypeA, wantAA: true,
			wantAnswer: []string{"floor1.printers.corp.example. 120 IN A 192.0.2.90"},
		},
		{
			name: "@ of an $INCLUDE with an origin", qname: "printers.corp.example.", qtype: dns.TypeTXT, wantAA: true,
			wantAnswer: []string{`printers.corp.example. 120 IN TXT "printers"`},
		},
		{
			name: "the including file's $TTL after the $INCLUDE", qname: "after.corp.example.", qtype: dns.TypeA, wantAA: true,
			wantAnswer: []string{"after.corp.example. 3600 IN A 192.0.2.99"},
		},
		{
			name: "question in mixed case", qname: "WWW.Corp.EXAMPLE.", qtype: dns.TypeA, wantAA: true,
			wantAnswer: []string{"www.corp.example. 3600 IN A 192.0.2.80"},
		},
		{
			name: "IDN label in punycode", qname: "xn--bcher-kva.corp.example.", qtype: dns.TypeA, wantAA: true,
			wantAnswer: []string{"xn--bcher-kva.corp.example. 3600 IN A 192.0.2.70"},
		},
		{
			name: "253-character name", qname: longName, qtype: dns.TypeA, wantAA: true,
			wantAnswer: []string{longName + " 3600 IN A 192.0.2.71"},
		},
		{
			name: "NODATA with the SOA at its negative TTL", qname: "www.corp.example.", qtype: dns.TypeMX, wantAA: true,
			wantNS: []string{soaCorp},
		},
		{
			name: "NXDOMAIN with the SOA at its negative TTL", qname: "nothing.corp.example.", qtype: dns.TypeA,
			wantRcode: dns.RcodeNameError, wantAA: true, wantNS: []string{soaCorp},
		},
		{
			name: "NXDOMAIN below an existing name", qname: "x.www.corp.example.", qtype: dns.TypeA,
			wantRcode: dns.RcodeNameError, wantAA: true, wantNS: []string{soaCorp},
		},
		{
			name: "CNAME chain a -> b -> c", qname: "a.corp.example.", qtype: dns.TypeA, wantAA: true,
			wantAnswer: []string{"a.corp.example. 3600 IN CNAME b.corp.example.", "b.corp.example. 3600 IN CNAME c.corp.example.", cA},
		},
		{
			name: "CNAME chain to a type the target lacks", qname: "a.corp.example.", qtype: dns.TypeAAAA, wantAA: true,
			wantAnswer: []string{"a.corp.example. 3600 IN CNAME b.corp.example.", "b.corp.example. 3600 IN CNAME c.corp.example."},
			wantNS:     []string{soaCorp},
		},
		{
			name: "qtype CNAME is not followed", qname: "a.corp.example.", qtype: dns.TypeCNAME, wantAA: true,
			wantAnswer: []string{"a.corp.example. 3600 IN CNAME b.corp.example."},
		},
		{
			name: "CNAME leaving the local zones: partial chain", qname: "out.corp.example.", qtype: dns.TypeA, wantAA: true,
			wantAnswer: []string{"out.corp.example. 3600 IN CNAME www.example.net."},
		},
		{
			name: "CNAME into a conditional forward: partial chain", qname: "toad.corp.example.", qtype: dns.TypeA, wantAA: true,
			wantAnswer: []string{"toad.corp.example. 3600 IN CNAME dc1.ad.corp.example."},
		},
		{
			name: "CNAME into another local zone", qname: "tolab.corp.example.", qtype: dns.TypeA, wantAA: true,
			wantAnswer: []string{"tolab.corp.example. 3600 IN CNAME host.lab.partner.example.", "host.lab.partner.example. 600 IN A 198.51.100.10"},
		},
		{
			name: "CNAME back from another local zone", zone: "lab.partner.example.", qname: "back.lab.partner.example.", qtype: dns.TypeA, wantAA: true,
			wantAnswer: []string{"back.lab.partner.example. 600 IN CNAME c.corp.example.", cA},
		},
		{
			name: "CNAME to a missing name in the other zone: its SOA", zone: "lab.partner.example.", qname: "back.lab.partner.example.", qtype: dns.TypeMX, wantAA: true,
			wantAnswer: []string{"back.lab.partner.example. 600 IN CNAME c.corp.example."},
			wantNS:     []string{soaCorp},
		},
		{
			name: "CNAME into a delegation: chain and referral", qname: "tosub.corp.example.", qtype: dns.TypeA, wantAA: true,
			wantAnswer: []string{"tosub.corp.example. 3600 IN CNAME host.sub.corp.example."},
			wantNS:     []string{nsSub1, nsSub2},
			wantExtra:  []string{glueSubA, glueSub6},
		},
		{
			name: "dangling CNAME: NXDOMAIN of the target (RFC 6604)", qname: "dangling.corp.example.", qtype: dns.TypeA,
			wantRcode: dns.RcodeNameError, wantAA: true,
			wantAnswer: []string{"dangling.corp.example. 3600 IN CNAME nothere.corp.example."},
			wantNS:     []string{soaCorp},
		},
		{
			name: "CNAME loop stops where it repeats", qname: "loop1.corp.example.", qtype: dns.TypeA, wantAA: true,
			wantAnswer: []string{"loop1.corp.example. 3600 IN CNAME loop2.corp.example.", "loop2.corp.example. 3600 IN CNAME loop1.corp.example."},
		},
		{
			name: "wildcard A, owner is the question", qname: "x.wild.corp.example.", qtype: dns.TypeA, wantAA: true,
			wantAnswer: []string{"x.wild.corp.example. 3600 IN A 192.0.2.50"},
		},
		{
			name: "wildcard TXT", qname: "x.wild.corp.example.", qtype: dns.TypeTXT, wantAA: true,
			wantAnswer: []string{`x.wild.corp.example. 3600 IN TXT "wildcard"`},
		},
		{
			name: "wildcard matches several labels", qname: "y.x.wild.corp.example.", qtype: dns.TypeA, wantAA: true,
			wantAnswer: []string{"y.x.wild.corp.example. 3600 IN A 192.0.2.50"},
		},
		{
			name: "wildcard without the type: NODATA", qname: "x.wild.corp.example.", qtype: dns.TypeMX, wantAA: true,
			wantNS: []string{soaCorp},
		},
		{
			name: "wildcard ANY", qname: "x.wild.corp.example.", qtype: dns.TypeANY, wantAA: true,
			wantAnswer: []string{"x.wild.corp.example. 3600 IN A 192.0.2.50", `x.wild.corp.example. 3600 IN TXT "wildcard"`},
		},
		{
			name: "the wildcard name itself", qname: "*.wild.corp.example.", qtype: dns.TypeA, wantAA: true,
			wantAnswer: []string{"*.wild.corp.example. 3600 IN A 192.0.2.50"},
		},
		{
			name: "existing name under the wildcard", qname: "host.wild.corp.example.", qtype: dns.TypeA, wantAA: true,
			wantAnswer: []string{"host.wild.corp.example. 3600 IN A 192.0.2.51"},
		},
		{
			name: "existing name under the wildcard, other type: NODATA, not the wildcard", qname: "host.wild.corp.example.", qtype: dns.TypeTXT, wantAA: true,
			wantNS: []string{soaCorp},
		},
		{
			name: "below an existing name: its closest encloser has no wildcard", qname: "a.host.wild.corp.example.", qtype: dns.TypeA,
			wantRcode: dns.RcodeNameError, wantAA: true, wantNS: []string{soaCorp},
		},
		{
			name: "empty non-terminal under the wildcard: NODATA", qname: "ent.wild.corp.example.", qtype: dns.TypeA, wantAA: true,
			wantNS: []string{soaCorp},
		},
		{
			name: "below an empty non-terminal: NXDOMAIN, not the wildcard", qname: "x.ent.wild.corp.example.", qtype: dns.TypeA,
			wantRcode: dns.RcodeNameError, wantAA: true, wantNS: []string{soaCorp},
		},
		{
			name: "parent of the wildcard, an empty non-terminal: NODATA", qname: "wild.corp.example.", qtype: dns.TypeA, wantAA: true,
			wantNS: []string{soaCorp},
		},
		{
			name: "wildcard CNAME is followed", qname: "x.cw.corp.example.", qtype: dns.TypeA, wantAA: true,
			wantAnswer: []string{"x.cw.corp.example. 3600 IN CNAME c.corp.example.", cA},
		},
		{
			name: "delegation point: referral with glue", qname: "sub.corp.example.", qtype: dns.TypeA,
			wantNS: []string{nsSub1, nsSub2}, wantExtra: []string{glueSubA, glueSub6},
		},
		{
			name: "below a delegation: referral", qname: "host.sub.corp.example.", qtype: dns.TypeA,
			wantNS: []string{nsSub1, nsSub2}, wantExtra: []string{glueSubA, glueSub6},
		},
		{
			name: "glue name itself: referral, glue is not authoritative", qname: "ns.sub.corp.example.", qtype: dns.TypeA,
			wantNS: []string{nsSub1, nsSub2}, wantExtra: []string{glueSubA, glueSub6},
		},
		{
			name: "NS at the delegation point: referral", qname: "sub.corp.example.", qtype: dns.TypeNS,
			wantNS: []string{nsSub1, nsSub2}, wantExtra: []string{glueSubA, glueSub6},
		},
		{
			name: "DS at the delegation point: from the parent side", qname: "sub.corp.example.", qtype: dns.TypeDS, wantAA: true,
			wantAnswer: []string{"sub.corp.example. 3600 IN DS 12345 13 2 2BB183AF5F22588179A53B0A98631FAD1A292118B2C4E3AC1F3C6D8B5F6C4F19"},
		},
		{
			name: "DS below the delegation point: referral", qname: "host.sub.corp.example.", qtype: dns.TypeDS,
			wantNS: []string{nsSub1, nsSub2}, wantExtra: []string{glueSubA, glueSub6},
		},
		{
			name: "apex DS: NODATA (the parent has it)", qname: "corp.example.", qtype: dns.TypeDS, wantAA: true,
			wantNS: []string{soaCorp},
		},
		{
			name: "ANY at the apex: every RRset", qname: "corp.example.", qtype: dns.TypeANY, wantAA: true,
			wantAnswer: []string{
				"corp.example. 3600 IN SOA ns1.corp.example. hostmaster.corp.example. 2024010101 7200 3600 1209600 300",
				"corp.example. 3600 IN NS ns1.corp.example.", "corp.example. 3600 IN NS ns2.corp.example.",
				"corp.example. 3600 IN MX 10 mail.corp.example.",
				`corp.example. 3600 IN TXT "v=spf1 mx -all"`,
			},
			wantExtra: []string{
				"ns1.corp.example. 3600 IN A 192.0.2.1", "ns2.corp.example. 3600 IN A 192.0.2.2", "ns2.corp.example. 3600 IN AAAA 2001:db8::2",
				"mail.corp.example. 600 IN A 192.0.2.25",
			},
		},
		{
			name: "ANY at a CNAME: the CNAME, not followed", qname: "a.corp.example.", qtype: dns.TypeANY, wantAA: true,
			wantAnswer: []string{"a.corp.example. 3600 IN CNAME b.corp.example."},
		},
		{
			name: "ANY at an empty non-terminal: NODATA", qname: "ent.wild.corp.example.", qtype: dns.TypeANY, wantAA: true,
			wantNS: []string{soaCorp},
		},
		{
			name: "ANY at a delegation: referral", qname: "sub.corp.example.", qtype: dns.TypeANY,
			wantNS: []string{nsSub1, nsSub2}, wantExtra: []string{glueSubA, glueSub6},
		},
		{
			name: "AXFR refused", qname: "corp.example.", qtype: dns.TypeAXFR, wantRcode: dns.RcodeRefused,
		},
		{
			name: "name outside the zone refused", qname: "www.example.net.", qtype: dns.TypeA, wantRcode: dns.RcodeRefused,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			zoneName := tt.zone
			if zoneName == "" {
				zoneName = "corp.example."
			}
			z, _ := tab.Find(zoneName)
			if z == nil {
				t.Fatalf("Find(%q) found no zone", zoneName)
			}
			q := query(tt.qname, tt.qtype)
			q.RecursionDesired = true
			m := z.Answer(q)
			if m.Id != q.Id || !m.Response || !m.RecursionDesired || m.RecursionAvailable {
				t.Errorf("header: id %d response %v rd %v ra %v; want id %d, response, rd, no ra", m.Id, m.Response, m.RecursionDesired, m.RecursionAvailable, q.Id)
			}
			if len(m.Question) != 1 || m.Question[0] != q.Question[0] {
				t.Errorf("question %v, want %v", m.Question, q.Question)
			}
			if m.Rcode != tt.wantRcode {
				t.Errorf("rcode %s, want %s", dns.RcodeToString[m.Rcode], dns.RcodeToString[tt.wantRcode])
			}
			if m.Authoritative != tt.wantAA {
				t.Errorf("AA %v, want %v", m.Authoritative, tt.wantAA)
			}
			for _, sec := range []struct {
				name      string
				got, want []string
			}{
				{"answer", rrStrings(m.Answer), tt.wantAnswer},
				{"authority", rrStrings(m.Ns), tt.wantNS},
				{"additional", rrStrings(m.Extra), tt.wantExtra},
			} {
				if !slices.Equal(sec.got, sec.want) {
					t.Errorf("%s section:\n got %q\nwant %q", sec.name, sec.got, sec.want)
				}
			}
			if _, err := m.Pack(); err != nil {
				t.Errorf("answer does not pack: %v", err)
			}
		})
	}
}

// TestAnswerSharesNothing checks that changing an answer does not change
// the zone.
func TestAnswerSharesNothing(t *testing.T) {
	tab := testTable(t)
	z, _ := tab.Find("corp.example.")
	for _, tc := range []struct {
		name  string
		qname string
		qtype uint16
	}{
		{name: "exact", qname: "www.corp.example.", qtype: dns.TypeA},
		{name: "wildcard", qname: "x.wild.corp.example.", qtype: dns.TypeA},
		{name: "negative", qname: "nothing.corp.example.", qtype: dns.TypeA},
		{name: "referral", qname: "sub.corp.example.", qtype: dns.TypeA},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first := z.Answer(query(tc.qname, tc.qtype))
			want := rrStrings(slices.Concat(first.Answer, first.Ns, first.Extra))
			for _, rr := range slices.Concat(first.Answer, first.Ns, first.Extra) {
				rr.Header().Ttl = 1
				rr.Header().Name = "changed."
			}
			second := z.Answer(query(tc.qname, tc.qtype))
			if got := rrStrings(slices.Concat(second.Answer, second.Ns, second.Extra)); !slices.Equal(got, want) {
				t.Errorf("after changing the first answer:\n got %q\nwant %q", got, want)
			}
		})
	}
}

func TestAnswerFormErr(t *testing.T) {
	z, _ := testTable(t).Find("corp.example.")
	m := z.Answer(new(dns.Msg))
	if m.Rcode != dns.RcodeFormatError || m.Authoritative || len(m.Answer) != 0 {
		t.Errorf("no question: rcode %s AA %v answer %v; want FORMERR, no AA, no answer", dns.RcodeToString[m.Rcode], m.Authoritative, m.Answer)
	}
}

func TestZoneAccessors(t *testing.T) {
	z, _ := testTable(t).Find("www.corp.example.")
	if got := z.Name(); got != "corp.example." {
		t.Errorf("Name() = %q, want corp.example.", got)
	}
	soa := z.SOA()
	if soa.Serial != 2024010101 || soa.Minttl != 300 {
		t.Errorf("SOA() = %v, want serial 2024010101, minimum 300", soa)
	}
	soa.Serial = 1
	if z.SOA().Serial != 2024010101 {
		t.Error("changing the SOA() copy changed the zone")
	}
}

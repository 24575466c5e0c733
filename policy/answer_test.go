package policy

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestBlockAnswer: every action's answer, built from a verdict alone: the
// rcode, the records, the synthesized SOA at the rule's apex with the
// block TTL as minimum, no AD, no AA and no OPT (the server adds EDNS).
func TestBlockAnswer(t *testing.T) {
	j := &Jurisdiction{Description: Description{ID: "corp"}, TTL: 90 * time.Second}
	v4, v6 := netip.MustParseAddr("192.0.2.7"), netip.MustParseAddr("2001:db8::7")
	soa := "deepseek.com.\t90\tIN\tSOA\tcorp.policy.jurisdns. hostmaster.jurisdns.invalid. 42 3600 600 86400 90"
	tests := []struct {
		name      string
		action    Action
		addrs     []netip.Addr
		rule      string
		qname     string
		qtype     uint16
		rcode     int
		answer    []string
		authority []string
	}{
		{"nxdomain", ActionNXDomain, nil, "deepseek.com", "Chat.DeepSeek.com.", dns.TypeA, dns.RcodeNameError, nil, []string{soa}},
		{"nodata", ActionNoData, nil, "deepseek.com", "chat.deepseek.com.", dns.TypeAAAA, dns.RcodeSuccess, nil, []string{soa}},
		{"refused", ActionRefused, nil, "deepseek.com", "chat.deepseek.com.", dns.TypeA, dns.RcodeRefused, nil, nil},
		{"null A", ActionNull, nil, "deepseek.com", "chat.deepseek.com.", dns.TypeA, dns.RcodeSuccess,
			[]string{"chat.deepseek.com.\t90\tIN\tA\t0.0.0.0"}, nil},
		{"null AAAA", ActionNull, nil, "deepseek.com", "chat.deepseek.com.", dns.TypeAAAA, dns.RcodeSuccess,
			[]string{"chat.deepseek.com.\t90\tIN\tAAAA\t::"}, nil},
		{"null TXT: NODATA", ActionNull, nil, "deepseek.com", "chat.deepseek.com.", dns.TypeTXT, dns.RcodeSuccess, nil, []string{soa}},
		{"sinkhole A", ActionIP, []netip.Addr{v4, v6}, "deepseek.com", "chat.deepseek.com.", dns.TypeA, dns.RcodeSuccess,
			[]string{"chat.deepseek.com.\t90\tIN\tA\t192.0.2.7"}, nil},
		{"sinkhole AAAA", ActionIP, []netip.Addr{v4, v6}, "deepseek.com", "chat.deepseek.com.", dns.TypeAAAA, dns.RcodeSuccess,
			[]string{"chat.deepseek.com.\t90\tIN\tAAAA\t2001:db8::7"}, nil},
		{"sinkhole v4 only, AAAA: NODATA", ActionIP, []netip.Addr{v4}, "deepseek.com", "chat.deepseek.com.", dns.TypeAAAA, dns.RcodeSuccess, nil, []string{soa}},
		{"rule not a suffix: the name is the apex", ActionNXDomain, nil, "other.example", "deepseek.com.", dns.TypeA, dns.RcodeNameError, nil, []string{soa}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := new(dns.Msg)
			q.SetQuestion(tc.qname, tc.qtype)
			q.SetEdns0(1232, true)
			v := &Verdict{Decision: DecisionBlock, Jurisdiction: j, Rule: tc.rule, Action: tc.action, Addrs: tc.addrs}
			m := BlockAnswer(42, q, v)
			if m == nil {
				t.Fatal("no answer")
			}
			if m.Rcode != tc.rcode || !m.Response || m.Id != q.Id || m.Authoritative || m.AuthenticatedData {
				t.Errorf("header: rcode %s qr %v id %d aa %v ad %v", dns.RcodeToString[m.Rcode], m.Response, m.Id, m.Authoritative, m.AuthenticatedData)
			}
			if len(m.Extra) != 0 {
				t.Errorf("additional section %v: the server adds EDNS", m.Extra)
			}
			if got := rrStrings(m.Answer); strings.Join(got, "\n") != strings.Join(tc.answer, "\n") {
				t.Errorf("answer %q, want %q", got, tc.answer)
			}
			if got := rrStrings(m.Ns); strings.Join(got, "\n") != strings.Join(tc.authority, "\n") {
				t.Errorf("authority %q, want %q", got, tc.authority)
			}
		})
	}
	q := new(dns.Msg)
	q.SetQuestion("chat.deepseek.com.", dns.TypeA)
	if m := BlockAnswer(42, q, &Verdict{Decision: DecisionBlock, Jurisdiction: j, Action: ActionDrop}); m != nil {
		t.Errorf("drop: answer %v, want none", m)
	}
}

func rrStrings(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		out = append(out, rr.String())
	}
	return out
}

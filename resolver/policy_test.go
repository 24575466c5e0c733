package resolver_test

import (
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/config"
	"github.com/jurisdns/jurisdns/resolver/resolvertest"
	"github.com/jurisdns/jurisdns/spec"
)

// queryFrom sends a query from a chosen loopback source address.
func queryFrom(t *testing.T, src, addr, netw, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.SetEdns0(1232, false)
	r, _, err := clientFrom(src, netw, 3*time.Second).Exchange(m, addr)
	if err != nil {
		t.Fatalf("query %s from %s: %v", name, src, err)
	}
	return r
}

func ptr[T any](v T) *T { return &v }

// clientFrom is a DNS client that sends from the loopback address src.
func clientFrom(src, netw string, timeout time.Duration) *dns.Client {
	var local net.Addr = &net.UDPAddr{IP: net.ParseIP(src)}
	if netw == "tcp" {
		local = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	return &dns.Client{Net: netw, Timeout: timeout, Dialer: &net.Dialer{LocalAddr: local, Timeout: timeout}}
}

func TestDefaultPolicyBlocksDeepSeek(t *testing.T) {
	up := resolvertest.StartUpstream(t, resolvertest.Echo())
	h := start(t, []string{up.Addr()}, nil)
	blocked := []string{"chat.deepseek.com.", "deepseek.com.", "ChAt.DeepSeek.COM.", "a.b.c.api.deepseek.com."}
	types := []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeHTTPS, dns.TypeMX, dns.TypeTXT, dns.TypeSVCB, dns.TypeCNAME}
	for _, n := range nets {
		for _, name := range blocked {
			for _, qt := range types {
				r := queryFrom(t, "127.0.0.1", h.addr, n, name, qt)
				if r.Rcode != dns.RcodeNameError {
					t.Fatalf("%s %s %s: rcode %s, want NXDOMAIN", n, name, dns.TypeToString[qt], dns.RcodeToString[r.Rcode])
				}
				if r.Question[0].Name != name {
					t.Errorf("question case lost: %q", r.Question[0].Name)
				}
				if r.AuthenticatedData || r.Authoritative {
					t.Errorf("policy answer with AD=%v AA=%v", r.AuthenticatedData, r.Authoritative)
				}
				if len(r.Ns) != 1 || r.Ns[0].Header().Rrtype != dns.TypeSOA {
					t.Fatalf("authority = %v, want the policy SOA", r.Ns)
				}
				soa := r.Ns[0].(*dns.SOA)
				if soa.Hdr.Name != "deepseek.com." || soa.Minttl != soa.Hdr.Ttl || soa.Hdr.Ttl == 0 {
					t.Errorf("SOA = %v", soa)
				}
				// An unmapped client: the operator's default policy
				// (EDE 15 Blocked), not a foreign government's law.
				code, text, ok := ede(r)
				if !ok || code != dns.ExtendedErrorCodeBlocked {
					t.Fatalf("EDE = %d %v, want 15", code, ok)
				}
				if !strings.HasPrefix(text, "ai-deepseek: Operator policy") || !strings.Contains(text, "rule deepseek.com") || len(text) > 200 {
					t.Errorf("EDE text %q", text)
				}
			}
		}
	}
	if up.Queries() != 0 {
		t.Errorf("blocked names reached the upstream %d times", up.Queries())
	}
	for _, name := range []string{"notdeepseek.com.", "deepseek.com.evil.example.", "deepseek.net.", "deepseek.ai."} {
		r := queryFrom(t, "127.0.0.1", h.addr, "udp", name, dns.TypeA)
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
			t.Errorf("%s: %v, want forwarded", name, r)
		}
	}
}

// TestStructuredDNSError: with structured_errors.contact set, a block's
// EDE text on the wire is the JSON of draft-ietf-dnsop-structured-dns-error.
func TestStructuredDNSError(t *testing.T) {
	up := resolvertest.StartUpstream(t, resolvertest.Echo())
	h := start(t, []string{up.Addr()}, func(c *config.Config) {
		c.StructuredErrors = config.StructuredErrors{Contact: "mailto:it@acme.example", Organisation: "ACME IT"}
	})
	for _, n := range nets {
		r := queryFrom(t, "127.0.0.1", h.addr, n, "chat.deepseek.com.", dns.TypeA)
		code, text, ok := ede(r)
		var got struct {
			C []string `json:"c"`
			J string   `json:"j"`
			O string   `json:"o"`
			S int      `json:"s"`
		}
		if !ok || code != dns.ExtendedErrorCodeBlocked || json.Unmarshal([]byte(text), &got) != nil ||
			len(got.C) != 1 || got.C[0] != "mailto:it@acme.example" || got.O != "ACME IT" || got.S != 6 ||
			!strings.HasPrefix(got.J, "ai-deepseek: ") || len(text) > 200 {
			t.Errorf("%s: EDE %d %q", n, code, text)
		}
	}
}

func TestPolicyPerClientSubnet(t *testing.T) {
	up := resolvertest.StartUpstream(t, resolvertest.Echo())
	h := start(t, []string{up.Addr()}, func(c *config.Config) {
		c.DefaultJurisdictions = []string{"us-gov"}
		c.Clients = []config.Client{
			{Name: "au-floor", Subnets: []string{"127.0.0.2/32"}, Jurisdictions: []string{"au-gov"}},
			{Name: "unfiltered-lab", Subnets: []string{"127.0.0.3/32"}, Jurisdictions: []string{"bypass"}},
			{Name: "report-floor", Subnets: []string{"127.0.0.4/32"}, Jurisdictions: []string{"ca-gov"}},
			{Name: "expired", Subnets: []string{"127.0.0.5/32"}, Jurisdictions: []string{"kr-appstore"}},
		}
		c.Jurisdictions = []config.Jurisdiction{{JurisdictionAttrs: config.JurisdictionAttrs{ID: "ca-gov", Mode: "report"}}}
	})
	tests := []struct {
		name      string
		src       string
		qname     string
		wantRcode int
		wantText  string
	}{
		{name: "default_us", src: "127.0.0.1", qname: "chat.deepseek.com.", wantRcode: dns.RcodeNameError, wantText: "us-gov: "},
		{name: "longest_prefix_au", src: "127.0.0.2", qname: "chat.deepseek.com.", wantRcode: dns.RcodeNameError, wantText: "au-gov: "},
		{name: "bypass_only_not_blocked", src: "127.0.0.3", qname: "chat.deepseek.com.", wantRcode: dns.RcodeSuccess},
		{name: "bypass_canary", src: "127.0.0.3", qname: "use-application-dns.net.", wantRcode: dns.RcodeNameError, wantText: "bypass: "},
		{name: "report_mode_answers", src: "127.0.0.4", qname: "chat.deepseek.com.", wantRcode: dns.RcodeSuccess},
		{name: "expired_inactive", src: "127.0.0.5", qname: "download.deepseek.com.", wantRcode: dns.RcodeSuccess},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, n := range nets {
				r := queryFrom(t, tc.src, h.addr, n, tc.qname, dns.TypeA)
				if r.Rcode != tc.wantRcode {
					t.Fatalf("%s: rcode %s, want %s", n, dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.wantRcode])
				}
				_, text, ok := ede(r)
				if tc.wantText != "" && (!ok || !strings.HasPrefix(text, tc.wantText)) {
					t.Errorf("%s: EDE text %q, want prefix %q", n, text, tc.wantText)
				}
				if tc.wantText == "" && ok {
					t.Errorf("%s: unexpected EDE %q", n, text)
				}
			}
		})
	}
}

func TestPolicyActions(t *testing.T) {
	up := resolvertest.StartUpstream(t, resolvertest.Func(func(r *dns.Msg) *dns.Msg {
		m := new(dns.Msg)
		m.SetReply(r)
		q := r.Question[0]
		switch strings.ToLower(q.Name) {
		case "alias.example.":
			c, _ := dns.NewRR("alias.example. 300 IN CNAME cdn.deepseek.com.")
			a, _ := dns.NewRR("cdn.deepseek.com. 300 IN A 192.0.2.50")
			m.Answer = []dns.RR{c, a}
		default:
			a, _ := dns.NewRR(q.Name + " 300 IN A 192.0.2.1")
			m.Answer = []dns.RR{a}
		}
		return m
	}))
	h := start(t, []string{up.Addr()}, func(c *config.Config) {
		c.DefaultJurisdictions = []string{"acme-null", "acme-ip", "acme-nodata", "acme-refused", "acme-drop", "us-gov", "bypass"}
		mk := func(id, action string, names ...string) config.Jurisdiction {
			return config.Jurisdiction{
				JurisdictionAttrs: config.JurisdictionAttrs{
					ID:     id,
					Title:  id,
					Tier:   "local",
					Action: spec.Action(action),
					EDE:    ptr(15),
					TTL:    30 * time.Second,
					Sinkhole: func() []string {
						if action == "ip" {
							return []string{"192.0.2.80", "2001:db8::80"}
						}
						return nil
					}(),
				},
				Instrument: "ACME policy " + id,
				Sources:    []config.Source{{Name: id + "-list", Inline: names}},
			}
		}
		c.Jurisdictions = []config.Jurisdiction{
			mk("acme-null", "null", "null.example"),
			mk("acme-ip", "ip", "sink.example"),
			mk("acme-nodata", "nodata", "nodata.example"),
			mk("acme-refused", "refused", "refused.example"),
			mk("acme-drop", "drop", "drop.example"),
		}
	})
	tests := []struct {
		name      string
		qname     string
		qtype     uint16
		wantRcode int
		wantAns   string
		wantSOA   bool
		wantEDE   uint16
	}{
		{name: "null_a", qname: "x.null.example.", qtype: dns.TypeA, wantAns: "0.0.0.0", wantEDE: 15},
		{name: "null_aaaa", qname: "null.example.", qtype: dns.TypeAAAA, wantAns: "::", wantEDE: 15},
		{name: "null_mx_nodata", qname: "null.example.", qtype: dns.TypeMX, wantSOA: true, wantEDE: 15},
		{name: "ip_a", qname: "sink.example.", qtype: dns.TypeA, wantAns: "192.0.2.80", wantEDE: 15},
		{name: "ip_aaaa", qname: "sink.example.", qtype: dns.TypeAAAA, wantAns: "2001:db8::80", wantEDE: 15},
		{name: "nodata", qname: "nodata.example.", qtype: dns.TypeA, wantSOA: true, wantEDE: 15},
		{name: "refused", qname: "refused.example.", qtype: dns.TypeA, wantRcode: dns.RcodeRefused, wantEDE: 15},
		{name: "cname_into_blocked", qname: "alias.example.", qtype: dns.TypeA, wantRcode: dns.RcodeNameError, wantSOA: true, wantEDE: 16},
		{name: "ddr_nodata", qname: "_dns.resolver.arpa.", qtype: dns.TypeSVCB, wantSOA: true, wantEDE: 15},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := queryFrom(t, "127.0.0.1", h.addr, "udp", tc.qname, tc.qtype)
			if r.Rcode != tc.wantRcode {
				t.Fatalf("rcode %s, want %s: %v", dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.wantRcode], r)
			}
			if tc.wantAns != "" {
				if len(r.Answer) != 1 {
					t.Fatalf("answer = %v", r.Answer)
				}
				var got string
				switch a := r.Answer[0].(type) {
				case *dns.A:
					got = a.A.String()
				case *dns.AAAA:
					got = a.AAAA.String()
				}
				if got != tc.wantAns {
					t.Errorf("answer %s, want %s", got, tc.wantAns)
				}
			} else if len(r.Answer) != 0 {
				t.Errorf("answer = %v, want none", r.Answer)
			}
			if tc.wantSOA != (len(r.Ns) == 1) {
				t.Errorf("authority = %v, want SOA %v", r.Ns, tc.wantSOA)
			}
			if code, _, ok := ede(r); !ok || code != tc.wantEDE {
				t.Errorf("EDE %d %v, want %d", code, ok, tc.wantEDE)
			}
		})
	}
	m := new(dns.Msg)
	m.SetQuestion("drop.example.", dns.TypeA)
	if r := exchange(t, h.addr, "udp", m, 300*time.Millisecond); r != nil {
		t.Errorf("drop action answered: %v", r)
	}
}

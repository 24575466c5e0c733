package conformance

import (
	"encoding/hex"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/resolver/resolvertest"
)

const clientCookie = "0102030405060708"

// clientOptions are EDNS options a client may send; none may reach the
// upstream (ECS would leak the client's network) and none but a COOKIE may
// come back.
func clientOptions() []dns.EDNS0 {
	return []dns.EDNS0{
		&dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: net.IPv4(198, 51, 100, 0).To4()},
		&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: clientCookie},
		&dns.EDNS0_NSID{Code: dns.EDNS0NSID},
		&dns.EDNS0_PADDING{Padding: make([]byte, 17)},
		&dns.EDNS0_EXPIRE{Code: dns.EDNS0EXPIRE},
		&dns.EDNS0_TCP_KEEPALIVE{Code: dns.EDNS0TCPKEEPALIVE},
		&dns.EDNS0_LOCAL{Code: 65001, Data: []byte("unknown option")},
		&dns.EDNS0_LOCAL{Code: 20, Data: []byte{0xde, 0xad}}, // unassigned code
	}
}

// TestEDNSOptionsNotForwarded sends a query with every kind of EDNS option,
// a large UDP size and unknown OPT flag bits. The upstream must see
// jurisdns's own OPT (version 0, 1232 bytes, the client's DO, no option, no
// other flag); the client gets a normal answer whose OPT echoes none of its
// options (NSID is off by default; unknown options are ignored) except
// possibly a well-formed COOKIE.
func TestEDNSOptionsNotForwarded(t *testing.T) {
	up := resolvertest.StartUpstream(t, resolvertest.Echo())
	j := startJurisdns(t, []string{up.Addr()}, jopts{})
	for _, do := range []bool{false, true} {
		for _, n := range nets {
			name := fmt.Sprintf("ecs-%v-%s.example.", do, n)
			for pass := 1; pass <= 2; pass++ {
				q := newQuery(name, dns.TypeA, withEDNS(4000, do))
				o := q.IsEdns0()
				o.Option = clientOptions()
				o.Hdr.Ttl |= 0x7fff // every unknown EDNS flag bit (Z); DO (0x8000) stays as set
				up.Reset()
				r := mustExchange(t, j.addr, n, q)
				where := fmt.Sprintf("DO=%v over %s, query %d", do, n, pass)
				for _, p := range checkReplyHeader(q, r) {
					t.Errorf("%s: %s", where, p)
				}
				if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
					t.Errorf("%s: %s with %d records; unknown options must be ignored\n%v", where, dns.RcodeToString[r.Rcode], len(r.Answer), r)
				}
				checkReplyOptions(t, where, r)
				if ro := r.IsEdns0(); ro != nil && ro.Hdr.Ttl&0x7fff != 0 {
					t.Errorf("%s: the reply OPT echoes unknown flag bits %#x", where, ro.Hdr.Ttl&0x7fff)
				}
				last := up.Last()
				if pass == 2 && last == nil {
					continue // served from the cache
				}
				if last == nil {
					t.Fatalf("%s: nothing reached the upstream", where)
				}
				lo := last.IsEdns0()
				if lo == nil {
					t.Errorf("%s: upstream query without EDNS", where)
					continue
				}
				if len(lo.Option) > 0 {
					var codes []string
					for _, op := range lo.Option {
						codes = append(codes, fmt.Sprintf("%d", op.Option()))
					}
					t.Errorf("%s: client EDNS options forwarded upstream (codes %s): ECS leak", where, strings.Join(codes, ","))
				}
				if lo.Version() != 0 || lo.UDPSize() != 1232 || lo.Do() != do || lo.Hdr.Ttl&0x7fff != 0 {
					t.Errorf("%s: upstream OPT version %d, size %d, DO=%v, flags %#x; want version 0, 1232, DO=%v, no other flag",
						where, lo.Version(), lo.UDPSize(), lo.Do(), lo.Hdr.Ttl&0xffff, do)
				}
			}
		}
	}
}

// checkReplyOptions: the reply carries no option of the client's except a
// COOKIE, and a COOKIE must be the client's cookie followed by a server
// cookie of 8 to 32 bytes (RFC 7873 §4.2).
func checkReplyOptions(t *testing.T, where string, r *dns.Msg) {
	t.Helper()
	o := r.IsEdns0()
	if o == nil {
		return
	}
	for _, op := range o.Option {
		switch v := op.(type) {
		case *dns.EDNS0_COOKIE:
			b, err := hex.DecodeString(v.Cookie)
			if err != nil || len(b) < 16 || len(b) > 40 || !strings.HasPrefix(strings.ToLower(v.Cookie), clientCookie) {
				t.Errorf("%s: malformed COOKIE in the reply: %q", where, v.Cookie)
			}
		case *dns.EDNS0_EDE:
			// An EDE may explain an error; a successful answer has none.
			if r.Rcode == dns.RcodeSuccess {
				t.Errorf("%s: EDE %d %q on a normal answer", where, v.InfoCode, v.ExtraText)
			}
		default:
			t.Errorf("%s: option %d (%T) in the reply; NSID is off and client options are not echoed", where, op.Option(), op)
		}
	}
}

// TestCookies: DNS cookies (RFC 7873) are answered or ignored gracefully:
// a client cookie alone, a client and a (made-up) server cookie, and
// malformed ones. A well-formed one gets an answer (or BADCOOKIE with a
// fresh cookie for a stale server cookie); a malformed one gets FORMERR
// (RFC 7873 §5.2.2) or is ignored. Never SERVFAIL, never silence.
func TestCookies(t *testing.T) {
	up := resolvertest.StartUpstream(t, resolvertest.Echo())
	j := startJurisdns(t, []string{up.Addr()}, jopts{})
	cases := []struct {
		label     string
		cookie    string
		malformed bool
	}{
		{"client-only", clientCookie, false},
		{"client+server", clientCookie + "1122334455667788", false},
		{"client+server-32", clientCookie + strings.Repeat("ab", 32), false},
		{"too-short", "01020304", true},
		{"server-too-short", clientCookie + "11223344", true},
		{"too-long", clientCookie + strings.Repeat("ab", 33), true},
	}
	for i, c := range cases {
		for _, n := range nets {
			for pass := 1; pass <= 2; pass++ {
				where := fmt.Sprintf("%s over %s, query %d", c.label, n, pass)
				q := newQuery(fmt.Sprintf("cookie-%d.example.", i), dns.TypeA,
					withOption(&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: c.cookie}))
				r, err := exchange(j.addr, n, q)
				if err != nil {
					t.Errorf("%s: %v", where, err)
					continue
				}
				if r.Id != q.Id || !r.Response {
					t.Errorf("%s: not a reply to the query (ID %d, QR=%v)", where, r.Id, r.Response)
				}
				switch {
				case r.Rcode == dns.RcodeSuccess:
					if len(r.Answer) != 1 {
						t.Errorf("%s: NOERROR with %d records", where, len(r.Answer))
					}
					if !c.malformed {
						checkReplyOptions(t, where, r)
					}
				case r.Rcode == dns.RcodeFormatError && c.malformed:
				case r.Rcode == dns.RcodeBadCookie && !c.malformed && c.cookie != clientCookie:
					checkReplyOptions(t, where, r)
				default:
					t.Errorf("%s: rcode %s\n%v", where, dns.RcodeToString[r.Rcode], r)
				}
			}
		}
	}
	// And a normal query still works.
	for _, n := range nets {
		if r := mustExchange(t, j.addr, n, newQuery("after-cookies.example.", dns.TypeA)); r.Rcode != dns.RcodeSuccess {
			t.Errorf("normal query over %s after the cookie tests: %s", n, dns.RcodeToString[r.Rcode])
		}
	}
}

package upstream

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/miekg/dns"
)

// TestAppendQueryMatchesUpstreamQuery checks the hand-written query bytes
// against miekg's packing of the message they stand for.
func TestAppendQueryMatchesUpstreamQuery(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*dns.Msg)
	}{
		{"plain", func(*dns.Msg) {}},
		{"do", func(m *dns.Msg) { m.SetEdns0(4096, true) }},
		{"edns_no_do", func(m *dns.Msg) { m.SetEdns0(512, false) }},
		{"cd_no_rd", func(m *dns.Msg) { m.CheckingDisabled = true; m.RecursionDesired = false }},
		{"escaped", func(m *dns.Msg) { m.Question[0].Name = `a\.b.Example.COM.`; m.Question[0].Qtype = dns.TypeTXT }},
		{"root", func(m *dns.Msg) { m.Question[0].Name = "."; m.Question[0].Qtype = dns.TypeNS }},
		{"chaos", func(m *dns.Msg) { m.Question[0].Qclass = dns.ClassCHAOS }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := new(dns.Msg)
			m.SetQuestion("www.example.com.", dns.TypeAAAA)
			tc.set(m)
			got, err := appendQuery(nil, m)
			if err != nil {
				t.Fatal(err)
			}
			want := upstreamQuery(m)
			want.Id = binary.BigEndian.Uint16(got)
			wb, err := want.Pack()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, wb) {
				t.Fatalf("appendQuery\n%x\nwant\n%x", got, wb)
			}
		})
	}
	m := new(dns.Msg)
	m.SetQuestion("bad..name.", dns.TypeA)
	if _, err := appendQuery(nil, m); err == nil {
		t.Error("a name with an empty label was packed")
	}
}

// TestPaddedQuery checks the block-length padding of queries sent over TLS
// and HTTPS: a multiple of 128 octets, whatever the name.
func TestPaddedQuery(t *testing.T) {
	for _, name := range []string{".", "a.", "www.example.com.", "a-rather-long-label-for-padding-tests.sub.example.org.",
		"x123456789012345678901234567890123456789012345678901234567890.y12345678901234567890123456789012345678901234567890123.example.com."} {
		for _, do := range []bool{false, true} {
			m := new(dns.Msg)
			m.SetQuestion(name, dns.TypeA)
			m.SetEdns0(1232, do)
			b, err := appendPaddedQuery(nil, m)
			if err != nil {
				t.Fatal(err)
			}
			if len(b)%padBlock != 0 {
				t.Errorf("%s do=%v: %d octets, not a multiple of %d", name, do, len(b), padBlock)
			}
			var back dns.Msg
			if err := back.Unpack(b); err != nil {
				t.Fatal(err)
			}
			opt := back.IsEdns0()
			if opt == nil || opt.Do() != do || len(opt.Option) != 1 || opt.Option[0].Option() != dns.EDNS0PADDING {
				t.Errorf("%s do=%v: OPT %v", name, do, opt)
			}
		}
	}
}

// upstreamQuery is the oracle of appendQuery: the query sent upstream for
// the client's m, built as a message with miekg/dns.
func upstreamQuery(m *dns.Msg) *dns.Msg {
	q := &dns.Msg{
		MsgHdr: dns.MsgHdr{
			Id:               dns.Id(),
			Opcode:           m.Opcode,
			RecursionDesired: m.RecursionDesired,
			CheckingDisabled: m.CheckingDisabled,
			// AD in a query asks a validating upstream to say whether
			// the answer validated, even without DO (RFC 6840 §5.7); the
			// server shows AD only to clients that asked for it.
			AuthenticatedData: true,
		},
		Question: []dns.Question{m.Question[0]},
	}
	do := false
	if opt := m.IsEdns0(); opt != nil {
		do = opt.Do()
	}
	q.SetEdns0(udpSize, do)
	return q
}

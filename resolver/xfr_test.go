package resolver

import (
	"testing"

	"github.com/miekg/dns"
)

// FuzzXfrQtype: the pre-check never panics and never turns away a query
// the transfer handler must see (an SOA, AXFR or IXFR question).
func FuzzXfrQtype(f *testing.F) {
	for _, t := range []uint16{dns.TypeA, dns.TypeSOA, dns.TypeAXFR, dns.TypeIXFR} {
		m := new(dns.Msg)
		m.SetQuestion("us-gov.rpz.jurisdns.", t)
		b, _ := m.Pack()
		f.Add(b)
	}
	f.Add([]byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12, 0, 6, 0, 1})
	f.Fuzz(func(t *testing.T, pkt []byte) {
		got := xfrQtype(pkt)
		m := new(dns.Msg)
		if m.Unpack(pkt) != nil || len(m.Question) != 1 {
			return
		}
		switch m.Question[0].Qtype {
		case dns.TypeSOA, dns.TypeAXFR, dns.TypeIXFR:
			if !got {
				t.Fatalf("%s question turned away", dns.TypeToString[m.Question[0].Qtype])
			}
		}
	})
}

func TestXfrQtype(t *testing.T) {
	for qt, want := range map[uint16]bool{dns.TypeA: false, dns.TypeTXT: false, dns.TypeSOA: true, dns.TypeAXFR: true, dns.TypeIXFR: true} {
		m := new(dns.Msg)
		m.SetQuestion("x.example.", qt)
		b, _ := m.Pack()
		if got := xfrQtype(b); got != want {
			t.Errorf("%s: %v, want %v", dns.TypeToString[qt], got, want)
		}
	}
}

package transfer

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// FuzzReadZone: the cache reader never panics, and what it accepts is a
// zone of rpz.test. that writes back to a file it reads the same.
func FuzzReadZone(f *testing.F) {
	f.Add([]byte("$ORIGIN rpz.test.\n@ 60 IN SOA localhost. a. 1 1 1 1 1\na.example 60 IN CNAME .\n"))
	f.Add([]byte("rpz.test. 60 IN SOA localhost. a. 1 1 1 1 1\n*.x 60 IN A 192.0.2.1\n"))
	f.Add([]byte("x.test. 60 IN SOA localhost. a. 1 1 1 1 1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		z, err := ReadZone(bytes.NewReader(data), "rpz.test.")
		if err != nil {
			return
		}
		var b bytes.Buffer
		if _, err := z.WriteTo(&b); err != nil {
			t.Fatal(err)
		}
		z2, err := ReadZone(&b, "rpz.test.")
		if err != nil {
			t.Fatalf("written zone does not read back: %v\n%s", err, b.String())
		}
		if z2.Len() != z.Len() || z2.Serial() != z.Serial() {
			t.Fatalf("round trip: %d/%d records, serial %d/%d", z.Len(), z2.Len(), z.Serial(), z2.Serial())
		}
	})
}

// FuzzApplyIXFR: any IXFR answer (the records of a DNS message) applied to
// a zone either fails and leaves the zone as it was, or gives a zone whose
// serial is the answer's.
func FuzzApplyIXFR(f *testing.F) {
	seed := func(rrs ...dns.RR) []byte {
		m := new(dns.Msg)
		m.Answer = rrs
		b, _ := m.Pack()
		return b
	}
	f.Add(seed(soa(f, "rpz.test.", 2), soa(f, "rpz.test.", 1), rr(f, "a.example.rpz.test. 60 IN CNAME ."),
		soa(f, "rpz.test.", 2), rr(f, "e.example.rpz.test. 60 IN CNAME ."), soa(f, "rpz.test.", 2)))
	f.Add(seed(soa(f, "rpz.test.", 1)))
	f.Add(seed(zoneV1(f)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		m := new(dns.Msg)
		if m.Unpack(data) != nil {
			return
		}
		fd := New(Options{Name: "fuzz", Zone: "rpz.test."})
		z := NewZone("rpz.test.", soa(t, "rpz.test.", 1).(*dns.SOA))
		for _, r := range zoneV1(t)[1:6] {
			z.add(r)
		}
		fd.zone = z
		var before bytes.Buffer
		_, _ = z.WriteTo(&before)
		upd, err := fd.applyIXFR(m.Answer, 1)
		var after bytes.Buffer
		_, _ = fd.zone.WriteTo(&after)
		switch {
		case err != nil && sortedLines(before.String()) != sortedLines(after.String()):
			t.Fatalf("failed IXFR (%v) changed the zone:\n%s\nwas:\n%s", err, after.String(), before.String())
		case err == nil && upd != nil && fd.zone.Serial() != upd.Serial:
			t.Fatalf("serial %d after an update to %d", fd.zone.Serial(), upd.Serial)
		}
	})
}

// sortedLines is a zone file's lines in order: the same records in
// another order (an undone change puts a record back last) are the same
// zone.
func sortedLines(s string) string {
	l := strings.Split(s, "\n")
	slices.Sort(l)
	return strings.Join(l, "\n")
}

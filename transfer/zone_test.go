package transfer

import (
	"io"
	"net"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/miekg/dns"
)

func TestInZone(t *testing.T) {
	for _, tc := range []struct {
		name, origin string
	}{
		{"rpz.test.", "rpz.test."},
		{"a.rpz.test.", "rpz.test."},
		{"a.b.rpz.test.", "rpz.test."},
		{"xrpz.test.", "rpz.test."},
		{"rpz.test.", "a.rpz.test."},
		{`a\.rpz.test.`, "rpz.test."},
		{"a.example.", "."},
		{"test.", "rpz.test."},
	} {
		if got, want := inZone(tc.name, tc.origin), dns.IsSubDomain(tc.origin, tc.name); got != want {
			t.Errorf("inZone(%q, %q) = %v, dns.IsSubDomain says %v", tc.name, tc.origin, got, want)
		}
	}
}

// TestZoneModel checks the compact zone against a plain map through adds
// and removes enough to grow the table, leave tombstones and compact the
// arena: the same records, counts and zone file lines, and a zone file that
// reads back the same.
func TestZoneModel(t *testing.T) {
	for _, origin := range []string{"rpz.test.", "."} {
		soa := &dns.SOA{Hdr: dns.RR_Header{Name: origin, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 60},
			Ns: "ns.", Mbox: "admin.", Serial: 7, Refresh: 60, Retry: 60, Expire: 600, Minttl: 60}
		z := NewZone(origin, soa)
		model := map[string]map[string]bool{} // owner → records (text without TTL)
		records := 0
		rec := func(i, kind int) dns.RR {
			owner := "n" + strconv.Itoa(i) + ".Example." + origin
			if origin == "." {
				owner = "n" + strconv.Itoa(i) + ".Example."
			}
			if i%50 == 0 {
				owner = origin // the apex has records too
			}
			h := dns.RR_Header{Name: owner, Class: dns.ClassINET, Ttl: uint32(60 + kind)}
			switch kind % 4 {
			case 0:
				h.Rrtype = dns.TypeCNAME
				return &dns.CNAME{Hdr: h, Target: "."}
			case 1:
				h.Rrtype = dns.TypeCNAME
				return &dns.CNAME{Hdr: h, Target: "rpz-passthru."}
			case 2:
				h.Rrtype = dns.TypeA
				return &dns.A{Hdr: h, A: net.IPv4(192, 0, 2, byte(i))}
			}
			h.Rrtype = dns.TypeTXT
			return &dns.TXT{Hdr: h, Txt: []string{"t" + strconv.Itoa(i)}}
		}
		key := func(r dns.RR) (string, string) {
			c := dns.Copy(r)
			c.Header().Ttl = 0
			return dns.CanonicalName(r.Header().Name), strings.ToLower(c.String())
		}
		apply := func(r dns.RR, add bool) {
			o, k := key(r)
			had := model[o][k]
			var got bool
			if add {
				got = z.add(r)
				if model[o] == nil {
					model[o] = map[string]bool{}
				}
				model[o][k] = true
			} else {
				got = z.remove(r)
				delete(model[o], k)
				if len(model[o]) == 0 {
					delete(model, o)
				}
			}
			if got != (had != add) {
				t.Fatalf("%s (add %v): zone says %v, had %v", r, add, got, had)
			}
			if got && add {
				records++
			} else if got {
				records--
			}
		}
		for i := range 20000 {
			apply(rec(i, i%4), true)
			apply(rec(i, i%4), true) // a duplicate (another TTL would be too)
			if i%3 == 0 {
				apply(rec(i, i%4+1), true) // a second record
			}
		}
		for i := range 20000 {
			if i%2 == 0 {
				apply(rec(i, i%4), false)
			}
			if i%5 == 0 {
				apply(rec(i, 3), false) // often not there
			}
		}
		if z.Len() != records || z.Owners() != len(model) {
			t.Fatalf("%s: %d records, %d owners; want %d, %d", origin, z.Len(), z.Owners(), records, len(model))
		}
		var b strings.Builder
		if _, err := z.WriteTo(&b); err != nil {
			t.Fatal(err)
		}
		closed := 0
		rd := z.Reader(func() { closed++ })
		streamed, err := io.ReadAll(iotest.OneByteReader(rd))
		if err != nil || string(streamed) != b.String() || closed != 1 {
			t.Errorf("%s: the reader gives %d bytes (%v), done called %d times; WriteTo %d bytes", origin, len(streamed), err, closed, b.Len())
		}
		if _ = rd.Close(); closed != 1 {
			t.Errorf("done called %d times", closed)
		}
		back, err := ReadZone(strings.NewReader(b.String()), origin)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]map[string]bool{}
		zp := dns.NewZoneParser(strings.NewReader(b.String()), origin, "")
		for r, ok := zp.Next(); ok; r, ok = zp.Next() {
			if _, isSOA := r.(*dns.SOA); isSOA {
				continue
			}
			o, k := key(r)
			if got[o] == nil {
				got[o] = map[string]bool{}
			}
			got[o][k] = true
		}
		if !reflect.DeepEqual(got, model) {
			t.Fatalf("%s: the zone file differs from the model (%d owners, want %d)", origin, len(got), len(model))
		}
		if back.Len() != z.Len() || back.Owners() != z.Owners() {
			t.Errorf("%s: read back %d records, %d owners; want %d, %d", origin, back.Len(), back.Owners(), z.Len(), z.Owners())
		}
		if z.dead > len(z.arena)/2+64<<10 {
			t.Errorf("%s: %d dead bytes of %d: never compacted", origin, z.dead, len(z.arena))
		}
	}
}

// TestCheckRecordReadsBack: a record whose text miekg/dns writes but cannot
// read (a CAA with an empty tag: from a zone file, "CAA" alone; from the
// wire, any) is refused with its name, so that the zone's cache file always
// reads back; one that reads back is taken.
func TestCheckRecordReadsBack(t *testing.T) {
	soa, _ := dns.NewRR("rpz.test. 60 IN SOA localhost. a. 1 1 1 1 1")
	z := NewZone("rpz.test.", soa.(*dns.SOA))
	bad := &dns.CAA{Hdr: dns.RR_Header{Name: "x.rpz.test.", Rrtype: dns.TypeCAA, Class: dns.ClassINET, Ttl: 60}}
	if err := z.check(bad); err == nil || !strings.Contains(err.Error(), `"x.rpz.test."`) {
		t.Fatalf("a CAA with an empty tag: %v, want an error naming the record", err)
	}
	if _, err := ReadZone(strings.NewReader("rpz.test. 60 IN SOA localhost. a. 1 1 1 1 1\nx 60 CAA\n"), "rpz.test."); err == nil {
		t.Fatal("a zone file with an empty CAA was read")
	}
	good := &dns.CAA{Hdr: bad.Hdr, Flag: 0, Tag: "issue", Value: "ca.example"}
	if err := z.check(good); err != nil {
		t.Fatalf("a CAA that reads back: %v", err)
	}
}

package zones

import (
	"slices"
	"testing"
)

func TestFind(t *testing.T) {
	tab := testTable(t)
	tests := []struct {
		name     string
		qname    string
		wantZone string // "" for none
		wantFwd  string // "" for none
	}{
		{name: "zone apex", qname: "corp.example.", wantZone: "corp.example."},
		{name: "name in a zone", qname: "www.corp.example.", wantZone: "corp.example."},
		{name: "name below a delegation is still the zone's", qname: "host.sub.corp.example.", wantZone: "corp.example."},
		{name: "forward inside a zone, apex", qname: "ad.corp.example.", wantFwd: "ad.corp.example."},
		{name: "forward inside a zone, below", qname: "dc1.ad.corp.example.", wantFwd: "ad.corp.example."},
		{name: "label boundary: xad is not under ad", qname: "xad.corp.example.", wantZone: "corp.example."},
		{name: "forward", qname: "partner.example.", wantFwd: "partner.example."},
		{name: "below a forward", qname: "www.partner.example.", wantFwd: "partner.example."},
		{name: "zone inside a forward, apex", qname: "lab.partner.example.", wantZone: "lab.partner.example."},
		{name: "zone inside a forward, below", qname: "host.lab.partner.example.", wantZone: "lab.partner.example."},
		{name: "reverse zone forward", qname: "5.0.0.10.in-addr.arpa.", wantFwd: "10.in-addr.arpa."},
		{name: "parent of a zone", qname: "example.", wantZone: "", wantFwd: ""},
		{name: "suffix that is not a label boundary", qname: "orp.example.", wantZone: "", wantFwd: ""},
		{name: "unrelated name", qname: "www.example.net.", wantZone: "", wantFwd: ""},
		{name: "root", qname: ".", wantZone: "", wantFwd: ""},
		{name: "empty", qname: "", wantZone: "", wantFwd: ""},
		{name: "escaped dot is not a label boundary", qname: `www\.corp.example.`, wantZone: "", wantFwd: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			z, f := tab.Find(tt.qname)
			gotZone, gotFwd := "", ""
			if z != nil {
				gotZone = z.Name()
			}
			if f != nil {
				gotFwd = f.Name
			}
			if gotZone != tt.wantZone || gotFwd != tt.wantFwd {
				t.Errorf("Find(%q) = zone %q, forward %q; want zone %q, forward %q", tt.qname, gotZone, gotFwd, tt.wantZone, tt.wantFwd)
			}
		})
	}
}

func TestFindForwardServers(t *testing.T) {
	_, f := testTable(t).Find("dc1.ad.corp.example.")
	if f == nil {
		t.Fatal("no forward for dc1.ad.corp.example.")
	}
	if want := []string{"10.0.0.10:53", "10.0.0.11:53"}; f.Name != "ad.corp.example." || !slices.Equal(f.Servers, want) {
		t.Errorf("forward = %+v, want ad.corp.example. %v", f, want)
	}
}

func TestFindNilAndEmpty(t *testing.T) {
	var nilTable *Table
	if z, f := nilTable.Find("www.corp.example."); z != nil || f != nil {
		t.Errorf("nil Table: Find = %v, %v; want nil, nil", z, f)
	}
	empty, err := Load(nil, "")
	if err != nil {
		t.Fatalf("Load(nil): %v", err)
	}
	if z, f := empty.Find("www.corp.example."); z != nil || f != nil {
		t.Errorf("empty Table: Find = %v, %v; want nil, nil", z, f)
	}
	if names := nilTable.Names(); names != nil {
		t.Errorf("nil Table: Names() = %v, want nil", names)
	}
}

func TestNames(t *testing.T) {
	want := []string{"corp.example.", "ad.corp.example.", "partner.example.", "lab.partner.example.", "10.in-addr.arpa."}
	if got := testTable(t).Names(); !slices.Equal(got, want) {
		t.Errorf("Names() = %q, want %q", got, want)
	}
}

func TestFindDoesNotAllocate(t *testing.T) {
	tab := testTable(t)
	for _, tc := range []struct {
		name  string
		qname string
	}{
		{name: "miss", qname: "www.a.very.long.name.with.many.labels.example.com."},
		{name: "miss near a zone", qname: "orp.example."},
		{name: "hit", qname: "floor1.printers.corp.example."},
		{name: "forward hit", qname: "dc1.ad.corp.example."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(100, func() { tab.Find(tc.qname) }); n != 0 {
				t.Errorf("Find(%q) allocates %v times per call, want 0", tc.qname, n)
			}
		})
	}
}

func BenchmarkFindMiss(b *testing.B) {
	tab := testTable(b)
	for b.Loop() {
		tab.Find("www.example.com.")
	}
}

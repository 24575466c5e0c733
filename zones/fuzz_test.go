package zones

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
)

// FuzzLoad feeds arbitrary text to Load as the zone file of corp.example.
// Load must not panic or hang; its errors must all be *Error values naming
// the file; a zone it accepts must answer any question about any of its
// names without panicking, with an answer that packs.
func FuzzLoad(f *testing.F) {
	seeds, err := filepath.Glob(filepath.Join(fixtures, "*.zone"))
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add(head + "*.w A 192.0.2.1\nx.w CNAME y.w\ny.w CNAME x.w\n")
	f.Add(head + "s NS ns.s\nns.s A 192.0.2.1\n*.s.corp.example. A 192.0.2.2\nc CNAME x.s\n")
	f.Add(head + "$GENERATE 1-3 h$ CNAME h${1,0,d}\n")
	f.Add(head + "$INCLUDE hosts.inc\n$ORIGIN sub.corp.example.\n@ NS ns\nns A 192.0.2.1\n")
	f.Add("( ; \"\n)\n$TTL\n$ORIGIN .\n@ SOA . . 0 0 0 0 0\n")

	// The $INCLUDEd fixtures sit beside the fuzzed file, so that the seeds
	// load whole.
	dir := f.TempDir()
	for _, name := range []string{"hosts.inc", "sub/printers.inc"} {
		b, err := os.ReadFile(fixture(name))
		if err != nil {
			f.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			f.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			f.Fatal(err)
		}
	}
	var seq atomic.Int64

	f.Fuzz(func(t *testing.T, text string) {
		name := "fuzz-" + strconv.FormatInt(seq.Add(1), 10) + ".zone"
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(path)

		tab, err := Load([]Spec{{Name: "corp.example.", File: name}}, dir)
		if err != nil {
			if tab != nil {
				t.Error("Load returned a Table with an error")
			}
			joined, ok := err.(interface{ Unwrap() []error })
			if !ok {
				t.Fatalf("error %T is not joined: %v", err, err)
			}
			for _, e := range joined.Unwrap() {
				var le *Error
				if !errors.As(e, &le) || le.File == "" || le.Msg == "" || le.Line < 0 {
					t.Errorf("error %#v does not name a file and a reason", e)
				}
			}
			return
		}
		z, _ := tab.Find("corp.example.")
		if z == nil {
			t.Fatal("Load succeeded without the zone")
		}
		// Every name, a name below it and one two labels below it; a zone
		// made by $GENERATE can have thousands: ask about some of them.
		owners := slices.Sorted(maps.Keys(z.nodes))
		if len(owners) > 64 {
			owners = owners[:64]
		}
		var names []string
		for _, n := range owners {
			names = append(names, n, "nx."+n, "a.b."+n)
		}
		for _, n := range names {
			if len(n) > 254 {
				continue
			}
			for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeANY, dns.TypeCNAME, dns.TypeDS, dns.TypeNS, dns.TypeMX, dns.TypeTXT} {
				m := z.Answer(query(n, qt))
				if m.Rcode != dns.RcodeSuccess && m.Rcode != dns.RcodeNameError {
					t.Errorf("%s %s: rcode %s", n, dns.TypeToString[qt], dns.RcodeToString[m.Rcode])
				}
				if len(m.Answer)+len(m.Ns) == 0 {
					t.Errorf("%s %s: empty answer and authority", n, dns.TypeToString[qt])
				}
				if _, err := m.Pack(); err != nil && !strings.Contains(err.Error(), "buffer size too small") {
					t.Errorf("%s %s: answer does not pack: %v", n, dns.TypeToString[qt], err)
				}
			}
		}
	})
}

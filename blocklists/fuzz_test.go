package blocklists

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// seedParse seeds f with the format's fixture, whole and line by line.
func seedParse(f *testing.F, format Format) {
	src, err := os.ReadFile(filepath.Join(listsDir, string(format)+"-edge.txt"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(src)
	for _, line := range bytes.Split(src, []byte("\n")) {
		f.Add(line)
	}
}

// checkParse parses data and checks the invariants every format keeps.
func checkParse(t *testing.T, format Format, data []byte) {
	calls := 0
	st, err := Parse(bytes.NewReader(data), ParseOptions{Format: format, Source: "fuzz"}, func(r Rule) {
		calls++
		if c, err := Canonical(r.Name); err != nil || c != r.Name {
			t.Fatalf("rule name %q is not canonical: Canonical gives %q, %v", r.Name, c, err)
		}
		if err := ValidName(r.Name); err != nil {
			t.Fatalf("rule name %q: ValidName: %v", r.Name, err)
		}
		if r.Kind > Below || r.Action > LocalData {
			t.Fatalf("rule %+v: kind or action out of range", r)
		}
		if (r.Action == LocalData) != (len(r.Addrs) > 0) {
			t.Fatalf("rule %+v: addresses without local data or the reverse", r)
		}
		if r.Line < 1 {
			t.Fatalf("rule %+v: line %d", r, r.Line)
		}
	})
	var re *RejectedError
	if err != nil && !errors.As(err, &re) && !strings.Contains(err.Error(), "UTF-16") {
		t.Fatalf("unexpected error %v", err)
	}
	if st.Rules != calls {
		t.Fatalf("Stats.Rules %d, callback called %d times", st.Rules, calls)
	}
	if len(st.Errors) > MaxErrors || len(st.Errors) > st.Bad {
		t.Fatalf("%d errors kept for %d bad lines", len(st.Errors), st.Bad)
	}
	if st.Comments+st.Bad > st.Lines || st.Skipped > st.Lines {
		t.Fatalf("stats do not add up: %+v", st)
	}
	for _, e := range st.Errors {
		if e.Line < 1 || e.Line > st.Lines || e.Reason == "" {
			t.Fatalf("bad error %+v (lines %d)", e, st.Lines)
		}
	}
}

func FuzzParseDomains(f *testing.F) {
	seedParse(f, FormatDomains)
	f.Fuzz(func(t *testing.T, data []byte) { checkParse(t, FormatDomains, data) })
}

func FuzzParseHosts(f *testing.F) {
	seedParse(f, FormatHosts)
	f.Fuzz(func(t *testing.T, data []byte) { checkParse(t, FormatHosts, data) })
}

func FuzzParseAdblock(f *testing.F) {
	seedParse(f, FormatAdblock)
	f.Fuzz(func(t *testing.T, data []byte) { checkParse(t, FormatAdblock, data) })
}

func FuzzParseWildcard(f *testing.F) {
	seedParse(f, FormatWildcard)
	f.Fuzz(func(t *testing.T, data []byte) { checkParse(t, FormatWildcard, data) })
}

func FuzzParseRPZ(f *testing.F) {
	seedParse(f, FormatRPZ)
	f.Fuzz(func(t *testing.T, data []byte) { checkParse(t, FormatRPZ, data) })
}

// FuzzSimpleCNAME: where simpleCNAME reads a record, miekg/dns's zone
// parser reads the same owner, class, type and target from it.
func FuzzSimpleCNAME(f *testing.F) {
	for _, s := range []string{
		"chat.deepseek.com.rpz.example. 60 IN CNAME .",
		"*.deepseek.com.rpz.example. CNAME *.",
		"a.rpz.example. IN CNAME rpz-passthru.",
		"a.rpz.example. 300 CNAME rpz-drop.",
		"a.rpz.example. IN 300 CNAME .",
		"a.rpz.example. 1h CNAME .",
		"a..rpz.example. CNAME .",
		"a.rpz.example. CNAME b",
		"A.RPZ.Example. 4294967295 in cname X.",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		c := simpleCNAME(line)
		if c == nil {
			return
		}
		zp := dns.NewZoneParser(bytes.NewReader(line), ".", "")
		zp.SetDefaultTTL(3600)
		rr, ok := zp.Next()
		if !ok {
			t.Fatalf("%q: simpleCNAME reads %v, the zone parser fails: %v", line, c, zp.Err())
		}
		z, isCNAME := rr.(*dns.CNAME)
		if !isCNAME || z.Hdr.Name != c.Hdr.Name || z.Target != c.Target || z.Hdr.Class != c.Hdr.Class {
			t.Fatalf("%q: simpleCNAME reads %v, the zone parser %v", line, c, rr)
		}
		if _, more := zp.Next(); more {
			t.Fatalf("%q: the zone parser reads a second record", line)
		}
	})
}

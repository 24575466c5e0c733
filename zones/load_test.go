package zones

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// loadErrors returns the text of every *Error in err.
func loadErrors(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("Load error %T is not a joined error: %v", err, err)
	}
	var out []string
	for _, e := range joined.Unwrap() {
		var le *Error
		if !errors.As(e, &le) {
			t.Fatalf("Load error %T is not an *Error: %v", e, e)
		}
		out = append(out, le.Error())
	}
	return out
}

func fixture(name string) string { return filepath.Join(fixtures, name) }

// head is a valid start of a corp.example. zone, three lines.
const head = "$TTL 300\n@ SOA ns hostmaster 1 3600 600 86400 60\n@ NS ns\n"

func TestLoadErrorsInFixtures(t *testing.T) {
	tests := []struct {
		name  string
		specs []Spec
		want  []string
	}{
		{
			name:  "bad record",
			specs: []Spec{{Name: "corp.example.", File: "broken-bad-record.zone"}},
			want:  []string{fixture("broken-bad-record.zone") + `:5: bad A A: "192.0.2.300"`},
		},
		{
			name:  "records outside the zone, after a multi-line SOA",
			specs: []Spec{{Name: "corp.example.", File: "broken-outside.zone"}},
			want: []string{
				fixture("broken-outside.zone") + ":6: www.elsewhere.example. is outside the zone corp.example.",
				fixture("broken-outside.zone") + ":8: corp.example.net. is outside the zone corp.example.",
			},
		},
		{
			name:  "no SOA",
			specs: []Spec{{Name: "corp.example.", File: "broken-no-soa.zone"}},
			want:  []string{fixture("broken-no-soa.zone") + ": no SOA record at the zone apex corp.example."},
		},
		{
			name:  "CNAME and other data, either order",
			specs: []Spec{{Name: "corp.example.", File: "broken-cname.zone"}},
			want: []string{
				fixture("broken-cname.zone") + ":7: CNAME and other data at www.corp.example. (A at line 6)",
				fixture("broken-cname.zone") + ":9: CNAME and other data at mail.corp.example. (CNAME at line 8)",
			},
		},
		{
			name:  "error in an $INCLUDEd file names that file",
			specs: []Spec{{Name: "corp.example.", File: "broken-include.zone"}},
			want:  []string{fixture("broken-include.inc") + `:3: not a TTL: "1w2x"`},
		},
		{
			name:  "the zone file is the wrong zone's",
			specs: []Spec{{Name: "other.example.", File: "lab.partner.example.zone"}},
			want: []string{
				fixture("lab.partner.example.zone") + ":3: lab.partner.example. is outside the zone other.example.",
				fixture("lab.partner.example.zone") + ":4: lab.partner.example. is outside the zone other.example.",
				fixture("lab.partner.example.zone") + ":5: ns.lab.partner.example. is outside the zone other.example.",
				fixture("lab.partner.example.zone") + ":6: host.lab.partner.example. is outside the zone other.example.",
				fixture("lab.partner.example.zone") + ":7: back.lab.partner.example. is outside the zone other.example.",
				fixture("lab.partner.example.zone") + ": no SOA record at the zone apex other.example.",
				fixture("lab.partner.example.zone") + ": no NS records at the zone apex other.example.",
			},
		},
		{
			name:  "missing file",
			specs: []Spec{{Name: "corp.example.", File: "no-such.zone"}},
			want:  []string{fixture("no-such.zone") + ": no such file or directory"},
		},
		{
			name:  "a directory is not a zone file",
			specs: []Spec{{Name: "corp.example.", File: "sub"}},
			want:  []string{fixture("sub") + ": not a regular file"},
		},
		{
			name: "problems of every zone are joined, good zones do not hide them",
			specs: []Spec{
				{Name: "corp.example.", File: "broken-bad-record.zone"},
				{Name: "lab.partner.example.", File: "lab.partner.example.zone"},
				{Name: "corp.example.", Forward: []string{"192.0.2.1"}},
				{Name: "other.example.", File: "broken-no-soa.zone"},
			},
			want: []string{
				fixture("broken-bad-record.zone") + `:5: bad A A: "192.0.2.300"`,
				fixture("broken-no-soa.zone") + ": no SOA record at the zone apex other.example.",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab, err := Load(tt.specs, fixtures)
			if tab != nil {
				t.Errorf("Load returned a Table with the error")
			}
			if got := loadErrors(t, err); !slices.Equal(got, tt.want) {
				t.Errorf("errors:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestLoadErrorsLines checks the file:line of problems in zone texts written
// to a temporary directory.
func TestLoadErrorsLines(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string // file name → text; the zone file is "z"
		want  []string          // with FILE for the directory
	}{
		{
			name:  "SOA below the apex, multi-line, after comments and quotes",
			files: map[string]string{"z": head + "; a comment with \"quote\n\n  ; indented comment\ntxt TXT \"a;b\" ( \"c\" )\nsub SOA ns hostmaster (\n  1 ; \"\n  3600 600 86400 60 )\n"},
			want:  []string{"FILE/z:8: SOA record at sub.corp.example., not at the zone apex corp.example."},
		},
		{
			name:  "second SOA",
			files: map[string]string{"z": head + "@ SOA ns2 hostmaster 2 3600 600 86400 60\n"},
			want:  []string{"FILE/z:4: second SOA record at the zone apex (the first is at line 2)"},
		},
		{
			name:  "no NS at the apex",
			files: map[string]string{"z": "$TTL 60\n@ SOA ns hostmaster 1 3600 600 86400 60\nns A 192.0.2.1\n"},
			want:  []string{"FILE/z: no NS records at the zone apex corp.example."},
		},
		{
			name:  "CNAME at the apex",
			files: map[string]string{"z": head + "@ CNAME elsewhere.example.\n"},
			want:  []string{"FILE/z:4: CNAME and other data at corp.example. (SOA at line 2)"},
		},
		{
			name:  "two CNAMEs at one name",
			files: map[string]string{"z": head + "www CNAME a\nwww CNAME b\n"},
			want:  []string{"FILE/z:5: more than one CNAME record at www.corp.example. (the first is at line 4)"},
		},
		{
			name:  "identical CNAMEs are one",
			files: map[string]string{"z": head + "www CNAME a\nwww 60 CNAME A.corp.example.\n"},
		},
		{
			name:  "CNAME beside RRSIG and NSEC is fine",
			files: map[string]string{"z": head + "www CNAME a\nwww NSEC b.corp.example. CNAME RRSIG NSEC\n"},
		},
		{
			name:  "DNAME",
			files: map[string]string{"z": head + "old DNAME new.example.\n"},
			want:  []string{"FILE/z:4: DNAME records are not supported"},
		},
		{
			name:  "NS at a wildcard",
			files: map[string]string{"z": head + "*.w NS ns.example.\n"},
			want:  []string{"FILE/z:4: NS records at a wildcard name (*.w.corp.example.) are not supported"},
		},
		{
			name:  "class other than IN",
			files: map[string]string{"z": head + "www CH A 192.0.2.1\n"},
			want:  []string{"FILE/z:4: class CH is not supported"},
		},
		{
			name:  "$ORIGIN moves records out of the zone",
			files: map[string]string{"z": head + "$ORIGIN example.net.\nwww A 192.0.2.1\n"},
			want:  []string{"FILE/z:5: www.example.net. is outside the zone corp.example."},
		},
		{
			name:  "CRLF line ends",
			files: map[string]string{"z": strings.ReplaceAll(head+"\nwww.example.net. A 192.0.2.1\n", "\n", "\r\n")},
			want:  []string{"FILE/z:5: www.example.net. is outside the zone corp.example."},
		},
		{
			name:  "last line without a newline",
			files: map[string]string{"z": head + "ok A 192.0.2.1\nwww.example.net. A 192.0.2.1"},
			want:  []string{"FILE/z:5: www.example.net. is outside the zone corp.example."},
		},
		{
			name:  "record made by $GENERATE",
			files: map[string]string{"z": head + "\n$GENERATE 1-2 h$.example.net. A 192.0.2.$\n"},
			want: []string{
				"FILE/z:5: h1.example.net. is outside the zone corp.example.",
				"FILE/z:5: h2.example.net. is outside the zone corp.example.",
			},
		},
		{
			name: "lines of an $INCLUDEd file in a subdirectory, and of the includer after it",
			files: map[string]string{
				"z":         head + "$INCLUDE inc/a.inc\nout.example.net. A 192.0.2.1\n",
				"inc/a.inc": "; included\n\nin.example.net. A 192.0.2.1\n$INCLUDE b.inc\n",
				"inc/b.inc": "deeper.example.net. A 192.0.2.1\n",
			},
			want: []string{
				"FILE/inc/a.inc:3: in.example.net. is outside the zone corp.example.",
				"FILE/inc/b.inc:1: deeper.example.net. is outside the zone corp.example.",
				"FILE/z:5: out.example.net. is outside the zone corp.example.",
			},
		},
		{
			name:  "missing $INCLUDE file",
			files: map[string]string{"z": head + "$INCLUDE nope.inc\n"},
			want:  []string{`FILE/z:4: failed to open ` + "`nope.inc'" + `: open FILE/nope.inc: no such file or directory: "nope.inc"`},
		},
		{
			name:  "$INCLUDE of a device",
			files: map[string]string{"z": head + "$INCLUDE /dev/zero\n"},
			want:  []string{`FILE/z:4: failed to open ` + "`/dev/zero'" + `: open /dev/zero: not a regular file: "/dev/zero"`},
		},
		{
			name:  "$INCLUDE loop",
			files: map[string]string{"z": head + "$INCLUDE loop.inc\n", "loop.inc": "\n$INCLUDE loop.inc\n"},
			want:  []string{"FILE/loop.inc:2: failed to open `loop.inc': open FILE/loop.inc: $INCLUDE loop: the file includes itself: \"loop.inc\""},
		},
		{
			name: "$INCLUDE nested too deep",
			files: map[string]string{
				"z": head + "$INCLUDE 1\n", "1": "$INCLUDE 2\n", "2": "$INCLUDE 3\n", "3": "$INCLUDE 4\n",
				"4": "$INCLUDE 5\n", "5": "$INCLUDE 6\n", "6": "$INCLUDE 7\n", "7": "$INCLUDE 8\n", "8": "",
			},
			want: []string{`FILE/7:1: too deeply nested $INCLUDE: "8"`},
		},
		{
			name: "$INCLUDE of the same file again and again",
			files: map[string]string{
				"z": head + strings.Repeat("$INCLUDE x.inc\n", 10), "x.inc": strings.Repeat("$INCLUDE y.inc\n", 10),
				"y.inc": strings.Repeat("$INCLUDE z.inc\n", 10), "z.inc": "",
			},
			want: []string{"FILE/y.inc:10: failed to open `z.inc': open FILE/z.inc: more than 256 files for one zone: \"z.inc\""},
		},
		{
			name:  "syntax error",
			files: map[string]string{"z": head + "www A\n"},
			want:  []string{`FILE/z:4: A record without data`},
		},
		{
			name:  "record that cannot be encoded",
			files: map[string]string{"z": head + "www TXT " + strings.Repeat(`"`+strings.Repeat("x", 255)+`" `, 260) + "\n"},
			want:  []string{`FILE/z:4: TXT record cannot be encoded: bad rdata`},
		},
		{
			name:  "too many errors",
			files: map[string]string{"z": head + strings.Repeat("x.example.net. A 192.0.2.1\n", 30)},
			want: append(slices.Repeat([]string{"x.example.net. is outside the zone corp.example."}, maxErrorsPerFile),
				"FILE/z: too many errors, stopped"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, text := range tt.files {
				p := filepath.Join(dir, filepath.FromSlash(name))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			_, err := Load([]Spec{{Name: "corp.example.", File: "z"}}, dir)
			got := loadErrors(t, err)
			if tt.name == "too many errors" {
				// Only the reasons: the lines are 4, 5, ... in order.
				for i := range min(len(got), maxErrorsPerFile) {
					prefix := fmt.Sprintf("%s:%d: ", filepath.Join(dir, "z"), 4+i)
					if !strings.HasPrefix(got[i], prefix) {
						t.Errorf("error %d = %q, want prefix %q", i, got[i], prefix)
					}
					got[i] = strings.TrimPrefix(got[i], prefix)
				}
			}
			want := make([]string, len(tt.want))
			for i, w := range tt.want {
				want[i] = strings.ReplaceAll(w, "FILE", dir)
			}
			if len(want) == 0 {
				want = nil
			}
			if !slices.Equal(got, want) {
				t.Errorf("errors:\n got %q\nwant %q", got, want)
			}
		})
	}
}

func TestLoadSpecErrors(t *testing.T) {
	tests := []struct {
		name  string
		specs []Spec
		want  []string
	}{
		{name: "no name", specs: []Spec{{Forward: []string{"192.0.2.1"}}}, want: []string{"zone : name is required"}},
		{name: "bad name", specs: []Spec{{Name: "a..b", Forward: []string{"192.0.2.1"}}}, want: []string{`zone a..b: "a..b" is not a valid domain name`}},
		{name: "root", specs: []Spec{{Name: ".", Forward: []string{"192.0.2.1"}}}, want: []string{"zone .: the root zone cannot be configured"}},
		{name: "neither file nor forward", specs: []Spec{{Name: "corp.example."}}, want: []string{"zone corp.example.: one of file or forward is required"}},
		{
			name:  "file and forward",
			specs: []Spec{{Name: "corp.example.", File: "corp.example.zone", Forward: []string{"192.0.2.1"}}},
			want:  []string{"zone corp.example.: has file and forward: exactly one is allowed"},
		},
		{
			name:  "same zone twice, in another case",
			specs: []Spec{{Name: "corp.example.", Forward: []string{"192.0.2.1"}}, {Name: "Corp.Example", Forward: []string{"192.0.2.2"}}},
			want:  []string{"zone Corp.Example: configured more than once"},
		},
		{
			name:  "localhost is always local",
			specs: []Spec{{Name: "x.localhost.", Forward: []string{"192.0.2.1"}}},
			want:  []string{"zone x.localhost.: names under localhost. are always answered locally (RFC 6761, RFC 9462) and cannot be configured"},
		},
		{
			name:  "resolver.arpa is always local",
			specs: []Spec{{Name: "resolver.arpa", Forward: []string{"192.0.2.1"}}},
			want:  []string{"zone resolver.arpa: names under resolver.arpa. are always answered locally (RFC 6761, RFC 9462) and cannot be configured"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab, err := Load(tt.specs, fixtures)
			if tab != nil {
				t.Error("Load returned a Table with the error")
			}
			if got := loadErrors(t, err); !slices.Equal(got, tt.want) {
				t.Errorf("errors:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestLoadAbsoluteFileIgnoresBaseDir(t *testing.T) {
	abs, err := filepath.Abs(fixture("corp.example.zone"))
	if err != nil {
		t.Fatal(err)
	}
	tab, err := Load([]Spec{{Name: "corp.example.", File: abs}}, "/nonexistent")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	z, _ := tab.Find("www.corp.example.")
	if m := z.Answer(query("www.corp.example.", 1)); len(m.Answer) != 1 {
		t.Errorf("www.corp.example. A: answer %v, want one record (from the $INCLUDE)", m.Answer)
	}
}

// TestLoadForwardCopiesServers checks that the Table does not share the
// caller's slice.
func TestLoadForwardCopiesServers(t *testing.T) {
	servers := []string{"192.0.2.1"}
	tab, err := Load([]Spec{{Name: "corp.example.", Forward: servers}}, "")
	if err != nil {
		t.Fatal(err)
	}
	servers[0] = "changed"
	if _, f := tab.Find("corp.example."); f.Servers[0] != "192.0.2.1" {
		t.Errorf("Servers = %v after changing the Spec's slice, want [192.0.2.1]", f.Servers)
	}
}

func TestLoadMergesRRsets(t *testing.T) {
	dir := t.TempDir()
	text := head + "www 60 A 192.0.2.1\nWWW 30 A 192.0.2.2\nwww 90 A 192.0.2.1\n"
	if err := os.WriteFile(filepath.Join(dir, "z"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	tab, err := Load([]Spec{{Name: "corp.example.", File: "z"}}, dir)
	if err != nil {
		t.Fatal(err)
	}
	z, _ := tab.Find("corp.example.")
	got := rrStrings(z.Answer(query("www.corp.example.", 1)).Answer)
	want := []string{"www.corp.example. 30 IN A 192.0.2.1", "www.corp.example. 30 IN A 192.0.2.2"}
	if !slices.Equal(got, want) {
		t.Errorf("answer %q, want %q (duplicate dropped, lowest TTL)", got, want)
	}
}

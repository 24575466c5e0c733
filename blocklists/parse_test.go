package blocklists

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/lists")

const listsDir = "../testdata/lists"

// collect parses src and returns the rules, with names copied.
func collect(t testing.TB, src string, opts ParseOptions) ([]Rule, Stats, error) {
	t.Helper()
	var rules []Rule
	st, err := Parse(strings.NewReader(src), opts, func(r Rule) {
		r.Name = strings.Clone(r.Name)
		rules = append(rules, r)
	})
	return rules, st, err
}

// dump renders a parse result in the golden format: one "line kind action
// name [addrs]" row per rule, sorted, then the stats, the errors and the
// result.
func dump(rules []Rule, st Stats, err error) string {
	rows := make([]string, 0, len(rules))
	for _, r := range rules {
		row := fmt.Sprintf("%4d %-6s %-9s %s", r.Line, r.Kind, r.Action, r.Name)
		for _, a := range r.Addrs {
			row += " " + a.String()
		}
		rows = append(rows, row)
	}
	slices.Sort(rows)
	var b strings.Builder
	for _, r := range rows {
		b.WriteString(r + "\n")
	}
	fmt.Fprintf(&b, "stats: lines=%d comments=%d rules=%d bad=%d skipped=%d\n",
		st.Lines, st.Comments, st.Rules, st.Bad, st.Skipped)
	for _, e := range st.Errors {
		b.WriteString("error: " + e.Error() + "\n")
	}
	if err != nil {
		b.WriteString("result: " + err.Error() + "\n")
	} else {
		b.WriteString("result: ok\n")
	}
	return b.String()
}

func TestParseGolden(t *testing.T) {
	tests := []struct {
		format Format
		opts   ParseOptions
	}{
		{format: FormatDomains},
		{format: FormatHosts},
		{format: FormatAdblock},
		{format: FormatWildcard},
		{format: FormatRPZ},
	}
	for _, tt := range tests {
		t.Run(string(tt.format), func(t *testing.T) {
			base := string(tt.format) + "-edge"
			src, err := os.ReadFile(filepath.Join(listsDir, base+".txt"))
			if err != nil {
				t.Fatal(err)
			}
			opts := tt.opts
			opts.Format, opts.Source = tt.format, base+".txt"
			rules, st, perr := collect(t, string(src), opts)
			got := dump(rules, st, perr)
			if st.Rules != len(rules) {
				t.Errorf("Stats.Rules = %d, callback called %d times", st.Rules, len(rules))
			}
			golden := filepath.Join(listsDir, base+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./blocklists -run Golden -update)", err)
			}
			if got != string(want) {
				t.Errorf("parse of %s differs from %s:\n--- got\n%s--- want\n%s", base+".txt", golden, got, want)
			}
		})
	}
}

// TestParseFormats checks single cases of every format, beside the golden
// files, so that a regression names the case.
func TestParseFormats(t *testing.T) {
	tests := []struct {
		name   string
		format Format
		match  Kind
		input  string
		want   string // "kind action name" of each rule, joined by "; "
		bad    int
		skip   int
	}{
		{name: "domains default suffix", format: FormatDomains, input: "DeepSeek.com.\n", want: "suffix block deepseek.com"},
		{name: "domains match exact", format: FormatDomains, match: Exact, input: "deepseek.com\n", want: "exact block deepseek.com"},
		{name: "domains empty file", format: FormatDomains, input: ""},
		{name: "domains no final newline", format: FormatDomains, input: "a.example\nb.example", want: "suffix block a.example; suffix block b.example"},
		{name: "domains CR only line", format: FormatDomains, input: "a.example\r\n\r\n", want: "suffix block a.example"},
		{name: "domains BOM only", format: FormatDomains, input: "\ufeff\n", want: ""},
		{name: "hosts match exact", format: FormatHosts, match: Exact, input: "0.0.0.0 a.example b.example\n", want: "exact block a.example; exact block b.example"},
		{name: "hosts only localhost", format: FormatHosts, input: "127.0.0.1 localhost\n", skip: 1},
		{name: "hosts zone address", format: FormatHosts, input: "fe80::1%lo0 a.example\n", want: "suffix block a.example"},
		{name: "adblock exact exception", format: FormatAdblock, input: "@@|a.example^\n", want: "exact allow a.example"},
		{name: "adblock modifiers case", format: FormatAdblock, input: "||a.example^$IMPORTANT,third-party\n", want: "suffix block a.example"},
		{name: "adblock unknown modifier", format: FormatAdblock, input: "||a.example^$script\n", skip: 1},
		{name: "adblock bare single label", format: FormatAdblock, input: "ads\n", skip: 1},
		{name: "adblock match option ignored", format: FormatAdblock, match: Exact, input: "||a.example^\n", want: "suffix block a.example"},
		{name: "adblock empty exception", format: FormatAdblock, input: "@@\n", bad: 1},
		{name: "wildcard match exact", format: FormatWildcard, match: Exact, input: "a.example\n*.b.example\n", want: "exact block a.example; below block b.example"},
		{name: "rpz no origin", format: FormatRPZ, input: "deepseek.com CNAME .\n", want: "exact nxdomain deepseek.com"},
		{name: "rpz absolute names under SOA owner", format: FormatRPZ, input: "rpz.example. SOA ns. hm. 1 2 3 4 5\nx.example.rpz.example. CNAME rpz-drop.\n", want: "exact drop x.example"},
		{name: "rpz unterminated parenthesis", format: FormatRPZ, input: "x.example CNAME .\n@ SOA ns. hm. ( 1 2\n", want: "exact nxdomain x.example", bad: 1},
		{name: "rpz record without owner", format: FormatRPZ, input: "  CNAME .\nx.example CNAME .\n", want: "exact nxdomain x.example", bad: 1},
		{name: "rpz blank owner the zone parser sees", format: FormatRPZ, input: "\r A 192.0.2.1\n( ) A 192.0.2.1\n(\n) A 192.0.2.1\nx.example CNAME .\n", want: "exact nxdomain x.example", bad: 3},
		{name: "rpz local data split by another owner", format: FormatRPZ, input: "a.example A 192.0.2.1\nb.example CNAME .\na.example A 192.0.2.2\n",
			want: "exact localdata a.example 192.0.2.1; exact nxdomain b.example; exact localdata a.example 192.0.2.2"},
		{name: "rpz relative $ORIGIN", format: FormatRPZ, input: "$ORIGIN rpz.example.\n$ORIGIN Sub\nx CNAME .\n$ORIGIN @\ny CNAME .\n", want: "exact nxdomain x.sub; exact nxdomain y.sub"},
		{name: "rpz bad directives", format: FormatRPZ, input: "$ORIGIN\n$ORIGIN a..b.\n$FOO x\n$GENERATE 1-2 a$ CNAME .\nx.example CNAME .\n", want: "exact nxdomain x.example", bad: 4},
		{name: "rpz chaos class", format: FormatRPZ, input: "a.example CH TXT \"x\"\nb.example CNAME .\nc.example CNAME .\n", want: "exact nxdomain b.example; exact nxdomain c.example", bad: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rules, st, err := collect(t, tt.input, ParseOptions{Format: tt.format, Match: tt.match, MaxBadShare: 1})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range rules {
				s := fmt.Sprintf("%v %v %s", r.Kind, r.Action, r.Name)
				for _, a := range r.Addrs {
					s += " " + a.String()
				}
				got = append(got, s)
			}
			if g := strings.Join(got, "; "); g != tt.want {
				t.Errorf("rules = %q, want %q", g, tt.want)
			}
			if st.Bad != tt.bad || st.Skipped != tt.skip {
				t.Errorf("bad, skipped = %d, %d, want %d, %d (errors %v)", st.Bad, st.Skipped, tt.bad, tt.skip, st.Errors)
			}
		})
	}
}

func TestParseReject(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		share   float64
		wantErr string // "" for accepted
	}{
		{
			name:    "mostly invalid",
			input:   "# header\ngood.example\n1.2.3.4\nbad..example\n\n<html>\n",
			wantErr: `l.txt: 3 of 4 lines invalid (first: l.txt:3: IP address instead of a name: "1.2.3.4")`,
		},
		{name: "exactly half invalid is accepted", input: "a.example\nb.example\nbad..x\n!!\n"},
		{
			name:    "comments do not count",
			input:   "# 1\n# 2\n# 3\n# 4\na.example\nbad..x\nbad..y\n",
			wantErr: `l.txt: 2 of 3 lines invalid (first: l.txt:6: empty label in "bad..x")`,
		},
		{
			name:    "negative share rejects any bad line",
			input:   "a.example\nb.example\nc.example\nbad..x\n",
			share:   -1,
			wantErr: `l.txt: 1 of 4 lines invalid (first: l.txt:4: empty label in "bad..x")`,
		},
		{name: "share 1 never rejects", input: "bad..x\n!!\n", share: 1},
		{name: "all comments", input: "# only\n\n# comments\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := collect(t, tt.input, ParseOptions{Source: "l.txt", MaxBadShare: tt.share})
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("rejected: %v", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("accepted, want %q", tt.wantErr)
			case tt.wantErr != "":
				if err.Error() != tt.wantErr {
					t.Errorf("error = %q, want %q", err, tt.wantErr)
				}
				var re *RejectedError
				if !errors.As(err, &re) {
					t.Errorf("error is %T, want *RejectedError", err)
				}
			}
		})
	}
}

func TestParseErrorsCapped(t *testing.T) {
	var b strings.Builder
	for range 150 {
		b.WriteString("bad..example\n")
	}
	for range 200 {
		b.WriteString("good.example\n")
	}
	_, st, err := collect(t, b.String(), ParseOptions{Source: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if st.Bad != 150 || len(st.Errors) != MaxErrors || st.Rules != 200 {
		t.Errorf("bad=%d errors=%d rules=%d, want 150, %d, 200", st.Bad, len(st.Errors), st.Rules, MaxErrors)
	}
	if e := st.Errors[MaxErrors-1]; e.Line != MaxErrors {
		t.Errorf("last kept error at line %d, want %d", e.Line, MaxErrors)
	}
}

func TestParseFailures(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name    string
		r       io.Reader
		opts    ParseOptions
		wantErr string
		wantIs  error
	}{
		{name: "read error", r: io.MultiReader(strings.NewReader("a.example\n"), iotest.ErrReader(boom)), opts: ParseOptions{Source: "s"}, wantErr: "s: read: boom", wantIs: boom},
		{name: "utf-16", r: strings.NewReader("\xff\xfea\x00.\x00"), opts: ParseOptions{Source: "s"}, wantErr: "s: UTF-16 text; lists must be UTF-8"},
		{name: "unknown format", r: strings.NewReader(""), opts: ParseOptions{Source: "s", Format: "dnsmasq"}, wantErr: `s: unknown list format "dnsmasq"`},
		{name: "bad match", r: strings.NewReader(""), opts: ParseOptions{Source: "s", Match: Below}, wantErr: "s: match must be suffix or exact, not below"},
		{name: "bad rpz origin", r: strings.NewReader(""), opts: ParseOptions{Source: "s", Format: FormatRPZ, Origin: "a..b"}, wantErr: `s: RPZ origin: empty label in "a..b"`},
		{name: "default source name", r: strings.NewReader("1.1.1.1\n"), wantErr: `<input>: 1 of 1 lines invalid (first: <input>:1: IP address instead of a name: "1.1.1.1")`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.r, tt.opts, func(Rule) {})
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("error = %v, want %q", err, tt.wantErr)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error does not wrap %v", tt.wantIs)
			}
		})
	}
}

func TestParseLongLine(t *testing.T) {
	input := "a.example\n" + strings.Repeat("x", maxLine+10) + "\nb.example\nc.example\n"
	rules, st, err := collect(t, input, ParseOptions{Source: "s"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 3 || st.Bad != 1 || st.Lines != 4 || st.Errors[0].Line != 2 {
		t.Errorf("rules=%d bad=%d lines=%d errors=%v, want 3, 1, 4, line 2", len(rules), st.Bad, st.Lines, st.Errors)
	}
}

func TestParseRPZOrigin(t *testing.T) {
	tests := []struct {
		name   string
		origin string
		input  string
		want   string
		bad    int
	}{
		{name: "option gives the apex", origin: "RPZ.Example.",
			input: "@ SOA ns hm 1 2 3 4 5\nx.example CNAME .\nother.zone. CNAME .\n", want: "x.example", bad: 1},
		{name: "option beats the SOA owner", origin: "rpz.example",
			input: "other.zone. SOA ns hm 1 2 3 4 5\nx.example CNAME .\n", want: "x.example"},
		{name: "root without SOA or $ORIGIN",
			input: "x.example.rpz.example CNAME .\nother.zone. CNAME .\n", want: "x.example.rpz.example; other.zone"},
		{name: "first $ORIGIN gives the apex",
			input: "$ORIGIN rpz.example.\nx.example CNAME .\n$ORIGIN other.\ny CNAME .\n", want: "x.example", bad: 1},
		{name: "SOA beats $ORIGIN",
			input: "$ORIGIN example.\nrpz SOA ns hm 1 2 3 4 5\nx.rpz CNAME .\n", want: "x"},
		{name: "SOA after a trigger does not move the apex",
			input: "$ORIGIN rpz.example.\nx CNAME .\nsub SOA ns hm 1 2 3 4 5\ny.sub CNAME .\n", want: "x; y.sub"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rules, st, err := collect(t, tt.input, ParseOptions{Format: FormatRPZ, Origin: tt.origin, MaxBadShare: 1})
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, r := range rules {
				names = append(names, r.Name)
			}
			if got := strings.Join(names, "; "); got != tt.want || st.Bad != tt.bad {
				t.Errorf("rules %q bad %d, want %q bad %d (%v)", got, st.Bad, tt.want, tt.bad, st.Errors)
			}
		})
	}
}

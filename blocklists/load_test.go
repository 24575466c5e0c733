package blocklists

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// list returns a domains list of the given names, one per line, after a
// comment.
func list(names ...string) string {
	return "# test\n" + strings.Join(names, "\n") + "\n"
}

// TestLoadGuards: each guard refuses what it is for and lets the rest pass;
// the error names the guard.
func TestLoadGuards(t *testing.T) {
	four := list("a.example", "b.example", "c.example", "deepseek.com")
	sum := sha256.Sum256([]byte(four))
	pin := hex.EncodeToString(sum[:])
	tests := []struct {
		name     string
		body     string
		opts     ParseOptions
		g        Guards
		baseline int
		guard    string // the guard that refuses; "" passes
		reason   string
	}{
		{name: "no guards", body: four, baseline: NoBaseline},
		{name: "pin", body: four, g: Guards{SHA256: strings.ToUpper(pin)}, baseline: NoBaseline},
		{name: "pin refused", body: four + "x.example\n", g: Guards{SHA256: pin}, baseline: NoBaseline,
			guard: "sha256", reason: "does not match the pinned " + pin},
		{name: "empty", body: "", baseline: NoBaseline, guard: "allow_empty", reason: "no entries"},
		{name: "comments only", body: "# nothing\n", baseline: NoBaseline, guard: "allow_empty", reason: "no entries"},
		{name: "empty allowed", body: "", g: Guards{AllowEmpty: true}, baseline: NoBaseline},
		{name: "min_entries", body: four, g: Guards{MinEntries: 4}, baseline: NoBaseline},
		{name: "min_entries refused", body: four, g: Guards{MinEntries: 5}, baseline: NoBaseline,
			guard: "min_entries", reason: "4 entries, fewer than min_entries 5"},
		{name: "max_shrink", body: four, g: Guards{MaxShrink: 0.5}, baseline: 8},
		{name: "max_shrink refused", body: four, g: Guards{MaxShrink: 0.5}, baseline: 9,
			guard: "max_shrink", reason: "4 entries, shrunk from 9 by more than max_shrink 0.5"},
		{name: "max_shrink without baseline", body: list("a.example"), g: Guards{MaxShrink: 0.5}, baseline: NoBaseline},
		{name: "max_shrink 1 is off", body: list("a.example"), g: Guards{MaxShrink: 1}, baseline: 1000},
		{name: "must_contain", body: four, g: Guards{MustContain: []string{"Chat.DeepSeek.com.", "b.example"}}, baseline: NoBaseline},
		{name: "must_contain refused", body: four, g: Guards{MustContain: []string{"deepseek.com", "x.example"}}, baseline: NoBaseline,
			guard: "must_contain", reason: "must_contain x.example: not blocked by this source"},
		{name: "must_contain exact rule", body: four, opts: ParseOptions{Match: Exact}, g: Guards{MustContain: []string{"chat.deepseek.com"}},
			baseline: NoBaseline, guard: "must_contain", reason: "must_contain chat.deepseek.com: not blocked"},
		{name: "must_contain not by an exception", body: "@@||deepseek.com^\n||b.example^\n", opts: ParseOptions{Format: FormatAdblock},
			g: Guards{MustContain: []string{"deepseek.com"}}, baseline: NoBaseline, guard: "must_contain"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, err := Load(strings.NewReader(tc.body), tc.opts, tc.g, tc.baseline)
			if l == nil {
				t.Fatalf("no Loaded (err %v)", err)
			}
			s := sha256.Sum256([]byte(tc.body))
			if l.SHA256 != hex.EncodeToString(s[:]) {
				t.Errorf("SHA256 %s, want the hash of the body", l.SHA256)
			}
			if tc.guard == "" {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				if l.Rules.Len() != l.Stats.Rules {
					t.Errorf("%d rules kept, the parser counted %d", l.Rules.Len(), l.Stats.Rules)
				}
				return
			}
			var ge *GuardError
			if !errors.As(err, &ge) || ge.Guard != tc.guard || !strings.Contains(ge.Error(), tc.reason) {
				t.Fatalf("Load = %v, want guard %s refusing with %q", err, tc.guard, tc.reason)
			}
		})
	}
}

// TestLoadChecksGuardsInOrder: a list failing several guards is refused by
// the first of pin, allow_empty, min_entries, max_shrink, must_contain.
func TestLoadChecksGuardsInOrder(t *testing.T) {
	g := Guards{SHA256: strings.Repeat("0", 64), MinEntries: 10, MaxShrink: 0.1, MustContain: []string{"x.example"}}
	for _, want := range []string{"sha256", "allow_empty", "min_entries", "max_shrink", "must_contain"} {
		_, err := Load(strings.NewReader(""), ParseOptions{}, g, 100)
		var ge *GuardError
		if !errors.As(err, &ge) || ge.Guard != want {
			t.Fatalf("Load = %v, want the %s guard", err, want)
		}
		switch want { // lift the guard that refused
		case "sha256":
			g.SHA256 = ""
		case "allow_empty":
			g.AllowEmpty = true
		case "min_entries":
			g.MinEntries = 0
		case "max_shrink":
			g.MaxShrink = 0
		}
	}
}

// TestLoadErrors: a bad must_contain name fails before reading; a list with
// too many bad lines is a *RejectedError naming the source and line, with
// its stats.
func TestLoadErrors(t *testing.T) {
	if l, err := Load(strings.NewReader("a.example\n"), ParseOptions{}, Guards{MustContain: []string{"bad..name"}}, NoBaseline); l != nil || err == nil ||
		!strings.Contains(err.Error(), `must_contain "bad..name"`) {
		t.Fatalf("Load = %v, %v; want a must_contain error", l, err)
	}
	l, err := Load(strings.NewReader("a.example\nbad..one\nbad..two\n"), ParseOptions{Source: "lists/x.txt"}, Guards{}, NoBaseline)
	var rej *RejectedError
	if !errors.As(err, &rej) || !strings.Contains(err.Error(), "lists/x.txt:2:") {
		t.Fatalf("Load = %v, want a *RejectedError naming lists/x.txt:2", err)
	}
	if l == nil || l.Stats.Bad != 2 || len(l.Stats.Errors) != 2 {
		t.Fatalf("Loaded = %+v, want the stats of the refused list", l)
	}
}

// TestLoadRulesAreParseRules: Load keeps exactly the rules Parse gives, in
// order, with their kinds, actions, lines and local-data addresses, for
// every format's edge fixture.
func TestLoadRulesAreParseRules(t *testing.T) {
	for _, format := range []Format{FormatDomains, FormatHosts, FormatAdblock, FormatWildcard, FormatRPZ} {
		t.Run(string(format), func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(listsDir, string(format)+"-edge.txt"))
			if err != nil {
				t.Fatal(err)
			}
			checkLoadRules(t, format, data)
		})
	}
	t.Run("local data", func(t *testing.T) {
		checkLoadRules(t, FormatRPZ, []byte("$ORIGIN rpz.example.\n@ SOA ns. h. 1 1 1 1 1\na.example A 192.0.2.1\na.example AAAA 2001:db8::1\nb.example CNAME .\n"))
	})
}

func checkLoadRules(t *testing.T, format Format, data []byte) {
	t.Helper()
	opts := ParseOptions{Format: format, Source: "fixture", MaxBadShare: 1}
	var want []string
	var addrs int
	if _, err := Parse(bytes.NewReader(data), opts, func(r Rule) {
		want = append(want, fmt.Sprint(r.Name, r.Kind, r.Action, r.Addrs, r.Line))
		addrs += len(r.Addrs)
	}); err != nil {
		t.Fatal(err)
	}
	l, err := Load(bytes.NewReader(data), opts, Guards{AllowEmpty: true}, NoBaseline)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	l.Rules.Each(func(r Rule) {
		got = append(got, fmt.Sprint(r.Name, r.Kind, r.Action, r.Addrs, r.Line))
		addrs -= len(r.Addrs)
	})
	if !reflect.DeepEqual(got, want) || len(want) == 0 {
		t.Fatalf("Load kept\n%v\nParse gave\n%v", got, want)
	}
	if format == FormatRPZ && bytes.Contains(data, []byte(" A ")) && addrs != 0 {
		t.Fatalf("local-data addresses differ by %d", addrs)
	}
}

// TestRulesAddrsKept: the addresses of a local-data rule survive the rules
// that follow (they are not aliased to a buffer).
func TestRulesAddrsKept(t *testing.T) {
	var rs Rules
	a := []netip.Addr{netip.MustParseAddr("192.0.2.1")}
	rs.Add(Rule{Name: "a.example", Action: LocalData, Addrs: a, Line: 1})
	rs.Add(Rule{Name: "b.example", Line: 2})
	var got [][]netip.Addr
	rs.Each(func(r Rule) { got = append(got, r.Addrs) })
	if len(got) != 2 || !reflect.DeepEqual(got[0], a) || got[1] != nil {
		t.Fatalf("addresses %v", got)
	}
}

// TestRulesChunks: rules spread over several chunks come back in order,
// each with its name, line and addresses.
func TestRulesChunks(t *testing.T) {
	var rs Rules
	n := 2*chunkRules + 5
	at := chunkRules + 3
	a := []netip.Addr{netip.MustParseAddr("2001:db8::1")}
	for i := range n {
		r := Rule{Name: fmt.Sprintf("n%d.example", i), Kind: Kind(i % 3), Line: i + 1}
		if i == at {
			r.Action, r.Addrs = LocalData, a
		}
		rs.Add(r)
	}
	if rs.Len() != n || len(rs.chunks) != 3 {
		t.Fatalf("Len %d in %d chunks", rs.Len(), len(rs.chunks))
	}
	i := 0
	rs.Each(func(r Rule) {
		if r.Name != fmt.Sprintf("n%d.example", i) || r.Kind != Kind(i%3) || r.Line != i+1 || (i == at) != (r.Addrs != nil) {
			t.Fatalf("rule %d: %+v", i, r)
		}
		i++
	})
	if i != n {
		t.Fatalf("Each gave %d rules", i)
	}
}

// FuzzLoad: whatever the input, Load keeps the rules Parse gives, and a
// list it accepts passes every guard it was given.
func FuzzLoad(f *testing.F) {
	seedParse(f, FormatDomains)
	f.Fuzz(func(t *testing.T, data []byte) {
		opts := ParseOptions{Format: FormatDomains, Source: "fuzz"}
		n := 0
		_, perr := Parse(bytes.NewReader(data), opts, func(Rule) { n++ })
		l, err := Load(bytes.NewReader(data), opts, Guards{MinEntries: 2, MaxShrink: 0.5}, 10)
		if (perr == nil) != (err == nil || errors.As(err, new(*GuardError))) {
			t.Fatalf("Parse error %v, Load error %v", perr, err)
		}
		if l.Rules.Len() != n || l.Stats.Rules != n {
			t.Fatalf("Load kept %d rules (stats %d), Parse gave %d", l.Rules.Len(), l.Stats.Rules, n)
		}
		if err == nil && n < 5 {
			t.Fatalf("Load accepted %d rules against min_entries 2 and max_shrink 0.5 of 10", n)
		}
	})
}

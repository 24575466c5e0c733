package blocklists

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

type testRule struct {
	name string
	kind Kind
	tag  uint32
}

func buildIndex(rules []testRule) *Index {
	b := NewIndexBuilder(len(rules))
	for _, r := range rules {
		b.Add(r.name, r.kind, r.tag)
	}
	return b.Build()
}

// hitStrings renders hits as "name kind tag depth".
func hitStrings(hits []Hit) []string {
	out := make([]string, 0, len(hits))
	for _, h := range hits {
		out = append(out, fmt.Sprintf("%s %v %d %d", h.Name, h.Kind, h.Tag, h.Depth))
	}
	return out
}

var indexRules = []testRule{
	{name: "deepseek.com", kind: Suffix, tag: 1},
	{name: "deepseek.com", kind: Suffix, tag: 2},
	{name: "deepseek.com.", kind: Suffix, tag: 1}, // a repetition: dropped
	{name: "exact.example", kind: Exact, tag: 3},
	{name: "below.example", kind: Below, tag: 4},
	{name: "chat.deepseek.com", kind: Exact, tag: 5},
	{name: "UPPER.Example.", kind: Suffix, tag: 6},
	{name: "mixed.example", kind: Exact, tag: 7},
	{name: "mixed.example", kind: Below, tag: 7},
	{name: "", kind: Suffix, tag: 8},                       // ignored
	{name: strings.Repeat("a", 256), kind: Suffix, tag: 9}, // ignored
}

func TestIndexLookup(t *testing.T) {
	ix := buildIndex(indexRules)
	tests := []struct {
		name  string
		qname string
		want  []string
	}{
		{name: "apex", qname: "deepseek.com", want: []string{"deepseek.com suffix 1 0", "deepseek.com suffix 2 0"}},
		{name: "subdomain and exact", qname: "chat.deepseek.com", want: []string{"deepseek.com suffix 1 1", "deepseek.com suffix 2 1", "chat.deepseek.com exact 5 0"}},
		{name: "deep subdomain", qname: "a.b.c.chat.deepseek.com.", want: []string{"deepseek.com suffix 1 4", "deepseek.com suffix 2 4"}},
		{name: "mixed case and trailing dot", qname: "CHAT.DeepSeek.Com.", want: []string{"deepseek.com suffix 1 1", "deepseek.com suffix 2 1", "chat.deepseek.com exact 5 0"}},
		{name: "rule added in upper case", qname: "www.upper.example", want: []string{"upper.example suffix 6 1"}},
		{name: "exact matches itself", qname: "exact.example", want: []string{"exact.example exact 3 0"}},
		{name: "exact not below", qname: "www.exact.example"},
		{name: "below not itself", qname: "below.example"},
		{name: "below child", qname: "x.below.example", want: []string{"below.example below 4 1"}},
		{name: "below grandchild", qname: "y.x.Below.Example", want: []string{"below.example below 4 2"}},
		{name: "exact and below on one name, apex", qname: "mixed.example", want: []string{"mixed.example exact 7 0"}},
		{name: "exact and below on one name, child", qname: "a.mixed.example", want: []string{"mixed.example below 7 1"}},
		{name: "label prefix is not a parent", qname: "notdeepseek.com"},
		{name: "rule name inside a longer name", qname: "deepseek.com.evil.example"},
		{name: "other TLD", qname: "deepseek.net"},
		{name: "truncated", qname: "eepseek.com"},
		{name: "shorter TLD", qname: "deepseek.co"},
		{name: "TLD alone", qname: "com"},
		{name: "root", qname: "."},
		{name: "empty", qname: ""},
		{name: "empty labels", qname: "a..deepseek..com"},
		{name: "leading dot", qname: ".deepseek.com", want: []string{"deepseek.com suffix 1 1", "deepseek.com suffix 2 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a [8]Hit
			got := hitStrings(ix.Lookup(tt.qname, a[:0]))
			if !slices.Equal(got, tt.want) && len(got)+len(tt.want) > 0 {
				t.Errorf("Lookup(%q) = %q, want %q", tt.qname, got, tt.want)
			}
		})
	}
	if got, want := ix.Len(), 8; got != want {
		t.Errorf("Len() = %d, want %d", got, want)
	}
}

func TestIndexEach(t *testing.T) {
	ix := buildIndex(indexRules)
	var got []string
	ix.Each(func(name string, kind Kind, tag uint32) bool {
		got = append(got, fmt.Sprintf("%s %v %d", name, kind, tag))
		return true
	})
	want := []string{
		"deepseek.com suffix 1", "deepseek.com suffix 2", "exact.example exact 3", "below.example below 4",
		"chat.deepseek.com exact 5", "upper.example suffix 6", "mixed.example exact 7", "mixed.example below 7",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Each gave %q, want %q", got, want)
	}
	n := 0
	ix.Each(func(string, Kind, uint32) bool { n++; return n < 3 })
	if n != 3 {
		t.Errorf("Each went on after false: %d calls", n)
	}
}

func TestIndexEmptyAndNil(t *testing.T) {
	tests := []struct {
		name string
		ix   *Index
	}{
		{name: "nil", ix: nil},
		{name: "empty", ix: NewIndexBuilder(0).Build()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if hits := tt.ix.Lookup("deepseek.com", nil); len(hits) != 0 {
				t.Errorf("hits %v", hits)
			}
			if tt.ix.Len() != 0 || tt.ix.SizeBytes() != 0 {
				t.Errorf("Len %d SizeBytes %d", tt.ix.Len(), tt.ix.SizeBytes())
			}
			if tt.ix.Hash() != sha256.Sum256(nil) {
				t.Errorf("Hash of the empty set is not SHA-256 of nothing")
			}
			tt.ix.Each(func(string, Kind, uint32) bool { t.Error("Each called"); return true })
		})
	}
}

func TestIndexHash(t *testing.T) {
	base := buildIndex(indexRules)
	shuffled := slices.Clone(indexRules)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	shuffled = append(shuffled, indexRules[3], indexRules[0])
	tests := []struct {
		name  string
		rules []testRule
		same  bool
	}{
		{name: "same rules, other order, repeated", rules: shuffled, same: true},
		{name: "one rule less", rules: indexRules[1:], same: true}, // indexRules[0] is repeated at [2]
		{name: "other tag", rules: append(slices.Clone(indexRules), testRule{name: "deepseek.com", kind: Suffix, tag: 10})},
		{name: "other kind", rules: append(slices.Clone(indexRules[:3]), testRule{name: "exact.example", kind: Suffix, tag: 3})},
		{name: "other name", rules: append(slices.Clone(indexRules), testRule{name: "deepseek.ai", kind: Suffix, tag: 1})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := buildIndex(tt.rules).Hash() == base.Hash(); got != tt.same {
				t.Errorf("hashes equal = %v, want %v", got, tt.same)
			}
		})
	}

	// The documented encoding.
	var enc []byte
	for _, r := range []testRule{{"a.example", Suffix, 9}, {"a.example", Exact, 7}, {"b.example", Suffix, 1}} {
		enc = append(enc, byte(len(r.name)))
		enc = append(enc, r.name...)
		enc = append(enc, byte(r.kind))
		enc = binary.BigEndian.AppendUint32(enc, r.tag)
	}
	ix := buildIndex([]testRule{{"b.example", Suffix, 1}, {"A.example", Exact, 7}, {"a.example", Suffix, 9}})
	if ix.Hash() != sha256.Sum256(enc) {
		t.Errorf("Hash does not follow the documented encoding")
	}
}

func TestIndexLookupAllocs(t *testing.T) {
	ix := buildIndex(indexRules)
	for _, q := range []string{"chat.deepseek.com", "a.b.c.d.e.f.example.net.", "Deepseek.COM"} {
		allocs := testing.AllocsPerRun(200, func() {
			var a [8]Hit
			_ = ix.Lookup(q, a[:0])
		})
		if allocs != 0 {
			t.Errorf("Lookup(%q) allocates %v times", q, allocs)
		}
	}
}

func TestIndexBufferGrows(t *testing.T) {
	b := NewIndexBuilder(0)
	for tag := range uint32(20) {
		b.Add("deepseek.com", Suffix, tag)
	}
	ix := b.Build()
	var a [2]Hit
	hits := ix.Lookup("x.deepseek.com", a[:0])
	if len(hits) != 20 {
		t.Fatalf("%d hits, want 20", len(hits))
	}
	for i, h := range hits {
		if h.Tag != uint32(i) {
			t.Errorf("hit %d has tag %d: duplicates out of Add order", i, h.Tag)
		}
	}
}

// TestIndexBuilderReuse checks that Build resets the builder and that the
// arena spans several chunks.
func TestIndexBuilderReuse(t *testing.T) {
	b := NewIndexBuilder(0)
	const n = 120000 // about 2.5 MB of names: several arena chunks
	for i := range n {
		b.Add(fmt.Sprintf("host-%07d.example.com", i), Suffix, uint32(i))
	}
	if b.Len() != n {
		t.Fatalf("builder Len %d", b.Len())
	}
	ix := b.Build()
	if b.Len() != 0 {
		t.Fatalf("builder not reset: Len %d", b.Len())
	}
	b.Add("other.example", Exact, 1)
	ix2 := b.Build()
	if ix.Len() != n || ix2.Len() != 1 {
		t.Fatalf("Len %d and %d", ix.Len(), ix2.Len())
	}
	for _, i := range []int{0, 1, n / 2, n - 1} {
		q := fmt.Sprintf("www.HOST-%07d.example.com", i)
		hits := ix.Lookup(q, nil)
		if len(hits) != 1 || hits[0].Tag != uint32(i) || hits[0].Depth != 1 || hits[0].Name != strings.ToLower(q[4:]) {
			t.Errorf("Lookup(%q) = %+v", q, hits)
		}
	}
	if hits := ix2.Lookup("host-0000001.example.com", nil); len(hits) != 0 {
		t.Errorf("second index sees the first one's rules: %v", hits)
	}
}

// naive is the reference matcher: a map from name to rules.
type naive map[string][]testRule

func newNaive(rules []testRule) naive {
	m := naive{}
	for _, r := range rules {
		n := asciiLower(strings.TrimSuffix(r.name, "."))
		if n == "" || len(n) > 255 || slices.Contains(m[n], testRule{n, r.kind, r.tag}) {
			continue
		}
		m[n] = append(m[n], testRule{n, r.kind, r.tag})
	}
	return m
}

func (m naive) lookup(q string) []string {
	q = asciiLower(strings.TrimSuffix(q, "."))
	if q == "" {
		return nil
	}
	labels := strings.Split(q, ".")
	var out []string
	for depth := len(labels) - 1; depth >= 0; depth-- {
		for _, r := range m[strings.Join(labels[depth:], ".")] {
			if r.kind == Suffix || r.kind == Exact && depth == 0 || r.kind == Below && depth > 0 {
				out = append(out, fmt.Sprintf("%s %v %d %d", r.name, r.kind, r.tag, depth))
			}
		}
	}
	return out
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// randomName draws names from few labels so that rules nest often.
func randomName(r *rand.Rand) string {
	labels := []string{"a", "b", "ab", "deepseek", "com", "xn--bcher-kva", "_s", "c-d", "0"}
	n := 1 + r.IntN(5)
	parts := make([]string, n)
	for i := range parts {
		parts[i] = labels[r.IntN(len(labels))]
	}
	return strings.Join(parts, ".")
}

func randomCase(r *rand.Rand, s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' && r.IntN(3) == 0 {
			b[i] = c - 'a' + 'A'
		}
	}
	if r.IntN(4) == 0 {
		b = append(b, '.')
	}
	return string(b)
}

func TestIndexMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	for round := range 20 {
		rules := make([]testRule, 50+r.IntN(500))
		for i := range rules {
			rules[i] = testRule{name: randomCase(r, randomName(r)), kind: Kind(r.IntN(3)), tag: uint32(r.IntN(4))}
		}
		ix, ref := buildIndex(rules), newNaive(rules)
		n := 0
		for _, v := range ref {
			n += len(v)
		}
		if ix.Len() != n {
			t.Fatalf("round %d: Len %d, want %d", round, ix.Len(), n)
		}
		for range 2000 {
			q := randomCase(r, randomName(r))
			got, want := hitStrings(ix.Lookup(q, nil)), ref.lookup(q)
			if !slices.Equal(got, want) {
				t.Fatalf("round %d: Lookup(%q) = %q, want %q", round, q, got, want)
			}
		}
	}
}

// TestIndexEachAndHashMatchNaive checks Each (every distinct rule once, in
// the order of the Add calls) and Hash (the documented encoding) on rule
// sets where names often have several rules and rules repeat.
func TestIndexEachAndHashMatchNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 17))
	for round := range 20 {
		rules := make([]testRule, 1+r.IntN(400))
		for i := range rules {
			rules[i] = testRule{name: randomCase(r, randomName(r)), kind: Kind(r.IntN(3)), tag: uint32(r.IntN(4))}
		}
		var want []testRule
		for _, tr := range rules {
			c := testRule{asciiLower(strings.TrimSuffix(tr.name, ".")), tr.kind, tr.tag}
			if c.name != "" && !slices.Contains(want, c) {
				want = append(want, c)
			}
		}
		ix := buildIndex(rules)
		var got []testRule
		ix.Each(func(name string, kind Kind, tag uint32) bool {
			got = append(got, testRule{name, kind, tag})
			return true
		})
		if !slices.Equal(got, want) {
			t.Fatalf("round %d: Each gave %v, want %v", round, got, want)
		}
		sorted := slices.SortedFunc(slices.Values(want), func(a, b testRule) int {
			if c := strings.Compare(a.name, b.name); c != 0 {
				return c
			}
			if a.kind != b.kind {
				return int(a.kind) - int(b.kind)
			}
			return int(a.tag) - int(b.tag)
		})
		var enc []byte
		for _, tr := range sorted {
			enc = append(enc, byte(len(tr.name)))
			enc = append(enc, tr.name...)
			enc = append(enc, byte(tr.kind))
			enc = binary.BigEndian.AppendUint32(enc, tr.tag)
		}
		if ix.Hash() != sha256.Sum256(enc) {
			t.Fatalf("round %d: Hash differs from the documented encoding of the distinct rules", round)
		}
	}
}

func FuzzIndexLookup(f *testing.F) {
	f.Add("deepseek.com\n*chat.deepseek.com\n=exact.example", "chat.DeepSeek.com.")
	f.Add("a.b\n=a.b\n*a.b\na.b", "x.a.b")
	f.Add("COM.\n\n.", "..com")
	f.Fuzz(func(t *testing.T, list, q string) {
		var rules []testRule
		for i, line := range strings.Split(list, "\n") {
			kind := Suffix
			if line != "" {
				switch line[0] {
				case '=':
					kind, line = Exact, line[1:]
				case '*':
					kind, line = Below, line[1:]
				}
			}
			rules = append(rules, testRule{name: line, kind: kind, tag: uint32(i % 3)})
		}
		ix, ref := buildIndex(rules), newNaive(rules)
		got, want := hitStrings(ix.Lookup(q, nil)), ref.lookup(q)
		if !slices.Equal(got, want) {
			t.Fatalf("Lookup(%q) = %q, want %q", q, got, want)
		}
		for _, r := range rules {
			for _, h := range ix.Lookup(r.name, nil) {
				if h.Depth != 0 && h.Kind == Exact {
					t.Fatalf("exact hit at depth %d", h.Depth)
				}
			}
		}
	})
}

// TestIndexMillion builds the index of a generated 1,000,000-line list
// and finds every name in it, at depth 0 and 1.
func TestIndexMillion(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("1M rules: skipped with -short and -race")
	}
	const n = 1_000_000
	data := genDomains(n)
	ix := parseBuild(data, 0)
	if ix.Len() != n {
		t.Fatalf("Len %d, want %d", ix.Len(), n)
	}
	var a [4]Hit
	i := 0
	ix.Each(func(name string, kind Kind, tag uint32) bool {
		q := name
		if i%2 == 1 {
			q = "x." + strings.ToUpper(name)
		}
		hits := ix.Lookup(q, a[:0])
		if len(hits) != 1 || hits[0].Name != name || hits[0].Depth != i%2 {
			t.Fatalf("Lookup(%q) = %+v", q, hits)
		}
		i++
		return true
	})
	if i != n {
		t.Fatalf("Each visited %d rules", i)
	}
	if hits := ix.Lookup("not-in-the-list.example.com", a[:0]); len(hits) != 0 {
		t.Errorf("unexpected hits %v", hits)
	}
}

// TestIndexConcurrent runs lookups, Each and Hash from several goroutines
// (for the race detector: the index is read-only once built).
func TestIndexConcurrent(t *testing.T) {
	want := buildIndex(indexRules).Hash()
	ix := buildIndex(indexRules) // Hash not computed yet: the goroutines race for it
	done := make(chan [32]byte)
	for range 4 {
		go func() {
			var h [32]byte
			for range 200 {
				h = ix.Hash()
				var a [8]Hit
				if n := len(ix.Lookup("chat.deepseek.com", a[:0])); n != 3 {
					t.Errorf("%d hits, want 3", n)
				}
				ix.Each(func(string, Kind, uint32) bool { return true })
			}
			done <- h
		}()
	}
	for range 4 {
		if h := <-done; h != want {
			t.Errorf("hash differs under concurrency")
		}
	}
}

// TestIndexLookupDeepNames checks names with more label suffixes to probe
// than Lookup probes together (lookupBatch): every suffix of a 20-label
// name is a rule, of one kind or another, and the hits of every query
// deeper than that still come complete and in order.
func TestIndexLookupDeepNames(t *testing.T) {
	r := rand.New(rand.NewPCG(19, 23))
	labels := make([]string, 20)
	for i := range labels {
		labels[i] = fmt.Sprintf("l%d", i)
	}
	var rules []testRule
	for i := range labels {
		rules = append(rules, testRule{name: strings.Join(labels[i:], "."), kind: Kind(i % 3), tag: uint32(i)})
	}
	ix, ref := buildIndex(rules), newNaive(rules)
	for depth := 1; depth <= 4*lookupBatch; depth++ {
		parts := make([]string, depth)
		for i := range parts {
			parts[i] = labels[max(len(labels)-depth+i, 0)]
			if i < depth-len(labels) {
				parts[i] = fmt.Sprintf("x%d", i)
			}
		}
		q := randomCase(r, strings.Join(parts, "."))
		got, want := hitStrings(ix.Lookup(q, nil)), ref.lookup(q)
		if len(want) == 0 || !slices.Equal(got, want) {
			t.Fatalf("Lookup(%q) = %q, want %q", q, got, want)
		}
	}
}

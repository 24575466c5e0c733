package blocklists

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/netip"
	"strings"
)

// Guards are the checks a list must pass before its rules are used: a
// list that fails one is rejected as a whole, and its caller keeps the last
// good copy. Load checks each of them, once, on the one parse of the list.
type Guards struct {
	// SHA256 pins the list's bytes: the hex SHA-256 (either case) they
	// must have. Empty: no pin.
	SHA256 string
	// AllowEmpty accepts a list without rules. Otherwise such a list is
	// rejected: a file truncated to 0 bytes, or an empty download, would
	// silently stop the blocking.
	AllowEmpty bool
	// MinEntries rejects a list with fewer rules.
	MinEntries int
	// MaxShrink, strictly between 0 and 1, rejects a list that has lost
	// more than this share of the rules of the last good copy (the
	// baseline passed to Load); 0, 1 or more turn it off.
	MaxShrink float64
	// MustContain holds names the list must block, such as
	// "deepseek.com": each must be covered by a rule of the list that is
	// not an exception (Action Allow).
	MustContain []string
}

// GuardError is a list refused by one of its Guards.
type GuardError struct {
	// Guard names the guard as the configuration does: "sha256",
	// "allow_empty", "min_entries", "max_shrink" or "must_contain".
	Guard string
	// Reason says what failed, e.g. "3 entries, fewer than min_entries 5".
	Reason string
}

// Error returns the reason.
func (e *GuardError) Error() string { return e.Reason }

// Loaded is a list read by Load: its rules, what the parser counted and the
// SHA-256 of its bytes.
type Loaded struct {
	// Rules are the rules of the list, in source order (nil from
	// LoadEach).
	Rules *Rules
	// Stats are the parser's counts and first bad lines.
	Stats Stats
	// SHA256 is the hex SHA-256 of the bytes read.
	SHA256 string
}

// NoBaseline, as the baseline of Load, says there is no last good copy to
// compare with: MaxShrink does not apply.
const NoBaseline = -1

// Load reads one list from r, parses it once in opts.Format (keeping its
// rules) and checks the guards, each once, in this order: the sha256 pin,
// allow_empty, min_entries, max_shrink against baseline (the rule count of
// the last good copy of this list, or NoBaseline) and must_contain.
//
// The error is a parse error (a read error, or a *RejectedError for a list
// with too many bad lines; both name the source) or a *GuardError. The
// Loaded is returned with it too, for its Stats and SHA256 (and the rules
// parsed so far, for the record), but its rules must not be enforced then. A must_contain name that is not a valid name
// fails before anything is read (the Loaded is then nil).
func Load(r io.Reader, opts ParseOptions, g Guards, baseline int) (*Loaded, error) {
	rs := &Rules{}
	l, err := LoadEach(r, opts, g, baseline, rs.Add)
	if l != nil {
		l.Rules = rs
	}
	return l, err
}

// LoadEach is Load that keeps no rules: it passes each rule to fn as the
// parser reads it (Rule.Name is valid only during the call, as with Parse)
// and returns a Loaded without Rules. The guards are known only at the
// end: a caller that builds from the rules as they come must be able to
// drop them when LoadEach then fails. The policy builder loads local lists
// so, into its index: a 1M-name list's Rules were 40 MB allocated at every
// start and reload, used once.
func LoadEach(r io.Reader, opts ParseOptions, g Guards, baseline int, fn func(Rule)) (*Loaded, error) {
	must := make([]string, 0, len(g.MustContain))
	for _, m := range g.MustContain {
		c, err := Canonical(m)
		if err != nil {
			return nil, fmt.Errorf("must_contain %q: %v", m, err)
		}
		must = append(must, c)
	}
	h := sha256.New()
	found := make([]bool, len(must))
	stats, err := Parse(io.TeeReader(r, h), opts, func(rule Rule) {
		fn(rule)
		if rule.Action == Allow {
			return
		}
		for i, m := range must {
			if !found[i] && covers(rule.Name, rule.Kind, m) {
				found[i] = true
			}
		}
	})
	l := &Loaded{Stats: stats, SHA256: hex.EncodeToString(h.Sum(nil))}
	if err != nil {
		return l, err
	}
	n := stats.Rules
	fail := func(guard, format string, args ...any) (*Loaded, error) {
		return l, &GuardError{Guard: guard, Reason: fmt.Sprintf(format, args...)}
	}
	if pin := strings.ToLower(strings.TrimSpace(g.SHA256)); pin != "" && pin != l.SHA256 {
		return fail("sha256", "sha256 %s does not match the pinned %s", l.SHA256, pin)
	}
	if n == 0 && !g.AllowEmpty {
		return fail("allow_empty", "no entries (an empty list is rejected unless the source sets allow_empty: true)")
	}
	if g.MinEntries > 0 && n < g.MinEntries {
		return fail("min_entries", "%d entries, fewer than min_entries %d", n, g.MinEntries)
	}
	if g.MaxShrink > 0 && g.MaxShrink < 1 && baseline > 0 && float64(n) < float64(baseline)*(1-g.MaxShrink) {
		return fail("max_shrink", "%d entries, shrunk from %d by more than max_shrink %g", n, baseline, g.MaxShrink)
	}
	for i, m := range must {
		if !found[i] {
			return fail("must_contain", "must_contain %s: not blocked by this source", m)
		}
	}
	return l, nil
}

// covers reports whether a rule (name, kind) covers the canonical name q.
func covers(name string, kind Kind, q string) bool {
	below := len(q) > len(name) && strings.HasSuffix(q, name) && q[len(q)-len(name)-1] == '.'
	switch kind {
	case Exact:
		return q == name
	case Below:
		return below
	}
	return q == name || below
}

// Rules holds parsed rules compactly: 12 bytes per rule and the names'
// bytes, in chunks of chunkRules rules, so that a list of millions of
// rules is not copied as it grows; the addresses of local-data rules are
// kept on the side.
type Rules struct {
	chunks []ruleChunk
	n      int
	addrs  map[int][]netip.Addr // by rule index
}

// chunkRules is the number of rules of a full chunk.
const chunkRules = 1 << 13

// ruleChunk holds up to chunkRules rules and their names.
type ruleChunk struct {
	names []byte
	rules []packedRule
}

type packedRule struct {
	off    uint32 // of the name in the chunk's names
	line   uint32
	n      uint8 // the name's length (at most 253)
	kind   Kind
	action Action
}

// Add appends a rule (its name copied: r.Name need not outlive the call).
func (rs *Rules) Add(r Rule) {
	k := len(rs.chunks) - 1
	if k < 0 || len(rs.chunks[k].rules) == chunkRules {
		// The first chunk grows as needed (a short list takes little);
		// the next ones are sized at once, their names as the first's
		// and an eighth more.
		var c ruleChunk
		if k >= 0 {
			first := len(rs.chunks[0].names)
			c = ruleChunk{names: make([]byte, 0, first+first/8), rules: make([]packedRule, 0, chunkRules)}
		}
		rs.chunks = append(rs.chunks, c)
		k++
	}
	c := &rs.chunks[k]
	if len(r.Addrs) > 0 {
		if rs.addrs == nil {
			rs.addrs = map[int][]netip.Addr{}
		}
		rs.addrs[rs.n] = r.Addrs
	}
	// A canonical name has at most 253 bytes, and a chunk's names fit a
	// uint32 by far; a line number beyond it is clamped.
	line := uint32(min(max(r.Line, 0), 1<<32-1))
	c.rules = append(c.rules, packedRule{off: uint32(len(c.names)), line: line, n: uint8(min(len(r.Name), 255)), kind: r.Kind, action: r.Action})
	c.names = append(c.names, r.Name...)
	rs.n++
}

// Len is the number of rules.
func (rs *Rules) Len() int {
	if rs == nil {
		return 0
	}
	return rs.n
}

// Each calls fn for every rule, in source order. As with Parse, Rule.Name
// is valid only during the call; Rule.Addrs may be kept.
func (rs *Rules) Each(fn func(Rule)) {
	if rs == nil {
		return
	}
	i := 0
	for _, c := range rs.chunks {
		for _, p := range c.rules {
			name := c.names[p.off : p.off+uint32(p.n)]
			fn(Rule{Name: tmpString(name), Kind: p.kind, Action: p.action, Addrs: rs.addrs[i], Line: int(p.line)})
			i++
		}
	}
}

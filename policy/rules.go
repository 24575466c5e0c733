package policy

import (
	"slices"

	"github.com/jurisdns/jurisdns/blocklists"
)

// ruleTable holds what the policy keeps per indexed rule; a rule's Tag in
// the index is its position in the table. It costs 4 bytes a rule: the
// line and action packed in a uint32, in chunks of ruleChunkLen so that the
// table grows without copying (a million rules would otherwise leave some
// 20 MB of discarded arrays behind). The jurisdiction and source come from
// tagRanges, since every source's rules get consecutive tags.
type ruleTable struct {
	packed [][]uint32 // line<<actionBits | action; full chunks, then the last one
	n      int
	ranges []tagRange
}

const (
	ruleChunkBits = 16
	ruleChunkLen  = 1 << ruleChunkBits // 256 KiB
	ruleChunkMask = ruleChunkLen - 1
)

// tagRange gives the jurisdiction and source of the tags from first up
// to the next range.
type tagRange struct {
	first uint32
	jur   uint16
	src   uint16 // index in Jurisdiction.Sources, or srcAllow
	dead  bool   // the source failed after its rules were indexed
}

// ruleMeta is one rule's metadata, unpacked.
type ruleMeta struct {
	line   uint32
	jur    uint16
	src    uint16
	action blocklists.Action
	dead   bool
	active bool // set by newEval: the jurisdiction is active at the query time
}

const (
	actionBits = 3
	actionMask = 1<<actionBits - 1
	maxLine    = 1<<(32-actionBits) - 1
)

// push adds a rule and returns its tag.
func (t *ruleTable) push(jur, src uint16, line int, act blocklists.Action) uint32 {
	tag := uint32(t.n)
	if n := len(t.ranges); n == 0 || t.ranges[n-1].jur != jur || t.ranges[n-1].src != src || t.ranges[n-1].dead {
		t.ranges = append(t.ranges, tagRange{first: tag, jur: jur, src: src})
	}
	line = max(0, min(line, maxLine))
	last := len(t.packed) - 1
	switch {
	case last < 0: // the first chunk starts small and grows: most policies are small
		t.packed = [][]uint32{make([]uint32, 0, 64)}
		last = 0
	case len(t.packed[last]) == ruleChunkLen:
		t.packed = append(t.packed, make([]uint32, 0, ruleChunkLen))
		last++
	}
	t.packed[last] = append(t.packed[last], uint32(line)<<actionBits|uint32(act&actionMask))
	t.n++
	return tag
}

// kill marks the rules with tags in [first, end) as dead. They must be
// the whole of the last ranges (one source's rules).
func (t *ruleTable) kill(first, end int) {
	if first == end {
		return
	}
	for i := len(t.ranges) - 1; i >= 0 && int(t.ranges[i].first) >= first; i-- {
		t.ranges[i].dead = true
	}
}

// len returns the number of rules.
func (t *ruleTable) len() int { return t.n }

// get returns the metadata of the rule with the given tag.
func (t *ruleTable) get(tag uint32) ruleMeta {
	// The last range whose first tag is <= tag.
	lo, hi := 0, len(t.ranges)
	for hi-lo > 1 {
		mid := int(uint(lo+hi) >> 1)
		if t.ranges[mid].first <= tag {
			lo = mid
		} else {
			hi = mid
		}
	}
	r := &t.ranges[lo]
	p := t.packed[tag>>ruleChunkBits][tag&ruleChunkMask]
	return ruleMeta{line: p >> actionBits, jur: r.jur, src: r.src, action: blocklists.Action(p & actionMask), dead: r.dead}
}

// clip drops the spare capacity of the last chunk.
func (t *ruleTable) clip() {
	if last := len(t.packed) - 1; last >= 0 && cap(t.packed[last]) > len(t.packed[last])+len(t.packed[last])/8 {
		t.packed[last] = slices.Clone(t.packed[last])
	}
}

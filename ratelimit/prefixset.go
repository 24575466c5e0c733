package ratelimit

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// PrefixSet is an immutable set of IP prefixes, built for fast membership
// tests on the query path (the access.allow ACL, the rate-limit exemptions).
//
// The prefixes of each family are kept as sorted, merged, non-overlapping
// address ranges, so Contains is a binary search: about 5 ns for IPv4 and
// 11 for IPv6 from a handful of prefixes to thousands, with no allocation.
//
// IPv4-mapped IPv6 addresses are treated as IPv4, both in the set (a prefix
// of ::ffff:0:0/96 or longer becomes the IPv4 prefix it denotes) and in
// Contains. Zones are ignored: fe80::1%eth0 is in fe80::/10. An IPv6 prefix
// never contains an IPv4 address (::/0 does not match 192.0.2.1), as with
// netip.Prefix.Contains. A nil *PrefixSet is empty.
type PrefixSet struct {
	v4lo, v4hi []uint32 // range i is [v4lo[i], v4hi[i]], sorted, disjoint, non-adjacent
	v6lo, v6hi []u128
	n          int // prefixes given (valid ones), for String
}

// u128 is an IPv6 address as a number.
type u128 struct{ hi, lo uint64 }

func (a u128) less(b u128) bool { return a.hi < b.hi || a.hi == b.hi && a.lo < b.lo }

func (a u128) lessEq(b u128) bool { return a.hi < b.hi || a.hi == b.hi && a.lo <= b.lo }

// next returns a+1 and whether it did not wrap.
func (a u128) next() (u128, bool) {
	if a.lo == ^uint64(0) {
		return u128{a.hi + 1, 0}, a.hi != ^uint64(0)
	}
	return u128{a.hi, a.lo + 1}, true
}

func u128From(a netip.Addr) u128 {
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

// mask128 returns the netmask of a /bits IPv6 prefix.
func mask128(bits int) u128 {
	switch {
	case bits <= 0:
		return u128{}
	case bits < 64:
		return u128{^uint64(0) << (64 - bits), 0}
	case bits < 128:
		return u128{^uint64(0), ^uint64(0) << (128 - bits)}
	default:
		return u128{^uint64(0), ^uint64(0)}
	}
}

// mask32 returns the netmask of a /bits IPv4 prefix.
func mask32(bits int) uint32 {
	if bits <= 0 {
		return 0
	}
	if bits >= 32 {
		return ^uint32(0)
	}
	return ^uint32(0) << (32 - bits)
}

// NewPrefixSet returns the set of the given prefixes. Invalid (zero)
// prefixes are ignored; host bits are ignored (10.1.2.3/8 is 10.0.0.0/8).
// ps is not retained.
func NewPrefixSet(ps []netip.Prefix) *PrefixSet {
	type r4 struct{ lo, hi uint32 }
	type r6 struct{ lo, hi u128 }
	var v4 []r4
	var v6 []r6
	s := &PrefixSet{}
	for _, p := range ps {
		if !p.IsValid() {
			continue
		}
		s.n++
		a, bits := p.Addr(), p.Bits()
		if a.Is4In6() && bits >= 96 {
			a, bits = a.Unmap(), bits-96
		}
		if a.Is4() {
			b := a.As4()
			m := mask32(bits)
			lo := binary.BigEndian.Uint32(b[:]) & m
			v4 = append(v4, r4{lo, lo | ^m})
			continue
		}
		x, m := u128From(a), mask128(bits)
		lo := u128{x.hi & m.hi, x.lo & m.lo}
		v6 = append(v6, r6{lo, u128{lo.hi | ^m.hi, lo.lo | ^m.lo}})
	}
	slices.SortFunc(v4, func(a, b r4) int {
		switch {
		case a.lo < b.lo:
			return -1
		case a.lo > b.lo:
			return 1
		}
		return 0
	})
	for _, r := range v4 {
		if k := len(s.v4lo) - 1; k >= 0 && (s.v4hi[k] == ^uint32(0) || r.lo <= s.v4hi[k]+1) {
			s.v4hi[k] = max(s.v4hi[k], r.hi)
			continue
		}
		s.v4lo = append(s.v4lo, r.lo)
		s.v4hi = append(s.v4hi, r.hi)
	}
	slices.SortFunc(v6, func(a, b r6) int {
		switch {
		case a.lo.less(b.lo):
			return -1
		case b.lo.less(a.lo):
			return 1
		}
		return 0
	})
	for _, r := range v6 {
		if k := len(s.v6lo) - 1; k >= 0 {
			if n, ok := s.v6hi[k].next(); !ok || r.lo.lessEq(n) {
				if s.v6hi[k].less(r.hi) {
					s.v6hi[k] = r.hi
				}
				continue
			}
		}
		s.v6lo = append(s.v6lo, r.lo)
		s.v6hi = append(s.v6hi, r.hi)
	}
	return s
}

// Contains reports whether addr is in one of the set's prefixes. It is
// safe for concurrent use and does not allocate.
func (s *PrefixSet) Contains(addr netip.Addr) bool {
	if s == nil {
		return false
	}
	return s.contains(addr.Unmap())
}

// contains is Contains for an address already unmapped.
func (s *PrefixSet) contains(a netip.Addr) bool {
	if a.Is4() {
		if len(s.v4lo) == 0 {
			return false
		}
		b := a.As4()
		x := binary.BigEndian.Uint32(b[:])
		// i = number of ranges starting at or below x.
		i, j := 0, len(s.v4lo)
		for i < j {
			h := int(uint(i+j) >> 1)
			if s.v4lo[h] <= x {
				i = h + 1
			} else {
				j = h
			}
		}
		return i > 0 && x <= s.v4hi[i-1]
	}
	if !a.Is6() || len(s.v6lo) == 0 {
		return false
	}
	x := u128From(a)
	i, j := 0, len(s.v6lo)
	for i < j {
		h := int(uint(i+j) >> 1)
		if s.v6lo[h].lessEq(x) {
			i = h + 1
		} else {
			j = h
		}
	}
	return i > 0 && x.lessEq(s.v6hi[i-1])
}

// Empty reports whether the set contains no address.
func (s *PrefixSet) Empty() bool {
	return s == nil || len(s.v4lo) == 0 && len(s.v6lo) == 0
}

// String describes the set for logs: the number of prefixes given and of
// the merged ranges they became.
func (s *PrefixSet) String() string {
	if s == nil {
		return "PrefixSet(empty)"
	}
	return fmt.Sprintf("PrefixSet(%d prefixes, %d IPv4 and %d IPv6 ranges)", s.n, len(s.v4lo), len(s.v6lo))
}

// ParsePrefixes parses CIDR prefixes as written in the configuration
// ("10.0.0.0/8", "fc00::/7"); a bare address ("192.0.2.1", "::1") means
// that one host. Host bits are cleared. The error names the first bad
// entry by its index.
func ParsePrefixes(ss []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(ss))
	for i, s := range ss {
		s = strings.TrimSpace(s)
		var p netip.Prefix
		if strings.Contains(s, "/") {
			var err error
			if p, err = netip.ParsePrefix(s); err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
		} else {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			if a.Zone() != "" {
				return nil, fmt.Errorf("[%d]: %q: zones are not allowed", i, s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

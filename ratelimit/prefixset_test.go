package ratelimit

import (
	"math/rand/v2"
	"net/netip"
	"strconv"
	"testing"
)

// naiveContains is the reference for PrefixSet.Contains: a linear scan with
// netip.Prefix.Contains, mapped addresses and long mapped prefixes taken as
// IPv4, zones ignored.
func naiveContains(ps []netip.Prefix, a netip.Addr) bool {
	a = a.Unmap().WithZone("")
	for _, p := range ps {
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		if p.Masked().Contains(a) {
			return true
		}
	}
	return false
}

func TestPrefixSetContains(t *testing.T) {
	defaults := []string{"127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"}
	tests := []struct {
		name     string
		prefixes []string
		in, out  []string
	}{
		{
			name:     "default access.allow",
			prefixes: defaults,
			in:       []string{"127.0.0.1", "127.255.255.255", "::1", "10.0.0.0", "10.255.255.255", "172.16.0.1", "172.31.255.255", "192.168.1.1", "fc00::1", "fdff:ffff::1", "::ffff:10.1.2.3", "::ffff:127.0.0.1"},
			out:      []string{"8.8.8.8", "9.255.255.255", "11.0.0.0", "172.15.255.255", "172.32.0.0", "192.169.0.0", "::2", "::", "fe00::1", "2001:db8::1", "::ffff:8.8.8.8", "0.0.0.0", "255.255.255.255"},
		},
		{
			name:     "everything v4, nothing v6",
			prefixes: []string{"0.0.0.0/0"},
			in:       []string{"0.0.0.0", "255.255.255.255", "::ffff:1.2.3.4"},
			out:      []string{"::", "::1.2.3.4", "2001:db8::1"},
		},
		{
			name:     "::/0 holds no IPv4",
			prefixes: []string{"::/0"},
			in:       []string{"::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "::1.2.3.4"},
			out:      []string{"1.2.3.4", "::ffff:1.2.3.4"},
		},
		{
			name:     "mapped prefix is IPv4",
			prefixes: []string{"::ffff:192.0.2.0/120"},
			in:       []string{"192.0.2.1", "::ffff:192.0.2.255"},
			out:      []string{"192.0.3.1", "::192.0.2.1"},
		},
		{
			name:     "adjacent and overlapping merge",
			prefixes: []string{"10.0.0.0/25", "10.0.0.128/25", "10.0.0.64/26", "10.0.1.0/24", "2001:db8::/33", "2001:db8:8000::/33", "2001:db8::/48"},
			in:       []string{"10.0.0.0", "10.0.0.127", "10.0.0.128", "10.0.1.255", "2001:db8:ffff::1", "2001:db8::1"},
			out:      []string{"9.255.255.255", "10.0.2.0", "2001:db9::", "2001:db7:ffff::1"},
		},
		{
			name:     "host bits ignored, hosts, edges",
			prefixes: []string{"10.1.2.3/8", "255.255.255.255/32", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128", "0.0.0.0/32"},
			in:       []string{"10.200.0.1", "255.255.255.255", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "0.0.0.0"},
			out:      []string{"11.0.0.0", "255.255.255.254", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", "0.0.0.1"},
		},
		{
			name:     "zones ignored",
			prefixes: []string{"fe80::/10"},
			in:       []string{"fe80::1%eth0", "febf::1"},
			out:      []string{"fec0::1%eth0"},
		},
		{
			name: "empty",
			out:  []string{"0.0.0.0", "::", "127.0.0.1"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ps, err := ParsePrefixes(tc.prefixes)
			if err != nil {
				t.Fatal(err)
			}
			s := NewPrefixSet(ps)
			for _, a := range tc.in {
				if !s.Contains(netip.MustParseAddr(a)) {
					t.Errorf("Contains(%s) = false, want true", a)
				}
			}
			for _, a := range tc.out {
				if s.Contains(netip.MustParseAddr(a)) {
					t.Errorf("Contains(%s) = true, want false", a)
				}
			}
			if s.Contains(netip.Addr{}) {
				t.Error("Contains(zero Addr) = true")
			}
			if s.Empty() != (len(tc.prefixes) == 0) {
				t.Errorf("Empty() = %v", s.Empty())
			}
		})
	}
	var nilSet *PrefixSet
	if nilSet.Contains(netip.MustParseAddr("127.0.0.1")) || !nilSet.Empty() || nilSet.String() == "" {
		t.Error("nil set is not empty")
	}
}

// randPrefix returns a prefix likely to overlap others: addresses come from
// a few bases, lengths cluster around the bases' size.
func randPrefix(r *rand.Rand) netip.Prefix {
	switch r.IntN(3) {
	case 0:
		b := [4]byte{10, byte(r.IntN(4)), byte(r.IntN(256)), byte(r.IntN(256))}
		return netip.PrefixFrom(netip.AddrFrom4(b), 8+r.IntN(25)).Masked()
	case 1:
		var b [16]byte
		b[0], b[1], b[2] = 0x20, 0x01, byte(r.IntN(4))
		b[3], b[7], b[15] = byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))
		return netip.PrefixFrom(netip.AddrFrom16(b), 16+r.IntN(113)).Masked()
	default: // unmasked, mapped, or short
		b := [4]byte{byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))}
		a := netip.AddrFrom4(b)
		if r.IntN(2) == 0 {
			return netip.PrefixFrom(netip.AddrFrom16(a.As16()), 96+r.IntN(33))
		}
		return netip.PrefixFrom(a, r.IntN(33))
	}
}

// probes returns addresses at and around the edges of p, and inside it.
func probes(r *rand.Rand, p netip.Prefix) []netip.Addr {
	lo := p.Masked().Addr()
	hi := lo
	for b := p.Bits(); b < lo.BitLen(); b++ { // set the host bits
		s := hi.AsSlice()
		s[b/8] |= 0x80 >> (b % 8)
		hi, _ = netip.AddrFromSlice(s)
	}
	out := []netip.Addr{lo, hi, lo.Prev(), hi.Next()}
	mid := lo.AsSlice()
	for b := p.Bits(); b < lo.BitLen(); b++ {
		if r.IntN(2) == 0 {
			mid[b/8] |= 0x80 >> (b % 8)
		}
	}
	m, _ := netip.AddrFromSlice(mid)
	out = append(out, m)
	if lo.Is4() {
		out = append(out, netip.AddrFrom16(lo.As16()))
	}
	return out
}

func TestPrefixSetMatchesLinearScan(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 5))
	rounds := 300
	if raceEnabled {
		rounds = 60
	}
	for round := range rounds {
		ps := make([]netip.Prefix, r.IntN(300))
		for i := range ps {
			ps[i] = randPrefix(r)
		}
		s := NewPrefixSet(ps)
		var addrs []netip.Addr
		for i := range 50 {
			addrs = append(addrs, probes(r, randPrefix(r))...)
			if len(ps) > 0 {
				addrs = append(addrs, probes(r, ps[(i*7919)%len(ps)])...)
			}
		}
		for _, a := range addrs {
			if !a.IsValid() {
				continue
			}
			if got, want := s.Contains(a), naiveContains(ps, a); got != want {
				t.Fatalf("round %d, %d prefixes: Contains(%v) = %v, linear scan says %v", round, len(ps), a, got, want)
			}
		}
	}
}

func FuzzPrefixSet(f *testing.F) {
	f.Add([]byte{10, 0, 0, 0, 8, 192, 168, 0, 0, 16}, []byte{10, 1, 2, 3})
	f.Add([]byte{0xfc, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7}, []byte{0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, prefixes, addr []byte) {
		// prefixes: records of a 4- or 16-byte address and a length byte,
		// the family chosen by the length byte's top bit.
		var ps []netip.Prefix
		for len(prefixes) > 0 {
			n := 5
			if prefixes[0]&0x80 != 0 {
				n = 17
			}
			if len(prefixes) < n {
				break
			}
			a, _ := netip.AddrFromSlice(prefixes[:n-1])
			bits := int(prefixes[n-1]) % (a.BitLen() + 1)
			ps = append(ps, netip.PrefixFrom(a, bits))
			prefixes = prefixes[n:]
		}
		a, ok := netip.AddrFromSlice(addr)
		if !ok {
			return
		}
		if got, want := NewPrefixSet(ps).Contains(a), naiveContains(ps, a); got != want {
			t.Fatalf("Contains(%v) over %v = %v, linear scan says %v", a, ps, got, want)
		}
	})
}

func TestParsePrefixes(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		want    []string
		wantErr bool
	}{
		{name: "cidrs and hosts", in: []string{"10.0.0.0/8", " 192.0.2.1 ", "::1", "2001:db8::1/32"}, want: []string{"10.0.0.0/8", "192.0.2.1/32", "::1/128", "2001:db8::/32"}},
		{name: "bad cidr", in: []string{"10.0.0.0/8", "10.0.0.0/33"}, wantErr: true},
		{name: "bad address", in: []string{"example.com"}, wantErr: true},
		{name: "zone", in: []string{"fe80::1%eth0"}, wantErr: true},
		{name: "none", in: nil, want: []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParsePrefixes(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i].String() != tc.want[i] {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestContainsAllocs(t *testing.T) {
	ps, _ := ParsePrefixes([]string{"127.0.0.0/8", "::1/128", "10.0.0.0/8", "fc00::/7"})
	s := NewPrefixSet(ps)
	for _, a := range []string{"10.1.1.1", "8.8.8.8", "::ffff:10.0.0.1", "fd00::1", "2001:db8::1"} {
		addr := netip.MustParseAddr(a)
		if n := testing.AllocsPerRun(1000, func() { s.Contains(addr) }); n != 0 {
			t.Fatalf("Contains(%s): %v allocs per run", a, n)
		}
	}
}

func BenchmarkContains(b *testing.B) {
	r := rand.New(rand.NewPCG(6, 7))
	defaults, _ := ParsePrefixes([]string{"127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"})
	sets := []struct {
		name string
		ps   []netip.Prefix
	}{
		{name: "default-acl", ps: defaults},
	}
	for _, n := range []int{100, 1000} {
		ps := make([]netip.Prefix, n)
		for i := range ps {
			ps[i] = randPrefix(r)
		}
		sets = append(sets, struct {
			name string
			ps   []netip.Prefix
		}{name: "random" + strconv.Itoa(n), ps: ps})
	}
	addrs := []struct{ name, addr string }{{"v4", "192.168.7.9"}, {"v4-miss", "8.8.8.8"}, {"v6", "fd12:3456::1"}}
	for _, set := range sets {
		s := NewPrefixSet(set.ps)
		for _, a := range addrs {
			addr := netip.MustParseAddr(a.addr)
			b.Run(set.name+"/"+a.name, func(b *testing.B) {
				for b.Loop() {
					s.Contains(addr)
				}
			})
		}
	}
	b.Run("linear-default-acl/v4-miss", func(b *testing.B) {
		addr := netip.MustParseAddr("8.8.8.8")
		for b.Loop() {
			for _, p := range defaults {
				if p.Contains(addr) {
					break
				}
			}
		}
	})
}

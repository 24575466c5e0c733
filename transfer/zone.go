// Package transfer keeps RPZ zones pulled from primaries by zone transfer
// (RFC 5936 AXFR, RFC 1995 IXFR, RFC 1996 NOTIFY, RFC 8945 TSIG), with the
// wire work done by miekg/dns (dns.Transfer). A Feed holds one zone: the
// last good copy in memory and in the cache directory, the SOA timers, and
// the changes of each update for the policy to apply as a delta.
//
// transfer does not import config/ or policy/: the caller maps its
// configuration to Options and turns a zone's text into rules.
package transfer

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// Zone is one version of an RPZ zone: its SOA and its other records by
// owner. It is not safe for concurrent use; a Feed guards its own.
type Zone struct {
	// Origin is the zone's name, lower case and fully qualified.
	Origin string
	// SOA is the apex SOA.
	SOA *dns.SOA
	rrs map[string][]dns.RR // lower-case owner → records (apex SOA left out)
	n   int
}

// NewZone returns an empty zone named origin with the SOA soa.
func NewZone(origin string, soa *dns.SOA) *Zone {
	return &Zone{Origin: canonical(origin), SOA: soa, rrs: map[string][]dns.RR{}}
}

// Serial returns the SOA serial.
func (z *Zone) Serial() uint32 { return z.SOA.Serial }

// Len returns the number of records besides the apex SOA.
func (z *Zone) Len() int { return z.n }

func canonical(name string) string { return dns.CanonicalName(name) }

// check reports a record jurisdns does not accept in the zone: one outside
// it, of another class, or a second SOA.
func (z *Zone) check(rr dns.RR) error {
	h := rr.Header()
	if h.Class != dns.ClassINET {
		return fmt.Errorf("record %q: class %s", h.Name, dns.Class(h.Class))
	}
	if !dns.IsSubDomain(z.Origin, canonical(h.Name)) {
		return fmt.Errorf("record %q is not in zone %s", h.Name, z.Origin)
	}
	if h.Rrtype == dns.TypeSOA {
		return fmt.Errorf("a second SOA at %q", h.Name)
	}
	if emptyRdata(rr) {
		return fmt.Errorf("record %q %s without data", h.Name, dns.TypeToString[h.Rrtype])
	}
	return nil
}

// emptyRdata reports a record without data (which miekg/dns accepts, for
// dynamic updates, but a zone cannot hold).
func emptyRdata(rr dns.RR) bool {
	switch r := rr.(type) {
	case *dns.CNAME:
		return r.Target == ""
	case *dns.A:
		return len(r.A) == 0
	case *dns.AAAA:
		return len(r.AAAA) == 0
	}
	return len(rr.String()) <= len(rr.Header().String())
}

// add adds rr unless the zone has it; it reports whether it did.
func (z *Zone) add(rr dns.RR) bool {
	owner := canonical(rr.Header().Name)
	for _, x := range z.rrs[owner] {
		if dns.IsDuplicate(x, rr) {
			return false
		}
	}
	z.rrs[owner] = append(z.rrs[owner], rr)
	z.n++
	return true
}

// remove removes rr; it reports whether the zone had it.
func (z *Zone) remove(rr dns.RR) bool {
	owner := canonical(rr.Header().Name)
	list := z.rrs[owner]
	for i, x := range list {
		if dns.IsDuplicate(x, rr) {
			list = append(list[:i:i], list[i+1:]...)
			if len(list) == 0 {
				delete(z.rrs, owner)
			} else {
				z.rrs[owner] = list
			}
			z.n--
			return true
		}
	}
	return false
}

// Owners returns the number of owner names with records.
func (z *Zone) Owners() int { return len(z.rrs) }

// WriteTo writes the zone as a zone file: $ORIGIN, the SOA, then every
// record, one a line, in miekg/dns presentation format.
func (z *Zone) WriteTo(w io.Writer) (int64, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	var n int64
	c, _ := fmt.Fprintf(bw, "$ORIGIN %s\n%s\n", z.Origin, z.SOA.String())
	n += int64(c)
	owners := make([]string, 0, len(z.rrs))
	for o := range z.rrs {
		owners = append(owners, o)
	}
	slices.Sort(owners) // the same zone gives the same file
	for _, o := range owners {
		for _, rr := range z.rrs[o] {
			c, _ := bw.WriteString(rr.String())
			_ = bw.WriteByte('\n')
			n += int64(c) + 1
		}
	}
	return n, bw.Flush()
}

// AppendOwners appends the zone file text of the records of the given
// owners ($ORIGIN and SOA first, so that it parses alone) to b.
func (z *Zone) AppendOwners(b []byte, owners []string) []byte {
	b = fmt.Appendf(b, "$ORIGIN %s\n%s\n", z.Origin, z.SOA.String())
	for _, o := range owners {
		for _, rr := range z.rrs[o] {
			b = append(b, rr.String()...)
			b = append(b, '\n')
		}
	}
	return b
}

// clone returns a copy that shares the records (they are never modified).
func (z *Zone) clone() *Zone {
	c := &Zone{Origin: z.Origin, SOA: z.SOA, rrs: make(map[string][]dns.RR, len(z.rrs)), n: z.n}
	for k, v := range z.rrs {
		c.rrs[k] = v
	}
	return c
}

// ReadZone reads a zone file written by WriteTo (the cache). Its first
// record must be the SOA of origin.
func ReadZone(r io.Reader, origin string) (*Zone, error) {
	origin = canonical(origin)
	zp := dns.NewZoneParser(r, origin, "")
	var z *Zone
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		if z == nil {
			soa, isSOA := rr.(*dns.SOA)
			if !isSOA || canonical(soa.Hdr.Name) != origin {
				return nil, fmt.Errorf("first record is %s %s, not the SOA of %s",
					rr.Header().Name, dns.TypeToString[rr.Header().Rrtype], origin)
			}
			z = NewZone(origin, soa)
			continue
		}
		if err := z.check(rr); err != nil {
			return nil, err
		}
		z.add(rr)
	}
	if err := zp.Err(); err != nil {
		return nil, err
	}
	if z == nil {
		return nil, errors.New("no SOA")
	}
	return z, nil
}

// cachePath is the file of a feed in dir.
func cachePath(dir, name string) string {
	var b strings.Builder
	for _, c := range name {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
			b.WriteRune(c)
		default:
			b.WriteByte('_')
		}
	}
	return filepath.Join(dir, "rpz-"+b.String()+".zone")
}

// writeCache stores z in path atomically (a temporary file renamed).
func writeCache(path string, z *Zone) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".rpz-*")
	if err != nil {
		return err
	}
	_, err = z.WriteTo(tmp)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
	}
	return err
}

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
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// Zone is one version of an RPZ zone: its SOA and its other records by
// owner. It is not safe for concurrent use; a Feed guards its own.
//
// The records are kept as text, not as dns.RR values: per owner, the lines
// "TTL\tIN\tTYPE\tRDATA\n" of its records, and the same text (most owners
// of an RPZ zone have one "CNAME ." record) is stored once. That is about
// 70 bytes a record against some 170 as dns.RR, for a zone that may hold a
// million names besides the policy's own index.
type Zone struct {
	// Origin is the zone's name, lower case and fully qualified.
	Origin string
	// SOA is the apex SOA.
	SOA     *dns.SOA
	rrs     map[string]string // lower-case owner → its records' lines (apex SOA left out)
	n       int
	intern  map[string]string // one copy of common record texts
	scratch []byte
}

// maxIntern bounds the record texts a zone shares.
const maxIntern = 256

// NewZone returns an empty zone named origin with the SOA soa.
func NewZone(origin string, soa *dns.SOA) *Zone {
	return &Zone{Origin: canonical(origin), SOA: soa, rrs: map[string]string{}, intern: map[string]string{}}
}

// Serial returns the SOA serial.
func (z *Zone) Serial() uint32 { return z.SOA.Serial }

// Len returns the number of records besides the apex SOA.
func (z *Zone) Len() int { return z.n }

func canonical(name string) string { return dns.CanonicalName(name) }

// inZone reports whether name (canonical) is origin (canonical) or below
// it.
func inZone(name, origin string) bool {
	if origin == "." {
		return true
	}
	return name == origin || strings.HasSuffix(name, origin) && name[len(name)-len(origin)-1] == '.' &&
		(len(name)-len(origin) < 2 || name[len(name)-len(origin)-2] != '\\')
}

// check reports a record jurisdns does not accept in the zone: one outside
// it, of another class, or a second SOA.
func (z *Zone) check(rr dns.RR) error {
	h := rr.Header()
	if h.Class != dns.ClassINET {
		return fmt.Errorf("record %q: class %s", h.Name, dns.Class(h.Class))
	}
	if !inZone(canonical(h.Name), z.Origin) {
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

// rrLine is the text of rr without its owner: "TTL\tIN\tTYPE\tRDATA\n",
// as miekg/dns writes it. The common RPZ records (CNAME, A) are
// written here, and a text the zone already holds is not allocated again.
func (z *Zone) rrLine(rr dns.RR) string {
	b := z.scratch[:0]
	switch r := rr.(type) {
	case *dns.CNAME:
		b = strconv.AppendUint(b, uint64(r.Hdr.Ttl), 10)
		b = append(b, "\tIN\tCNAME\t"...)
		b = append(b, r.Target...)
	case *dns.A:
		b = strconv.AppendUint(b, uint64(r.Hdr.Ttl), 10)
		b = append(b, "\tIN\tA\t"...)
		b = append(b, r.A.String()...)
	default:
		t := rr.String()
		if i := strings.IndexByte(t, '\t'); i >= 0 {
			t = t[i+1:]
		}
		b = append(b, t...)
	}
	b = append(b, '\n')
	z.scratch = b
	if s, ok := z.intern[string(b)]; ok {
		return s
	}
	return string(b)
}

// sameRecord compares two lines without their TTLs (as dns.IsDuplicate
// does) and without case.
func sameRecord(a, b string) bool {
	_, a, _ = strings.Cut(a, "\t")
	_, b, _ = strings.Cut(b, "\t")
	return strings.EqualFold(a, b)
}

// lines calls fn with each line of an owner's text.
func eachLine(v string, fn func(line string) bool) {
	for len(v) > 0 {
		i := strings.IndexByte(v, '\n')
		if !fn(v[:i+1]) {
			return
		}
		v = v[i+1:]
	}
}

func (z *Zone) store(owner, v string) {
	if v == "" {
		delete(z.rrs, owner)
		return
	}
	if s, ok := z.intern[v]; ok {
		v = s
	} else if len(z.intern) < maxIntern && strings.Count(v, "\n") == 1 {
		z.intern[v] = v
	}
	z.rrs[owner] = v
}

// add adds rr unless the zone has it; it reports whether it did.
func (z *Zone) add(rr dns.RR) bool {
	owner := canonical(rr.Header().Name)
	line := z.rrLine(rr)
	cur := z.rrs[owner]
	dup := false
	eachLine(cur, func(l string) bool {
		dup = sameRecord(l, line)
		return !dup
	})
	if dup {
		return false
	}
	z.store(owner, cur+line)
	z.n++
	return true
}

// remove removes rr; it reports whether the zone had it.
func (z *Zone) remove(rr dns.RR) bool {
	owner := canonical(rr.Header().Name)
	line := z.rrLine(rr)
	cur := z.rrs[owner]
	var out strings.Builder
	found := false
	eachLine(cur, func(l string) bool {
		if !found && sameRecord(l, line) {
			found = true
		} else {
			out.WriteString(l)
		}
		return true
	})
	if !found {
		return false
	}
	z.store(owner, out.String())
	z.n--
	return true
}

// Owners returns the number of owner names with records.
func (z *Zone) Owners() int { return len(z.rrs) }

// appendOwner appends the zone file lines of owner's records.
func (z *Zone) appendOwner(b []byte, owner string) []byte {
	eachLine(z.rrs[owner], func(l string) bool {
		b = append(b, owner...)
		b = append(b, '\t')
		b = append(b, l...)
		return true
	})
	return b
}

// WriteTo writes the zone as a zone file: $ORIGIN, the SOA, then every
// record, one a line, in miekg/dns presentation format, owners sorted.
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
	var buf []byte
	for _, o := range owners {
		buf = z.appendOwner(buf[:0], o)
		c, _ := bw.Write(buf)
		n += int64(c)
	}
	return n, bw.Flush()
}

// AppendOwners appends the zone file text of the records of the given
// owners ($ORIGIN and SOA first, so that it parses alone) to b.
func (z *Zone) AppendOwners(b []byte, owners []string) []byte {
	b = fmt.Appendf(b, "$ORIGIN %s\n%s\n", z.Origin, z.SOA.String())
	for _, o := range owners {
		b = z.appendOwner(b, o)
	}
	return b
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

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
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/internal/dnsname"
)

// Zone is one version of an RPZ zone: its SOA and its other records by
// owner. It is not safe for concurrent use; a Feed guards its own.
//
// A feed's zone may hold a million owners besides the policy's own index
// of the same names, so it is kept compactly: one arena of entries (the
// owner without the zone's name, and its records' lines
// "TTL\tIN\tTYPE\tRDATA\n"), and an open-addressing table of arena
// offsets. The text of an owner with one common record ("60\tIN\tCNAME\t.\n"
// on nearly every owner of an RPZ zone) is stored once and referred to by
// number. An owner of a usual feed costs its name and some 10 bytes.
type Zone struct {
	// Origin is the zone's name, lower case and fully qualified.
	Origin string
	// SOA is the apex SOA.
	SOA *dns.SOA

	// arena holds the entries, in the order they were written: a flag
	// byte (entryLive, entryDead), the owner relative to Origin (uvarint
	// length, bytes), then a uvarint v: an even v is texts[v/2], an odd v
	// the length of the text that follows (v/2 bytes).
	arena   []byte
	slots   []uint32 // slotEmpty, slotGone, or slotBase + an arena offset
	live    int      // owners
	used    int      // slots not empty
	dead    int      // arena bytes of dead entries
	n       int      // records
	seed    maphash.Seed
	texts   [][]byte          // shared texts
	textIdx map[string]uint32 // text → its index in texts
	line    []byte            // scratch: a record's line
	cur     []byte            // scratch: an owner's text
}

const (
	entryLive = 0
	entryDead = 1

	slotEmpty = 0
	slotGone  = 1
	slotBase  = 2
)

// maxArena bounds a zone's arena, whose offsets are 32-bit (with room
// for the entry being written).
const maxArena = 1 << 31

// maxIntern bounds the texts a zone shares.
const maxIntern = 256

// NewZone returns an empty zone named origin with the SOA soa.
func NewZone(origin string, soa *dns.SOA) *Zone {
	return &Zone{Origin: canonical(origin), SOA: soa, seed: maphash.MakeSeed(), textIdx: map[string]uint32{}}
}

// Serial returns the SOA serial.
func (z *Zone) Serial() uint32 { return z.SOA.Serial }

// Len returns the number of records besides the apex SOA.
func (z *Zone) Len() int { return z.n }

func canonical(name string) string { return dnsname.Canonical(name) }

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
	if len(z.arena) > maxArena {
		return fmt.Errorf("zone larger than %d MiB", maxArena>>20)
	}
	if emptyRdata(rr) {
		return fmt.Errorf("record %q %s without data", h.Name, dns.TypeToString[h.Rrtype])
	}
	switch rr.(type) {
	case *dns.CNAME, *dns.A, *dns.AAAA: // written and read back by this package's own code
	default:
		// miekg/dns accepts some records whose text it cannot read back
		// (a CAA with an empty tag, from a zone file or the wire): the
		// cache file written from the zone must read back.
		if back, err := dns.NewRR(rr.String()); err != nil || back == nil {
			return fmt.Errorf("record %q %s: its text form does not read back (%v)", h.Name, dns.TypeToString[h.Rrtype], err)
		}
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

// rel is owner (canonical, in the zone) without the zone's name: what the
// arena holds.
func (z *Zone) rel(owner string) string { return owner[:len(owner)-len(z.Origin)] }

// rrLine is the text of rr without its owner: "TTL\tIN\tTYPE\tRDATA\n",
// as miekg/dns writes it; the common RPZ records (CNAME, A) are written
// here. It is valid until the next call.
func (z *Zone) rrLine(rr dns.RR) []byte {
	b := z.line[:0]
	switch r := rr.(type) {
	case *dns.CNAME:
		if !plainName(r.Target) {
			// A target with characters the zone format escapes (a quote,
			// a space, a backslash...): miekg/dns writes it.
			b = appendRdataText(b, rr)
			break
		}
		b = strconv.AppendUint(b, uint64(r.Hdr.Ttl), 10)
		b = append(b, "\tIN\tCNAME\t"...)
		b = append(b, r.Target...)
	case *dns.A:
		b = strconv.AppendUint(b, uint64(r.Hdr.Ttl), 10)
		b = append(b, "\tIN\tA\t"...)
		b = append(b, r.A.String()...)
	default:
		b = appendRdataText(b, rr)
	}
	b = append(b, '\n')
	z.line = b
	return b
}

// appendRdataText appends rr as miekg/dns writes it, without the owner.
func appendRdataText(b []byte, rr dns.RR) []byte {
	t := rr.String()
	if i := strings.IndexByte(t, '\t'); i >= 0 {
		t = t[i+1:]
	}
	return append(b, t...)
}

// plainName reports a name that the zone format writes as it is: letters,
// digits, '-', '_', '*' and dots.
func plainName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '*' || c == '.') {
			return false
		}
	}
	return true
}

// sameRecord compares two lines without their TTLs (as dns.IsDuplicate
// does) and without case.
func sameRecord(a, b []byte) bool {
	_, a, _ = bytes.Cut(a, []byte{'\t'})
	_, b, _ = bytes.Cut(b, []byte{'\t'})
	return bytes.EqualFold(a, b)
}

// eachLine calls fn with each line of an owner's text.
func eachLine(v []byte, fn func(line []byte) bool) {
	for len(v) > 0 {
		i := bytes.IndexByte(v, '\n')
		if !fn(v[:i+1]) {
			return
		}
		v = v[i+1:]
	}
}

// entry decodes the arena entry at off: whether it is live, its owner
// (relative), its text, and where the next entry starts.
func (z *Zone) entry(off int) (live bool, rel, text []byte, next int) {
	return z.entryIn(z.arena, off)
}

// entryIn is entry in the arena a.
func (z *Zone) entryIn(a []byte, off int) (live bool, rel, text []byte, next int) {
	live = a[off] == entryLive
	p := off + 1
	l, k := binary.Uvarint(a[p:])
	p += k
	rel = a[p : p+int(l)]
	p += int(l)
	v, k := binary.Uvarint(a[p:])
	p += k
	if v&1 == 0 {
		return live, rel, z.texts[v>>1], p
	}
	text = a[p : p+int(v>>1)]
	return live, rel, text, p + int(v>>1)
}

// find returns the slot of rel and whether it holds it; when it does not,
// the slot to put it in. The table has an empty slot.
func (z *Zone) find(rel string) (int, bool) {
	mask := len(z.slots) - 1
	i := int(maphash.String(z.seed, rel)) & mask
	gone := -1
	for {
		switch s := z.slots[i]; s {
		case slotEmpty:
			if gone >= 0 {
				return gone, false
			}
			return i, false
		case slotGone:
			if gone < 0 {
				gone = i
			}
		default:
			if _, r, _, _ := z.entry(int(s - slotBase)); string(r) == rel {
				return i, true
			}
		}
		i = (i + 1) & mask
	}
}

// value returns the text of owner rel ("" when it has none). It is valid
// until the zone changes.
func (z *Zone) value(rel string) []byte {
	if z.live == 0 {
		return nil
	}
	i, ok := z.find(rel)
	if !ok {
		return nil
	}
	_, _, text, _ := z.entry(int(z.slots[i] - slotBase))
	return text
}

// set makes text (not a view of the arena) the records of owner rel; an
// empty text removes the owner.
func (z *Zone) set(rel string, text []byte) {
	if (z.used+1)*4 > len(z.slots)*3 {
		z.rehash()
	}
	i, found := z.find(rel)
	if found {
		z.kill(int(z.slots[i] - slotBase))
	}
	if len(text) == 0 {
		if found {
			z.slots[i] = slotGone
			z.live--
			z.compact()
		}
		return
	}
	off := len(z.arena)
	z.arena = append(z.arena, entryLive)
	z.arena = binary.AppendUvarint(z.arena, uint64(len(rel)))
	z.arena = append(z.arena, rel...)
	idx, shared := z.textIdx[string(text)]
	if !shared && len(z.texts) < maxIntern && bytes.Count(text, []byte{'\n'}) == 1 {
		idx, shared = uint32(len(z.texts)), true
		z.texts = append(z.texts, bytes.Clone(text))
		z.textIdx[string(text)] = idx
	}
	if shared {
		z.arena = binary.AppendUvarint(z.arena, uint64(idx)<<1)
	} else {
		z.arena = binary.AppendUvarint(z.arena, uint64(len(text))<<1|1)
		z.arena = append(z.arena, text...)
	}
	if !found {
		if z.slots[i] == slotEmpty {
			z.used++
		}
		z.live++
	}
	z.slots[i] = uint32(off + slotBase)
	if found {
		z.compact()
	}
}

// kill marks the entry at off dead.
func (z *Zone) kill(off int) {
	_, _, _, next := z.entry(off)
	z.arena[off] = entryDead
	z.dead += next - off
}

// rehash rebuilds the table for the live owners, with room to grow.
func (z *Zone) rehash() {
	n := 16
	for n < (z.live+1)*2 {
		n *= 2
	}
	z.slots = make([]uint32, n)
	z.used = 0
	mask := n - 1
	for off := 0; off < len(z.arena); {
		live, rel, _, next := z.entry(off)
		if live { // names are unique: the first empty slot
			i := int(maphash.Bytes(z.seed, rel)) & mask
			for z.slots[i] != slotEmpty {
				i = (i + 1) & mask
			}
			z.slots[i] = uint32(off + slotBase)
			z.used++
		}
		off = next
	}
}

// compact drops the dead entries from the arena once they are half of it.
func (z *Zone) compact() {
	if z.dead < 64<<10 || z.dead < len(z.arena)/2 {
		return
	}
	old := z.arena
	z.arena = make([]byte, 0, len(old)-z.dead+len(old)/8)
	for off := 0; off < len(old); {
		_, _, _, next := z.entryIn(old, off)
		if old[off] == entryLive {
			z.arena = append(z.arena, old[off:next]...)
		}
		off = next
	}
	z.dead = 0
	z.rehash()
}

// add adds rr (in the zone) unless the zone has it; it reports whether it
// did.
func (z *Zone) add(rr dns.RR) bool {
	rel := z.rel(canonical(rr.Header().Name))
	line := z.rrLine(rr)
	cur := z.value(rel)
	dup := false
	eachLine(cur, func(l []byte) bool {
		dup = sameRecord(l, line)
		return !dup
	})
	if dup {
		return false
	}
	z.cur = append(append(z.cur[:0], cur...), line...)
	z.set(rel, z.cur)
	z.n++
	return true
}

// remove removes rr; it reports whether the zone had it.
func (z *Zone) remove(rr dns.RR) bool {
	rel := z.rel(canonical(rr.Header().Name))
	line := z.rrLine(rr)
	out := z.cur[:0]
	found := false
	eachLine(z.value(rel), func(l []byte) bool {
		if !found && sameRecord(l, line) {
			found = true
		} else {
			out = append(out, l...)
		}
		return true
	})
	z.cur = out
	if !found {
		return false
	}
	z.set(rel, out)
	z.n--
	return true
}

// Owners returns the number of owner names with records.
func (z *Zone) Owners() int { return z.live }

// appendLines appends the zone file lines of text, the records of owner
// rel.
func (z *Zone) appendLines(b, rel, text []byte) []byte {
	eachLine(text, func(l []byte) bool {
		b = append(b, rel...)
		b = append(b, z.Origin...)
		b = append(b, '\t')
		b = append(b, l...)
		return true
	})
	return b
}

// WriteTo writes the zone as a zone file: $ORIGIN, the SOA, then every
// record, one a line, in miekg/dns presentation format, owners in the
// order they were last changed (the same transfers give the same file).
func (z *Zone) WriteTo(w io.Writer) (int64, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	var n int64
	c, _ := fmt.Fprintf(bw, "$ORIGIN %s\n%s\n", z.Origin, z.SOA.String())
	n += int64(c)
	var buf []byte
	for off := 0; off < len(z.arena); {
		live, rel, text, next := z.entry(off)
		if live {
			buf = z.appendLines(buf[:0], rel, text)
			c, _ := bw.Write(buf)
			n += int64(c)
		}
		off = next
	}
	return n, bw.Flush()
}

// zoneReader reads a zone as WriteTo writes it, a few entries at a time.
type zoneReader struct {
	z     *Zone
	off   int    // the next arena entry
	buf   []byte // read next
	store []byte // buf's backing array
	done  func() // called once, at the end or on Close
}

// Reader returns the zone file of z, made as it is read; the zone must
// not change until it has been read or closed. done, if not nil, is called
// then, once.
func (z *Zone) Reader(done func()) io.ReadCloser {
	r := &zoneReader{z: z, done: done}
	r.buf = fmt.Appendf(nil, "$ORIGIN %s\n%s\n", z.Origin, z.SOA.String())
	return r
}

func (r *zoneReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if r.z == nil || r.off >= len(r.z.arena) {
			_ = r.Close()
			return 0, io.EOF
		}
		b := r.store[:0]
		for r.off < len(r.z.arena) && len(b) < 32<<10 {
			live, rel, text, next := r.z.entry(r.off)
			if live {
				b = r.z.appendLines(b, rel, text)
			}
			r.off = next
		}
		r.store, r.buf = b, b
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// Close ends the reading.
func (r *zoneReader) Close() error {
	if r.z != nil {
		r.z, r.buf = nil, nil
		if r.done != nil {
			r.done()
		}
	}
	return nil
}

// AppendOwners appends the zone file text of the records of the given
// owners ($ORIGIN and SOA first, so that it parses alone) to b.
func (z *Zone) AppendOwners(b []byte, owners []string) []byte {
	b = fmt.Appendf(b, "$ORIGIN %s\n%s\n", z.Origin, z.SOA.String())
	for _, o := range owners {
		rel := z.rel(o)
		b = z.appendLines(b, []byte(rel), z.value(rel))
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

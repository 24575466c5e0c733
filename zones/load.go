package zones

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/internal/dnsname"
)

// Spec is one configured zone: either a local zone served authoritatively
// from File, or a conditional forward of everything under Name to Forward.
// Exactly one of File and Forward must be set.
type Spec struct {
	// Name is the zone's domain name ("corp.example." or "corp.example").
	Name string
	// File is the RFC 1035 zone file; a relative path is resolved against
	// the base directory given to Load.
	File string
	// Forward lists the servers the zone is forwarded to, written like the
	// default upstreams (the upstream package parses them).
	Forward []string
}

// Error is one problem found by Load. Its text is "file:line: reason" for a
// problem at a line of a zone file, "file: reason" for a problem of a whole
// file, and "zone NAME: reason" for a problem of the Spec itself.
type Error struct {
	// Zone is the Spec's Name as configured.
	Zone string
	// File is the zone file (or $INCLUDEd file) the problem is in, as the
	// configuration names it (joined to the base directory); empty for a
	// problem of the Spec itself.
	File string
	// Line is the 1-based line of the record or directive at fault; 0 when
	// the problem is not at one line.
	Line int
	// Msg says what is wrong.
	Msg string
}

// Error returns "file:line: reason", "file: reason" or "zone NAME: reason".
func (e *Error) Error() string {
	switch {
	case e.File == "":
		return "zone " + e.Zone + ": " + e.Msg
	case e.Line == 0:
		return e.File + ": " + e.Msg
	default:
		return e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Msg
	}
}

const (
	// maxErrorsPerFile stops a zone's checks after this many problems, so a
	// wrong file does not flood the reload log.
	maxErrorsPerFile = 20
	// maxFileBytes caps each zone file (and each $INCLUDEd file).
	maxFileBytes = 256 << 20
	// maxFiles caps the files read for one zone: $INCLUDE may name the same
	// file many times, and nesting would multiply them.
	maxFiles = 256
)

var (
	errNotRegular = errors.New("not a regular file")
	errLoop       = errors.New("$INCLUDE loop: the file includes itself")
	errTooMany    = fmt.Errorf("more than %d files for one zone", maxFiles)
)

// Load parses and checks every Spec and builds the immutable lookup Table.
// File zones are read with miekg/dns's zone parser, $INCLUDE allowed and
// resolved relative to the including file, the zone name as the initial
// $ORIGIN. Each zone must have exactly one SOA, at its apex, NS records at
// the apex, every record at or below the apex, and no CNAME beside other
// data at the same name, every record encodable and with data; DNAME records
// and NS records at wildcard names are rejected. Identical records are
// merged, and the TTLs of an RRset are set to the lowest among them (RFC 2181
// §5.2). Only regular files are read, at most 256 MiB each; $INCLUDE may name
// any file the process can read, as the configuration is trusted.
//
// On failure Load returns nil and an error joining one *Error per problem of
// every zone (errors.Join; use errors.As or the Unwrap() []error method to
// walk them).
func Load(specs []Spec, baseDir string) (*Table, error) {
	t := &Table{byName: make(map[string]entry, len(specs)), tlds: make(map[string]bool)}
	var errs []error
	for _, sp := range specs {
		name, err := canonicalZoneName(sp.Name)
		if err != nil {
			errs = append(errs, &Error{Zone: sp.Name, Msg: err.Error()})
			continue
		}
		if _, dup := t.byName[name]; dup {
			errs = append(errs, &Error{Zone: sp.Name, Msg: "configured more than once"})
			continue
		}
		switch {
		case sp.File == "" && len(sp.Forward) == 0:
			errs = append(errs, &Error{Zone: sp.Name, Msg: "one of file or forward is required"})
		case sp.File != "" && len(sp.Forward) > 0:
			errs = append(errs, &Error{Zone: sp.Name, Msg: "has file and forward: exactly one is allowed"})
		case sp.File != "":
			path := sp.File
			if !filepath.IsAbs(path) {
				path = filepath.Join(baseDir, path)
			}
			z, zerrs := parseZone(sp.Name, name, path)
			if len(zerrs) > 0 {
				errs = append(errs, zerrs...)
				continue
			}
			z.table = t
			t.add(name, entry{zone: z})
		default:
			servers := append([]string(nil), sp.Forward...)
			t.add(name, entry{fwd: &Forward{Name: name, Servers: servers}})
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return t, nil
}

// canonicalZoneName checks a configured zone name and returns it lower-cased
// and fully qualified.
func canonicalZoneName(s string) (string, error) {
	if s == "" {
		return "", errors.New("name is required")
	}
	name := dnsname.Canonical(s)
	if _, ok := dns.IsDomainName(name); !ok {
		return "", fmt.Errorf("%q is not a valid domain name", s)
	}
	if name == "." {
		return "", errors.New("the root zone cannot be configured")
	}
	for _, fixed := range fixedSpecial {
		if dns.IsSubDomain(fixed, name) {
			return "", fmt.Errorf("names under %s are always answered locally (RFC 6761, RFC 9462) and cannot be configured", fixed)
		}
	}
	return name, nil
}

// origin is where a record came from.
type origin struct {
	file string
	line int
}

// loader parses one zone file.
type loader struct {
	zone  string // the Spec's Name as configured, for errors
	apex  string // canonical zone name
	top   string // the zone file's name as configured
	errs  []error
	last  *lineReader // the reader that read the most recent byte
	nodes map[string]*node
	types map[string]map[uint16]origin // first record of each RRset
	soa   *dns.SOA
	soaAt origin
	buf   []byte // for packing each record once
	files []*lineReader
}

func (l *loader) fail(at origin, format string, args ...any) {
	l.errs = append(l.errs, &Error{Zone: l.zone, File: at.file, Line: at.line, Msg: fmt.Sprintf(format, args...)})
}

// parseZone reads the zone file at path for the zone apex.
func parseZone(zoneName, apex, path string) (*Zone, []error) {
	l := &loader{
		zone:  zoneName,
		apex:  apex,
		top:   path,
		nodes: make(map[string]*node),
		types: make(map[string]map[uint16]origin),
		buf:   make([]byte, 2*dns.MaxMsgSize), // room to see an oversized record
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		l.fail(origin{file: path}, "%v", err)
		return nil, l.errs
	}
	r, err := l.open(abs, path)
	if err != nil {
		l.fail(origin{file: path}, "%v", err)
		return nil, l.errs
	}
	defer func() {
		// The parser closes the files it is done with, but not the ones it
		// is in when the loader stops early; closing twice is harmless.
		for _, f := range l.files {
			f.Close()
		}
	}()

	// The parser is given the absolute name so that it hands $INCLUDE paths
	// to includeFS as absolute paths (with the leading slash removed).
	zp := dns.NewZoneParser(r, apex, abs)
	zp.SetIncludeAllowed(true)
	zp.SetIncludeFS(includeFS{l})
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		at := origin{file: path, line: 1}
		if l.last != nil {
			at = origin{file: l.last.name, line: l.last.recordLine()}
		}
		l.add(rr, at)
		if len(l.errs) >= maxErrorsPerFile {
			l.fail(origin{file: path}, "too many errors, stopped")
			return nil, l.errs
		}
	}
	if err := zp.Err(); err != nil {
		l.parseError(err)
		return nil, l.errs
	}
	if l.soa == nil {
		l.fail(origin{file: path}, "no SOA record at the zone apex %s", apex)
	}
	if apexNode := l.nodes[apex]; apexNode == nil || apexNode.get(dns.TypeNS) == nil {
		l.fail(origin{file: path}, "no NS records at the zone apex %s", apex)
	}
	if len(l.errs) > 0 {
		return nil, l.errs
	}
	return l.build(), nil
}

// parseError turns an error of the zone parser into "file:line: reason".
func (l *loader) parseError(err error) {
	file := l.top
	if l.last != nil {
		file = l.last.name
	}
	var pe *dns.ParseError
	if !errors.As(err, &pe) {
		l.fail(origin{file: file}, "%v", err)
		return
	}
	// The parser's text is "FILE: dns: REASON: "TOKEN" at line: L:C", FILE
	// being its own (absolute) name of the file.
	msg := pe.Error()
	if i := strings.Index(msg, "dns: "); i >= 0 {
		msg = msg[i+len("dns: "):]
	}
	// "failed to open `inc' as `work/zones/inc'": the second name is the
	// parser's slash-less absolute path, and includeFS names the file anyway.
	msg = includeAs.ReplaceAllString(msg, "$1")
	line := 0
	if i := strings.LastIndex(msg, " at line: "); i >= 0 {
		pos := msg[i+len(" at line: "):]
		if j := strings.IndexByte(pos, ':'); j >= 0 {
			pos = pos[:j]
		}
		line, _ = strconv.Atoi(pos)
		msg = msg[:i]
	}
	l.fail(origin{file: file, line: line}, "%s", msg)
}

var includeAs = regexp.MustCompile("^(failed to open `[^']*') as `[^']*'")

// add checks one record and files it under its owner name.
func (l *loader) add(rr dns.RR, at origin) {
	h := rr.Header()
	owner := dnsname.Lower(h.Name)
	h.Name = owner
	t := h.Rrtype
	switch {
	case h.Class != dns.ClassINET:
		l.fail(at, "class %s is not supported", dns.Class(h.Class))
		return
	case !dns.IsSubDomain(l.apex, owner):
		l.fail(at, "%s is outside the zone %s", owner, l.apex)
		return
	case !l.encodes(rr, at):
		return
	case t == dns.TypeDNAME:
		l.fail(at, "DNAME records are not supported")
		return
	case t == dns.TypeNS && isWildcard(owner):
		l.fail(at, "NS records at a wildcard name (%s) are not supported", owner)
		return
	case t == dns.TypeSOA && owner != l.apex:
		l.fail(at, "SOA record at %s, not at the zone apex %s", owner, l.apex)
		return
	case t == dns.TypeSOA && l.soa != nil:
		l.fail(at, "second SOA record at the zone apex (the first is at %s)", where(l.soaAt, at))
		return
	case t == dns.TypeSOA:
		l.soa, l.soaAt = rr.(*dns.SOA), at
	}

	n := l.nodes[owner]
	if n == nil {
		n = &node{}
		l.nodes[owner] = n
	}
	seen := l.types[owner]
	if seen == nil {
		seen = make(map[uint16]origin)
		l.types[owner] = seen
	}
	if t == dns.TypeCNAME {
		if cn := n.get(dns.TypeCNAME); cn != nil && !dns.IsDuplicate(cn[0], rr) {
			first := seen[dns.TypeCNAME]
			l.fail(at, "more than one CNAME record at %s (the first is at %s)", owner, where(first, at))
			return
		}
	}
	if !cnameCompatible(t) {
		for _, s := range n.sets {
			if (t == dns.TypeCNAME) != (s.t == dns.TypeCNAME) && !cnameCompatible(s.t) {
				other := seen[s.t]
				l.fail(at, "CNAME and other data at %s (%s at %s)", owner, dns.Type(s.t), where(other, at))
				return
			}
		}
	}
	if _, ok := seen[t]; !ok {
		seen[t] = at
	}
	n.put(rr)
}

// encodes reports whether rr packs to wire format with data: the parser
// takes a record without data ("www A") as an RFC 2136 deletion.
func (l *loader) encodes(rr dns.RR, at origin) bool {
	t := rr.Header().Rrtype
	if _, err := dns.PackRR(rr, l.buf, 0, nil, false); err != nil {
		l.fail(at, "%s record cannot be encoded: %s", dns.Type(t), strings.TrimPrefix(err.Error(), "dns: "))
		return false
	}
	_, unknown := rr.(*dns.RFC3597)
	if rr.Header().Rdlength == 0 && !unknown && t != dns.TypeNULL && t != dns.TypeAPL {
		l.fail(at, "%s record without data", dns.Type(t))
		return false
	}
	return true
}

// where names the place of o for an error at at: "line N" in the same file,
// "FILE:N" in another.
func where(o, at origin) string {
	if o.file == at.file {
		return "line " + strconv.Itoa(o.line)
	}
	return o.file + ":" + strconv.Itoa(o.line)
}

// cnameCompatible reports whether records of type t may sit beside a CNAME
// (RFC 2181 §10.1, RFC 4035 §2.5).
func cnameCompatible(t uint16) bool {
	return t == dns.TypeRRSIG || t == dns.TypeNSEC
}

func isWildcard(name string) bool { return strings.HasPrefix(name, "*.") }

// build finishes the zone: empty non-terminals, delegation points, RRset
// TTLs.
func (l *loader) build() *Zone {
	z := &Zone{origin: l.apex, soa: l.soa, nodes: l.nodes}
	owners := make([]string, 0, len(l.nodes))
	for name := range l.nodes {
		owners = append(owners, name)
	}
	for _, name := range owners {
		n := l.nodes[name]
		for i := range n.sets {
			s := &n.sets[i]
			if s.t == dns.TypeRRSIG {
				continue // each signature has the TTL of the RRset it covers
			}
			minTTL := s.rrs[0].Header().Ttl
			for _, rr := range s.rrs {
				minTTL = min(minTTL, rr.Header().Ttl)
			}
			for _, rr := range s.rrs {
				rr.Header().Ttl = minTTL
			}
		}
		n.cut = name != l.apex && n.get(dns.TypeNS) != nil
		// Every name between the owner and the apex exists (RFC 4592 §2.2.2).
		for off, end := dns.NextLabel(name, 0); !end && len(name)-off > len(l.apex); off, end = dns.NextLabel(name, off) {
			if l.nodes[name[off:]] == nil {
				l.nodes[name[off:]] = &node{}
			}
		}
	}
	return z
}

// lineReader feeds one zone file to the parser byte by byte (the parser
// uses an io.ByteReader as it is, without buffering of its own), so that the
// loader knows the line of every record the parser returns.
type lineReader struct {
	l      *loader
	parent *lineReader // the including file
	f      *os.File
	br     *bufio.Reader
	name   string // as shown in errors
	abs    string // absolute path
	read   int64

	line      int  // line of the last byte read
	newline   bool // the last byte read was '\n'
	bol       bool // no significant byte yet on this line
	directive bool // this line is a $ directive
	comment   bool
	quote     bool
	escape    bool
	first     int // line of the first significant byte since the last record
}

// open opens a zone file for reading; only regular files are read, so that
// an $INCLUDE of a device or FIFO cannot hang a reload.
func (l *loader) open(abs, name string) (*lineReader, error) {
	if len(l.files) >= maxFiles {
		return nil, errTooMany
	}
	fi, err := os.Stat(abs)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is in the error's file name already
		}
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, errNotRegular
	}
	f, err := os.Open(abs)
	if err != nil {
		return nil, err
	}
	r := &lineReader{l: l, parent: l.last, f: f, br: bufio.NewReader(f), name: name, abs: abs, line: 1, bol: true}
	l.files = append(l.files, r)
	return r, nil
}

// ReadByte implements io.ByteReader and keeps track of lines.
func (r *lineReader) ReadByte() (byte, error) {
	if r.read >= maxFileBytes {
		return 0, fmt.Errorf("%s is larger than %d bytes", r.name, maxFileBytes)
	}
	c, err := r.br.ReadByte()
	if err != nil {
		return c, err
	}
	r.read++
	r.l.last = r
	if r.newline {
		r.line++
		r.newline, r.bol, r.directive, r.comment, r.escape = false, true, false, false, false
	}
	significant := false
	switch {
	case c == '\n':
		r.newline = true
	case r.comment:
	case r.escape:
		r.escape, significant = false, true
	case c == '\\':
		r.escape, significant = true, true
	case c == '"':
		r.quote, significant = !r.quote, true
	case r.quote:
		significant = true
	case c == ';':
		r.comment = true
	case c == ' ' || c == '\t' || c == '\r':
	default:
		significant = true
	}
	if significant {
		if r.bol {
			r.bol = false
			r.directive = c == '$'
		}
		if !r.directive && r.first == 0 {
			r.first = r.line
		}
	}
	return c, nil
}

// recordLine returns the line the record just returned by the parser began
// on and starts looking for the next one.
func (r *lineReader) recordLine() int {
	line := r.first
	if line == 0 {
		line = r.line // a record made by $GENERATE
	}
	r.first = 0
	return line
}

// Read implements io.Reader (fs.File) by way of ReadByte.
func (r *lineReader) Read(p []byte) (int, error) {
	for i := range p {
		c, err := r.ReadByte()
		if err != nil {
			if i > 0 && err == io.EOF {
				return i, nil
			}
			return i, err
		}
		p[i] = c
	}
	return len(p), nil
}

// Stat implements fs.File.
func (r *lineReader) Stat() (fs.FileInfo, error) { return r.f.Stat() }

// Close implements fs.File.
func (r *lineReader) Close() error { return r.f.Close() }

// includeFS opens $INCLUDEd files for the parser. The parser passes the
// absolute path of the file with its leading slash removed.
type includeFS struct{ l *loader }

func (i includeFS) Open(name string) (fs.File, error) {
	abs := filepath.FromSlash("/" + name)
	display := abs
	if parent := i.l.last; parent != nil {
		if rel, err := filepath.Rel(filepath.Dir(parent.abs), abs); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			display = filepath.Join(filepath.Dir(parent.name), rel)
		}
	}
	for p := i.l.last; p != nil; p = p.parent {
		if p.abs == abs {
			return nil, &fs.PathError{Op: "open", Path: display, Err: errLoop}
		}
	}
	r, err := i.l.open(abs, display)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: display, Err: err}
	}
	return r, nil
}

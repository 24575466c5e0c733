// Package rpzout serves jurisdictions as Response Policy Zones to other
// resolvers (BIND, Unbound, Knot Resolver, PowerDNS Recursor): each active
// enforcing jurisdiction is the zone <id>.<suffix>, answered over TCP on
// the DNS listeners (SOA, AXFR, IXFR from a journal of recent generations;
// SOA over UDP too, for the refresh probe of a secondary), with its
// provenance as TXT records at the apex. A zone's serial changes when, and
// only when, the jurisdiction's rules or provenance change; each change is
// sent to the listed secondaries as a NOTIFY. The wire work is miekg/dns's
// (dns.Transfer.Out, TSIG).
package rpzout

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/blocklists"
	"github.com/jurisdns/jurisdns/internal/dnsname"
	"github.com/jurisdns/jurisdns/policy"
	"github.com/jurisdns/jurisdns/transfer"
)

// Options configure the served zones.
type Options struct {
	// Suffix is appended to each jurisdiction id ("rpz.jurisdns.").
	Suffix string
	// Allow lists who may query the zones; others get REFUSED.
	Allow []netip.Prefix
	// Key, when set, must sign every query (NOTAUTH otherwise); answers
	// and NOTIFY messages are signed with it.
	Key *transfer.Key
	// Notify lists the secondaries told of each new serial.
	Notify []netip.AddrPort
	// Journal is the number of generations kept for IXFR; 0 means 16.
	Journal int
}

// Server holds the zones of the current policy and their journals. It
// survives reloads: Update compares each jurisdiction with what it serves.
type Server struct {
	log *slog.Logger
	now func() time.Time

	updateMu sync.Mutex // one Update at a time
	mu       sync.RWMutex
	opts     Options
	zones    map[string]*zone // by zone name (lower case, fqdn)
	closed   bool

	notifyWG   sync.WaitGroup
	notifyQ    chan notifyJob // bounded: past it a NOTIFY is left to the refresh timer
	notifyOnce sync.Once      // starts the sender at the first NOTIFY
	closeOnce  sync.Once
}

// zone is one served generation and the journal behind it.
type zone struct {
	name string
	jur  string
	hash string // the jurisdiction's hash when it was built
	soa  *dns.SOA
	apex []dns.RR // NS and provenance TXT
	// The triggers, as keys "OWNER TYPE DATA" (OWNER without the zone's
	// name; TYPE CNAME, A or AAAA) sorted and one after the other in
	// keys, each starting at offs[i]. A jurisdiction of a million names is
	// served without a million dns.RR values: AXFR makes them as it sends.
	keys    []byte
	offs    []uint32
	journal []generation // oldest first
}

// records is the number of triggers.
func (z *zone) records() int { return len(z.offs) }

// key returns trigger i's key.
func (z *zone) key(i int) []byte {
	end := len(z.keys)
	if i+1 < len(z.offs) {
		end = int(z.offs[i+1])
	}
	return z.keys[z.offs[i]:end]
}

// rr returns trigger i as a record.
func (z *zone) rr(i int) dns.RR {
	k := string(z.key(i))
	rel, data, _ := strings.Cut(k, " ")
	typ, v, _ := strings.Cut(data, " ")
	h := dns.RR_Header{Name: rel + "." + z.name, Class: dns.ClassINET, Ttl: ttl}
	switch typ {
	case "A":
		h.Rrtype = dns.TypeA
		return &dns.A{Hdr: h, A: net.IP(netip.MustParseAddr(v).AsSlice())}
	case "AAAA":
		h.Rrtype = dns.TypeAAAA
		return &dns.AAAA{Hdr: h, AAAA: net.IP(netip.MustParseAddr(v).AsSlice())}
	}
	h.Rrtype = dns.TypeCNAME
	return &dns.CNAME{Hdr: h, Target: v}
}

type generation struct {
	from, to *dns.SOA
	del, add []dns.RR
}

type notifyJob struct {
	zone   string
	serial uint32
}

// New returns a server with no zones; call Update with each new policy.
func New(log *slog.Logger, now func() time.Time) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	return &Server{log: log, now: now, zones: map[string]*zone{}, notifyQ: make(chan notifyJob, 64)}
}

// Close stops the NOTIFY sender. Update must not be called after it.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.notifyOnce.Do(func() {}) // no sender from now on
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		close(s.notifyQ)
		s.notifyWG.Wait()
	})
}

// Enabled reports whether any zone is configured.
func (s *Server) Enabled() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.opts.Suffix != ""
}

// Serial returns the serial of a served zone, and whether it is served.
func (s *Server) Serial(zoneName string) (uint32, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	z := s.zones[dnsname.Canonical(zoneName)]
	if z == nil {
		return 0, false
	}
	return z.soa.Serial, true
}

// served reports whether j is served: active, enforcing, loaded and indexed.
func served(j *policy.Jurisdiction, now time.Time) bool {
	return j.Mode == policy.ModeEnforce && j.Active(now) && j.Loaded && (j.InUse || !j.Shipped || j.Overridden)
}

// Update makes the zones follow pol under opts: a zone for each served
// jurisdiction, rebuilt (new serial, a journal generation, NOTIFY) only
// when the jurisdiction's hash changed. An empty Suffix serves nothing.
func (s *Server) Update(opts Options, pol *policy.Policy) {
	s.updateMu.Lock()
	defer s.updateMu.Unlock()
	if opts.Journal <= 0 {
		opts.Journal = 16
	}
	now := s.now()
	suffix := dnsname.Canonical(opts.Suffix)
	next := map[string]*zone{}
	var changed []notifyJob
	s.mu.RLock()
	old := s.zones
	oldSuffix := s.opts.Suffix
	s.mu.RUnlock()
	if opts.Suffix != "" && pol != nil {
		for _, j := range pol.Jurisdictions() {
			if !served(j, now) {
				continue
			}
			name := dnsname.Canonical(j.ID + "." + suffix)
			prev := old[name]
			if prev != nil && prev.hash == j.Hash && oldSuffix == opts.Suffix {
				next[name] = prev
				continue
			}
			z := build(name, j, pol, prev, now)
			z.journal = journal(prev, z, opts.Journal)
			next[name] = z
			changed = append(changed, notifyJob{zone: name, serial: z.soa.Serial})
			s.log.Info("rpz_out zone updated", "zone", name, "serial", z.soa.Serial, "records", z.records())
		}
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.opts = opts
	s.zones = next
	s.mu.Unlock()
	if len(opts.Notify) > 0 && len(changed) > 0 {
		s.notifyOnce.Do(func() {
			s.notifyWG.Add(1)
			go s.notifier()
		})
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, c := range changed {
		if len(opts.Notify) == 0 || s.closed {
			break
		}
		select {
		case s.notifyQ <- c:
		default:
			s.log.Warn("rpz_out NOTIFY queue full: the secondaries find the serial at their refresh", "zone", c.zone)
		}
	}
}

// nextSerial is the serial after prev: the current Unix time when that is
// ahead (serials then say when), else prev+1 (RFC 1982).
func nextSerial(prev *zone, now time.Time) uint32 {
	t := uint32(now.Unix())
	if prev == nil {
		return t
	}
	p := prev.soa.Serial
	if int32(t-p) > 0 {
		return t
	}
	return p + 1
}

// Zone timers: secondaries refresh hourly (NOTIFY brings changes sooner),
// and keep serving a week without us.
const (
	soaRefresh = 3600
	soaRetry   = 300
	soaExpire  = 7 * 86400
	soaMinimum = 60
	ttl        = 60
)

// build makes the zone of jurisdiction j.
func build(name string, j *policy.Jurisdiction, pol *policy.Policy, prev *zone, now time.Time) *zone {
	hdr := func(owner string, t uint16) dns.RR_Header {
		return dns.RR_Header{Name: owner, Rrtype: t, Class: dns.ClassINET, Ttl: ttl}
	}
	z := &zone{name: name, jur: j.ID, hash: j.Hash}
	z.soa = &dns.SOA{Hdr: hdr(name, dns.TypeSOA), Ns: "localhost.", Mbox: "hostmaster." + name,
		Serial: nextSerial(prev, now), Refresh: soaRefresh, Retry: soaRetry, Expire: soaExpire, Minttl: soaMinimum}
	z.apex = append(z.apex, &dns.NS{Hdr: hdr(name, dns.TypeNS), Ns: "localhost."})
	txt := func(k, v string) {
		if v != "" {
			z.apex = append(z.apex, &dns.TXT{Hdr: hdr(name, dns.TypeTXT), Txt: splitTXT(k + "=" + v)})
		}
	}
	txt("jurisdiction", j.ID)
	txt("title", j.Title)
	txt("authority", j.Authority)
	txt("instrument", j.Instrument)
	for _, l := range j.Links {
		txt("link", l)
	}
	if !j.Effective.IsZero() {
		txt("effective", policy.FormatDate(j.Effective))
	}
	if !j.Expires.IsZero() {
		txt("expires", policy.FormatDate(j.Expires))
	}
	txt("generator", "jurisdns")
	var keys []byte
	var offs []uint32
	pol.Rules(j.ID, func(r policy.Rule) {
		var owners []string
		switch r.Kind {
		case blocklists.Suffix:
			owners = []string{r.Name, "*." + r.Name}
		case blocklists.Exact:
			owners = []string{r.Name}
		case blocklists.Below:
			owners = []string{"*." + r.Name}
		default:
			return
		}
		for _, o := range owners {
			if len(o)+1+len(name) > 254 {
				continue // the trigger does not fit under the zone name
			}
			for _, d := range actionData(r, j) {
				offs = append(offs, uint32(len(keys)))
				keys = append(keys, o...)
				keys = append(keys, ' ')
				keys = append(keys, d...)
			}
		}
	})
	z.keys, z.offs = sortKeys(keys, offs)
	return z
}

// sortKeys returns the keys (each starting at offs[i] in keys) sorted and
// without duplicates, in a new arena.
func sortKeys(keys []byte, offs []uint32) ([]byte, []uint32) {
	key := func(i uint32) []byte {
		end := len(keys)
		if int(i)+1 < len(offs) {
			end = int(offs[i+1])
		}
		return keys[offs[i]:end]
	}
	order := make([]uint32, len(offs))
	for i := range order {
		order[i] = uint32(i)
	}
	slices.SortFunc(order, func(a, b uint32) int { return bytes.Compare(key(a), key(b)) })
	order = slices.CompactFunc(order, func(a, b uint32) bool { return bytes.Equal(key(a), key(b)) })
	out := make([]byte, 0, len(keys))
	outOffs := make([]uint32, len(order))
	for n, i := range order {
		outOffs[n] = uint32(len(out))
		out = append(out, key(i)...)
	}
	return out, outOffs
}

// actionData are the RPZ records of a rule, as "TYPE DATA"
// (draft-vixie-dnsop-dns-rpz): CNAME . (NXDOMAIN), CNAME *. (NODATA),
// CNAME rpz-passthru. (allow), CNAME rpz-drop. (drop), A/AAAA (local
// data). A block takes the jurisdiction's action; RPZ has no REFUSED, which
// is served as NXDOMAIN.
func actionData(r policy.Rule, j *policy.Jurisdiction) []string {
	cname := func(t string) []string { return []string{"CNAME " + t} }
	addrs := func(as []netip.Addr) []string {
		var out []string
		for _, a := range as {
			if a.Is4() {
				out = append(out, "A "+a.String())
			} else {
				out = append(out, "AAAA "+a.String())
			}
		}
		if len(out) == 0 {
			return cname(".")
		}
		return out
	}
	switch r.Action {
	case blocklists.Allow:
		return cname("rpz-passthru.")
	case blocklists.NXDomain:
		return cname(".")
	case blocklists.NoData:
		return cname("*.")
	case blocklists.Drop:
		return cname("rpz-drop.")
	case blocklists.LocalData:
		return addrs(r.Addrs)
	}
	switch j.Action {
	case policy.ActionNoData:
		return cname("*.")
	case policy.ActionDrop:
		return cname("rpz-drop.")
	case policy.ActionNull:
		return addrs([]netip.Addr{netip.IPv4Unspecified(), netip.IPv6Unspecified()})
	case policy.ActionIP:
		return addrs(j.Sinkhole)
	}
	return cname(".")
}

// splitTXT cuts a string into TXT character-strings of at most 255 bytes.
func splitTXT(s string) []string {
	var out []string
	for len(s) > 255 {
		out = append(out, s[:255])
		s = s[255:]
	}
	return append(out, s)
}

// journal returns prev's journal plus the generation from prev to z, at
// most n generations.
func journal(prev, z *zone, n int) []generation {
	if prev == nil {
		return nil
	}
	g := generation{from: prev.soa, to: z.soa}
	i, k := 0, 0
	for i < prev.records() || k < z.records() {
		switch {
		case k == z.records() || (i < prev.records() && bytes.Compare(prev.key(i), z.key(k)) < 0):
			g.del = append(g.del, prev.rr(i))
			i++
		case i == prev.records() || bytes.Compare(z.key(k), prev.key(i)) < 0:
			g.add = append(g.add, z.rr(k))
			k++
		default:
			i++
			k++
		}
	}
	// The apex records (provenance) change with the metadata.
	if !slices.EqualFunc(prev.apex, z.apex, func(a, b dns.RR) bool { return a.String() == b.String() }) {
		g.del = append(g.del, prev.apex...)
		g.add = append(g.add, z.apex...)
	}
	js := append(slices.Clone(prev.journal), g)
	if len(js) > n {
		js = js[len(js)-n:]
	}
	return js
}

// String describes the zones served, for logs.
func (s *Server) String() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var parts []string
	for n, z := range s.zones {
		parts = append(parts, fmt.Sprintf("%s@%d", n, z.soa.Serial))
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

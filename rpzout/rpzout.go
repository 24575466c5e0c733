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
	"cmp"
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
	name    string
	jur     string
	hash    string // the jurisdiction's hash when it was built
	soa     *dns.SOA
	apex    []dns.RR // NS and provenance TXT
	rrs     []dns.RR // the triggers, sorted by key
	keys    []string
	journal []generation // oldest first
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
	z := s.zones[dns.CanonicalName(zoneName)]
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
	suffix := dns.CanonicalName(opts.Suffix)
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
			name := dns.CanonicalName(j.ID + "." + suffix)
			prev := old[name]
			if prev != nil && prev.hash == j.Hash && oldSuffix == opts.Suffix {
				next[name] = prev
				continue
			}
			z := build(name, j, pol, prev, now)
			z.journal = journal(prev, z, opts.Journal)
			next[name] = z
			changed = append(changed, notifyJob{zone: name, serial: z.soa.Serial})
			s.log.Info("rpz_out zone updated", "zone", name, "serial", z.soa.Serial, "records", len(z.rrs))
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
	type keyed struct {
		key string
		rr  dns.RR
	}
	var out []keyed
	add := func(owner string, rr dns.RR) {
		out = append(out, keyed{owner + " " + rrData(rr), rr})
	}
	pol.Rules(j.ID, func(r policy.Rule) {
		var owners []string
		switch r.Kind {
		case blocklists.Suffix:
			owners = []string{r.Name + "." + name, "*." + r.Name + "." + name}
		case blocklists.Exact:
			owners = []string{r.Name + "." + name}
		case blocklists.Below:
			owners = []string{"*." + r.Name + "." + name}
		default:
			return
		}
		for _, o := range owners {
			if len(o) > 254 {
				continue // the trigger does not fit under the zone name
			}
			for _, rr := range actionRRs(o, r, j, hdr) {
				add(o, rr)
			}
		}
	})
	slices.SortFunc(out, func(a, b keyed) int { return cmp.Compare(a.key, b.key) })
	out = slices.CompactFunc(out, func(a, b keyed) bool { return a.key == b.key })
	z.rrs = make([]dns.RR, len(out))
	z.keys = make([]string, len(out))
	for i, k := range out {
		z.rrs[i], z.keys[i] = k.rr, k.key
	}
	return z
}

// actionRRs are the RPZ records of a rule at owner (RFC-draft
// draft-vixie-dnsop-dns-rpz): CNAME . (NXDOMAIN), CNAME *. (NODATA),
// CNAME rpz-passthru. (allow), CNAME rpz-drop. (drop), A/AAAA (local
// data). A block takes the jurisdiction's action; RPZ has no REFUSED, which
// is served as NXDOMAIN.
func actionRRs(owner string, r policy.Rule, j *policy.Jurisdiction, hdr func(string, uint16) dns.RR_Header) []dns.RR {
	cname := func(t string) []dns.RR { return []dns.RR{&dns.CNAME{Hdr: hdr(owner, dns.TypeCNAME), Target: t}} }
	addrs := func(as []netip.Addr) []dns.RR {
		var rrs []dns.RR
		for _, a := range as {
			if a.Is4() {
				rrs = append(rrs, &dns.A{Hdr: hdr(owner, dns.TypeA), A: net.IP(a.AsSlice())})
			} else {
				rrs = append(rrs, &dns.AAAA{Hdr: hdr(owner, dns.TypeAAAA), AAAA: net.IP(a.AsSlice())})
			}
		}
		if len(rrs) == 0 {
			return cname(".")
		}
		return rrs
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

// rrData is a record's type and data, for sorting and comparing.
func rrData(rr dns.RR) string {
	switch r := rr.(type) {
	case *dns.CNAME:
		return "CNAME " + r.Target
	case *dns.A:
		return "A " + r.A.String()
	case *dns.AAAA:
		return "AAAA " + r.AAAA.String()
	}
	return rr.String()
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
	for i < len(prev.keys) || k < len(z.keys) {
		switch {
		case k == len(z.keys) || (i < len(prev.keys) && prev.keys[i] < z.keys[k]):
			g.del = append(g.del, prev.rrs[i])
			i++
		case i == len(prev.keys) || z.keys[k] < prev.keys[i]:
			g.add = append(g.add, z.rrs[k])
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

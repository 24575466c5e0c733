package spec

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// maxTTL is the largest DNS TTL, 2^31-1 seconds (RFC 2181 §8).
const maxTTL = time.Duration(math.MaxInt32) * time.Second

// idPattern is the syntax of a jurisdiction ID.
var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)

// problems collects validation errors, each prefixed by its key path.
type problems []error

func (p *problems) add(path, format string, args ...any) {
	*p = append(*p, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
}

// Validate checks the whole configuration and returns every problem at once
// (joined with errors.Join, one per line), each prefixed by its key path
// ("upstreams.servers[1]: ..."). It checks syntax and consistency only: it
// does not open files, resolve names or know the shipped jurisdictions.
func (c *Config) Validate() error {
	var p problems
	c.validateListen(&p)
	c.validateUpstreams(&p)
	c.validateCache(&p)
	c.validateServer(&p)
	c.validateAccess(&p)
	validateIDs(&p, "default_jurisdictions", c.DefaultJurisdictions)
	c.validateClients(&p)
	for i := range c.Jurisdictions {
		c.Jurisdictions[i].validate(&p, fmt.Sprintf("jurisdictions[%d]", i))
	}
	seen := make(map[string]int)
	for i, j := range c.Jurisdictions {
		if j.ID == "" {
			continue
		}
		if first, dup := seen[j.ID]; dup {
			p.add(fmt.Sprintf("jurisdictions[%d].id", i), "%q is already used by jurisdictions[%d]", j.ID, first)
			continue
		}
		seen[j.ID] = i
	}
	c.validateLists(&p)
	c.validateTransfers(&p)
	c.validateZones(&p)
	validateSDE(&p, "structured_errors", c.StructuredErrors.Contact, c.StructuredErrors.Organisation)
	if c.StructuredErrors.Organisation != "" && c.StructuredErrors.Contact == "" {
		p.add("structured_errors.organisation", "needs structured_errors.contact: the structured DNS error JSON requires a contact")
	}
	if c.Admin != "" {
		if err := checkListenAddr(c.Admin); err != nil {
			p.add("admin", "%v", err)
		}
	} else if c.AdminPprof {
		p.add("admin_pprof", "needs the admin listener (admin is empty)")
	}
	c.validateAudit(&p)
	c.validateEncrypted(&p)
	c.validateDnstap(&p)
	checkEnum(&p, "log.level", c.Log.Level, true, LogLevels)
	checkEnum(&p, "log.format", c.Log.Format, true, LogFormats)
	return errors.Join(p...)
}

func (c *Config) validateListen(p *problems) {
	if len(c.Listen) == 0 {
		p.add("listen", "at least one address is required")
	}
	seen := make(map[string]int)
	for i, a := range c.Listen {
		path := fmt.Sprintf("listen[%d]", i)
		if err := checkListenAddr(a); err != nil {
			p.add(path, "%v", err)
			continue
		}
		if first, dup := seen[a]; dup {
			p.add(path, "%q is already listen[%d]", a, first)
			continue
		}
		seen[a] = i
	}
}

func (c *Config) validateUpstreams(p *problems) {
	u := c.Upstreams
	checkServers(p, "upstreams.servers", u.Servers)
	checkEnum(p, "upstreams.strategy", u.Strategy, true, Strategies)
	checkPositive(p, "upstreams.timeout", u.Timeout)
	checkPositive(p, "upstreams.try_timeout", u.TryTimeout)
	if u.Timeout > 0 && u.TryTimeout > u.Timeout {
		p.add("upstreams.try_timeout", "%v is more than upstreams.timeout (%v)", u.TryTimeout, u.Timeout)
	}
}

func (c *Config) validateCache(p *problems) {
	cc := c.Cache
	if cc.Size < 0 {
		p.add("cache.size", "%d is negative", cc.Size)
	}
	if cc.Size > 0 && cc.MaxBytes < 4096 {
		p.add("cache.max_bytes", "%d is less than 4096 (one large answer)", cc.MaxBytes)
	}
	checkTTL(p, "cache.min_ttl", cc.MinTTL)
	checkTTL(p, "cache.max_ttl", cc.MaxTTL)
	if cc.MinTTL > cc.MaxTTL && cc.MaxTTL >= 0 {
		p.add("cache.min_ttl", "%v is more than cache.max_ttl (%v)", cc.MinTTL, cc.MaxTTL)
	}
	checkTTL(p, "cache.negative_max_ttl", cc.NegativeMaxTTL)
	checkNonNegative(p, "cache.servfail_ttl", cc.ServfailTTL)
	if cc.ServfailTTL > 5*time.Minute {
		p.add("cache.servfail_ttl", "%v is more than 5m, the most RFC 2308 allows", cc.ServfailTTL)
	}
	checkNonNegative(p, "cache.serve_stale", cc.ServeStale)
}

func (c *Config) validateServer(p *problems) {
	s := c.Server
	checkPositive(p, "server.tcp_idle_timeout", s.TCPIdleTimeout)
	if s.MaxTCPConnections < 1 {
		p.add("server.max_tcp_connections", "%d is less than 1", s.MaxTCPConnections)
	}
	if s.MaxTCPPerClient < 1 {
		p.add("server.max_tcp_per_client", "%d is less than 1", s.MaxTCPPerClient)
	}
	if s.MaxInflight < 1 {
		p.add("server.max_inflight", "%d is less than 1", s.MaxInflight)
	}
	if s.MemoryLimit < 0 {
		p.add("server.memory_limit", "%d is negative (0 derives the limit from the policy and cache.max_bytes)", s.MemoryLimit)
	} else if s.MemoryLimit > 0 && s.MemoryLimit < 32<<20 {
		p.add("server.memory_limit", "%d is less than 33554432 (32 MiB): too little for a policy and a cache", s.MemoryLimit)
	}
	if s.MaxInflightPerClient < 1 {
		p.add("server.max_inflight_per_client", "%d is less than 1", s.MaxInflightPerClient)
	} else if s.MaxInflightPerClient > s.MaxInflight && s.MaxInflight >= 1 {
		p.add("server.max_inflight_per_client", "%d is more than server.max_inflight (%d)", s.MaxInflightPerClient, s.MaxInflight)
	}
	if s.UDPWorkers < 0 {
		p.add("server.udp_workers", "%d is negative", s.UDPWorkers)
	}
	if s.HealthName != "" {
		if err := checkDomain(s.HealthName); err != nil {
			p.add("server.health_name", "%v", err)
		}
	}
	checkPositive(p, "server.shutdown_timeout", s.ShutdownTimeout)
}

func (c *Config) validateAccess(p *problems) {
	a := c.Access
	if len(a.Allow) == 0 {
		p.add("access.allow", "is empty, so no client may query (0.0.0.0/0 and ::/0 admit every client)")
	}
	checkPrefixes(p, "access.allow", a.Allow)
	checkEnum(p, "access.action", a.Action, true, AccessActions)
	r := a.RateLimit
	if math.IsNaN(r.QPS) || math.IsInf(r.QPS, 0) || r.QPS < 0 {
		p.add("access.rate_limit.qps", "%v is not a rate (0 or more queries per second)", r.QPS)
	}
	if r.Burst < 0 || (r.Burst == 0 && r.QPS > 0) {
		p.add("access.rate_limit.burst", "%d is less than 1", r.Burst)
	}
	if r.IPv4Prefix < 0 || r.IPv4Prefix > 32 {
		p.add("access.rate_limit.ipv4_prefix", "%d is not a prefix length between 0 and 32", r.IPv4Prefix)
	}
	if r.IPv6Prefix < 0 || r.IPv6Prefix > 128 {
		p.add("access.rate_limit.ipv6_prefix", "%d is not a prefix length between 0 and 128", r.IPv6Prefix)
	}
	checkPrefixes(p, "access.rate_limit.exempt", r.Exempt)
	checkEnum(p, "access.rate_limit.action", r.Action, true, RateLimitActions)
}

func (c *Config) validateClients(p *problems) {
	names := make(map[string]int)
	subnets := make(map[netip.Prefix]string)
	for i, cl := range c.Clients {
		path := fmt.Sprintf("clients[%d]", i)
		switch first, dup := names[cl.Name]; {
		case cl.Name == "":
			p.add(path+".name", "is required")
		case dup:
			p.add(path+".name", "%q is already used by clients[%d]", cl.Name, first)
		default:
			names[cl.Name] = i
		}
		if len(cl.Subnets) == 0 {
			p.add(path+".subnets", "at least one subnet is required")
		}
		for j, s := range cl.Subnets {
			sp := fmt.Sprintf("%s.subnets[%d]", path, j)
			pfx, err := ParseSubnet(s)
			if err != nil {
				p.add(sp, "%v", err)
				continue
			}
			if other, dup := subnets[pfx]; dup {
				p.add(sp, "%s is already in %s", pfx, other)
				continue
			}
			subnets[pfx] = sp
		}
		if len(cl.Jurisdictions) == 0 {
			p.add(path+".jurisdictions", "at least one jurisdiction is required")
		}
		validateIDs(p, path+".jurisdictions", cl.Jurisdictions)
	}
}

// validate checks one jurisdiction. An empty attribute keeps the shipped
// value (or the default) and is never an error.
func (j *Jurisdiction) validate(p *problems, path string) {
	if j.ID == "" {
		p.add(path+".id", "is required")
	} else if err := CheckID(j.ID); err != nil {
		p.add(path+".id", "%v", err)
	}
	for i, l := range j.Links {
		u, err := url.Parse(l)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			p.add(fmt.Sprintf("%s.links[%d]", path, i), "%q is not an http(s) URL", l)
		}
	}
	j.JurisdictionAttrs.validate(p, path)
	validateSDE(p, path, j.Contact, j.Organisation)
	names := make(map[string]int)
	for i := range j.Sources {
		sp := fmt.Sprintf("%s.sources[%d]", path, i)
		src := &j.Sources[i]
		src.validate(p, sp)
		if src.Name == "" {
			continue
		}
		if first, dup := names[src.Name]; dup {
			p.add(sp+".name", "%q is already used by %s.sources[%d]", src.Name, path, first)
			continue
		}
		names[src.Name] = i
	}
	for i, a := range j.Allow {
		if err := checkDomain(strings.TrimPrefix(a, "*.")); err != nil {
			p.add(fmt.Sprintf("%s.allow[%d]", path, i), "%v", err)
		}
	}
	checkEnum(p, path+".on_load_failure", j.OnLoadFailure, false, OnLoadFailures)
}

// validate checks the attributes (not the id) by the rules of every
// jurisdiction, shipped or configured: the dates, the enums (a shipped
// file's were checked where they were decoded, a configuration's are
// checked here), the sinkhole of action ip, the EDE code and the TTL. An
// empty path makes the keys top-level ("ttl"). on_load_failure is left to
// the caller: a configuration reports it after the sources, as it always
// has.
func (a *JurisdictionAttrs) validate(p *problems, path string) {
	validateDates(p, path, a.Effective, a.Expires)
	checkEnum(p, join(path, "tier"), a.Tier, false, Tiers)
	checkEnum(p, join(path, "mode"), a.Mode, false, Modes)
	checkEnum(p, join(path, "action"), a.Action, false, Actions)
	if a.Action == ActionIP && len(a.Sinkhole) == 0 {
		p.add(join(path, "sinkhole"), "action ip needs at least one sinkhole address")
	}
	validateAnswer(p, path, a.Sinkhole, a.EDE, a.TTL)
}

// validateDates checks effective and expires: dates, the first before the
// second.
func validateDates(p *problems, path, effective, expires string) {
	var eff, exp time.Time
	var effOK, expOK bool
	if effective != "" {
		var err error
		if eff, err = ParseDate(effective); err != nil {
			p.add(join(path, "effective"), "%v", err)
		} else {
			effOK = true
		}
	}
	if expires != "" {
		var err error
		if exp, err = ParseDate(expires); err != nil {
			p.add(join(path, "expires"), "%v", err)
		} else {
			expOK = true
		}
	}
	if effOK && expOK && !eff.Before(exp) {
		p.add(join(path, "expires"), "%s is not after effective (%s)", expires, effective)
	}
}

// validateAnswer checks what a block answers: the sinkhole addresses, the
// EDE code and the TTL.
func validateAnswer(p *problems, path string, sinkhole []string, ede *int, ttl time.Duration) {
	for i, s := range sinkhole {
		if a, err := netip.ParseAddr(s); err != nil || a.Zone() != "" {
			p.add(fmt.Sprintf("%s[%d]", join(path, "sinkhole"), i), "%q is not an IP address", s)
		}
	}
	if ede != nil && (*ede < 0 || *ede > 65535) {
		p.add(join(path, "ede"), "%d is not an EDE code (0 to 65535)", *ede)
	}
	checkTTL(p, join(path, "ttl"), ttl)
}

// validate checks one list source.
func (s *Source) validate(p *problems, path string) {
	if s.Name == "" {
		p.add(path+".name", "is required")
	}
	var set []string
	if s.Path != "" {
		set = append(set, "path")
	}
	if s.URL != "" {
		set = append(set, "url")
	}
	if len(s.Inline) > 0 {
		set = append(set, "inline")
	}
	if s.Transfer != nil {
		set = append(set, "transfer")
	}
	switch len(set) {
	case 0:
		p.add(path, "one of path, url, inline or transfer is required")
	case 1:
	default:
		p.add(path, "has %s: exactly one of path, url, inline or transfer is allowed", strings.Join(set, " and "))
	}
	if s.URL != "" {
		u, err := url.Parse(s.URL)
		switch {
		case err != nil:
			p.add(path+".url", "is not a URL") // the parse error would show it whole
		case u.Host == "":
			p.add(path+".url", "%q is not a URL", redacted(*u))
		case u.Scheme == "https":
		case u.Scheme == "http" && s.AllowHTTP:
		case u.Scheme == "http":
			p.add(path+".url", "%q is plain http; use https, or set allow_http: true", redacted(*u))
		default:
			p.add(path+".url", "scheme %q is not https", u.Scheme)
		}
	}
	checkEnum(p, path+".format", s.Format, false, Formats)
	checkEnum(p, path+".match", s.Match, false, Matches)
	switch {
	case s.SHA256 != "" && !isHex(s.SHA256, 64):
		p.add(path+".sha256", "%q is not 64 hex digits", s.SHA256)
	case s.SHA256 != "" && len(s.Inline) > 0:
		p.add(path+".sha256", "only for path and url sources")
	}
	if s.MinEntries < 0 {
		p.add(path+".min_entries", "%d is negative", s.MinEntries)
	}
	if !(s.MaxShrink >= 0 && s.MaxShrink <= 1) {
		p.add(path+".max_shrink", "%v is not between 0 and 1", s.MaxShrink)
	}
	for i, n := range s.MustContain {
		if err := checkDomain(n); err != nil {
			p.add(fmt.Sprintf("%s.must_contain[%d]", path, i), "%v", err)
		}
	}
	checkNonNegative(p, path+".refresh", s.Refresh)
}

func (c *Config) validateLists(p *problems) {
	checkPositive(p, "lists.timeout", c.Lists.Timeout)
	if c.Lists.MaxSize < 1 {
		p.add("lists.max_size", "%d is less than 1", c.Lists.MaxSize)
	}
	checkPositive(p, "lists.refresh", c.Lists.Refresh)
	checkNonNegative(p, "lists.deadline", c.Lists.Deadline)
	if c.Lists.Deadline > 0 && c.Lists.Deadline < c.Lists.Timeout {
		p.add("lists.deadline", "%s is less than lists.timeout %s", c.Lists.Deadline, c.Lists.Timeout)
	}
}

func (c *Config) validateZones(p *problems) {
	seen := make(map[string]int)
	for i, z := range c.Zones {
		path := fmt.Sprintf("zones[%d]", i)
		name := strings.ToLower(strings.TrimSuffix(z.Name, ".")) + "."
		switch err := checkDomain(z.Name); {
		case z.Name == "":
			p.add(path+".name", "is required")
		case z.Name == ".":
			p.add(path+".name", "the root zone cannot be a local zone; set upstreams.servers instead")
		case err != nil:
			p.add(path+".name", "%v", err)
		default:
			if first, dup := seen[name]; dup {
				p.add(path+".name", "%q is already zones[%d]", z.Name, first)
				break
			}
			seen[name] = i
		}
		switch {
		case z.File == "" && len(z.Forward) == 0:
			p.add(path, "one of file or forward is required")
		case z.File != "" && len(z.Forward) > 0:
			p.add(path, "has file and forward: exactly one is allowed")
		}
		checkServers(p, path+".forward", z.Forward)
	}
}

func (c *Config) validateAudit(p *problems) {
	a := c.Audit
	checkEnum(p, "audit.client_privacy", a.ClientPrivacy, true, ClientPrivacies)
	if a.MaxSize < 0 {
		p.add("audit.max_size", "%d is negative", a.MaxSize)
	}
	if a.MaxFiles < 0 {
		p.add("audit.max_files", "%d is negative", a.MaxFiles)
	}
	if a.Required && a.Path == "" {
		p.add("audit.required", "true, but audit.path is empty: there is no enforcement log to require")
	}
	if a.SigningKeyFile != "" && a.Path == "" {
		p.add("audit.signing_key_file", "set, but audit.path is empty: there is no enforcement log to sign")
	}
	if a.CheckpointRecords < 0 {
		p.add("audit.checkpoint_records", "%d is negative", a.CheckpointRecords)
	}
	checkNonNegative(p, "audit.checkpoint_interval", a.CheckpointInterval)
}

// ParseDate parses a jurisdiction date: "2006-01-02" (00:00 UTC that day) or
// an RFC 3339 time ("2006-01-02T15:04:05Z07:00").
func ParseDate(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is not a date (2006-01-02) or an RFC 3339 time (2006-01-02T15:04:05Z)", s)
}

// checkOneOf reports a value outside the allowed set.
func checkOneOf(p *problems, path, v string, allowed ...string) {
	for _, a := range allowed {
		if v == a {
			return
		}
	}
	var names []string
	for _, a := range allowed {
		if a != "" {
			names = append(names, a)
		}
	}
	p.add(path, "%q is not one of %s", v, strings.Join(names, ", "))
}

func checkPositive(p *problems, path string, d time.Duration) {
	if d <= 0 {
		p.add(path, "%v is not positive", d)
	}
}

func checkNonNegative(p *problems, path string, d time.Duration) {
	if d < 0 {
		p.add(path, "%v is negative", d)
	}
}

// checkTTL checks a duration used as a DNS TTL.
func checkTTL(p *problems, path string, d time.Duration) {
	switch {
	case d < 0:
		p.add(path, "%v is negative", d)
	case d > maxTTL:
		p.add(path, "%v is more than the largest DNS TTL (%v)", d, maxTTL)
	}
}

// validateIDs checks a list of jurisdiction IDs.
func validateIDs(p *problems, path string, ids []string) {
	seen := make(map[string]int)
	for i, id := range ids {
		ip := fmt.Sprintf("%s[%d]", path, i)
		if err := CheckID(id); err != nil {
			p.add(ip, "%v", err)
			continue
		}
		if first, dup := seen[id]; dup {
			p.add(ip, "%q is already %s[%d]", id, path, first)
			continue
		}
		seen[id] = i
	}
}

// CheckID checks the syntax of a jurisdiction ID, configured or shipped:
// lower-case letters, digits and '-', not starting with '-', at most 63.
func CheckID(id string) error {
	if len(id) > 63 || !idPattern.MatchString(id) {
		return fmt.Errorf("%q is not a jurisdiction id (lower-case letters, digits and '-', at most 63)", id)
	}
	return nil
}

// checkPrefixes checks a list of CIDR prefixes.
func checkPrefixes(p *problems, path string, list []string) {
	for i, s := range list {
		if _, err := parsePrefix(s); err != nil {
			p.add(fmt.Sprintf("%s[%d]", path, i), "%v", err)
		}
	}
}

// ParseSubnet parses a client subnet: a CIDR prefix with no host bits set
// (parsePrefix); an IPv4-mapped IPv6 prefix of /96 or longer is the IPv4
// prefix it maps, as a mapped client address is the IPv4 address.
func ParseSubnet(s string) (netip.Prefix, error) {
	pfx, err := parsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	// A mapped prefix shorter than /96 has host bits set (the ffff of
	// bits 80-95): parsePrefix rejected it.
	if pfx.Addr().Is4In6() {
		pfx = netip.PrefixFrom(pfx.Addr().Unmap(), pfx.Bits()-96)
	}
	return pfx, nil
}

// parsePrefix parses a CIDR prefix with no host bits set.
func parsePrefix(s string) (netip.Prefix, error) {
	pfx, err := netip.ParsePrefix(s)
	if err != nil {
		if _, aerr := netip.ParseAddr(s); aerr == nil {
			bits := 32
			if strings.Contains(s, ":") {
				bits = 128
			}
			return netip.Prefix{}, fmt.Errorf("%q is an address, not a prefix (write %s/%d)", s, s, bits)
		}
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR prefix", s)
	}
	if m := pfx.Masked(); m != pfx {
		return netip.Prefix{}, fmt.Errorf("%q has host bits set (did you mean %s?)", s, m)
	}
	return pfx, nil
}

// checkListenAddr checks an address to listen on: IP:port or :port.
func checkListenAddr(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port", s)
	}
	if host != "" {
		if _, err := netip.ParseAddr(host); err != nil {
			return fmt.Errorf("%q: host %q is not an IP address (leave it empty for every interface)", s, host)
		}
	}
	if port == "0" {
		return nil // the kernel picks a free port (tests, sidecars that report it)
	}
	return checkPort(s, port)
}

// checkPort checks a port number in 1-65535.
func checkPort(s, port string) error {
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: port %q is not a number from 1 to 65535", s, port)
	}
	return nil
}

// checkServers checks a list of upstream servers, duplicates included.
func checkServers(p *problems, path string, list []string) {
	seen := make(map[string]int)
	for i, s := range list {
		sp := fmt.Sprintf("%s[%d]", path, i)
		if err := checkUpstream(s); err != nil {
			p.add(sp, "%v", err)
			continue
		}
		if first, dup := seen[s]; dup {
			p.add(sp, "%q is already %s[%d]", s, path, first)
			continue
		}
		seen[s] = i
	}
}

// NoCaseRandomization, as the fragment of a UDP upstream
// ("udp://192.0.2.53#no-0x20", "192.0.2.53:53#no-0x20"), turns 0x20 off for
// a server that does not echo the question's case (upstream reads it).
const NoCaseRandomization = "no-0x20"

// checkUpstream checks the syntax of an upstream server: IP[:port][#no-0x20],
// udp://IP[:port][#no-0x20], tcp://IP[:port], tls://host[:port][#servername]
// or an https:// URL.
func checkUpstream(s string) error {
	scheme, _, isURL := strings.Cut(s, "://")
	if !isURL {
		addr, frag, hasFrag := strings.Cut(s, "#")
		if hasFrag && frag != NoCaseRandomization {
			return fmt.Errorf("%q: unknown option %q (a UDP upstream takes #%s)", s, frag, NoCaseRandomization)
		}
		s := addr
		if _, err := netip.ParseAddr(s); err == nil {
			return nil
		}
		host, port, err := net.SplitHostPort(s)
		if err != nil {
			return fmt.Errorf("%q is not IP[:port] or a udp://, tcp://, tls:// or https:// URL", s)
		}
		if _, err := netip.ParseAddr(host); err != nil {
			return fmt.Errorf("%q: %q is not an IP address", s, host)
		}
		return checkPort(s, port)
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL", s)
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", s)
	}
	if port := u.Port(); port != "" || strings.HasSuffix(u.Host, ":") {
		if err := checkPort(s, port); err != nil {
			return err
		}
	}
	host := u.Hostname()
	_, ipErr := netip.ParseAddr(host)
	switch strings.ToLower(scheme) {
	case "udp", "tcp":
		if ipErr != nil {
			return fmt.Errorf("%q: %q is not an IP address", s, host)
		}
		if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return fmt.Errorf("%q: only %s://IP[:port] is allowed", s, scheme)
		}
		if u.Fragment != "" && (u.Fragment != NoCaseRandomization || strings.EqualFold(scheme, "tcp")) {
			return fmt.Errorf("%q: unknown option %q (only udp:// takes #%s)", s, u.Fragment, NoCaseRandomization)
		}
	case "tls":
		if ipErr != nil {
			return fmt.Errorf("%q: %q is not an IP address (there is no bootstrap resolver: write tls://IP#servername)", s, host)
		}
		if u.Fragment != "" {
			if err := checkDomain(u.Fragment); err != nil {
				return fmt.Errorf("%q: server name: %w", s, err)
			}
		}
		if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return fmt.Errorf("%q: only tls://host[:port][#servername] is allowed", s)
		}
	case "https":
		if ipErr != nil {
			return fmt.Errorf("%q: %q is not an IP address (there is no bootstrap resolver: write https://IP/dns-query#servername)", s, host)
		}
	default:
		return fmt.Errorf("%q: scheme %q is not udp, tcp, tls or https", s, scheme)
	}
	return nil
}

// checkDomain checks the syntax of a domain name other than the root (a
// trailing dot is optional). Labels are letters, digits, '-' and '_', at
// most 63 bytes; IDNs must be written in punycode.
func checkDomain(s string) error {
	name := strings.TrimSuffix(s, ".")
	if name == "" {
		return fmt.Errorf("%q is not a domain name", s)
	}
	if len(name) > 253 {
		return fmt.Errorf("%q is longer than 253 characters", s)
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("%q is not a domain name (empty label or label over 63 characters)", s)
		}
		for i := 0; i < len(label); i++ {
			b := label[i]
			switch {
			case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9', b == '-', b == '_':
			case b >= 0x80:
				return fmt.Errorf("%q is not ASCII: write internationalized names in punycode (xn--...)", s)
			default:
				return fmt.Errorf("%q is not a domain name (character %q)", s, b)
			}
		}
	}
	return nil
}

// isHex reports whether s is n hexadecimal digits.
func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !(b >= '0' && b <= '9' || b >= 'a' && b <= 'f' || b >= 'A' && b <= 'F') {
			return false
		}
	}
	return true
}

// Bounds that leave the justification room in the 200 bytes of EDE
// EXTRA-TEXT once the structured DNS error JSON carries the contact and
// organisation.
const (
	maxContact      = 64
	maxOrganisation = 32
)

// validateSDE checks a contact and organisation of the structured DNS error
// JSON (draft-ietf-dnsop-structured-dns-error): the contact is a mailto:,
// tel:, sips: or https: URI, or a bare e-mail address (sent as mailto:).
func validateSDE(p *problems, path, contact, org string) {
	if contact != "" && !strings.Contains(contact, ":") && strings.Count(contact, "@") == 1 {
		contact = "mailto:" + contact
	}
	if contact != "" {
		u, err := url.Parse(contact)
		switch {
		case err != nil:
			p.add(path+".contact", "%v", err)
		case u.Scheme != "mailto" && u.Scheme != "tel" && u.Scheme != "sips" && u.Scheme != "https":
			p.add(path+".contact", "%q is not a mailto:, tel:, sips: or https: URI", contact)
		case u.Scheme == "https" && u.Host == "", u.Scheme != "https" && u.Opaque == "":
			p.add(path+".contact", "%q has no address", contact)
		}
		if len(contact) > maxContact {
			p.add(path+".contact", "%d bytes, more than %d (it shares the 200 bytes of the EDE text)", len(contact), maxContact)
		}
	}
	if len(org) > maxOrganisation {
		p.add(path+".organisation", "%d bytes, more than %d (it shares the 200 bytes of the EDE text)", len(org), maxOrganisation)
	}
	if strings.ContainsFunc(contact+org, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		p.add(path, "contact and organisation must not hold control characters")
	}
}

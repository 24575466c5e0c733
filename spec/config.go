// Package spec is jurisdns's typed vocabulary: the configuration (Config and
// the structs and enums it is made of: Tier, Mode, Action, OnLoadFailure,
// Format, Match, Transport, ...) and Validate, which reports every problem
// at once with its key path.
//
// spec is a leaf: it imports nothing of this module, no viper and no dns.*
// types. Package config decodes a Config (viper: embedded default, YAML
// file, JURISDNS_* environment, flags); the enums decode themselves
// (encoding.TextUnmarshaler), so an unknown value is an error naming the
// value and the allowed ones wherever it is read. Every other part takes
// the validated Config, or the part of it it needs, from here.
package spec

import "time"

// Config is the whole configuration of one jurisdns instance. Field tags are
// the YAML keys; the environment variable of a key is JURISDNS_ followed by
// the key path in upper case with "." replaced by "_" (for example
// JURISDNS_UPSTREAMS_SERVERS, JURISDNS_CACHE_SIZE).
type Config struct {
	// Listen lists the addresses served over UDP and TCP (host:port).
	Listen []string `mapstructure:"listen"`
	// Upstreams are the default forwarders.
	Upstreams Upstreams `mapstructure:"upstreams"`
	// Cache configures the answer cache.
	Cache Cache `mapstructure:"cache"`
	// Server holds listener limits and timeouts.
	Server Server `mapstructure:"server"`
	// Access says who may query and how fast.
	Access Access `mapstructure:"access"`
	// DefaultJurisdictions apply to clients that match no entry of Clients.
	DefaultJurisdictions []string `mapstructure:"default_jurisdictions"`
	// Clients map client subnets to jurisdictions; the longest prefix wins.
	Clients []Client `mapstructure:"clients"`
	// Jurisdictions defines new jurisdictions or overrides attributes of
	// shipped ones (matched by ID).
	Jurisdictions []Jurisdiction `mapstructure:"jurisdictions"`
	// Lists holds settings shared by every list source.
	Lists Lists `mapstructure:"lists"`
	// TSIGKeys are the keys that zone transfers (RPZ sources with transfer,
	// rpz_out) and NOTIFY messages are signed with.
	TSIGKeys []TSIGKey `mapstructure:"tsig_keys"`
	// RPZOut serves every active enforcing jurisdiction as an RPZ zone.
	RPZOut RPZOut `mapstructure:"rpz_out"`
	// Zones are local authoritative zones and conditional forwards.
	Zones []Zone `mapstructure:"zones"`
	// Admin is the admin HTTP address (health, readiness, metrics); empty
	// turns it off.
	Admin string `mapstructure:"admin"`
	// AdminAuth protects the admin listener with a bearer token.
	AdminAuth AdminAuth `mapstructure:"admin_auth"`
	// AdminPprof serves Go's runtime profiles (net/http/pprof) under
	// /debug/pprof/ on the admin listener, behind admin_auth's token.
	AdminPprof bool `mapstructure:"admin_pprof"`
	// StructuredErrors makes the EDE text of every block the JSON of
	// draft-ietf-dnsop-structured-dns-error when a contact is set; a
	// jurisdiction's own contact and organisation take precedence.
	StructuredErrors StructuredErrors `mapstructure:"structured_errors"`
	// Audit configures the enforcement log.
	Audit Audit `mapstructure:"audit"`
	// TLS holds the certificate shared by DoT and DoH.
	TLS TLS `mapstructure:"tls"`
	// DoT serves DNS over TLS (RFC 7858).
	DoT DoT `mapstructure:"dot"`
	// DoH serves DNS over HTTPS (RFC 8484).
	DoH DoH `mapstructure:"doh"`
	// DDR answers _dns.resolver.arpa SVCB with the DoT and DoH endpoints
	// (RFC 9462), so that clients upgrade to them.
	DDR bool `mapstructure:"ddr"`
	// Dnstap configures the dnstap output.
	Dnstap Dnstap `mapstructure:"dnstap"`
	// Log configures jurisdns's own logging.
	Log Log `mapstructure:"log"`

	// Source says where the configuration came from ("embedded default" or
	// a file path). It is set by Load, not read from YAML.
	Source string `mapstructure:"-"`
	// UnknownEnv are the JURISDNS_* variables of the environment that name
	// no key, in name order. They never stop jurisdns (see EnvNotice); Load
	// sets them, not YAML.
	UnknownEnv []EnvNotice `mapstructure:"-"`
}

// Upstreams configures default forwarding.
type Upstreams struct {
	// Servers are upstream addresses: "IP[:port]" (UDP, TCP on truncation),
	// "udp://IP[:port]", "tcp://IP[:port]", "tls://host[:port][#servername]"
	// (DoT) or "https://host/path" (DoH). Empty means the nameservers of
	// /etc/resolv.conf, minus the resolver's own listen addresses.
	Servers []string `mapstructure:"servers"`
	// Strategy is failover (default), random or parallel.
	Strategy Strategy `mapstructure:"strategy"`
	// Timeout bounds the whole upstream resolution of one query.
	Timeout time.Duration `mapstructure:"timeout"`
	// TryTimeout bounds one try against one upstream.
	TryTimeout time.Duration `mapstructure:"try_timeout"`
}

// Cache configures the answer cache.
type Cache struct {
	// Size is the maximum number of cached answers; 0 turns caching off.
	Size int `mapstructure:"size"`
	// MaxBytes is the exact bound on the bytes of the stored answers
	// (record header, wire bytes, TTL offsets, name); eviction beyond it
	// approximates least-recently-used (CLOCK).
	MaxBytes int64 `mapstructure:"max_bytes"`
	// MinTTL and MaxTTL clamp the TTL an answer is cached for.
	MinTTL time.Duration `mapstructure:"min_ttl"`
	MaxTTL time.Duration `mapstructure:"max_ttl"`
	// NegativeMaxTTL caps the TTL of NXDOMAIN/NODATA answers (RFC 2308).
	NegativeMaxTTL time.Duration `mapstructure:"negative_max_ttl"`
	// ServfailTTL is how long a SERVFAIL is remembered (at most a few seconds).
	ServfailTTL time.Duration `mapstructure:"servfail_ttl"`
	// Prefetch refreshes popular entries shortly before they expire.
	Prefetch bool `mapstructure:"prefetch"`
	// ServeStale answers from an expired entry, up to this long after expiry,
	// when every upstream fails (RFC 8767). 0 turns it off.
	ServeStale time.Duration `mapstructure:"serve_stale"`
}

// Server holds listener limits and timeouts.
type Server struct {
	// TCPIdleTimeout closes an idle TCP connection (RFC 7766).
	TCPIdleTimeout time.Duration `mapstructure:"tcp_idle_timeout"`
	// MaxTCPConnections caps concurrent TCP connections.
	MaxTCPConnections int `mapstructure:"max_tcp_connections"`
	// MaxTCPPerClient caps the concurrent TCP connections of one client
	// address.
	MaxTCPPerClient int `mapstructure:"max_tcp_per_client"`
	// MaxInflight caps the queries on the slow path (those that may wait
	// for an upstream) across UDP and TCP; beyond it a query gets SERVFAIL.
	MaxInflight int `mapstructure:"max_inflight"`
	// MaxInflightPerClient is one client's share of MaxInflight.
	MaxInflightPerClient int `mapstructure:"max_inflight_per_client"`
	// UDPWorkers is the number of UDP read loops per listen address; 0 means
	// one per CPU.
	UDPWorkers int `mapstructure:"udp_workers"`
	// HealthName is answered with TXT "ok" without touching the chain; empty
	// turns it off.
	HealthName string `mapstructure:"health_name"`
	// ShutdownTimeout bounds the drain of in-flight queries on SIGTERM.
	ShutdownTimeout time.Duration `mapstructure:"shutdown_timeout"`
	// BlockSingleLabel answers single-label names (printer.) with NXDOMAIN
	// instead of forwarding them (RFC 6761 spirit, dnsmasq domain-needed).
	BlockSingleLabel bool `mapstructure:"block_single_label"`
	// WatchConfig reloads when the configuration file is replaced (a
	// Kubernetes ConfigMap's ..data swap, or a file renamed over it),
	// exactly as on SIGHUP.
	WatchConfig bool `mapstructure:"watch_config"`
	// MemoryLimit is the Go runtime's soft memory limit in bytes
	// (debug.SetMemoryLimit); 0 derives it after every policy build from
	// the memory in use then, cache.max_bytes and a headroom. The
	// GOMEMLIMIT environment variable, when set, wins.
	MemoryLimit int64 `mapstructure:"memory_limit"`
}

// Access says who may query and how fast.
type Access struct {
	// Allow lists the CIDRs allowed to query; others get Action.
	Allow []string `mapstructure:"allow"`
	// Action for clients outside Allow: refuse (default) or drop.
	Action AccessAction `mapstructure:"action"`
	// RateLimit limits queries per client prefix.
	RateLimit RateLimit `mapstructure:"rate_limit"`
}

// RateLimit is a token bucket per client prefix.
type RateLimit struct {
	// QPS is the sustained rate per client prefix; 0 turns limiting off.
	QPS float64 `mapstructure:"qps"`
	// Burst is the bucket size.
	Burst int `mapstructure:"burst"`
	// IPv4Prefix and IPv6Prefix group clients (default /32 and /64).
	IPv4Prefix int `mapstructure:"ipv4_prefix"`
	IPv6Prefix int `mapstructure:"ipv6_prefix"`
	// Exempt lists CIDRs never limited.
	Exempt []string `mapstructure:"exempt"`
	// Action for excess queries: drop (default) or truncate (TC=1).
	Action RateLimitAction `mapstructure:"action"`
}

// Client maps subnets to the jurisdictions that apply to them.
type Client struct {
	// Name identifies the entry in logs and errors; unique among clients.
	Name string `mapstructure:"name"`
	// Subnets are the client networks (CIDR); a subnet appears in one
	// client only.
	Subnets []string `mapstructure:"subnets"`
	// Jurisdictions are the IDs of the jurisdictions that apply to these
	// clients (shipped or defined in Config.Jurisdictions).
	Jurisdictions []string `mapstructure:"jurisdictions"`
}

// Jurisdiction defines a jurisdiction, or overrides a shipped one with the
// same ID: set fields replace the shipped values, Sources and Allow are added
// to the shipped ones. Its id and the attributes it may override are the
// embedded JurisdictionAttrs (squashed: their keys are the jurisdiction's
// own, jurisdictions[0].tier), which a shipped file has too.
type Jurisdiction struct {
	// JurisdictionAttrs are the id and the attributes shared with a
	// shipped jurisdiction; the ID of a shipped jurisdiction makes this
	// entry an override of it.
	JurisdictionAttrs `mapstructure:",squash"`
	// Instrument names the legal instrument of the ban.
	Instrument string `mapstructure:"instrument"`
	// Links are http(s) URLs of the instrument and related documents.
	Links []string `mapstructure:"links"`
	// Sources of the list.
	Sources []Source `mapstructure:"sources"`
	// Allow entries lift this jurisdiction's own blocks (and blocks of lower
	// tiers).
	Allow []string `mapstructure:"allow"`
	// Contact (a mailto:, tel:, sips: or https: URI) and Organisation make
	// this jurisdiction's EDE text the JSON of
	// draft-ietf-dnsop-structured-dns-error; they replace
	// StructuredErrors for it.
	Contact      string `mapstructure:"contact"`
	Organisation string `mapstructure:"organisation"`
}

// JurisdictionAttrs are the keys a jurisdiction has wherever it is
// written: its id and the attributes a configured Jurisdiction may override
// on a shipped one. ShippedJurisdiction and Jurisdiction embed them
// (squashed: the keys are the jurisdiction's own). One validation (the id
// aside: its rules differ in the messages) and one conversion in policy
// serve both.
type JurisdictionAttrs struct {
	// ID matches [a-z0-9][a-z0-9-]* (CheckID).
	ID string `mapstructure:"id"`
	// Title and Authority say what the ban is and who issued it.
	Title     string `mapstructure:"title"`
	Authority string `mapstructure:"authority"`
	// Effective and Expires are dates (2006-01-02) or RFC 3339 times; the
	// jurisdiction is active in [Effective, Expires).
	Effective string `mapstructure:"effective"`
	Expires   string `mapstructure:"expires"`
	// Tier is mandated, local or advisory.
	Tier Tier `mapstructure:"tier"`
	// Mode is enforce or report.
	Mode Mode `mapstructure:"mode"`
	// Action is nxdomain (default), nodata, null, ip, refused or drop.
	Action Action `mapstructure:"action"`
	// Sinkhole lists the addresses answered for action ip.
	Sinkhole []string `mapstructure:"sinkhole"`
	// EDE is the RFC 8914 code: 16 (Censored) for an external legal
	// requirement, 15 (Blocked) for the operator's own policy.
	EDE *int `mapstructure:"ede"`
	// TTL of block answers.
	TTL time.Duration `mapstructure:"ttl"`
	// OnLoadFailure is last_known_good (default), fail_closed or fail_open.
	OnLoadFailure OnLoadFailure `mapstructure:"on_load_failure"`
}

// StructuredErrors holds the operator's details for the JSON of
// draft-ietf-dnsop-structured-dns-error in the EDE text of a block.
type StructuredErrors struct {
	// Contact is where a user reports a wrong block: a mailto:, tel:, sips:
	// or https: URI. Empty keeps the plain EDE text.
	Contact string `mapstructure:"contact"`
	// Organisation names who blocks ("ACME IT"); it needs a contact.
	Organisation string `mapstructure:"organisation"`
}

// Source is one list of a jurisdiction: exactly one of Path, URL, Inline.
type Source struct {
	// Name identifies the source in block answers (EDE text) and logs;
	// unique within its jurisdiction.
	Name string `mapstructure:"name"`
	// Path is a local list file.
	Path string `mapstructure:"path"`
	// URL is a list downloaded over https (http only with AllowHTTP).
	URL string `mapstructure:"url"`
	// Inline holds the entries themselves, one per element.
	Inline []string `mapstructure:"inline"`
	// Format is domains (default), hosts, adblock, wildcard or rpz.
	Format Format `mapstructure:"format"`
	// Match is suffix (default) or exact.
	Match Match `mapstructure:"match"`
	// SHA256 pins the content (64 hex digits).
	SHA256 string `mapstructure:"sha256"`
	// MinEntries rejects a list with fewer entries.
	MinEntries int `mapstructure:"min_entries"`
	// MaxShrink, between 0 and 1, rejects an update that loses more than
	// this share of the entries; 0 turns the guard off.
	MaxShrink float64 `mapstructure:"max_shrink"`
	// MustContain lists names the list must block.
	MustContain []string `mapstructure:"must_contain"`
	// Refresh is the refresh period of a URL source; 0 means
	// Lists.Refresh.
	Refresh time.Duration `mapstructure:"refresh"`
	// AllowHTTP permits a plain http URL.
	AllowHTTP bool `mapstructure:"allow_http"`
	// AllowEmpty accepts a list with no entries; without it an empty list
	// (a file truncated to 0 bytes) is rejected like any failed source.
	AllowEmpty bool `mapstructure:"allow_empty"`
	// Transfer makes the source an RPZ zone pulled from primaries by zone
	// transfer (AXFR, then IXFR on NOTIFY and on the SOA timers).
	Transfer *Transfer `mapstructure:"transfer"`
}

// Transfer is an RPZ list source pulled by zone transfer.
type Transfer struct {
	// Zone is the RPZ zone's name ("rpz.example.").
	Zone string `mapstructure:"zone"`
	// Primaries are the servers transferred from, "IP:port" (port 53 when
	// left out), tried in order. NOTIFY is accepted from them only.
	Primaries []string `mapstructure:"primaries"`
	// TSIGKey names one of TSIGKeys; when set every transfer and NOTIFY
	// must be signed with it.
	TSIGKey string `mapstructure:"tsig_key"`
}

// TSIGKey is a shared secret for TSIG (RFC 8945).
type TSIGKey struct {
	// Name is the key's domain name ("feed-key.").
	Name string `mapstructure:"name"`
	// Algorithm is hmac-sha256 (default), hmac-sha384, hmac-sha512 or
	// hmac-sha1.
	Algorithm string `mapstructure:"algorithm"`
	// Secret is the base64 secret; SecretFile reads it from a file instead
	// (exactly one of the two).
	Secret     string `mapstructure:"secret"`
	SecretFile string `mapstructure:"secret_file"`
}

// RPZOut serves jurisdictions as RPZ zones to other resolvers.
type RPZOut struct {
	// ZoneSuffix turns it on: jurisdiction us-gov is served as
	// us-gov.<zone_suffix>. Empty turns rpz_out off.
	ZoneSuffix string `mapstructure:"zone_suffix"`
	// Allow lists the prefixes that may transfer the zones; others get
	// REFUSED.
	Allow []string `mapstructure:"allow"`
	// TSIGKey names one of TSIGKeys required on every transfer when set.
	TSIGKey string `mapstructure:"tsig_key"`
	// Notify lists the secondaries ("IP:port") sent a NOTIFY on each new
	// serial.
	Notify []string `mapstructure:"notify"`
	// Journal is the number of past generations of each zone kept for
	// IXFR.
	Journal int `mapstructure:"journal"`
}

// Lists holds settings shared by every list source.
type Lists struct {
	// CacheDir keeps the last good copy of every downloaded list.
	CacheDir string `mapstructure:"cache_dir"`
	// Timeout and MaxSize bound one download attempt.
	Timeout time.Duration `mapstructure:"timeout"`
	MaxSize int64         `mapstructure:"max_size"`
	// Deadline bounds every attempt of one download and the waits between
	// them; 0 means twice Timeout (see ListDeadline).
	Deadline time.Duration `mapstructure:"deadline"`
	// Refresh is the default refresh period of URL sources.
	Refresh time.Duration `mapstructure:"refresh"`
}

// Zone is a local authoritative zone (File) or a conditional forward
// (Forward), exactly one of the two.
type Zone struct {
	// Name is the zone's domain name ("corp.example.").
	Name string `mapstructure:"name"`
	// File is the zone file served authoritatively.
	File string `mapstructure:"file"`
	// Forward lists the servers the zone is forwarded to, written like
	// Upstreams.Servers.
	Forward []string `mapstructure:"forward"`
}

// AdminAuth protects the admin listener.
type AdminAuth struct {
	// TokenFile holds a bearer token required on every admin path except
	// /healthz and /readyz.
	TokenFile string `mapstructure:"token_file"`
}

// Audit configures the enforcement log.
type Audit struct {
	// Path of the hash-chained JSON-lines enforcement log; empty turns it off.
	Path string `mapstructure:"path"`
	// ClientPrivacy is full, truncate (default), hash or none.
	ClientPrivacy ClientPrivacy `mapstructure:"client_privacy"`
	// MaxSize rotates the log past this many bytes; MaxFiles are kept.
	MaxSize  int64 `mapstructure:"max_size"`
	MaxFiles int   `mapstructure:"max_files"`
	// QueryLog is a path for a log of every query (off when empty).
	QueryLog string `mapstructure:"query_log"`
	// Required makes /readyz answer 503 while the enforcement log cannot
	// be written (otherwise it reports "degraded" with 200).
	Required bool `mapstructure:"required"`
	// SigningKeyFile is an Ed25519 private key (PEM PKCS #8) that signs
	// checkpoints of the enforcement log; empty: no checkpoints.
	SigningKeyFile string `mapstructure:"signing_key_file"`
	// CheckpointRecords and CheckpointInterval say how often a signed
	// checkpoint is written (0 turns each off).
	CheckpointRecords  int           `mapstructure:"checkpoint_records"`
	CheckpointInterval time.Duration `mapstructure:"checkpoint_interval"`
}

// Log configures jurisdns's own logging.
type Log struct {
	// Level is debug, info (default), warn or error.
	Level LogLevel `mapstructure:"level"`
	// Format is text (default) or json.
	Format LogFormat `mapstructure:"format"`
}

// ListDeadline is the bound on one download with all its retries:
// lists.deadline, or twice lists.timeout when it is 0.
func (c *Config) ListDeadline() time.Duration {
	if c.Lists.Deadline > 0 {
		return c.Lists.Deadline
	}
	return 2 * c.Lists.Timeout
}

// TLS is the certificate shared by DoT and DoH. Both files are read at start
// and on every reload (SIGHUP); a pair that cannot be used keeps the
// previous one.
type TLS struct {
	// CertFile is the PEM certificate chain, leaf first.
	CertFile string `mapstructure:"cert_file"`
	// KeyFile is the PEM private key of the leaf.
	KeyFile string `mapstructure:"key_file"`
	// HandshakeTimeout bounds a TLS handshake; a client that has not
	// finished by then is disconnected.
	HandshakeTimeout time.Duration `mapstructure:"handshake_timeout"`
}

// DoT configures DNS over TLS (RFC 7858).
type DoT struct {
	// Listen lists the addresses served (host:port, usually port 853); empty
	// turns DoT off.
	Listen []string `mapstructure:"listen"`
	// IdleTimeout closes a connection with no query for this long.
	IdleTimeout time.Duration `mapstructure:"idle_timeout"`
	// MaxConnections caps concurrent DoT connections.
	MaxConnections int `mapstructure:"max_connections"`
}

// DoH configures DNS over HTTPS (RFC 8484).
type DoH struct {
	// Listen lists the addresses served (host:port, usually port 443); empty
	// turns DoH off.
	Listen []string `mapstructure:"listen"`
	// Path is the URL path of the DNS endpoint.
	Path string `mapstructure:"path"`
	// IdleTimeout closes an HTTP connection with no request for this long.
	IdleTimeout time.Duration `mapstructure:"idle_timeout"`
	// MaxConnections caps concurrent DoH connections.
	MaxConnections int `mapstructure:"max_connections"`
	// MaxStreams caps the concurrent HTTP/2 streams of one connection.
	MaxStreams int `mapstructure:"max_streams"`
}

// Encrypted reports whether DoT or DoH is served.
func (c *Config) Encrypted() bool { return len(c.DoT.Listen) > 0 || len(c.DoH.Listen) > 0 }

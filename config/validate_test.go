package config

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestParseDate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    time.Time
		wantErr bool
	}{
		{name: "date_is_utc_midnight", in: "2025-02-05", want: time.Date(2025, 2, 5, 0, 0, 0, 0, time.UTC)},
		{name: "rfc3339_utc", in: "2025-02-05T12:30:00Z", want: time.Date(2025, 2, 5, 12, 30, 0, 0, time.UTC)},
		{name: "rfc3339_offset", in: "2025-02-05T00:00:00+11:00", want: time.Date(2025, 2, 4, 13, 0, 0, 0, time.UTC)},
		{name: "rfc3339_fraction", in: "2025-02-05T00:00:00.5Z", want: time.Date(2025, 2, 5, 0, 0, 0, 5e8, time.UTC)},
		{name: "no_zone", in: "2025-02-05T00:00:00", wantErr: true},
		{name: "words", in: "5 February 2025", wantErr: true},
		{name: "invalid_day", in: "2025-02-30", wantErr: true},
		{name: "empty", in: "", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseDate(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("ParseDate(%q) error = %v, want error %v", tc.in, err, tc.wantErr)
			}
			if !got.Equal(tc.want) {
				t.Errorf("ParseDate(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

// TestValidateCases changes one thing in the default configuration and
// checks the exact messages.
func TestValidateCases(t *testing.T) {
	t.Parallel()
	intp := func(v int) *int { return &v }
	tests := []struct {
		name   string
		change func(c *Config)
		want   []string
	}{
		{name: "default", change: func(*Config) {}},
		{
			name:   "no_listen",
			change: func(c *Config) { c.Listen = nil },
			want:   []string{"listen: at least one address is required"},
		},
		{
			name:   "listen_every_interface_and_zone",
			change: func(c *Config) { c.Listen = []string{":53", "[fe80::1%eth0]:53"} },
		},
		{
			name:   "try_timeout_equal_is_fine",
			change: func(c *Config) { c.Upstreams.TryTimeout = c.Upstreams.Timeout },
		},
		{
			name:   "zero_timeouts",
			change: func(c *Config) { c.Upstreams.Timeout, c.Upstreams.TryTimeout = 0, -time.Second },
			want:   []string{"upstreams.timeout: 0s is not positive", "upstreams.try_timeout: -1s is not positive"},
		},
		{
			name:   "lists_deadline_below_timeout",
			change: func(c *Config) { c.Lists.Timeout, c.Lists.Deadline = time.Minute, 10*time.Second },
			want:   []string{"lists.deadline: 10s is less than lists.timeout 1m0s"},
		},
		{
			name:   "lists_deadline_negative",
			change: func(c *Config) { c.Lists.Deadline = -time.Second },
			want:   []string{"lists.deadline: -1s is negative"},
		},
		{
			name:   "min_ttl_over_max_ttl",
			change: func(c *Config) { c.Cache.MinTTL, c.Cache.MaxTTL = time.Hour, time.Minute },
			want:   []string{"cache.min_ttl: 1h0m0s is more than cache.max_ttl (1m0s)"},
		},
		{
			name:   "cache_max_bytes",
			change: func(c *Config) { c.Cache.MaxBytes = 100 },
			want:   []string{"cache.max_bytes: 100 is less than 4096 (one large answer)"},
		},
		{
			name: "inflight_and_tcp_bounds",
			change: func(c *Config) {
				c.Server.MaxInflight, c.Server.MaxInflightPerClient, c.Server.MaxTCPPerClient = 10, 20, 0
			},
			want: []string{"server.max_tcp_per_client: 0 is less than 1",
				"server.max_inflight_per_client: 20 is more than server.max_inflight (10)"},
		},
		{
			name:   "max_ttl_over_dns_limit",
			change: func(c *Config) { c.Cache.MaxTTL = time.Duration(math.MaxInt32)*time.Second + time.Second },
			want:   []string{"cache.max_ttl: 596523h14m8s is more than the largest DNS TTL (596523h14m7s)"},
		},
		{
			name:   "qps_nan_and_inf",
			change: func(c *Config) { c.Access.RateLimit.QPS = math.NaN() },
			want:   []string{"access.rate_limit.qps: NaN is not a rate (0 or more queries per second)"},
		},
		{
			name:   "qps_needs_burst",
			change: func(c *Config) { c.Access.RateLimit.QPS, c.Access.RateLimit.Burst = math.Inf(1), 0 },
			want: []string{
				"access.rate_limit.qps: +Inf is not a rate (0 or more queries per second)",
				"access.rate_limit.burst: 0 is less than 1",
			},
		},
		{
			name:   "empty_allow",
			change: func(c *Config) { c.Access.Allow = []string{} },
			want:   []string{"access.allow: is empty, so no client may query (0.0.0.0/0 and ::/0 admit every client)"},
		},
		{
			name: "duplicate_subnet_in_one_client",
			change: func(c *Config) {
				c.Clients = []Client{{Name: "a", Subnets: []string{"2001:db8::/32", "2001:DB8::/32"}, Jurisdictions: []string{"x"}}}
			},
			want: []string{"clients[0].subnets[1]: 2001:db8::/32 is already in clients[0].subnets[0]"},
		},
		{
			name: "overlapping_subnets_are_fine",
			change: func(c *Config) {
				c.Clients = []Client{
					{Name: "a", Subnets: []string{"10.0.0.0/8"}, Jurisdictions: []string{"x"}},
					{Name: "b", Subnets: []string{"10.1.0.0/16"}, Jurisdictions: []string{"y"}},
				}
			},
		},
		{
			name: "jurisdiction_override_with_id_only",
			change: func(c *Config) {
				c.Jurisdictions = []Jurisdiction{{JurisdictionAttrs: JurisdictionAttrs{ID: "au-gov"}}}
			},
		},
		{
			name: "structured_errors",
			change: func(c *Config) {
				c.StructuredErrors = StructuredErrors{Organisation: "ACME IT"}
				c.Jurisdictions = []Jurisdiction{
					{JurisdictionAttrs: JurisdictionAttrs{ID: "a"}, Contact: "ftp://acme.example/x"},
					{JurisdictionAttrs: JurisdictionAttrs{ID: "b"}, Contact: "it@acme.example", Organisation: strings.Repeat("o", 33)},
					{JurisdictionAttrs: JurisdictionAttrs{ID: "c"}, Contact: "https://" + strings.Repeat("h", 64) + ".example/"},
					{JurisdictionAttrs: JurisdictionAttrs{ID: "d"}, Contact: "tel:+61-2-5550-0000", Organisation: "ACME\nIT"},
					{JurisdictionAttrs: JurisdictionAttrs{ID: "e"}, Contact: "mailto:it@acme.example"},
				}
			},
			want: []string{
				"jurisdictions[0].contact: \"ftp://acme.example/x\" is not a mailto:, tel:, sips: or https: URI",
				"jurisdictions[1].organisation: 33 bytes, more than 32 (it shares the 200 bytes of the EDE text)",
				"jurisdictions[2].contact: 81 bytes, more than 64 (it shares the 200 bytes of the EDE text)",
				"jurisdictions[3]: contact and organisation must not hold control characters",
				"structured_errors.organisation: needs structured_errors.contact: the structured DNS error JSON requires a contact",
			},
		},
		{
			name: "jurisdiction_dates_and_ede",
			change: func(c *Config) {
				c.Jurisdictions = []Jurisdiction{
					{JurisdictionAttrs: JurisdictionAttrs{ID: "a", Effective: "2025-01-01", Expires: "2025-01-01T00:00:00Z", EDE: intp(-1)}},
					{JurisdictionAttrs: JurisdictionAttrs{ID: "b", Effective: "2025-01-01T10:00:00+10:00", Expires: "2025-01-01", EDE: intp(65535)}},
					{JurisdictionAttrs: JurisdictionAttrs{ID: strings.Repeat("x", 64)}},
					{},
				}
			},
			want: []string{
				"jurisdictions[0].expires: 2025-01-01T00:00:00Z is not after effective (2025-01-01)",
				"jurisdictions[0].ede: -1 is not an EDE code (0 to 65535)",
				"jurisdictions[1].expires: 2025-01-01 is not after effective (2025-01-01T10:00:00+10:00)",
				`jurisdictions[2].id: "` + strings.Repeat("x", 64) + `" is not a jurisdiction id (lower-case letters, digits and '-', at most 63)`,
				"jurisdictions[3].id: is required",
			},
		},
		{
			name: "sources",
			change: func(c *Config) {
				c.Jurisdictions = []Jurisdiction{{
					JurisdictionAttrs: JurisdictionAttrs{ID: "a"},
					Sources: []Source{
						{Name: "ok-https", URL: "https://lists.example/x", SHA256: strings.Repeat("ab", 32)},
						{Name: "all-three", Path: "p", URL: "https://lists.example/x", Inline: []string{"x.example"}},
						{Name: "shrink", Inline: []string{"x"}, MaxShrink: math.NaN(), MinEntries: -1, Refresh: -time.Second},
						{Name: "sha", Path: "p", SHA256: strings.Repeat("g", 64), MustContain: []string{"not a name"}},
						{Name: "nohost", URL: "https:///x"},
						{Name: "secret-http", URL: "http://u:s3cret@lists.example/x?key=s3cret"},
						{Name: "bad", URL: "https://u:s3cret@lists.example:port/x"},
					},
				}}
			},
			want: []string{
				"jurisdictions[0].sources[1]: has path and url and inline: exactly one of path, url, inline or transfer is allowed",
				"jurisdictions[0].sources[2].min_entries: -1 is negative",
				"jurisdictions[0].sources[2].max_shrink: NaN is not between 0 and 1",
				"jurisdictions[0].sources[2].refresh: -1s is negative",
				`jurisdictions[0].sources[3].sha256: "` + strings.Repeat("g", 64) + `" is not 64 hex digits`,
				`jurisdictions[0].sources[3].must_contain[0]: "not a name" is not a domain name (character ' ')`,
				`jurisdictions[0].sources[4].url: "https:///x" is not a URL`,
				`jurisdictions[0].sources[5].url: "http://REDACTED@lists.example/x?REDACTED" is plain http; use https, or set allow_http: true`,
				"jurisdictions[0].sources[6].url: is not a URL",
			},
		},
		{
			name: "transfers",
			change: func(c *Config) {
				c.TSIGKeys = []TSIGKey{
					{Name: "k.", Secret: "c2VjcmV0"},
					{Name: "K", Algorithm: "md5", Secret: "not base64!", SecretFile: "/x"},
					{Name: "j."},
				}
				c.Jurisdictions = []Jurisdiction{{
					JurisdictionAttrs: JurisdictionAttrs{ID: "a"},
					Sources: []Source{
						{Name: "ok", Transfer: &Transfer{Zone: "rpz.example.", Primaries: []string{"192.0.2.1", "192.0.2.2:5300"}, TSIGKey: "K."}},
						{Name: "bad", Format: "hosts", Transfer: &Transfer{Zone: "bad zone", Primaries: []string{"ns.example:53"}, TSIGKey: "nope."}},
						{Name: "none", Transfer: &Transfer{Zone: "rpz.example."}},
						{Name: "two", Path: "p", Transfer: &Transfer{Zone: "rpz.example.", Primaries: []string{"192.0.2.1"}}},
					},
				}}
				c.RPZOut = RPZOut{ZoneSuffix: "rpz.jurisdns.", Allow: []string{"10.0.0.0/8", "nope"}, TSIGKey: "x.", Notify: []string{"192.0.2.1:0"}, Journal: -1}
			},
			want: []string{
				"jurisdictions[0].sources[3]: has path and transfer: exactly one of path, url, inline or transfer is allowed",
				`tsig_keys[1].name: "K" is already tsig_keys[0]`,
				`tsig_keys[1].algorithm: "md5" is not one of hmac-sha256, hmac-sha384, hmac-sha512, hmac-sha1`,
				"tsig_keys[1]: has secret and secret_file: exactly one is allowed",
				"tsig_keys[2]: one of secret or secret_file is required",
				"jurisdictions[0].sources[1].format: a transfer source is an RPZ zone: leave format out or set rpz",
				`jurisdictions[0].sources[1].transfer.zone: "bad zone" is not a domain name (character ' ')`,
				`jurisdictions[0].sources[1].transfer.primaries[0]: "ns.example:53" is not IP or IP:port`,
				`jurisdictions[0].sources[1].transfer.tsig_key: "nope." is not the name of a tsig_keys entry`,
				"jurisdictions[0].sources[2].transfer.primaries: at least one primary is required",
				`rpz_out.allow[1]: "nope" is not a prefix or an address`,
				`rpz_out.tsig_key: "x." is not the name of a tsig_keys entry`,
				`rpz_out.notify[0]: "192.0.2.1:0": port 0`,
				"rpz_out.journal: -1 is negative",
			},
		},
		{
			name: "zones",
			change: func(c *Config) {
				c.Zones = []Zone{
					{Name: "corp.example", File: "z"},
					{Name: "corp.example.", Forward: []string{"10.0.0.1", "10.0.0.1"}},
					{Name: "", Forward: []string{"10.0.0.1"}},
				}
			},
			want: []string{
				`zones[1].name: "corp.example." is already zones[0]`,
				`zones[1].forward[1]: "10.0.0.1" is already zones[1].forward[0]`,
				"zones[2].name: is required",
			},
		},
		{
			name: "audit_without_path",
			change: func(c *Config) {
				c.Audit.Required, c.Audit.SigningKeyFile = true, "key.pem"
				c.Audit.CheckpointRecords, c.Audit.CheckpointInterval = -1, -time.Second
			},
			want: []string{
				"audit.required: true, but audit.path is empty: there is no enforcement log to require",
				"audit.signing_key_file: set, but audit.path is empty: there is no enforcement log to sign",
				"audit.checkpoint_records: -1 is negative",
				"audit.checkpoint_interval: -1s is negative",
			},
		},
		{
			name: "audit_signed_required",
			change: func(c *Config) {
				c.Audit.Path, c.Audit.Required, c.Audit.SigningKeyFile = "audit.log", true, "key.pem"
				c.Audit.CheckpointRecords, c.Audit.CheckpointInterval = 0, 0
			},
		},
		{
			name:   "admin_off_and_ipv6",
			change: func(c *Config) { c.Admin = "" },
		},
		{
			name:   "memory_limit_negative",
			change: func(c *Config) { c.Server.MemoryLimit = -1 },
			want:   []string{`server.memory_limit: -1 is negative (0 derives the limit from the policy and cache.max_bytes)`},
		},
		{
			name:   "memory_limit_small",
			change: func(c *Config) { c.Server.MemoryLimit = 1 << 20 },
			want:   []string{`server.memory_limit: 1048576 is less than 33554432 (32 MiB): too little for a policy and a cache`},
		},
		{
			name:   "memory_limit_fixed",
			change: func(c *Config) { c.Server.MemoryLimit = 256 << 20 },
		},
		{
			name:   "admin_pprof_without_admin",
			change: func(c *Config) { c.Admin = ""; c.AdminPprof = true },
			want:   []string{`admin_pprof: needs the admin listener (admin is empty)`},
		},
		{
			name:   "admin_pprof",
			change: func(c *Config) { c.AdminPprof = true },
		},
		{
			name:   "admin_port",
			change: func(c *Config) { c.Admin = "[::1]:http" },
			want:   []string{`admin: "[::1]:http": port "http" is not a number from 1 to 65535`},
		},
		{
			name: "encrypted_ok",
			change: func(c *Config) {
				c.TLS = TLS{CertFile: "c.pem", KeyFile: "k.pem", HandshakeTimeout: time.Second}
				c.DoT.Listen = []string{":853"}
				c.DoH.Listen = []string{":443", "127.0.0.1:0"}
				c.DDR = true
			},
		},
		{
			name: "encrypted_without_certificate",
			change: func(c *Config) {
				c.DoT.Listen = []string{":853"}
			},
			want: []string{
				"tls.cert_file: is required to serve dot.listen or doh.listen",
				"tls.key_file: is required to serve dot.listen or doh.listen",
			},
		},
		{
			name:   "ddr_without_endpoint",
			change: func(c *Config) { c.DDR = true },
			want:   []string{"ddr: is true, but neither dot.listen nor doh.listen is set: there is no encrypted endpoint to designate"},
		},
		{
			name: "encrypted_bad_values",
			change: func(c *Config) {
				c.TLS = TLS{CertFile: "c.pem", KeyFile: "k.pem"}
				c.DoT = DoT{Listen: []string{"127.0.0.1:1053", "dns.example:853"}, MaxConnections: 0}
				c.DoH = DoH{Listen: []string{"[::1]:443", "[::1]:443"}, Path: "dns-query", MaxStreams: 1, MaxConnections: 1, IdleTimeout: time.Second}
			},
			want: []string{
				`dot.listen[0]: "127.0.0.1:1053" is already listen[0] (both need its TCP port)`,
				`dot.listen[1]: "dns.example:853": host "dns.example" is not an IP address (leave it empty for every interface)`,
				`doh.listen[1]: "[::1]:443" is already doh.listen[0] (both need its TCP port)`,
				"tls.handshake_timeout: 0s is not positive",
				"dot.idle_timeout: 0s is not positive",
				"dot.max_connections: 0 is less than 1",
				`doh.path: "dns-query" does not start with /`,
			},
		},
		{
			name:   "doh_path_template",
			change: func(c *Config) { c.DoH.Path = "/dns-query{?dns}" },
			want:   []string{`doh.path: "/dns-query{?dns}" is not a plain URL path (no query, fragment, template or space)`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := Load(LoadOptions{Env: []string{}})
			if err != nil {
				t.Fatal(err)
			}
			tc.change(cfg)
			equalMessages(t, messages(cfg.Validate()), tc.want)
		})
	}
}

func TestValidateZeroConfig(t *testing.T) {
	t.Parallel()
	// A Config built in Go without Load: every required value is reported,
	// nothing panics.
	got := messages((&Config{}).Validate())
	for _, want := range []string{
		"listen: at least one address is required",
		`upstreams.strategy: "" is not one of failover, random, parallel`,
		"server.max_tcp_connections: 0 is less than 1",
		`audit.client_privacy: "" is not one of full, truncate, hash, none`,
		`log.level: "" is not one of debug, info, warn, error`,
	} {
		if !strings.Contains(strings.Join(got, "\n"), want) {
			t.Errorf("missing %q in:\n%s", want, strings.Join(got, "\n"))
		}
	}
}

func TestListDeadline(t *testing.T) {
	for _, tc := range []struct{ timeout, deadline, want time.Duration }{
		{30 * time.Second, 0, time.Minute},
		{90 * time.Second, 0, 3 * time.Minute},
		{30 * time.Second, 45 * time.Second, 45 * time.Second},
	} {
		c := &Config{Lists: Lists{Timeout: tc.timeout, Deadline: tc.deadline}}
		if got := c.ListDeadline(); got != tc.want {
			t.Errorf("timeout %s, deadline %s: ListDeadline() = %s, want %s", tc.timeout, tc.deadline, got, tc.want)
		}
	}
}

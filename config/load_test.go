package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// testdataDir holds the configuration fixtures.
const testdataDir = "../testdata/config"

// messages flattens a (joined) error into its messages.
func messages(err error) []string {
	if err == nil {
		return nil
	}
	if u, ok := err.(interface{ Unwrap() []error }); ok {
		var out []string
		for _, e := range u.Unwrap() {
			out = append(out, messages(e)...)
		}
		return out
	}
	return []string{err.Error()}
}

// writeFile writes a configuration file into a fresh temporary directory.
func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "jurisdns.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func equalMessages(t *testing.T, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("got %d messages:\n  %s\nwant %d:\n  %s",
			len(got), strings.Join(got, "\n  "), len(want), strings.Join(want, "\n  "))
	}
}

// TestTestdata loads and validates every fixture. valid_*.yaml must pass;
// invalid_*.yaml lists its exact messages in "# want: " lines, in order,
// with {file} standing for the path. Load errors are compared when Load
// fails, Validate errors otherwise.
func TestTestdata(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join(testdataDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 4 {
		t.Fatalf("found %d fixtures in %s", len(files), testdataDir)
	}
	for _, path := range files {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for line := range strings.SplitSeq(string(data), "\n") {
				if w, ok := strings.CutPrefix(line, "# want: "); ok {
					want = append(want, strings.ReplaceAll(w, "{file}", path))
				}
			}
			switch {
			case strings.HasPrefix(name, "valid_") && len(want) > 0:
				t.Fatal("a valid_ fixture has want lines")
			case strings.HasPrefix(name, "invalid_") && len(want) == 0:
				t.Fatal("an invalid_ fixture has no want lines")
			case !strings.HasPrefix(name, "valid_") && !strings.HasPrefix(name, "invalid_"):
				t.Fatal("fixture names start with valid_ or invalid_")
			}
			cfg, err := Load(LoadOptions{Path: path, Env: []string{}})
			if err != nil {
				if cfg != nil {
					t.Error("Load returned a config with an error")
				}
				equalMessages(t, messages(err), want)
				return
			}
			if cfg.Source != path {
				t.Errorf("Source = %q, want %q", cfg.Source, path)
			}
			equalMessages(t, messages(cfg.Validate()), want)
		})
	}
}

func TestLoadFullFixture(t *testing.T) {
	t.Parallel()
	cfg, err := Load(LoadOptions{Path: filepath.Join(testdataDir, "valid_full.yaml"), Env: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	ede15, ede0 := 15, 0
	want := []Jurisdiction{
		{
			JurisdictionAttrs: JurisdictionAttrs{
				ID:            "acme-staff",
				Title:         "ACME staff policy on DeepSeek",
				Authority:     "ACME Pty Ltd",
				Effective:     "2025-03-01",
				Expires:       "2026-03-01T00:00:00+10:00",
				Tier:          "local",
				Mode:          "enforce",
				Action:        "ip",
				Sinkhole:      []string{"192.0.2.80", "2001:db8::80"},
				EDE:           &ede15,
				TTL:           time.Minute,
				OnLoadFailure: "fail_closed",
			},
			Instrument:   "ACME IT policy 7.2",
			Links:        []string{"https://intranet.acme.example/policy/7.2", "http://old.acme.example/p"},
			Contact:      "it-help@acme.example",
			Organisation: "ACME",
			Allow:        []string{"docs.deepseek.com", "*.status.deepseek.com"},
			Sources: []Source{
				{Name: "deepseek-core", Path: "lists/deepseek.txt"},
				{Name: "extra", Inline: []string{"deepseek.ai", "chat.deepseek.example"}, Format: "domains", Match: "exact"},
				{
					Name: "community", URL: "http://lists.example.org/ai/deepseek.txt", AllowHTTP: true, Format: "hosts",
					SHA256:     "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08",
					MinEntries: 10, MaxShrink: 1, MustContain: []string{"deepseek.com"}, Refresh: 6 * time.Hour,
				},
			},
		},
		{JurisdictionAttrs: JurisdictionAttrs{ID: "au-gov", Mode: "report", EDE: &ede0}},
	}
	if !reflect.DeepEqual(cfg.Jurisdictions, want) {
		t.Errorf("jurisdictions:\n got %+v\nwant %+v", cfg.Jurisdictions, want)
	}
	if cfg.Access.RateLimit.QPS != 12.5 || cfg.Cache.Prefetch || cfg.Cache.MinTTL != 30*time.Second ||
		cfg.Lists.MaxSize != 1 || cfg.Admin != "" || len(cfg.DefaultJurisdictions) != 0 ||
		cfg.Zones[1].Forward[1] != "tls://10.0.0.11#dc.ad.corp.example" {
		t.Errorf("unexpected values: %+v", cfg)
	}
}

func TestLoadMergesFileOverDefault(t *testing.T) {
	t.Parallel()
	path := writeFile(t, `
cache: {size: 5}
access:
  allow: [10.0.0.0/8]
  rate_limit: {qps: 100}
`)
	cfg, err := Load(LoadOptions{Path: path, Env: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	def, err := Load(LoadOptions{Env: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	want := *def
	want.Source = path
	want.Cache.Size = 5
	want.Access.Allow = []string{"10.0.0.0/8"} // a list replaces the default list
	want.Access.RateLimit.QPS = 100            // siblings keep their defaults
	if !reflect.DeepEqual(*cfg, want) {
		t.Errorf("got  %+v\nwant %+v", *cfg, want)
	}
}

func TestLoadDefault(t *testing.T) {
	t.Parallel()
	cfg, err := Load(LoadOptions{Env: []string{"HOME=/root", "PATH=/bin"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("the embedded default does not validate: %v", err)
	}
	if cfg.Source != DefaultSource {
		t.Errorf("Source = %q", cfg.Source)
	}
	want := Config{
		Listen:    []string{"127.0.0.1:1053"},
		Upstreams: Upstreams{Servers: []string{}, Strategy: "failover", Timeout: 2 * time.Second, TryTimeout: 700 * time.Millisecond},
		Cache: Cache{Size: 100000, MaxBytes: 16 << 20, MaxTTL: 24 * time.Hour, NegativeMaxTTL: time.Hour, ServfailTTL: 2 * time.Second,
			Prefetch: true, ServeStale: time.Hour},
		Server: Server{TCPIdleTimeout: 10 * time.Second, MaxTCPConnections: 1000, MaxTCPPerClient: 64, MaxInflight: 4096, MaxInflightPerClient: 1024, HealthName: "health.jurisdns.",
			ShutdownTimeout: 5 * time.Second, BlockSingleLabel: true, WatchConfig: false},
		Access: Access{
			Allow: []string{"127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
				"100.64.0.0/10", "fc00::/7", "fe80::/10"},
			Action: "refuse",
			RateLimit: RateLimit{Burst: 400, IPv4Prefix: 32, IPv6Prefix: 64,
				Exempt: []string{"127.0.0.0/8", "::1/128"}, Action: "drop"},
		},
		DefaultJurisdictions: []string{"ai-deepseek", "bypass"},
		Clients:              []Client{},
		Jurisdictions:        []Jurisdiction{},
		Lists:                Lists{Timeout: 30 * time.Second, MaxSize: 64 << 20, Refresh: 24 * time.Hour},
		TSIGKeys:             []TSIGKey{},
		RPZOut:               RPZOut{Allow: []string{"127.0.0.0/8", "::1/128"}, Notify: []string{}, Journal: 16},
		Zones:                []Zone{},
		Admin:                "127.0.0.1:8053",
		Audit:                Audit{ClientPrivacy: "truncate", MaxSize: 100 << 20, MaxFiles: 10, CheckpointRecords: 1000, CheckpointInterval: time.Minute},
		TLS:                  TLS{HandshakeTimeout: 5 * time.Second},
		DoT:                  DoT{Listen: []string{}, IdleTimeout: 10 * time.Second, MaxConnections: 1000},
		DoH: DoH{Listen: []string{}, Path: "/dns-query", IdleTimeout: 30 * time.Second, MaxConnections: 1000,
			MaxStreams: 100},
		Dnstap: Dnstap{Messages: []string{"client", "forwarder"}, QueueSize: 10000},
		Log:    Log{Level: "info", Format: "text"},
		Source: DefaultSource,
	}
	if !reflect.DeepEqual(*cfg, want) {
		t.Errorf("got  %+v\nwant %+v", *cfg, want)
	}
}

func TestDefaultReturnsACopy(t *testing.T) {
	t.Parallel()
	b := Default()
	if len(b) == 0 {
		t.Fatal("empty default")
	}
	clear(b)
	if _, err := Load(LoadOptions{Env: []string{}}); err != nil {
		t.Fatalf("Load after changing Default()'s result: %v", err)
	}
	if slices.Equal(b, Default()) {
		t.Error("Default() returned the embedded bytes themselves")
	}
}

func TestLoadEnv(t *testing.T) {
	t.Parallel()
	fixture := filepath.Join(testdataDir, "valid_minimal.yaml")
	tests := []struct {
		name    string
		file    string // file content; "" loads no file
		env     []string
		check   func(t *testing.T, c *Config)
		wantErr []string
	}{
		{
			name:  "scalar_int",
			env:   []string{"JURISDNS_CACHE_SIZE=5"},
			check: func(t *testing.T, c *Config) { wantEq(t, c.Cache.Size, 5) },
		},
		{
			name:  "scalar_string",
			env:   []string{"JURISDNS_LOG_LEVEL=debug", "JURISDNS_ADMIN="},
			check: func(t *testing.T, c *Config) { wantEq(t, c.Log.Level, "debug"); wantEq(t, c.Admin, "") },
		},
		{
			name:  "duration",
			env:   []string{"JURISDNS_UPSTREAMS_TRY_TIMEOUT=1m30s"},
			check: func(t *testing.T, c *Config) { wantEq(t, c.Upstreams.TryTimeout, 90*time.Second) },
		},
		{
			name:  "bool",
			env:   []string{"JURISDNS_CACHE_PREFETCH=false"},
			check: func(t *testing.T, c *Config) { wantEq(t, c.Cache.Prefetch, false) },
		},
		{
			name: "nested_keys_with_underscores",
			env:  []string{"JURISDNS_ACCESS_RATE_LIMIT_QPS=12.5", "JURISDNS_ACCESS_RATE_LIMIT_IPV6_PREFIX=48", "JURISDNS_ADMIN_AUTH_TOKEN_FILE=/t"},
			check: func(t *testing.T, c *Config) {
				wantEq(t, c.Access.RateLimit.QPS, 12.5)
				wantEq(t, c.Access.RateLimit.IPv6Prefix, 48)
				wantEq(t, c.Access.RateLimit.Burst, 400)
				wantEq(t, c.AdminAuth.TokenFile, "/t")
			},
		},
		{
			name: "list_comma_and_space_separated",
			env:  []string{"JURISDNS_UPSTREAMS_SERVERS=192.0.2.1, 192.0.2.2 tls://192.0.2.3#x.example,,"},
			check: func(t *testing.T, c *Config) {
				wantEq(t, c.Upstreams.Servers, []string{"192.0.2.1", "192.0.2.2", "tls://192.0.2.3#x.example"})
			},
		},
		{
			name:  "list_flow",
			env:   []string{`JURISDNS_LISTEN=["[::1]:53", 127.0.0.1:53]`},
			check: func(t *testing.T, c *Config) { wantEq(t, c.Listen, []string{"[::1]:53", "127.0.0.1:53"}) },
		},
		{
			name:  "empty_list",
			env:   []string{"JURISDNS_DEFAULT_JURISDICTIONS="},
			check: func(t *testing.T, c *Config) { wantEq(t, c.DefaultJurisdictions, []string{}) },
		},
		{
			name: "env_over_file",
			file: "cache: {size: 10, max_ttl: 1h}\nupstreams: {servers: [192.0.2.1]}\n",
			env:  []string{"JURISDNS_CACHE_SIZE=20", "JURISDNS_UPSTREAMS_SERVERS=192.0.2.7"},
			check: func(t *testing.T, c *Config) {
				wantEq(t, c.Cache.Size, 20)
				wantEq(t, c.Cache.MaxTTL, time.Hour)
				wantEq(t, c.Upstreams.Servers, []string{"192.0.2.7"})
			},
		},
		{
			name: "list_of_objects_yaml_flow",
			env:  []string{"JURISDNS_CLIENTS=[{name: a, subnets: [10.0.0.0/8], jurisdictions: [au-gov]}, {name: b, subnets: [192.0.2.0/24], jurisdictions: [kr-gov]}]"},
			check: func(t *testing.T, c *Config) {
				wantEq(t, c.Clients, []Client{
					{Name: "a", Subnets: []string{"10.0.0.0/8"}, Jurisdictions: []string{"au-gov"}},
					{Name: "b", Subnets: []string{"192.0.2.0/24"}, Jurisdictions: []string{"kr-gov"}},
				})
			},
		},
		{
			name: "list_of_objects_json",
			env: []string{`JURISDNS_ZONES=[{"name": "corp.example.", "forward": ["10.0.0.10:53"]}]`,
				`JURISDNS_JURISDICTIONS=[{"id": "acme", "ede": 15, "ttl": "30s", "sources": [{"name": "x", "inline": ["deepseek.com"]}]}]`},
			check: func(t *testing.T, c *Config) {
				wantEq(t, c.Zones, []Zone{{Name: "corp.example.", Forward: []string{"10.0.0.10:53"}}})
				ede := 15
				wantEq(t, c.Jurisdictions, []Jurisdiction{{
					JurisdictionAttrs: JurisdictionAttrs{ID: "acme", EDE: &ede, TTL: 30 * time.Second},
					Sources:           []Source{{Name: "x", Inline: []string{"deepseek.com"}}},
				}})
			},
		},
		{
			name:  "config_file_from_env",
			env:   []string{"JURISDNS_CONFIG=" + fixture},
			check: func(t *testing.T, c *Config) { wantEq(t, c.Source, fixture); wantEq(t, c.Listen[0], "127.0.0.1:5353") },
		},
		{
			name:  "other_variables_ignored",
			env:   []string{"HOME=/root", "JURISDNSX=1", "jurisdns_listen=x", "NOEQUALS"},
			check: func(t *testing.T, c *Config) { wantEq(t, c.Listen, []string{"127.0.0.1:1053"}) },
		},
		{
			// Unknown names never stop jurisdns: they are warnings, with the
			// key a typo is near, and the cache size keeps its default.
			name: "unknown_variables",
			env:  []string{"JURISDNS_CACHE_SIZ=5", "JURISDNS_FOO=1", "JURISDNS_CACHE={size: 5}"},
			check: func(t *testing.T, c *Config) {
				wantEq(t, c.Cache.Size, 100000)
				wantEq(t, c.UnknownEnv, []EnvNotice{
					{Name: "JURISDNS_CACHE"},
					{Name: "JURISDNS_CACHE_SIZ", DidYouMean: "JURISDNS_CACHE_SIZE"},
					{Name: "JURISDNS_FOO"},
				})
				wantEq(t, len(c.EnvWarnings()), 3)
			},
		},
		{
			name: "bad_values",
			env: []string{
				"JURISDNS_UPSTREAMS_TIMEOUT=2",
				"JURISDNS_CACHE_SIZE=big",
				"JURISDNS_CACHE_PREFETCH=maybe",
				"JURISDNS_ACCESS_RATE_LIMIT_QPS=x",
				"JURISDNS_AUDIT_MAX_SIZE=99999999999999999999",
			},
			wantErr: []string{
				`JURISDNS_ACCESS_RATE_LIMIT_QPS: access.rate_limit.qps: "x" is not a number`,
				"JURISDNS_AUDIT_MAX_SIZE: audit.max_size: 99999999999999999999 is out of range",
				`JURISDNS_CACHE_PREFETCH: cache.prefetch: "maybe" is not a boolean (true or false)`,
				`JURISDNS_CACHE_SIZE: cache.size: "big" is not an integer`,
				`JURISDNS_UPSTREAMS_TIMEOUT: upstreams.timeout: "2" is not a duration (write it with a unit: "700ms", "2s", "24h")`,
			},
		},
		{
			name: "bad_list_of_objects",
			env: []string{
				"JURISDNS_CLIENTS=[{name: a, subnet: [10.0.0.0/8]}]",
				"JURISDNS_ZONES=[{name: x",
				"JURISDNS_JURISDICTIONS={id: acme}",
			},
			wantErr: []string{
				`JURISDNS_CLIENTS: unknown key "clients[0].subnet" (did you mean "clients[0].subnets"?)`,
				"JURISDNS_JURISDICTIONS: jurisdictions: must be a list, not a mapping",
				"JURISDNS_ZONES: zones: line 1: did not find expected ',' or '}'",
			},
		},
		{
			name: "file_and_env_errors_together",
			file: "cache: {sise: 1}\n",
			env:  []string{"JURISDNS_LOG_LEVL=debug", "JURISDNS_CACHE_SIZE=x"},
			wantErr: []string{
				`{file}:1: unknown key "cache.sise" (did you mean "cache.size"?)`,
				`JURISDNS_CACHE_SIZE: cache.size: "x" is not an integer`,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var path string
			if tc.file != "" {
				path = writeFile(t, tc.file)
			}
			cfg, err := Load(LoadOptions{Path: path, Env: tc.env})
			if tc.wantErr != nil {
				want := make([]string, len(tc.wantErr))
				for i, w := range tc.wantErr {
					want[i] = strings.ReplaceAll(w, "{file}", path)
				}
				equalMessages(t, messages(err), want)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, cfg)
		})
	}
}

func wantEq[T any](t *testing.T, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v, want %#v", got, want)
	}
}

func TestLoadFlags(t *testing.T) {
	t.Parallel()
	file := `
listen: ["127.0.0.1:5300"]
upstreams: {servers: [192.0.2.1, 192.0.2.2]}
log: {level: warn}
admin: "127.0.0.1:9000"
`
	other := writeFile(t, "cache: {size: 7}\n")
	tests := []struct {
		name  string
		args  []string
		env   []string
		path  bool // pass the file as LoadOptions.Path
		check func(t *testing.T, c *Config)
	}{
		{
			name: "no_flags_keep_file_values",
			path: true,
			check: func(t *testing.T, c *Config) {
				wantEq(t, c.Upstreams.Servers, []string{"192.0.2.1", "192.0.2.2"})
				wantEq(t, c.Log.Level, "warn")
				wantEq(t, c.Admin, "127.0.0.1:9000")
			},
		},
		{
			name: "upstream_replaces_list",
			args: []string{"--upstream", "192.0.2.9", "--upstream=tls://192.0.2.10#dns.example"},
			path: true,
			check: func(t *testing.T, c *Config) {
				wantEq(t, c.Upstreams.Servers, []string{"192.0.2.9", "tls://192.0.2.10#dns.example"})
				wantEq(t, c.Listen, []string{"127.0.0.1:5300"})
			},
		},
		{
			name: "listen_replaces_list_and_beats_env",
			args: []string{"--listen", "[::1]:53", "--listen", "127.0.0.1:53"},
			env:  []string{"JURISDNS_LISTEN=192.0.2.1:53", "JURISDNS_CACHE_SIZE=3"},
			path: true,
			check: func(t *testing.T, c *Config) {
				wantEq(t, c.Listen, []string{"[::1]:53", "127.0.0.1:53"})
				wantEq(t, c.Cache.Size, 3)
			},
		},
		{
			name: "scalars",
			args: []string{"--log-level", "debug", "--admin", ""},
			path: true,
			check: func(t *testing.T, c *Config) {
				wantEq(t, c.Log.Level, "debug")
				wantEq(t, c.Admin, "")
			},
		},
		{
			name: "empty_upstream_means_resolv_conf",
			args: []string{"--upstream="},
			path: true,
			check: func(t *testing.T, c *Config) {
				wantEq(t, c.Upstreams.Servers, []string{})
			},
		},
		{
			name: "config_flag_sets_path_over_env",
			args: []string{"-c", other},
			env:  []string{"JURISDNS_CONFIG=/nonexistent.yaml"},
			check: func(t *testing.T, c *Config) {
				wantEq(t, c.Source, other)
				wantEq(t, c.Cache.Size, 7)
			},
		},
		{
			name: "path_option_over_config_flag",
			args: []string{"--config", other},
			path: true,
			check: func(t *testing.T, c *Config) {
				wantEq(t, c.Cache.Size, 100000)
				wantEq(t, c.Log.Level, "warn")
			},
		},
	}
	path := writeFile(t, file)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fs := pflag.NewFlagSet("jurisdns", pflag.ContinueOnError)
			RegisterFlags(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			opts := LoadOptions{Env: tc.env, Flags: fs}
			if opts.Env == nil {
				opts.Env = []string{}
			}
			if tc.path {
				opts.Path = path
			}
			cfg, err := Load(opts)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, cfg)
		})
	}
}

func TestLoadFlagsOnForeignFlagSet(t *testing.T) {
	t.Parallel()
	// A flag set with only some of the flags (a subcommand): no panic, the
	// flags it has apply.
	fs := pflag.NewFlagSet("validate", pflag.ContinueOnError)
	fs.String("log-level", "", "")
	fs.Bool("verbose", false, "")
	if err := fs.Parse([]string{"--log-level=error", "--verbose"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(LoadOptions{Env: []string{}, Flags: fs})
	if err != nil {
		t.Fatal(err)
	}
	wantEq(t, cfg.Log.Level, "error")
}

func TestLoadFileErrors(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	tests := []struct {
		name    string
		content string // "" with path missing: the file does not exist
		want    []string
	}{
		{
			name: "missing_file",
			want: []string{"reading configuration: open " + missing + ": no such file or directory"},
		},
		{
			name:    "top_level_list",
			content: "- listen\n",
			want:    []string{"{file}:1: must be a mapping of keys, not a list"},
		},
		{
			name:    "tab_indentation",
			content: "cache:\n\tsize: 1\n",
			want:    []string{"{file}:2: found character that cannot start any token"},
		},
		{
			name:    "merge_keys",
			content: "base: &b {size: 1}\ncache:\n  <<: *b\n",
			want: []string{
				`{file}:1: unknown key "base"`,
				"{file}:3: cache: YAML merge keys (<<) are not supported",
			},
		},
		{
			name:    "aliases_are_followed",
			content: "access:\n  allow: &nets [10.0.0.0/8]\n  rate_limit: {exempt: *nets, burst: x}\n",
			want:    []string{`{file}:3: access.rate_limit.burst: "x" is not an integer`},
		},
		{
			name:    "non_string_key",
			content: "cache: {[a]: 1}\n",
			want:    []string{"{file}:1: cache: a key must be a plain name, not a list"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := missing
			if tc.content != "" {
				path = writeFile(t, tc.content)
			}
			_, err := Load(LoadOptions{Path: path, Env: []string{}})
			want := make([]string, len(tc.want))
			for i, w := range tc.want {
				want[i] = strings.ReplaceAll(w, "{file}", path)
			}
			equalMessages(t, messages(err), want)
		})
	}
}

func TestLoadAliasBomb(t *testing.T) {
	t.Parallel()
	// 200 jurisdictions, each of 200 sources of 200 names: 8 million values
	// from a file of a few kilobytes.
	names := strings.TrimSuffix(strings.Repeat("a.example, ", 200), ", ")
	sources := "&s {name: s, inline: [" + names + "]}" + strings.Repeat(", *s", 199)
	doc := "jurisdictions:\n  - &j {id: x, sources: [" + sources + "]}\n" + strings.Repeat("  - *j\n", 199)
	path := writeFile(t, doc)
	_, err := Load(LoadOptions{Path: path, Env: []string{}})
	equalMessages(t, messages(err), []string{path + ":2: document too large (more than 1048576 values after expanding aliases)"})
}

func TestLoadConcurrent(t *testing.T) {
	t.Parallel()
	path := filepath.Join(testdataDir, "valid_full.yaml")
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			cfg, err := Load(LoadOptions{Path: path, Env: []string{"JURISDNS_CACHE_SIZE=9"}})
			if err == nil {
				err = cfg.Validate()
			}
			if err == nil && cfg.Cache.Size != 9 {
				err = errors.New("env not applied")
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// TestLoadServiceLinks: the variables the kubelet injects for Services named
// jurisdns and jurisdns-office (and Docker's --link) are recognised and kept
// out of the warnings; every real key still wins over the shapes.
func TestLoadServiceLinks(t *testing.T) {
	t.Parallel()
	links := []string{
		"JURISDNS_SERVICE_HOST=10.96.0.10",
		"JURISDNS_SERVICE_PORT=53",
		"JURISDNS_SERVICE_PORT_DNS_UDP=53",
		"JURISDNS_PORT=udp://10.96.0.10:53",
		"JURISDNS_PORT_53_UDP=udp://10.96.0.10:53",
		"JURISDNS_PORT_53_UDP_PROTO=udp",
		"JURISDNS_PORT_53_UDP_PORT=53",
		"JURISDNS_PORT_53_UDP_ADDR=10.96.0.10",
		"JURISDNS_PORT_53_TCP_ADDR=10.96.0.10",
		"JURISDNS_OFFICE_SERVICE_HOST=10.96.0.11",
		"JURISDNS_OFFICE_PORT_8053_TCP=tcp://10.96.0.11:8053",
		"JURISDNS_NAME=/web/jurisdns",
		"JURISDNS_ENV_GOMAXPROCS=1",
	}
	cfg, err := Load(LoadOptions{Env: append(links, "JURISDNS_CACHE_SIZE=7", "JURISDNS_LISTN=x")})
	if err != nil {
		t.Fatal(err)
	}
	wantEq(t, cfg.Cache.Size, 7)
	if len(cfg.UnknownEnv) != len(links)+1 {
		t.Errorf("UnknownEnv has %d names, want %d: %v", len(cfg.UnknownEnv), len(links)+1, cfg.UnknownEnv)
	}
	wantEq(t, cfg.EnvWarnings(), []EnvNotice{{Name: "JURISDNS_LISTN", DidYouMean: "JURISDNS_LISTEN"}})

	// No key of jurisdns may have a link's shape: it would be read from a
	// Service's variable.
	for _, l := range leaves() {
		if isServiceLink(l.Env, "") {
			t.Errorf("key %s: its variable %s has the shape of a service link", l.Key, l.Env)
		}
	}
	// A JURISDNS_NAME that is not Docker's "/container/alias" is a warning.
	if isServiceLink("JURISDNS_NAME", "office") {
		t.Error("JURISDNS_NAME=office taken for a Docker link")
	}
}

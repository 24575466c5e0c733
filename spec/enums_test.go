package spec

import (
	"encoding"
	"strings"
	"testing"
)

func TestEnumsUnmarshalText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		v       encoding.TextUnmarshaler
		in      string
		wantErr string
	}{
		{name: "tier", v: new(Tier), in: "mandated"},
		{name: "tier_unset", v: new(Tier), in: ""},
		{name: "tier_unknown", v: new(Tier), in: "supreme", wantErr: `"supreme" is not one of mandated, local, advisory`},
		{name: "tier_case", v: new(Tier), in: "Mandated", wantErr: `"Mandated" is not one of mandated, local, advisory`},
		{name: "mode_unknown", v: new(Mode), in: "block", wantErr: `"block" is not one of enforce, report`},
		{name: "action", v: new(Action), in: "ip"},
		{name: "action_unknown", v: new(Action), in: "servfail", wantErr: `"servfail" is not one of nxdomain, nodata, null, ip, refused, drop`},
		{name: "olf_unknown", v: new(OnLoadFailure), in: "retry", wantErr: `"retry" is not one of last_known_good, fail_closed, fail_open`},
		{name: "format_unknown", v: new(Format), in: "csv", wantErr: `"csv" is not one of domains, hosts, adblock, wildcard, rpz`},
		{name: "match", v: new(Match), in: "exact"},
		{name: "match_unknown", v: new(Match), in: "prefix", wantErr: `"prefix" is not one of suffix, exact`},
		{name: "strategy_unknown", v: new(Strategy), in: "roundrobin", wantErr: `"roundrobin" is not one of failover, random, parallel`},
		{name: "access_action_unknown", v: new(AccessAction), in: "deny", wantErr: `"deny" is not one of refuse, drop`},
		{name: "rate_limit_action", v: new(RateLimitAction), in: "truncate"},
		{name: "client_privacy_unknown", v: new(ClientPrivacy), in: "anonymous", wantErr: `"anonymous" is not one of full, truncate, hash, none`},
		{name: "log_level_unknown", v: new(LogLevel), in: "verbose", wantErr: `"verbose" is not one of debug, info, warn, error`},
		{name: "log_format", v: new(LogFormat), in: "json"},
		{name: "entry_action_unknown", v: new(EntryAction), in: "servfail", wantErr: `"servfail" is not one of nxdomain, nodata, drop, allow, passthru`},
		{name: "transport", v: new(Transport), in: "doh"},
		{name: "transport_unknown", v: new(Transport), in: "doq", wantErr: `"doq" is not one of udp, tcp, dot, doh`},
		{name: "transport_empty", v: new(Transport), in: "", wantErr: `"" is not one of udp, tcp, dot, doh`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.v.UnmarshalText([]byte(tc.in))
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.wantErr {
				t.Fatalf("UnmarshalText(%q) = %q, want %q", tc.in, got, tc.wantErr)
			}
			if err != nil {
				return
			}
			b, err := tc.v.(encoding.TextMarshaler).MarshalText()
			if err != nil || string(b) != tc.in {
				t.Errorf("MarshalText after UnmarshalText(%q) = %q, %v", tc.in, b, err)
			}
		})
	}
}

func TestTransportString(t *testing.T) {
	t.Parallel()
	for _, tr := range Transports {
		var back Transport
		if err := back.UnmarshalText([]byte(tr.String())); err != nil || back != tr {
			t.Errorf("%v: round trip gives %v, %v", tr, back, err)
		}
	}
	if got := Transport(9).String(); got != "other" {
		t.Errorf("Transport(9).String() = %q", got)
	}
	if _, err := Transport(9).MarshalText(); err == nil {
		t.Error("Transport(9).MarshalText: no error")
	}
}

func TestValidateEnumBuiltInGo(t *testing.T) {
	t.Parallel()
	c := &Config{Jurisdictions: []Jurisdiction{{JurisdictionAttrs: JurisdictionAttrs{ID: "x", Tier: "supreme"}, Sources: []Source{{Name: "s", Inline: []string{"a.example"}, Match: "prefix"}}}}}
	err := c.Validate()
	for _, want := range []string{
		`jurisdictions[0].tier: "supreme" is not one of mandated, local, advisory`,
		`jurisdictions[0].sources[0].match: "prefix" is not one of suffix, exact`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: missing %q in\n%v", want, err)
		}
	}
}

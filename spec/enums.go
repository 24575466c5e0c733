package spec

import (
	"fmt"
	"slices"
	"strings"
)

// The enums of the configuration are strings (what YAML and the environment
// hold) with a closed set of values. The zero value "" is "not set": the
// default of the key, or, in a jurisdiction override, the shipped value.
// UnmarshalText accepts "" and the listed values and rejects anything else
// with an error naming the value and the allowed ones; Validate checks a
// Config built in Go the same way (checkEnum).

// Tier orders jurisdictions: mandated above local above advisory.
type Tier string

// The tiers.
const (
	// TierMandated is an external legal requirement; a local allow entry
	// cannot lift it.
	TierMandated Tier = "mandated"
	// TierLocal is the operator's own policy.
	TierLocal Tier = "local"
	// TierAdvisory is guidance that is not binding.
	TierAdvisory Tier = "advisory"
)

// Tiers are the values of Tier.
var Tiers = []Tier{TierMandated, TierLocal, TierAdvisory}

// Mode says whether a jurisdiction blocks or only reports.
type Mode string

// The modes.
const (
	// ModeEnforce blocks.
	ModeEnforce Mode = "enforce"
	// ModeReport answers normally but logs and counts the hit.
	ModeReport Mode = "report"
)

// Modes are the values of Mode.
var Modes = []Mode{ModeEnforce, ModeReport}

// Action is the answer a blocked client gets.
type Action string

// The block actions.
const (
	ActionNXDomain Action = "nxdomain"
	ActionNoData   Action = "nodata"
	ActionNull     Action = "null"
	ActionIP       Action = "ip"
	ActionRefused  Action = "refused"
	ActionDrop     Action = "drop"
)

// Actions are the values of Action.
var Actions = []Action{ActionNXDomain, ActionNoData, ActionNull, ActionIP, ActionRefused, ActionDrop}

// OnLoadFailure says what happens to a jurisdiction whose source fails to
// load.
type OnLoadFailure string

// The load-failure policies.
const (
	LastKnownGood OnLoadFailure = "last_known_good"
	FailClosed    OnLoadFailure = "fail_closed"
	FailOpen      OnLoadFailure = "fail_open"
)

// OnLoadFailures are the values of OnLoadFailure.
var OnLoadFailures = []OnLoadFailure{LastKnownGood, FailClosed, FailOpen}

// Format is the format of a list source.
type Format string

// The list formats (blocklists.Format is this type).
const (
	FormatDomains  Format = "domains"
	FormatHosts    Format = "hosts"
	FormatAdblock  Format = "adblock"
	FormatWildcard Format = "wildcard"
	FormatRPZ      Format = "rpz"
)

// Formats are the values of Format.
var Formats = []Format{FormatDomains, FormatHosts, FormatAdblock, FormatWildcard, FormatRPZ}

// Match says what a plain entry of a list blocks: the name and every name
// below it (suffix, the default) or the name alone (exact).
type Match string

// The match kinds.
const (
	MatchSuffix Match = "suffix"
	MatchExact  Match = "exact"
)

// Matches are the values of Match.
var Matches = []Match{MatchSuffix, MatchExact}

// Strategy is how an upstream group picks its servers.
type Strategy string

// The upstream strategies.
const (
	StrategyFailover Strategy = "failover"
	StrategyRandom   Strategy = "random"
	StrategyParallel Strategy = "parallel"
)

// Strategies are the values of Strategy.
var Strategies = []Strategy{StrategyFailover, StrategyRandom, StrategyParallel}

// AccessAction is the answer of a client outside access.allow.
type AccessAction string

// The access actions.
const (
	AccessRefuse AccessAction = "refuse"
	AccessDrop   AccessAction = "drop"
)

// AccessActions are the values of AccessAction.
var AccessActions = []AccessAction{AccessRefuse, AccessDrop}

// RateLimitAction is the answer of a query over its client's rate.
type RateLimitAction string

// The rate-limit actions.
const (
	RateLimitDrop     RateLimitAction = "drop"
	RateLimitTruncate RateLimitAction = "truncate"
)

// RateLimitActions are the values of RateLimitAction.
var RateLimitActions = []RateLimitAction{RateLimitDrop, RateLimitTruncate}

// ClientPrivacy is how a client address is written in the enforcement log,
// the query log and the status page.
type ClientPrivacy string

// The client privacy levels.
const (
	PrivacyFull     ClientPrivacy = "full"
	PrivacyTruncate ClientPrivacy = "truncate"
	PrivacyHash     ClientPrivacy = "hash"
	PrivacyNone     ClientPrivacy = "none"
)

// ClientPrivacies are the values of ClientPrivacy.
var ClientPrivacies = []ClientPrivacy{PrivacyFull, PrivacyTruncate, PrivacyHash, PrivacyNone}

// LogLevel is the level of jurisdns's own log.
type LogLevel string

// The log levels.
const (
	LogDebug LogLevel = "debug"
	LogInfo  LogLevel = "info"
	LogWarn  LogLevel = "warn"
	LogError LogLevel = "error"
)

// LogLevels are the values of LogLevel.
var LogLevels = []LogLevel{LogDebug, LogInfo, LogWarn, LogError}

// LogFormat is the format of jurisdns's own log.
type LogFormat string

// The log formats.
const (
	LogText LogFormat = "text"
	LogJSON LogFormat = "json"
)

// LogFormats are the values of LogFormat.
var LogFormats = []LogFormat{LogText, LogJSON}

// The enums decode and encode themselves by name.

// UnmarshalText accepts "" and the values of AccessActions.
func (a *AccessAction) UnmarshalText(b []byte) error { return unmarshalEnum(a, b, AccessActions) }

// UnmarshalText accepts "" and the values of RateLimitActions.
func (a *RateLimitAction) UnmarshalText(b []byte) error { return unmarshalEnum(a, b, RateLimitActions) }

// UnmarshalText accepts "" and the values of ClientPrivacies.
func (c *ClientPrivacy) UnmarshalText(b []byte) error { return unmarshalEnum(c, b, ClientPrivacies) }

// UnmarshalText accepts "" and the values of LogLevels.
func (l *LogLevel) UnmarshalText(b []byte) error { return unmarshalEnum(l, b, LogLevels) }

// UnmarshalText accepts "" and the values of LogFormats.
func (f *LogFormat) UnmarshalText(b []byte) error { return unmarshalEnum(f, b, LogFormats) }

// MarshalText encodes the access action by name.
func (a AccessAction) MarshalText() ([]byte, error) { return []byte(a), nil }

// MarshalText encodes the rate-limit action by name.
func (a RateLimitAction) MarshalText() ([]byte, error) { return []byte(a), nil }

// MarshalText encodes the client privacy by name.
func (c ClientPrivacy) MarshalText() ([]byte, error) { return []byte(c), nil }

// MarshalText encodes the log level by name.
func (l LogLevel) MarshalText() ([]byte, error) { return []byte(l), nil }

// MarshalText encodes the log format by name.
func (f LogFormat) MarshalText() ([]byte, error) { return []byte(f), nil }

// UnmarshalText accepts "" and the values of Tiers.
func (t *Tier) UnmarshalText(b []byte) error { return unmarshalEnum(t, b, Tiers) }

// UnmarshalText accepts "" and the values of Modes.
func (m *Mode) UnmarshalText(b []byte) error { return unmarshalEnum(m, b, Modes) }

// UnmarshalText accepts "" and the values of Actions.
func (a *Action) UnmarshalText(b []byte) error { return unmarshalEnum(a, b, Actions) }

// UnmarshalText accepts "" and the values of OnLoadFailures.
func (o *OnLoadFailure) UnmarshalText(b []byte) error { return unmarshalEnum(o, b, OnLoadFailures) }

// UnmarshalText accepts "" and the values of Formats.
func (f *Format) UnmarshalText(b []byte) error { return unmarshalEnum(f, b, Formats) }

// UnmarshalText accepts "" and the values of Matches.
func (m *Match) UnmarshalText(b []byte) error { return unmarshalEnum(m, b, Matches) }

// UnmarshalText accepts "" and the values of Strategies.
func (s *Strategy) UnmarshalText(b []byte) error { return unmarshalEnum(s, b, Strategies) }

// MarshalText encodes the tier by name.
func (t Tier) MarshalText() ([]byte, error) { return []byte(t), nil }

// MarshalText encodes the mode by name.
func (m Mode) MarshalText() ([]byte, error) { return []byte(m), nil }

// MarshalText encodes the action by name.
func (a Action) MarshalText() ([]byte, error) { return []byte(a), nil }

// MarshalText encodes the load-failure policy by name.
func (o OnLoadFailure) MarshalText() ([]byte, error) { return []byte(o), nil }

// MarshalText encodes the format by name.
func (f Format) MarshalText() ([]byte, error) { return []byte(f), nil }

// MarshalText encodes the match kind by name.
func (m Match) MarshalText() ([]byte, error) { return []byte(m), nil }

// MarshalText encodes the strategy by name.
func (s Strategy) MarshalText() ([]byte, error) { return []byte(s), nil }

// unmarshalEnum sets *v to the text when it is "" or one of allowed.
func unmarshalEnum[T ~string](v *T, b []byte, allowed []T) error {
	s := T(b)
	if s != "" && !slices.Contains(allowed, s) {
		return enumError(string(s), allowed)
	}
	*v = s
	return nil
}

// enumError is the error of a value outside allowed: it names the value
// and every allowed one.
func enumError[T ~string](v string, allowed []T) error {
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = string(a)
	}
	return fmt.Errorf("%q is not one of %s", v, strings.Join(names, ", "))
}

// checkEnum reports a value of an enum built in Go (not decoded) that is
// outside allowed; "" passes unless required.
func checkEnum[T ~string](p *problems, path string, v T, required bool, allowed []T) {
	if (v == "" && !required) || slices.Contains(allowed, v) {
		return
	}
	p.add(path, "%v", enumError(string(v), allowed))
}

// Transport is the client transport a query arrived on: one enum for the
// resolver (which sets it), the metrics (a label) and the status page (a
// counter).
type Transport uint8

// The transports.
const (
	TransportUDP Transport = iota
	TransportTCP
	TransportDoT // DNS over TLS (RFC 7858)
	TransportDoH // DNS over HTTPS (RFC 8484)
	// NumTransports is the number of transports: a Transport below it is
	// one of the above.
	NumTransports
)

var transportNames = [NumTransports]string{"udp", "tcp", "dot", "doh"}

// Transports are the values of Transport.
var Transports = []Transport{TransportUDP, TransportTCP, TransportDoT, TransportDoH}

// String returns "udp", "tcp", "dot" or "doh", and "other" for a value
// that is none of them (the metrics' label of an unknown value).
func (t Transport) String() string {
	if t < NumTransports {
		return transportNames[t]
	}
	return "other"
}

// MarshalText encodes the transport by name.
func (t Transport) MarshalText() ([]byte, error) {
	if t >= NumTransports {
		return nil, fmt.Errorf("unknown transport %d", uint8(t))
	}
	return []byte(t.String()), nil
}

// UnmarshalText accepts "udp", "tcp", "dot" or "doh".
func (t *Transport) UnmarshalText(b []byte) error {
	for i, n := range transportNames {
		if string(b) == n {
			*t = Transport(i)
			return nil
		}
	}
	return fmt.Errorf("%q is not one of %s", b, strings.Join(transportNames[:], ", "))
}

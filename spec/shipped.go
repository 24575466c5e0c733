package spec

import "time"

// ShippedJurisdiction is the schema of one shipped jurisdiction
// (blocklists/shipped/<id>.yaml), documented for readers of the data in
// docs/jurisdictions.md. It is decoded by DecodeYAML, the decoder of the
// configuration, and shares its vocabulary with Jurisdiction: the same
// enums (Tier, Mode, Action, OnLoadFailure, Format, Match), the same id rule
// (CheckID), a TTL that is a duration. A user's Jurisdiction with the same
// id overrides its attributes.
type ShippedJurisdiction struct {
	ID          string              `mapstructure:"id"`
	Title       string              `mapstructure:"title"`
	Authority   string              `mapstructure:"authority"`
	Instruments []ShippedInstrument `mapstructure:"instruments"`
	NameSources []ShippedLink       `mapstructure:"name_sources"`
	// Effective and Expires are dates (2006-01-02) or RFC 3339 times, as in
	// Jurisdiction.
	Effective     string        `mapstructure:"effective"`
	Expires       string        `mapstructure:"expires"`
	Tier          Tier          `mapstructure:"tier"`
	Mode          Mode          `mapstructure:"mode"`
	Action        Action        `mapstructure:"action"`
	Sinkhole      []string      `mapstructure:"sinkhole"`
	EDE           *int          `mapstructure:"ede"`
	TTL           time.Duration `mapstructure:"ttl"`
	OnLoadFailure OnLoadFailure `mapstructure:"on_load_failure"`
	// Default makes the jurisdiction one of the default configuration's.
	Default bool   `mapstructure:"default"`
	Notes   string `mapstructure:"notes"`
	// LeavesOut says what the jurisdiction deliberately does not block.
	LeavesOut []string        `mapstructure:"leaves_out"`
	Sources   []ShippedSource `mapstructure:"sources"`
	// Allow entries lift the jurisdiction's own blocks, each with its
	// citation.
	Allow []ShippedEntry `mapstructure:"allow"`
}

// ShippedInstrument is one legal or policy instrument behind a shipped
// jurisdiction.
type ShippedInstrument struct {
	Name     string        `mapstructure:"name"`
	Issuer   string        `mapstructure:"issuer"`
	Date     string        `mapstructure:"date"`
	Repealed string        `mapstructure:"repealed"`
	Scope    string        `mapstructure:"scope"`
	Links    []ShippedLink `mapstructure:"links"`
	// Line is the instrument's line in its file.
	Line int `mapstructure:"$line"`
}

// ShippedLink is a public source: an https URL and a short title
// ("Home Affairs: PSPF Direction 001-2025").
type ShippedLink struct {
	URL   string `mapstructure:"url"`
	Title string `mapstructure:"title"`
	// Line is the link's line in its file.
	Line int `mapstructure:"$line"`
}

// ShippedSource is one list of a shipped jurisdiction: its entries, each
// with its citation.
type ShippedSource struct {
	Name    string         `mapstructure:"name"`
	Format  Format         `mapstructure:"format"`
	Match   Match          `mapstructure:"match"`
	Entries []ShippedEntry `mapstructure:"entries"`
}

// ShippedEntry is one rule of a shipped list or allow list.
type ShippedEntry struct {
	Rule string `mapstructure:"rule"`
	// Cite is the link of the instrument that names the rule; Names the
	// public source that says who owns the name.
	Cite  string `mapstructure:"cite"`
	Names string `mapstructure:"names"`
	// Action overrides the jurisdiction's answer for this rule.
	Action     EntryAction `mapstructure:"action"`
	Collateral string      `mapstructure:"collateral"`
	// Unconfirmed entries are documented but not loaded.
	Unconfirmed bool `mapstructure:"unconfirmed"`
	// Line is the entry's line in its file.
	Line int `mapstructure:"$line"`
}

// EntryAction is the answer of one shipped entry, overriding its
// jurisdiction's: nxdomain, nodata, drop, or allow (passthru, the RPZ
// name, is the same) to lift a block.
type EntryAction string

// The entry actions.
const (
	EntryNXDomain EntryAction = "nxdomain"
	EntryNoData   EntryAction = "nodata"
	EntryDrop     EntryAction = "drop"
	EntryAllow    EntryAction = "allow"
	EntryPassthru EntryAction = "passthru"
)

// EntryActions are the values of EntryAction.
var EntryActions = []EntryAction{EntryNXDomain, EntryNoData, EntryDrop, EntryAllow, EntryPassthru}

// UnmarshalText accepts "" and the values of EntryActions.
func (a *EntryAction) UnmarshalText(b []byte) error { return unmarshalEnum(a, b, EntryActions) }

// MarshalText encodes the entry action by name.
func (a EntryAction) MarshalText() ([]byte, error) { return []byte(a), nil }

package spec

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"
)

// ShippedJurisdiction is the schema of one shipped jurisdiction
// (blocklists/shipped/<id>.yaml), documented for readers of the data in
// docs/jurisdictions.md. It is decoded by DecodeYAML, the decoder of the
// configuration, and shares its vocabulary with Jurisdiction: the same
// enums (Tier, Mode, Action, OnLoadFailure, Format, Match), the same id rule
// (CheckID), a TTL that is a duration. A user's Jurisdiction with the same
// id overrides its attributes.
type ShippedJurisdiction struct {
	// JurisdictionAttrs are the id and the attributes a configured
	// Jurisdiction may override: title, authority, dates, tier, mode,
	// action, sinkhole, EDE, TTL and on_load_failure (keys of this level).
	JurisdictionAttrs `mapstructure:",squash"`
	Instruments       []ShippedInstrument `mapstructure:"instruments"`
	NameSources       []ShippedLink       `mapstructure:"name_sources"`
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

// Validate checks a shipped jurisdiction read from file (its path as shown,
// "shipped/<id>.yaml"): the id (CheckID, and the file's name), the
// attributes by the rules of a configured jurisdiction, and the provenance:
// every instrument with a name, an issuer, a scope, a date for a mandated or
// advisory one and public https links with titles; every entry with a rule
// and the link of an instrument it cites. Every problem is reported at once,
// with file:line where the decoder gave one.
func (f *ShippedJurisdiction) Validate(file string) error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{file}, args...)...))
	}
	badLine := func(line int, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s:%d: "+format, append([]any{file, line}, args...)...))
	}
	if want := strings.TrimSuffix(path.Base(file), ".yaml"); f.ID != want {
		bad("id %q does not match the file name (want %q)", f.ID, want)
	}
	if err := CheckID(f.ID); err != nil {
		bad("id: %v", err)
	}
	// The attributes a configured jurisdiction may override, by its rules.
	var p problems
	f.JurisdictionAttrs.validate(&p, "")
	for _, e := range p {
		bad("%v", e)
	}
	if f.Title == "" || f.Tier == "" {
		bad("title and tier are required")
	}
	if len(f.Instruments) == 0 {
		bad("instruments: at least one instrument is required")
	}
	// A government instrument has a date; the operator's own policy (tier
	// local) may have none.
	needDate := f.Tier == TierMandated || f.Tier == TierAdvisory
	if f.Tier == TierAdvisory && f.Mode != ModeReport {
		bad("mode: an advisory jurisdiction ships in mode report (an operator may enforce it in their configuration)")
	}
	instrOf := map[string]int{} // link URL -> instrument index
	seen := map[string]string{}
	checkLink := func(key string, l ShippedLink) {
		if err := checkHTTPS(l.URL); err != nil {
			badLine(l.Line, "%s.url: %v", key, err)
		}
		if strings.TrimSpace(l.Title) == "" {
			badLine(l.Line, "%s.title: a link needs a short title (publisher: document)", key)
		}
		if other, dup := seen[l.URL]; dup {
			badLine(l.Line, "%s.url: %s is also %s", key, l.URL, other)
		}
		seen[l.URL] = key
	}
	for i, in := range f.Instruments {
		key := fmt.Sprintf("instruments[%d]", i)
		if strings.TrimSpace(in.Name) == "" || strings.TrimSpace(in.Issuer) == "" || strings.TrimSpace(in.Scope) == "" {
			badLine(in.Line, "%s: name, issuer and scope are required", key)
		}
		switch {
		case in.Date == "" && needDate:
			badLine(in.Line, "%s.date: required for a %s jurisdiction", key, f.Tier)
		case in.Date != "":
			if _, err := ParseDate(in.Date); err != nil {
				badLine(in.Line, "%s.date: %v", key, err)
			}
		}
		if in.Repealed != "" {
			r, err := ParseDate(in.Repealed)
			if err != nil {
				badLine(in.Line, "%s.repealed: %v", key, err)
			} else if d, err := ParseDate(in.Date); err == nil && in.Date != "" && !d.Before(r) {
				badLine(in.Line, "%s.repealed: %s is not after date %s", key, in.Repealed, in.Date)
			}
		}
		if len(in.Links) == 0 {
			badLine(in.Line, "%s.links: at least one public link is required", key)
		}
		for k, l := range in.Links {
			checkLink(fmt.Sprintf("%s.links[%d]", key, k), l)
			instrOf[l.URL] = i
		}
	}
	names := map[string]bool{}
	for k, l := range f.NameSources {
		checkLink(fmt.Sprintf("name_sources[%d]", k), l)
		names[l.URL] = true
	}
	checkEntry := func(key string, e *ShippedEntry) {
		if strings.TrimSpace(e.Rule) == "" {
			badLine(e.Line, "%s: entry without a rule", key)
		}
		if strings.TrimSpace(e.Cite) == "" {
			badLine(e.Line, "%s.cite: entry %q cites no source", key, e.Rule)
		} else if _, ok := instrOf[e.Cite]; !ok {
			badLine(e.Line, "%s.cite: %q is not a link of any instrument of %s", key, e.Cite, f.ID)
		}
		if e.Names != "" && !names[e.Names] && !isInstrLink(instrOf, e.Names) {
			badLine(e.Line, "%s.names: %q is not listed in name_sources or an instrument's links", key, e.Names)
		}
	}
	for i := range f.Sources {
		s := &f.Sources[i]
		if s.Name == "" {
			bad("sources[%d]: no name", i)
		}
		for k := range s.Entries {
			checkEntry(fmt.Sprintf("sources[%d].entries[%d]", i, k), &s.Entries[k])
		}
	}
	for k := range f.Allow {
		checkEntry(fmt.Sprintf("allow[%d]", k), &f.Allow[k])
	}
	return errors.Join(errs...)
}

// InstrumentOf maps the URL of every link of an instrument to the index of
// its instrument: the instrument an entry's Cite names.
func (f *ShippedJurisdiction) InstrumentOf() map[string]int {
	m := map[string]int{}
	for i, in := range f.Instruments {
		for _, l := range in.Links {
			m[l.URL] = i
		}
	}
	return m
}

func isInstrLink(instrOf map[string]int, u string) bool {
	_, ok := instrOf[u]
	return ok
}

// checkHTTPS accepts an absolute https URL with a host.
func checkHTTPS(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return err
	case u.Scheme != "https" || u.Host == "":
		return fmt.Errorf("%q is not an absolute https URL", s)
	}
	return nil
}

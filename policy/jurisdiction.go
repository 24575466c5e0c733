// Package policy turns the configuration and the shipped jurisdictions into an
// immutable Policy: every jurisdiction resolved (shipped data plus the user's
// overrides), every source loaded into one global blocklists.Index, and the
// client subnets mapped to the jurisdictions that apply to them.
//
// The hot path is (*Policy).ClientSet followed by (*Policy).Match; both are
// allocation-free. (*Policy).Explain gives the whole resolution for
// `jurisdns check`. A Policy is never modified after Build: a reload builds a
// new one (passing the old one as BuildOptions.Previous) and swaps it in.
//
// Precedence: only jurisdictions that apply
// to the client and are active at the query time count. An allow entry of
// jurisdiction J (its allow list, an adblock @@ exception, an RPZ passthru)
// lifts the blocks of J itself and of jurisdictions of a strictly lower tier,
// never those of another jurisdiction of the same or a higher tier. Among the
// blocks left, the highest tier names the jurisdiction; ties go to the
// client's jurisdiction order, then to the most specific rule. Report-mode
// jurisdictions never block: they are listed in the verdict for logging, and
// their allow entries only lift report-mode blocks.
package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/jurisdns/jurisdns/blocklists"
	"github.com/jurisdns/jurisdns/spec"
)

// DefaultTTL is the block TTL of a jurisdiction that sets none: short, so
// that lifting a ban spreads fast.
const DefaultTTL = 60 * time.Second

// Tier orders jurisdictions: Mandated > Local > Advisory.
type Tier uint8

// The tiers, in increasing precedence. The zero Tier is "unset".
const (
	// TierAdvisory is guidance that is not binding.
	TierAdvisory Tier = iota + 1
	// TierLocal is the operator's own policy.
	TierLocal
	// TierMandated is an external legal requirement; a local allow entry
	// cannot lift it.
	TierMandated
)

// tierNames are the tiers' names: spec's, the one vocabulary.
var tierNames = [...]spec.Tier{TierAdvisory: spec.TierAdvisory, TierLocal: spec.TierLocal, TierMandated: spec.TierMandated}

// String returns "advisory", "local" or "mandated" (spec's names).
func (t Tier) String() string {
	if n := t.Spec(); n != "" {
		return string(n)
	}
	return "tier(" + itoa(int(t)) + ")"
}

// MarshalText encodes the tier by name (for JSON).
func (t Tier) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// tierOf is the tier of a configured tier (spec.Validate checked it); ""
// is TierLocal, the default.
func tierOf(t spec.Tier) Tier {
	if i := slices.Index(tierNames[:], t); i > 0 { // entry 0 is "", no tier
		return Tier(i)
	}
	return TierLocal
}

// Mode says whether a jurisdiction blocks or only reports.
type Mode uint8

// The modes.
const (
	// ModeEnforce blocks.
	ModeEnforce Mode = iota
	// ModeReport answers normally but logs and counts the hit.
	ModeReport
)

// modeNames are the modes' names: spec's.
var modeNames = [...]spec.Mode{ModeEnforce: spec.ModeEnforce, ModeReport: spec.ModeReport}

// String returns "enforce" or "report" (spec's names).
func (m Mode) String() string {
	if n := m.Spec(); n != "" {
		return string(n)
	}
	return "mode(" + itoa(int(m)) + ")"
}

// MarshalText encodes the mode by name (for JSON).
func (m Mode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// modeOf is the mode of a configured mode; "" is ModeEnforce.
func modeOf(m spec.Mode) Mode {
	if m == spec.ModeReport {
		return ModeReport
	}
	return ModeEnforce
}

// Action is the answer a blocked client gets.
type Action uint8

// The block actions.
const (
	// ActionNXDomain answers NXDOMAIN (the default).
	ActionNXDomain Action = iota
	// ActionNoData answers NOERROR with no records.
	ActionNoData
	// ActionNull answers 0.0.0.0 / :: for A / AAAA, NODATA otherwise.
	ActionNull
	// ActionIP answers the sinkhole addresses (Verdict.Addrs).
	ActionIP
	// ActionRefused answers REFUSED.
	ActionRefused
	// ActionDrop sends no answer.
	ActionDrop
)

// actionNames are the actions' names: spec's.
var actionNames = [...]spec.Action{
	ActionNXDomain: spec.ActionNXDomain, ActionNoData: spec.ActionNoData, ActionNull: spec.ActionNull,
	ActionIP: spec.ActionIP, ActionRefused: spec.ActionRefused, ActionDrop: spec.ActionDrop,
}

// String returns the configuration name of the action ("nxdomain", …).
func (a Action) String() string {
	if n := a.Spec(); n != "" {
		return string(n)
	}
	return "action(" + itoa(int(a)) + ")"
}

// MarshalText encodes the action by name (for JSON).
func (a Action) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// actionOf is the action of a configured action; "" is ActionNXDomain.
func actionOf(a spec.Action) Action {
	if i := slices.Index(actionNames[:], a); i >= 0 {
		return Action(i)
	}
	return ActionNXDomain
}

// OnLoadFailure says what happens to a jurisdiction whose source fails to
// load (download error, unreadable file, list rejected by the parser or by a
// guard).
type OnLoadFailure uint8

// The load-failure policies.
const (
	// LastKnownGood keeps the failed source's rules from
	// BuildOptions.Previous; without a previous copy the build fails.
	LastKnownGood OnLoadFailure = iota
	// FailClosed answers every query of the jurisdiction's clients with
	// SERVFAIL (Decision FailClosed) while it is not loaded: never silently
	// unfiltered.
	FailClosed
	// FailOpen drops the failed source and carries on, logged loudly.
	FailOpen
)

// onLoadFailureNames are the policies' names: spec's.
var onLoadFailureNames = [...]spec.OnLoadFailure{LastKnownGood: spec.LastKnownGood, FailClosed: spec.FailClosed, FailOpen: spec.FailOpen}

// String returns "last_known_good", "fail_closed" or "fail_open".
func (o OnLoadFailure) String() string {
	if n := o.Spec(); n != "" {
		return string(n)
	}
	return "on_load_failure(" + itoa(int(o)) + ")"
}

// MarshalText encodes the policy by name (for JSON).
func (o OnLoadFailure) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// onLoadFailureOf is the policy of a configured on_load_failure; "" is
// LastKnownGood.
func onLoadFailureOf(o spec.OnLoadFailure) OnLoadFailure {
	if i := slices.Index(onLoadFailureNames[:], o); i >= 0 {
		return OnLoadFailure(i)
	}
	return LastKnownGood
}

// Spec is the tier in the vocabulary of the configuration (the views of
// a jurisdiction, Explain's and the status page's, name it so); "" for a
// value that is not a tier.
func (t Tier) Spec() spec.Tier { return nameOf(tierNames[:], t) }

// Spec is the mode in the vocabulary of the configuration.
func (m Mode) Spec() spec.Mode { return nameOf(modeNames[:], m) }

// Spec is the action in the vocabulary of the configuration.
func (a Action) Spec() spec.Action { return nameOf(actionNames[:], a) }

// Spec is the load-failure policy in the vocabulary of the configuration.
func (o OnLoadFailure) Spec() spec.OnLoadFailure { return nameOf(onLoadFailureNames[:], o) }

// nameOf is names[v], "" when v is out of range.
func nameOf[N ~string, V ~uint8](names []N, v V) N {
	if int(v) < len(names) {
		return names[v]
	}
	return ""
}

// Jurisdiction is one resolved jurisdiction: shipped data with the user's
// overrides applied, or a jurisdiction defined by the user. It is read-only
// once Build returns.
type Jurisdiction struct {
	// Description says what the jurisdiction is and who stands behind it;
	// the status page shows it as it is (status.Jurisdiction embeds it).
	Description
	// Effective and Expires bound the jurisdiction: it is active in
	// [Effective, Expires). A zero time is unbounded.
	Effective time.Time `json:"effective,omitzero"`
	Expires   time.Time `json:"expires,omitzero"`
	Tier      Tier      `json:"tier"`
	Mode      Mode      `json:"mode"`
	Action    Action    `json:"action"`
	// Sinkhole holds the addresses answered for ActionIP.
	Sinkhole []netip.Addr `json:"sinkhole,omitempty"`
	// EDE is the RFC 8914 info code of block answers.
	EDE uint16 `json:"ede"`
	// TTL of block answers (JSON: nanoseconds).
	TTL           time.Duration `json:"ttl"`
	Sources       []SourceInfo  `json:"sources"`
	Allow         []AllowEntry  `json:"allow,omitempty"`
	OnLoadFailure OnLoadFailure `json:"on_load_failure"`
	// Shipped is set for jurisdictions that ship with jurisdns (possibly
	// overridden: see Overridden); Default for those the shipped defaults
	// enable.
	Shipped    bool `json:"shipped"`
	Overridden bool `json:"overridden,omitempty"`
	Default    bool `json:"default,omitempty"`
	// InUse is set when a client entry or the default set applies the
	// jurisdiction. A shipped jurisdiction that is not in use and not
	// overridden is loaded (Entries, Hash) but not indexed: Explain does
	// not list it among the jurisdictions that match elsewhere.
	InUse bool `json:"in_use"`
	// Loaded is false when a source failed to load and no last known good
	// copy replaced it (fail_closed or fail_open); LoadError says why. A
	// source replaced by its last known good copy leaves Loaded true and
	// sets LoadError and SourceInfo.Stale.
	Loaded    bool   `json:"loaded"`
	LoadError string `json:"load_error,omitempty"`
	// Entries counts the rules of the effective list (block and allow).
	Entries int `json:"entries"`
	// Hash is the hex SHA-256 of the jurisdiction's metadata and effective
	// rule set, independent of rule order and line numbers.
	Hash string `json:"hash"`

	idx int
	// sde is the start of the structured DNS error JSON of a block, up to
	// the justification's opening quote; nil without a contact.
	sde []byte
	// cites maps a shipped rule (source index, line in its file) to the
	// index in Instruments of the instrument it cites.
	cites map[citeKey]int
}

// Description is what a jurisdiction is, in words and links: its id and
// title, who issued it and under which instruments, whom to ask. It is the
// one spelling of these fields: Jurisdiction and the status page's
// jurisdiction (status.Jurisdiction) embed it, so a descriptive field added
// here reaches both (and the JSON of GET /api/status and `jurisdns lists
// --json`, in this order) without being copied.
type Description struct {
	ID        string `json:"id"`
	Title     string `json:"title"`
	Authority string `json:"authority,omitempty"`
	// Instrument names the jurisdiction's primary instrument (the first of
	// Instruments for a shipped one, the configured text otherwise); Links
	// are every source URL, flattened.
	Instrument string   `json:"instrument,omitempty"`
	Links      []string `json:"links,omitempty"`
	// LinkTitles[i] is the short title of Links[i] ("Home Affairs: PSPF
	// Direction 001-2025") from the instruments and name sources, "" when
	// it has none; nil when no link has a title.
	LinkTitles []string `json:"link_titles,omitempty"`
	// Instruments are the instruments behind a shipped jurisdiction, the
	// primary one first, each with its public links. A configuration that
	// sets instrument or links for the jurisdiction replaces them (nil).
	Instruments []Instrument `json:"instruments,omitempty"`
	// NameSources are the public sources of the hostnames (who owns a
	// name), apart from the instruments that ban the service.
	NameSources []Link `json:"name_sources,omitempty"`
	// LeavesOut says what the jurisdiction deliberately does not block.
	LeavesOut []string `json:"leaves_out,omitempty"`
	Notes     string   `json:"notes,omitempty"`
	// Contact and Organisation say who answers for the jurisdiction's
	// blocks (a local policy's IT desk): the structured DNS error of its
	// block answers names them.
	Contact      string `json:"contact,omitempty"`
	Organisation string `json:"organisation,omitempty"`
}

// linkTitles returns the titles of d.Links from its instruments and name
// sources (nil when none has a title).
func (d *Description) linkTitles() []string {
	titles := map[string]string{}
	for _, in := range d.Instruments {
		for _, l := range in.Links {
			titles[l.URL] = l.Title
		}
	}
	for _, l := range d.NameSources {
		titles[l.URL] = l.Title
	}
	if len(titles) == 0 {
		return nil
	}
	out := make([]string, len(d.Links))
	for i, u := range d.Links {
		out[i] = titles[u]
	}
	return out
}

// Terms is how a jurisdiction blocks, in the vocabulary of the
// configuration: its tier, mode, action and EDE code. The views of a
// jurisdiction (Explain's ExplainJurisdiction, the status page's
// status.Jurisdiction) embed it.
type Terms struct {
	Tier   spec.Tier   `json:"tier"`
	Mode   spec.Mode   `json:"mode"`
	Action spec.Action `json:"action"`
	EDE    uint16      `json:"ede"`
}

// Terms returns j's terms.
func (j *Jurisdiction) Terms() Terms {
	return Terms{Tier: j.Tier.Spec(), Mode: j.Mode.Spec(), Action: j.Action.Spec(), EDE: j.EDE}
}

type citeKey struct {
	src  uint16
	line int
}

// Instrument is one legal or policy instrument: a statute, an executive
// order, a directive, a ruling or an operator's own policy.
type Instrument struct {
	Name   string `json:"name"`
	Issuer string `json:"issuer"`
	// Date is when it took effect (zero: undated, an operator policy);
	// Repealed when it stopped (zero: still in force).
	Date     time.Time `json:"date,omitzero"`
	Repealed time.Time `json:"repealed,omitzero"`
	// Scope says whom and what it covers, in its own terms.
	Scope string `json:"scope"`
	Links []Link `json:"links"`
}

// Link is a public source: an https URL and a short title ("Home Affairs:
// PSPF Direction 001-2025").
type Link struct {
	URL   string `json:"url"`
	Title string `json:"title"`
}

// InForce reports whether now is in [Date, Repealed).
func (in *Instrument) InForce(now time.Time) bool {
	return (in.Date.IsZero() || !now.Before(in.Date)) && (in.Repealed.IsZero() || now.Before(in.Repealed))
}

// instrumentFor returns the instrument that decides a block by the rule at
// (src, line) at now: the instrument the rule cites when it is in force,
// else the first instrument in force in the jurisdiction's order (the most
// specific first), else the first one. Nil when the jurisdiction has no
// instruments (a configured one: its Instrument text names it).
func (j *Jurisdiction) instrumentFor(src uint16, line int, now time.Time) *Instrument {
	if len(j.Instruments) == 0 {
		return nil
	}
	if k, ok := j.cites[citeKey{src, line}]; ok && j.Instruments[k].InForce(now) {
		return &j.Instruments[k]
	}
	for i := range j.Instruments {
		if j.Instruments[i].InForce(now) {
			return &j.Instruments[i]
		}
	}
	return &j.Instruments[0]
}

// SourceInfo describes one loaded source of a jurisdiction.
type SourceInfo struct {
	// SourceState is what the status page shows of the source as it is
	// (status.Source embeds it).
	SourceState
	// Errors holds the first bad lines (file:line: reason).
	Errors []blocklists.LineError `json:"errors,omitempty"`
	// Err says why the source failed (Stale: its last known good rules
	// were kept).
	Err string `json:"error,omitempty"`
	// Transfer is the state of a source pulled by zone transfer.
	Transfer *TransferState `json:"transfer,omitempty"`

	// key identifies the source across reloads: Origin unredacted.
	key string
}

// SourceState is what a source is and how its last load went: the one
// spelling of these fields, which SourceInfo and the status page's source
// (status.Source) embed.
type SourceState struct {
	Name string `json:"name"`
	// Origin is "shipped", "inline", the file path or the URL (with its
	// credentials and query string redacted, see spec.RedactURL).
	Origin string            `json:"origin"`
	Format blocklists.Format `json:"format"`
	Match  string            `json:"match"`
	// Entries is the number of rules loaded; Bad the number of rejected
	// lines; Skipped the lines ignored on purpose (unconfirmed shipped
	// entries, unsupported syntax).
	Entries int `json:"entries"`
	Bad     int `json:"bad"`
	Skipped int `json:"skipped"`
	// Hash is the hex SHA-256 of the source's bytes as loaded.
	Hash string `json:"hash,omitempty"`
	// Stale is set when the source failed and its last known good rules
	// were kept (SourceInfo.Err says why it failed).
	Stale bool `json:"stale,omitempty"`
}

// AllowEntry is one entry of a jurisdiction's allow list.
type AllowEntry struct {
	// Name is the entry as written ("chat.deepseek.com", "*.x.example").
	Name string `json:"name"`
	// Origin says where it was defined: "shipped/<id>.yaml" or a
	// configuration key path ("jurisdictions[2].allow[0]").
	Origin string `json:"origin"`
	Line   int    `json:"line,omitempty"`
}

// Active reports whether now is in [Effective, Expires). A jurisdiction in
// report mode is active too: it reports instead of blocking.
func (j *Jurisdiction) Active(now time.Time) bool {
	if !j.Effective.IsZero() && now.Before(j.Effective) {
		return false
	}
	return j.Expires.IsZero() || now.Before(j.Expires)
}

// Status describes the jurisdiction at now: "active", "report",
// "inactive until 2026-03-01", "expired 2025-04-28", or
// "not loaded (fail_closed)" when its list failed to load.
func (j *Jurisdiction) Status(now time.Time) string {
	switch {
	case !j.Effective.IsZero() && now.Before(j.Effective):
		return "inactive until " + FormatDate(j.Effective)
	case !j.Expires.IsZero() && !now.Before(j.Expires):
		return "expired " + FormatDate(j.Expires)
	case !j.Loaded:
		return "not loaded (" + j.OnLoadFailure.String() + ")"
	case j.Mode == ModeReport:
		return "report"
	}
	return "active"
}

// failedClosed reports whether the jurisdiction turns its clients'
// queries into SERVFAIL at now.
func (j *Jurisdiction) failedClosed(now time.Time) bool {
	return !j.Loaded && j.OnLoadFailure == FailClosed && j.Mode == ModeEnforce && j.Active(now)
}

// FormatDate formats t as 2006-01-02 when it is a UTC midnight, and as
// RFC 3339 otherwise.
func FormatDate(t time.Time) string {
	u := t.UTC()
	if u.Hour() == 0 && u.Minute() == 0 && u.Second() == 0 && u.Nanosecond() == 0 {
		return u.Format(time.DateOnly)
	}
	return t.Format(time.RFC3339)
}

func itoa(n int) string {
	return fmt.Sprint(n)
}

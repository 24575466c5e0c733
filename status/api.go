package status

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/audit"
	"github.com/jurisdns/jurisdns/blocklists"
	"github.com/jurisdns/jurisdns/policy"
	"github.com/jurisdns/jurisdns/spec"
)

// Page is the JSON of GET /api/status.
type Page struct {
	Generated time.Time `json:"generated"`
	Version   string    `json:"version,omitempty"`
	// PolicyHash identifies the policy in force; PolicySince is when it
	// came into force and PolicyLoaded when it was last (re)loaded, as far
	// as this process saw.
	PolicyHash   string    `json:"policy_hash"`
	PolicySince  time.Time `json:"policy_since,omitzero"`
	PolicyLoaded time.Time `json:"policy_loaded,omitzero"`
	// ClientPrivacy is how the clients of Recent are shown.
	ClientPrivacy        string   `json:"client_privacy"`
	DefaultJurisdictions []string `json:"default_jurisdictions"`
	Summary              Summary  `json:"summary"`
	// Jurisdictions: those in use first (in policy order), then the rest.
	Jurisdictions []Jurisdiction `json:"jurisdictions"`
	// Clients are the configured client entries, then the default set.
	Clients []Client `json:"clients"`
	Hits    Hits     `json:"hits"`
	// Queries are the queries answered since the start, per transport.
	Queries Queries `json:"queries"`
	// Recent are the latest enforcement records, newest first;
	// RecentCapacity is how many are kept and RecentTotal how many were
	// seen since the start.
	Recent         []Record `json:"recent"`
	RecentCapacity int      `json:"recent_capacity"`
	RecentTotal    uint64   `json:"recent_total"`
	// Audit is the state of the enforcement log (absent when it is off):
	// whether it is being written, its head and its last signed
	// checkpoint (keep it to check the log later with
	// `jurisdns audit verify --checkpoint`).
	Audit *audit.State `json:"audit,omitempty"`
	// NotCurrent are the URL list sources that are not current
	// ("jurisdiction/source: why"): served from their last good copy, or
	// not loaded yet, while their download is retried.
	NotCurrent []string `json:"not_current,omitempty"`
}

// Summary counts jurisdictions by state.
type Summary struct {
	Jurisdictions int `json:"jurisdictions"`
	InUse         int `json:"in_use"`
	Active        int `json:"active"`
	Report        int `json:"report"`
	Inactive      int `json:"inactive"`
	Expired       int `json:"expired"`
	Failed        int `json:"failed"`
	FailedSources int `json:"failed_sources"`
}

// Hits are the policy hits per jurisdiction over the last hour and day.
type Hits struct {
	Hour Window `json:"hour"`
	Day  Window `json:"day"`
}

// States of a jurisdiction (Jurisdiction.State).
const (
	StateActive   = "active"
	StateReport   = "report"
	StateInactive = "inactive"
	StateExpired  = "expired"
	StateFailed   = "failed"
)

// Jurisdiction is one jurisdiction on the page.
type Jurisdiction struct {
	// Description is the policy's (id, title, authority, instruments and
	// links, contact, ...), shown as it is.
	policy.Description
	// Status is policy.Jurisdiction.Status: "active", "report",
	// "inactive until 2026-03-01", "expired 2025-04-28" or "not loaded
	// (fail_closed)"; State its category (StateActive, ...).
	Status string `json:"status"`
	State  string `json:"state"`
	// Terms are the tier, mode, action and EDE code.
	policy.Terms
	// TTL of the blocked answers, in seconds.
	TTL int `json:"ttl"`
	// Sinkhole are the addresses answered for action ip.
	Sinkhole []string `json:"sinkhole,omitempty"`
	// Allow are the names the jurisdiction exempts from its lists.
	Allow []string `json:"allow,omitempty"`
	// Effective and Expires as policy.FormatDate writes them; "" is
	// unbounded.
	Effective string `json:"effective,omitempty"`
	Expires   string `json:"expires,omitempty"`
	Entries   int    `json:"entries"`
	// Hash is the list hash (metadata and effective rules).
	Hash string `json:"hash"`
	// LastRefresh is the last time the lists were loaded into the policy
	// in force; ListChanged the last time Hash changed.
	LastRefresh time.Time `json:"last_refresh,omitzero"`
	ListChanged time.Time `json:"list_changed,omitzero"`
	// InUse: a client entry or the default set applies it; Clients names
	// them ("default" for the default set).
	InUse         bool               `json:"in_use"`
	Clients       []string           `json:"clients,omitempty"`
	Shipped       bool               `json:"shipped"`
	Overridden    bool               `json:"overridden,omitempty"`
	Loaded        bool               `json:"loaded"`
	LoadError     string             `json:"load_error,omitempty"`
	OnLoadFailure spec.OnLoadFailure `json:"on_load_failure"`
	Sources       []Source           `json:"sources"`
	// FailedSources are the sources that failed to load or to refresh
	// (Source.Error set).
	FailedSources []string `json:"failed_sources,omitempty"`
}

// Source is one list source of a jurisdiction.
type Source struct {
	// SourceState is the policy's (name, origin, format, match, counts,
	// hash; Stale: the source failed and its last known good rules are
	// kept).
	policy.SourceState
	Error string `json:"error,omitempty"`
	// BadLines are the first rejected lines (file:line: reason).
	BadLines []string `json:"bad_lines,omitempty"`
	// Transfer is the state of a source pulled by zone transfer: serial,
	// primary, last transfer, last NOTIFY.
	Transfer *policy.TransferState `json:"transfer,omitempty"`
}

// Client is one client mapping.
type Client struct {
	Name          string   `json:"name"`
	Default       bool     `json:"default,omitempty"`
	Subnets       []string `json:"subnets"`
	Jurisdictions []string `json:"jurisdictions"`
}

// snapshot builds the page.
func (s *Status) snapshot() *Page {
	now := s.now()
	pol, st := s.current(now)
	hour, day := s.hits.Snapshot(now)
	recent, seen := s.recent.latest()
	p := &Page{
		Generated:            now,
		Version:              s.version,
		PolicySince:          st.from,
		PolicyLoaded:         st.at,
		ClientPrivacy:        s.privacy,
		DefaultJurisdictions: []string{},
		Jurisdictions:        []Jurisdiction{},
		Clients:              []Client{},
		Hits:                 Hits{Hour: hour, Day: day},
		Queries:              s.queries.snapshot(),
		Recent:               recent,
		RecentCapacity:       len(s.recent.buf),
		RecentTotal:          seen,
	}
	if p.ClientPrivacy == "" {
		p.ClientPrivacy = "none"
	}
	if s.audit != nil {
		p.Audit = s.audit()
	}
	if s.notCurrent != nil {
		p.NotCurrent = s.notCurrent()
	}
	fillPolicy(p, pol, now, st.lists)
	return p
}

// PolicyPage is the part of the status page that the policy alone gives:
// policy hash, default jurisdictions, summary, jurisdictions and clients,
// without hits, enforcement records or refresh times. It is what
// `jurisdns lists --json` prints, in the shape of GET /api/status.
func PolicyPage(pol *policy.Policy, now time.Time) *Page {
	p := &Page{
		Generated: now, DefaultJurisdictions: []string{}, Jurisdictions: []Jurisdiction{}, Clients: []Client{},
		Recent: []Record{},
	}
	fillPolicy(p, pol, now, nil)
	return p
}

// fillPolicy fills the policy's part of p.
func fillPolicy(p *Page, pol *policy.Policy, now time.Time, lists map[string]listState) {
	if pol == nil {
		return
	}
	p.PolicyHash = pol.Hash()
	p.DefaultJurisdictions = append(p.DefaultJurisdictions, pol.DefaultJurisdictions()...)

	usedBy := map[string][]string{}
	sets := append(append([]*policy.ClientSet(nil), pol.Clients()...), pol.DefaultClientSet())
	for _, cs := range sets {
		if cs == nil {
			continue
		}
		c := Client{Name: cs.Name, Default: cs == pol.DefaultClientSet(), Subnets: []string{}, Jurisdictions: []string{}}
		for _, pf := range cs.Subnets {
			c.Subnets = append(c.Subnets, pf.String())
		}
		for _, j := range cs.Jurisdictions {
			c.Jurisdictions = append(c.Jurisdictions, j.ID)
			usedBy[j.ID] = append(usedBy[j.ID], cs.Name)
		}
		p.Clients = append(p.Clients, c)
	}

	var unused []Jurisdiction
	for _, j := range pol.Jurisdictions() {
		js := jurisdictionOf(j, now, lists[j.ID])
		js.Clients = usedBy[j.ID]
		js.InUse = len(js.Clients) > 0
		p.Summary.Jurisdictions++
		p.Summary.FailedSources += len(js.FailedSources)
		if !js.InUse {
			unused = append(unused, js)
			continue
		}
		p.Summary.InUse++
		switch js.State {
		case StateActive:
			p.Summary.Active++
		case StateReport:
			p.Summary.Report++
		case StateInactive:
			p.Summary.Inactive++
		case StateExpired:
			p.Summary.Expired++
		case StateFailed:
			p.Summary.Failed++
		}
		p.Jurisdictions = append(p.Jurisdictions, js)
	}
	p.Jurisdictions = append(p.Jurisdictions, unused...)
}

func jurisdictionOf(j *policy.Jurisdiction, now time.Time, ls listState) Jurisdiction {
	out := Jurisdiction{
		Description:   j.Description,
		Status:        j.Status(now),
		State:         stateOf(j, now),
		Terms:         j.Terms(),
		TTL:           int(j.TTL / time.Second),
		Entries:       j.Entries,
		Hash:          j.Hash,
		LastRefresh:   ls.refreshed,
		ListChanged:   ls.changed,
		Shipped:       j.Shipped,
		Overridden:    j.Overridden,
		Loaded:        j.Loaded,
		LoadError:     j.LoadError,
		OnLoadFailure: j.OnLoadFailure.Spec(),
		Sources:       []Source{},
	}
	for _, a := range j.Sinkhole {
		out.Sinkhole = append(out.Sinkhole, a.String())
	}
	for _, a := range j.Allow {
		out.Allow = append(out.Allow, a.Name)
	}
	if !j.Effective.IsZero() {
		out.Effective = policy.FormatDate(j.Effective)
	}
	if !j.Expires.IsZero() {
		out.Expires = policy.FormatDate(j.Expires)
	}
	for _, si := range j.Sources {
		src := Source{SourceState: si.SourceState, Error: si.Err, Transfer: si.Transfer}
		for i := range si.Errors {
			src.BadLines = append(src.BadLines, si.Errors[i].Error())
		}
		if src.Error == "" && src.Stale {
			src.Error = "failed; last known good rules kept"
		}
		if src.Error != "" {
			out.FailedSources = append(out.FailedSources, si.Name)
		}
		out.Sources = append(out.Sources, src)
	}
	if !j.Loaded && len(out.FailedSources) == 0 && j.LoadError != "" {
		out.FailedSources = append(out.FailedSources, "(jurisdiction)")
	}
	return out
}

// stateOf is the category of j.Status(now), in the same order of checks.
func stateOf(j *policy.Jurisdiction, now time.Time) string {
	switch {
	case !j.Effective.IsZero() && now.Before(j.Effective):
		return StateInactive
	case !j.Expires.IsZero() && !now.Before(j.Expires):
		return StateExpired
	case !j.Loaded:
		return StateFailed
	case j.Mode == policy.ModeReport:
		return StateReport
	}
	return StateActive
}

// CheckResult is the JSON of GET /api/explain: the same as
// `jurisdns check --json`, the policy's explanation plus the DNS answer the
// client gets.
type CheckResult struct {
	policy.Explanation
	Answer *AnswerText `json:"answer"`
}

// AnswerText renders a DNS answer for people and scripts.
type AnswerText struct {
	Rcode     string   `json:"rcode"`
	Answer    []string `json:"answer,omitempty"`
	Authority []string `json:"authority,omitempty"`
	EDE       string   `json:"ede,omitempty"`
	Note      string   `json:"note,omitempty"`
}

// Check explains name for client (the zero Addr: the default set) at now,
// and renders the answer a query of qtype gets: what `jurisdns check`
// prints.
func Check(pol *policy.Policy, name string, client netip.Addr, qtype uint16, now time.Time) CheckResult {
	ex := pol.Explain(name, client, now)
	return CheckResult{Explanation: ex, Answer: RenderAnswer(pol, &ex, qtype)}
}

// RenderAnswer is the answer a client gets for ex: the policy answer, or a
// note that the name is forwarded; nil for an invalid name.
func RenderAnswer(pol *policy.Policy, ex *policy.Explanation, qtype uint16) *AnswerText {
	if ex.NameError != "" {
		return nil
	}
	switch ex.Verdict.Decision {
	case policy.DecisionNone:
		return &AnswerText{Rcode: "(forwarded)", Note: "not blocked: resolved through the cache and upstreams"}
	case policy.DecisionFailClosed:
		return &AnswerText{Rcode: "SERVFAIL", EDE: fmt.Sprintf("%d (Not Ready): %s", dns.ExtendedErrorCodeNotReady, ex.Verdict.AppendEDEText(nil))}
	}
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(ex.Canonical), qtype)
	m := policy.BlockAnswer(pol.Serial(), q, &ex.Verdict)
	if m == nil {
		return &AnswerText{Rcode: "(no answer)", Note: "action drop: the query is not answered"}
	}
	out := &AnswerText{Rcode: dns.RcodeToString[m.Rcode]}
	for _, rr := range m.Answer {
		out.Answer = append(out.Answer, rr.String())
	}
	for _, rr := range m.Ns {
		out.Authority = append(out.Authority, rr.String())
	}
	if code, ok := ex.Verdict.EDE(); ok {
		out.EDE = fmt.Sprintf("%d (%s): %s", code, dns.ExtendedErrorCodeToString[code], ex.Verdict.AppendEDEText(nil))
	}
	return out
}

// explainQuery validates the parameters of /api/explain.
func explainQuery(name, client, qtype string) (netip.Addr, uint16, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return netip.Addr{}, 0, fmt.Errorf("name: missing (GET /api/explain?name=NAME&client=IP)")
	}
	if len(name) > 1024 {
		return netip.Addr{}, 0, fmt.Errorf("name: too long")
	}
	if _, err := blocklists.Canonical(name); err != nil {
		return netip.Addr{}, 0, fmt.Errorf("name %q: %v", name, err)
	}
	addr, err := clientAddr(strings.TrimSpace(client))
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("client %q: not an IP address", client)
	}
	qt := dns.TypeA
	if qtype = strings.TrimSpace(qtype); qtype != "" {
		t, ok := dns.StringToType[strings.ToUpper(qtype)]
		if !ok {
			return netip.Addr{}, 0, fmt.Errorf("type %q: unknown query type", qtype)
		}
		qt = t
	}
	return addr, qt, nil
}

func itoa(n int) string { return strconv.Itoa(n) }

// Package status is the compliance status page of the admin listener: a
// read-only page and the JSON API behind it.
//
// The page (GET /) is served from files embedded in the binary (HTML, CSS
// and plain JavaScript: no build step, no CDN, works offline). It shows every
// jurisdiction with its status (active, report-only, inactive until,
// expired, not loaded), tier, instrument and source links, dates, entries,
// list hash, last refresh and failed sources; the client mappings; policy
// hits per jurisdiction over the last hour and day as SVG charts drawn from
// in-process counters; the latest enforcement records; and an "explain"
// form that gives the resolution `jurisdns check` prints.
//
// The JSON API, for the page and for scripts:
//
//	GET /api/status                          everything the page shows
//	GET /api/explain?name=NAME[&client=IP][&type=A]
//	                                         the resolution of NAME for client IP,
//	                                         the JSON of `jurisdns check --json`
//
// A bad name, address or type gets 400 with {"error": "..."}. Every other
// method than GET and HEAD gets 405: nothing here changes policy, which only
// changes through the configuration and SIGHUP.
//
// Access control is the admin server's: when admin_auth.token_file is set,
// every request needs "Authorization: Bearer <token>", the page included. A
// browser does not send that header on a plain navigation, so with a token
// the page is for a browser that adds the header (a header-setting
// extension, or an authenticating reverse proxy in front of the loopback
// listener); the page's own requests (its script, styles, API calls) carry
// whatever the browser adds. Scripts use the API with curl -H.
//
// The page builds its DOM with textContent and createElement only, never
// innerHTML, so names, titles and instruments are always shown as text; a
// strict Content-Security-Policy (no inline script or style) backs that up.
package status

import (
	"crypto/rand"
	"net/netip"
	"sync"
	"time"

	"github.com/jurisdns/jurisdns/audit"
	"github.com/jurisdns/jurisdns/policy"
)

// Options configure a Status.
type Options struct {
	// Policy returns the policy in force, e.g.
	// func() *policy.Policy { return srv.Runtime().Policy }. Required. It
	// is called on every API request.
	Policy func() *policy.Policy
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Privacy is audit.client_privacy (full, truncate, hash or none): how
	// the clients of enforcement records are shown. An unknown value shows
	// no client.
	Privacy string
	// Salt keys the hash privacy mode (audit.ClientString). Nil means
	// random bytes drawn by New.
	Salt []byte
	// Recent is how many enforcement records to keep; 0 means
	// DefaultRecent.
	Recent int
	// Version is shown in the page header (e.g. app.Version).
	Version string
	// Audit returns the state of the enforcement log (nil when it is off);
	// the API gives it under "audit", with the last signed checkpoint for
	// whoever keeps them. Nil means no enforcement log.
	Audit func() *audit.State
	// NotCurrent lists the URL list sources that are not current (see
	// Page.NotCurrent); nil reports none.
	NotCurrent func() []string
}

// Status is the status page: counters, the latest enforcement records and
// the HTTP handler. Create it with New. Its methods are safe for concurrent
// use.
type Status struct {
	policy  func() *policy.Policy
	now     func() time.Time
	privacy string
	salt    []byte
	version string
	audit   func() *audit.State
	// notCurrent is Options.NotCurrent.
	notCurrent func() []string

	hits    *Counters
	recent  *recentRing
	queries queryCounters

	mu      sync.Mutex
	lastPol *policy.Policy
	polHash string
	polFrom time.Time // when polHash came into force (as seen here)
	polAt   time.Time // when the policy in force was published
	lists   map[string]listState
}

// listState is what Status remembers of a jurisdiction's lists.
type listState struct {
	hash      string
	refreshed time.Time // last time the lists were (re)loaded
	changed   time.Time // last time the list hash changed
}

// New returns a Status. It panics if opts.Policy is nil.
func New(opts Options) *Status {
	if opts.Policy == nil {
		panic("status: Options.Policy is nil")
	}
	s := &Status{
		policy:     opts.Policy,
		now:        opts.Now,
		privacy:    opts.Privacy,
		salt:       opts.Salt,
		version:    opts.Version,
		audit:      opts.Audit,
		notCurrent: opts.NotCurrent,
		hits:       NewCounters(),
		lists:      map[string]listState{},
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.salt == nil && s.privacy == audit.PrivacyHash {
		s.salt = make([]byte, 32)
		_, _ = rand.Read(s.salt)
	}
	n := opts.Recent
	if n <= 0 {
		n = DefaultRecent
	}
	s.recent = newRecentRing(min(n, maxRecent), s.privacy, s.salt)
	return s
}

// Record feeds one policy hit (enforced or report-only) to the counters and
// the latest enforcement records. It does not block on I/O: it takes two
// short locks.
func (s *Status) Record(ev *policy.Event) {
	if ev == nil || ev.Jurisdiction == nil {
		return
	}
	t := ev.Time
	if t.IsZero() {
		t = s.now()
	}
	s.hits.Add(ev.Jurisdiction.ID, t)
	s.recent.add(ev, t)
}

// PolicyEvent is Record: it makes *Status a policy.Auditor.
func (s *Status) PolicyEvent(ev *policy.Event) { s.Record(ev) }

var _ policy.Auditor = (*Status)(nil)

// Published tells the page that pol was put in force at time at (after a
// start, a reload or a list refresh): it dates every jurisdiction's last
// refresh, and the last change of its list hash. Without it the page dates
// a policy when it first sees it.
func (s *Status) Published(pol *policy.Policy, at time.Time) {
	if pol == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.publishLocked(pol, at)
}

func (s *Status) publishLocked(pol *policy.Policy, at time.Time) {
	s.lastPol = pol
	s.polAt = at
	if h := pol.Hash(); h != s.polHash || s.polFrom.IsZero() {
		s.polHash, s.polFrom = h, at
	}
	seen := make(map[string]bool, len(pol.Jurisdictions()))
	for _, j := range pol.Jurisdictions() {
		seen[j.ID] = true
		st, ok := s.lists[j.ID]
		if !ok || st.hash != j.Hash {
			st.hash, st.changed = j.Hash, at
		}
		st.refreshed = at
		s.lists[j.ID] = st
	}
	for id := range s.lists {
		if !seen[id] {
			delete(s.lists, id)
		}
	}
}

// current returns the policy in force and what Status knows of it.
func (s *Status) current(now time.Time) (*policy.Policy, polState) {
	pol := s.policy()
	s.mu.Lock()
	defer s.mu.Unlock()
	if pol != nil && pol != s.lastPol {
		s.publishLocked(pol, now)
	}
	st := polState{from: s.polFrom, at: s.polAt, lists: make(map[string]listState, len(s.lists))}
	for k, v := range s.lists {
		st.lists[k] = v
	}
	return pol, st
}

type polState struct {
	from, at time.Time
	lists    map[string]listState
}

// clientAddr parses the client parameter: "" is the default set.
func clientAddr(s string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, nil
	}
	return netip.ParseAddr(s)
}

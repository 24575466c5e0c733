package app

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/jurisdns/jurisdns/policy"
)

// ReloadReport is the result of a reload: the JSON of POST /api/reload on
// the admin listener and what `jurisdns reload` prints.
type ReloadReport struct {
	// OK: the new configuration and lists are in force. Otherwise Errors
	// says why (key paths, file:line) and the previous ones still are.
	OK     bool     `json:"ok"`
	Errors []string `json:"errors,omitempty"`
	// PolicyHash is the policy in force after the reload, PreviousHash the
	// one before; Changed says whether they differ.
	PolicyHash   string `json:"policy_hash"`
	PreviousHash string `json:"previous_policy_hash"`
	Changed      bool   `json:"changed"`
	// Jurisdictions are the jurisdictions in force with their entries and
	// the rules added and removed by the reload.
	Jurisdictions []ReloadJurisdiction `json:"jurisdictions"`
	// Removed are the jurisdictions the reload dropped.
	Removed []string `json:"removed_jurisdictions,omitempty"`
	// RestartRequired are the changed settings that only a restart
	// applies (listen, admin, cache, logs, …).
	RestartRequired []string `json:"restart_required,omitempty"`
	// NotCurrent are the URL sources served from a last good copy.
	NotCurrent []string `json:"not_current,omitempty"`
	// TookSeconds is how long the reload took.
	TookSeconds float64 `json:"took_seconds"`
}

// ReloadJurisdiction is one jurisdiction in a ReloadReport.
type ReloadJurisdiction struct {
	ID      string `json:"id"`
	Entries int    `json:"entries"`
	Added   int    `json:"added"`
	Removed int    `json:"removed"`
	New     bool   `json:"new,omitempty"`
}

// ReloadReport reloads as Reload does and reports what changed.
func (a *App) ReloadReport(ctx context.Context) (*ReloadReport, error) {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	start := time.Now()
	old := a.server.Runtime().Policy
	err := a.reloadLocked(ctx)
	cur := a.server.Runtime().Policy
	rep := &ReloadReport{
		OK: err == nil, PolicyHash: cur.Hash(), PreviousHash: old.Hash(), Changed: cur.Hash() != old.Hash(),
		Jurisdictions: []ReloadJurisdiction{}, RestartRequired: restartKeys(a.boot, a.cfg),
		NotCurrent: a.NotCurrentDetail(), TookSeconds: time.Since(start).Seconds(),
	}
	if err != nil {
		rep.Errors = errLines(err)
	}
	var diff map[string]policy.Change
	if rep.Changed {
		diff = policy.Diff(old, cur)
	}
	before, after := ids(old), ids(cur)
	for _, j := range cur.Jurisdictions() {
		d := diff[j.ID]
		_, had := before[j.ID]
		rep.Jurisdictions = append(rep.Jurisdictions, ReloadJurisdiction{ID: j.ID, Entries: cur.Entries(j.ID), Added: d.Added, Removed: d.Removed, New: !had})
	}
	for _, j := range old.Jurisdictions() {
		if _, ok := after[j.ID]; !ok {
			rep.Removed = append(rep.Removed, j.ID)
		}
	}
	return rep, err
}

// ids is the set of the jurisdiction IDs of p.
func ids(p *policy.Policy) map[string]struct{} {
	m := map[string]struct{}{}
	for _, j := range p.Jurisdictions() {
		m[j.ID] = struct{}{}
	}
	return m
}

// reloadWriteTimeout bounds the answer of POST /api/reload.
const reloadWriteTimeout = 10 * time.Minute

// reloadHandler serves POST /api/reload on the admin listener (behind its
// bearer token when one is configured): it reloads as SIGHUP does and
// answers the ReloadReport, 200 when the reload succeeded and 422 when it
// was refused (the previous configuration is still in force). Requests
// from another origin (a web page the operator visits) are refused.
func (a *App) reloadHandler() http.Handler {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.log.Info("reload requested through the admin API", "remote", r.RemoteAddr)
		// A reload downloads the URL lists (each within lists.deadline):
		// it may outlast the admin server's write timeout.
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(reloadWriteTimeout))
		rep, err := a.ReloadReport(r.Context())
		code := http.StatusOK
		if err != nil {
			code = http.StatusUnprocessableEntity
		}
		b, _ := json.MarshalIndent(rep, "", "  ")
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(code)
		_, _ = w.Write(append(b, '\n'))
	})
	return http.NewCrossOriginProtection().Handler(h)
}

package app_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/app"
)

// post sends POST path to the admin listener with the given headers.
func (e *env) post(path string, headers map[string]string) (int, string) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.admin+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}}).Do(req)
	if err != nil {
		e.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestReloadAPI: POST /api/reload reloads like SIGHUP and reports the
// policy hashes, the rules added and removed per jurisdiction, and the
// settings that need a restart; a broken configuration gets 422 with its
// problems and changes nothing; a request from another origin (a web page
// in the operator's browser) is refused before anything happens.
func TestReloadAPI(t *testing.T) {
	e := newEnv(t, nil)
	e.write("list.txt", "blocked.example\ngone.example\n")
	e.config(acmeConfig)
	e.start()
	before := e.app.Server().Runtime().Policy.Hash()

	e.write("list.txt", "blocked.example\nnew1.example\nnew2.example\n")
	code, body := e.post("/api/reload", nil)
	var rep app.ReloadReport
	if err := json.Unmarshal([]byte(body), &rep); err != nil || code != http.StatusOK {
		t.Fatalf("POST /api/reload = %d %s (%v)", code, body, err)
	}
	after := e.app.Server().Runtime().Policy.Hash()
	if !rep.OK || !rep.Changed || rep.PreviousHash != before || rep.PolicyHash != after || before == after {
		t.Errorf("report %+v; want ok, changed, %s → %s", rep, before, after)
	}
	var acme *app.ReloadJurisdiction
	for i := range rep.Jurisdictions {
		if rep.Jurisdictions[i].ID == "acme" {
			acme = &rep.Jurisdictions[i]
		}
	}
	if acme == nil || acme.Entries != 3 || acme.Added != 2 || acme.Removed != 1 || acme.New {
		t.Errorf("acme in the report = %+v; want 3 entries, +2 -1", acme)
	}
	wantRcode(t, "new rule", e.query("udp", "new2.example", dns.TypeA), dns.RcodeNameError)

	// A setting only a restart applies (log) is named.
	e.write("jurisdns.yaml", baseConfig(e.up.Addr())+"log: {level: debug}\n"+acmeConfig)
	if code, body := e.post("/api/reload", nil); code != http.StatusOK || !strings.Contains(body, `"restart_required": [`) ||
		!strings.Contains(body, `"log"`) {
		t.Errorf("reload with a new log level = %d %s", code, body)
	}

	// Broken: 422, the problems, the policy unchanged.
	e.write("jurisdns.yaml", baseConfig(e.up.Addr())+"lists: {timeout: 0s}\n"+acmeConfig)
	code, body = e.post("/api/reload", nil)
	rep = app.ReloadReport{}
	_ = json.Unmarshal([]byte(body), &rep)
	if code != http.StatusUnprocessableEntity || rep.OK || len(rep.Errors) == 0 || !strings.Contains(rep.Errors[0], "lists.timeout: 0s is not positive") ||
		rep.PolicyHash != after || rep.Changed {
		t.Errorf("broken reload = %d %+v", code, rep)
	}

	// Cross-origin: refused, no reload attempted.
	failed := e.metric("reloads_total", "result=failed")
	for _, h := range []map[string]string{
		{"Sec-Fetch-Site": "cross-site"},
		{"Origin": "https://evil.example"},
	} {
		if code, body := e.post("/api/reload", h); code != http.StatusForbidden {
			t.Errorf("cross-origin POST %v = %d %s, want 403", h, code, body)
		}
	}
	if got := e.metric("reloads_total", "result=failed"); got != failed {
		t.Errorf("a cross-origin request ran a reload (failed reloads %v → %v)", failed, got)
	}
	// GET does not reload.
	if code, _ := e.get("/api/reload"); code == http.StatusOK {
		t.Errorf("GET /api/reload = %d", code)
	}
}

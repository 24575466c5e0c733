package status

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/jurisdns/jurisdns/admin"
	"github.com/jurisdns/jurisdns/audit"
	"github.com/jurisdns/jurisdns/policy"
)

// get serves one request and returns the recorder.
func serve(t *testing.T, h http.Handler, method, url string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(method, url, nil))
	return w
}

func decode[T any](t *testing.T, w *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json", ct)
	}
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("decode %s: %v", w.Body.String(), err)
	}
	return v
}

func findJ(p Page, id string) *Jurisdiction {
	for i := range p.Jurisdictions {
		if p.Jurisdictions[i].ID == id {
			return &p.Jurisdictions[i]
		}
	}
	return nil
}

func TestAPIStatus(t *testing.T) {
	st, pol, clk := newTestStatus(t, "truncate")
	loaded := testNow.Add(-10 * time.Minute)
	st.Published(pol, loaded)
	st.Record(hit(pol, "test-mandate", "chat.deepseek.com", "10.20.1.5", testNow.Add(-2*time.Minute)))
	st.Record(hit(pol, "test-mandate", "deepseek.com", "10.20.7.9", testNow.Add(-3*time.Hour)))
	st.Record(hit(pol, "eu-report", "chat.deepseek.com", "10.20.1.5", testNow))
	h := st.Handler()

	w := serve(t, h, "GET", "/api/status")
	if w.Code != 200 {
		t.Fatalf("GET /api/status: %d %s", w.Code, w.Body)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
	p := decode[Page](t, w)
	if p.PolicyHash != pol.Hash() || !p.PolicyLoaded.Equal(loaded) || !p.PolicySince.Equal(loaded) || !p.Generated.Equal(testNow) {
		t.Errorf("policy %s loaded %v since %v generated %v", p.PolicyHash, p.PolicyLoaded, p.PolicySince, p.Generated)
	}
	if p.Version != "test" || p.ClientPrivacy != "truncate" {
		t.Errorf("version %q privacy %q", p.Version, p.ClientPrivacy)
	}

	tests := []struct {
		id, status, state, tier, effective, expires string
		inUse                                       bool
		clients                                     []string
	}{
		{"test-mandate", "active", StateActive, "mandated", "2025-02-04", "", true, []string{"canberra-office"}},
		{"eu-report", "report", StateReport, "advisory", "", "", true, []string{"canberra-office"}},
		{"acme-staff", "active", StateActive, "local", "", "", true, []string{"canberra-office", "default"}},
		{"old-ban", "expired 2025-06-01", StateExpired, "mandated", "2024-01-01", "2025-06-01", true, []string{"default"}},
		{"future-ban", "inactive until 2027-01-01", StateInactive, "mandated", "2027-01-01", "", true, []string{"default"}},
		{"broken-feed", "not loaded (fail_open)", StateFailed, "local", "", "", true, []string{"canberra-office"}},
		{"us-gov", "", "", "mandated", "", "", false, nil}, // shipped, not applied
	}
	for _, tc := range tests {
		j := findJ(p, tc.id)
		if j == nil {
			t.Errorf("%s: missing", tc.id)
			continue
		}
		if tc.status != "" && (j.Status != tc.status || j.State != tc.state) {
			t.Errorf("%s: status %q state %q, want %q %q", tc.id, j.Status, j.State, tc.status, tc.state)
		}
		if string(j.Tier) != tc.tier || (tc.inUse && (j.Effective != tc.effective || j.Expires != tc.expires)) || j.InUse != tc.inUse {
			t.Errorf("%s: tier %s effective %q expires %q in_use %v", tc.id, j.Tier, j.Effective, j.Expires, j.InUse)
		}
		if strings.Join(j.Clients, ",") != strings.Join(tc.clients, ",") {
			t.Errorf("%s: clients %v, want %v", tc.id, j.Clients, tc.clients)
		}
		if tc.inUse && (j.Hash == "" || !j.LastRefresh.Equal(loaded)) {
			t.Errorf("%s: hash %q last refresh %v", tc.id, j.Hash, j.LastRefresh)
		}
	}
	// In-use jurisdictions come first.
	for i, j := range p.Jurisdictions {
		if i < p.Summary.InUse != j.InUse {
			t.Fatalf("jurisdiction %d (%s) in_use=%v out of order (%d in use)", i, j.ID, j.InUse, p.Summary.InUse)
		}
	}
	tm := findJ(p, "test-mandate")
	if tm.Instrument != "PSPF Direction 001-2025" || len(tm.Links) != 1 || tm.Links[0] != "https://example.gov/direction-001-2025" ||
		tm.Entries != 2 || len(tm.Sources) != 1 || tm.Sources[0].Bad != 1 || len(tm.Sources[0].BadLines) != 1 {
		t.Errorf("test-mandate details: %+v", tm)
	}
	if len(tm.LinkTitles) != 0 {
		t.Errorf("a configured jurisdiction has no link titles: %v", tm.LinkTitles)
	}
	// A shipped jurisdiction's links carry their titles, so the page shows
	// "Home Affairs: PSPF Direction 001-2025 ..." rather than "source 1".
	if au := findJ(p, "au-gov"); au == nil || len(au.LinkTitles) != len(au.Links) || len(au.Links) < 2 ||
		!strings.HasPrefix(au.LinkTitles[0], "Home Affairs: PSPF Direction 001-2025") || !strings.HasPrefix(au.Links[0], "https://www.protectivesecurity.gov.au/") {
		t.Errorf("au-gov links %+v", au)
	}
	if bf := findJ(p, "broken-feed"); len(bf.FailedSources) != 1 || bf.FailedSources[0] != "missing-feed" || bf.Sources[0].Error == "" {
		t.Errorf("broken-feed failed sources %v, sources %+v", bf.FailedSources, bf.Sources)
	}
	s := p.Summary
	if s.InUse != 7 || s.Active != 3 || s.Report != 1 || s.Expired != 1 || s.Inactive != 1 || s.Failed != 1 || s.FailedSources != 1 {
		t.Errorf("summary %+v", s)
	}

	if len(p.Clients) != 2 || p.Clients[0].Name != "canberra-office" || !p.Clients[1].Default ||
		strings.Join(p.Clients[0].Subnets, ",") != "10.20.0.0/16,2001:db8:20::/48" ||
		strings.Join(p.Clients[0].Jurisdictions, ",") != "test-mandate,eu-report,acme-staff,broken-feed" ||
		strings.Join(p.Clients[1].Jurisdictions, ",") != "acme-staff,old-ban,future-ban,markup-test" {
		t.Errorf("clients %+v", p.Clients)
	}
	if strings.Join(p.DefaultJurisdictions, ",") != "acme-staff,old-ban,future-ban,markup-test" {
		t.Errorf("default jurisdictions %v", p.DefaultJurisdictions)
	}

	if p.Hits.Hour.Total != 2 || p.Hits.Day.Total != 3 {
		t.Errorf("hits: hour %d day %d, want 2 and 3", p.Hits.Hour.Total, p.Hits.Day.Total)
	}
	if s := seriesOf(p.Hits.Day, "test-mandate"); s == nil || s.Total != 2 || s.Counts[22] != 1 || s.Counts[20] != 1 { // 11:58 and 09:00
		t.Errorf("day series of test-mandate: %+v", s)
	}
	if len(p.Recent) != 3 || p.RecentTotal != 3 || p.RecentCapacity != DefaultRecent {
		t.Fatalf("recent: %d records, total %d, capacity %d", len(p.Recent), p.RecentTotal, p.RecentCapacity)
	}
	r := p.Recent[0] // newest first
	if r.Jurisdiction != "eu-report" || r.Mode != "report" || r.Client != "10.20.1.0/24" || r.Name != "chat.deepseek.com" ||
		r.Type != "A" || r.Tier != "advisory" || r.PolicyHash != pol.Hash() || r.Instrument != pol.Lookup("eu-report").Instrument {
		t.Errorf("newest record %+v", r)
	}
	// A record names the instrument the event names (the deciding one).
	ev := hit(pol, "test-mandate", "x.deepseek.com", "10.20.1.5", testNow)
	ev.Instrument = "Deciding instrument"
	st.Record(ev)
	if rec, _ := st.recent.latest(); rec[0].Instrument != "Deciding instrument" {
		t.Errorf("record instrument %q", rec[0].Instrument)
	}

	// A new policy is dated when first seen; the list of an unchanged
	// jurisdiction keeps its change date.
	pol2 := testPolicy(t)
	later := testNow.Add(time.Hour)
	clk.Set(later)
	st.policy = func() *policy.Policy { return pol2 }
	p = decode[Page](t, serve(t, h, "GET", "/api/status"))
	if tm := findJ(p, "test-mandate"); !tm.LastRefresh.Equal(later) || !tm.ListChanged.Equal(loaded) {
		t.Errorf("after a reload: refreshed %v changed %v", tm.LastRefresh, tm.ListChanged)
	}
	if !p.PolicySince.Equal(loaded) || !p.PolicyLoaded.Equal(later) {
		t.Errorf("same hash after reload: since %v loaded %v", p.PolicySince, p.PolicyLoaded)
	}
}

func TestAPIStatusEscapesMarkup(t *testing.T) {
	st, _, _ := newTestStatus(t, "full")
	w := serve(t, st.Handler(), "GET", "/api/status")
	body := w.Body.String()
	if strings.Contains(body, "<script>") || strings.Contains(body, "<img") {
		t.Errorf("the JSON carries raw markup")
	}
	p := decode[Page](t, w)
	if j := findJ(p, "markup-test"); j == nil || j.Instrument != "<script>window.__xss='instrument'</script>" {
		t.Errorf("markup-test instrument not round-tripped: %+v", j)
	}
}

func TestAPIExplain(t *testing.T) {
	st, pol, _ := newTestStatus(t, "truncate")
	h := st.Handler()
	tests := []struct {
		name, url    string
		decision     string
		jurisdiction string
		entry        string
		rcode        string
	}{
		{"mandated block for the office", "/api/explain?name=chat.deepseek.com&client=10.20.1.5", "block", "test-mandate", "canberra-office", "NXDOMAIN"},
		{"default set blocks by the local policy", "/api/explain?name=chat.deepseek.com&client=192.0.2.1", "block", "acme-staff", "default", "NXDOMAIN"},
		{"no client is the default set", "/api/explain?name=CHAT.DeepSeek.com.", "block", "acme-staff", "default", "NXDOMAIN"},
		{"IPv6 client", "/api/explain?name=deepseek.com&client=2001:db8:20::5&type=AAAA", "block", "test-mandate", "canberra-office", "NXDOMAIN"},
		{"not listed", "/api/explain?name=example.org&client=10.20.1.5", "none", "", "canberra-office", "(forwarded)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := serve(t, h, "GET", tc.url)
			if w.Code != 200 {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			r := decode[CheckResult](t, w)
			if r.Decision != tc.decision || r.Jurisdiction != tc.jurisdiction || r.ClientEntry != tc.entry || r.Answer == nil || r.Answer.Rcode != tc.rcode {
				t.Errorf("decision %q by %q entry %q answer %+v", r.Decision, r.Jurisdiction, r.ClientEntry, r.Answer)
			}
			if r.PolicyHash != pol.Hash() || !r.Time.Equal(testNow) {
				t.Errorf("policy %s time %v", r.PolicyHash, r.Time)
			}
		})
	}

	// The office's full resolution: report-only hit, rules, EDE, SOA.
	r := decode[CheckResult](t, serve(t, h, "GET", "/api/explain?name=chat.deepseek.com&client=10.20.1.5"))
	if r.Instrument != "PSPF Direction 001-2025" || r.Rule != "deepseek.com" || r.Source != "deepseek-core" || r.Line != 2 ||
		r.EDE == nil || *r.EDE != 16 || !strings.HasPrefix(r.Answer.EDE, "16 (Censored): test-mandate") ||
		len(r.Answer.Authority) != 1 || !strings.Contains(r.Answer.Authority[0], "test-mandate.policy.jurisdns.") {
		t.Errorf("resolution %+v answer %+v", r.Explanation, r.Answer)
	}
	if strings.Join(r.Reported, ",") != "eu-report" {
		t.Errorf("reported %v", r.Reported)
	}
	outcomes := map[string]string{}
	for _, m := range r.Matches {
		outcomes[m.Jurisdiction+" "+m.Rule] = m.Outcome
	}
	for k, want := range map[string]string{"test-mandate deepseek.com": "decides", "eu-report deepseek.com": "report", "acme-staff chat.deepseek.com": "blocks"} {
		if outcomes[k] != want {
			t.Errorf("match %s: outcome %q, want %q (all: %v)", k, outcomes[k], want, outcomes)
		}
	}
	// The same JSON as Check, i.e. as `jurisdns check --json`.
	want, _ := json.MarshalIndent(Check(pol, "chat.deepseek.com", mustAddr("10.20.1.5"), 1, testNow), "", "  ")
	if got := serve(t, h, "GET", "/api/explain?name=chat.deepseek.com&client=10.20.1.5").Body.String(); got != string(want)+"\n" {
		t.Errorf("explain JSON differs from Check:\n%s\nwant\n%s", got, want)
	}
}

func TestAPIExplainBadInput(t *testing.T) {
	st, _, _ := newTestStatus(t, "truncate")
	h := st.Handler()
	for _, url := range []string{
		"/api/explain",
		"/api/explain?name=",
		"/api/explain?name=bad..name",
		"/api/explain?name=" + strings.Repeat("a", 64) + ".example",
		"/api/explain?name=%3Cscript%3Ealert(1)%3C/script%3E",
		"/api/explain?name=chat.deepseek.com&client=10.20.1",
		"/api/explain?name=chat.deepseek.com&client=%3Cimg%3E",
		"/api/explain?name=chat.deepseek.com&client=10.20.0.0/16",
		"/api/explain?name=chat.deepseek.com&type=BOGUS",
		"/api/explain?name=" + strings.Repeat("a.", 600),
	} {
		w := serve(t, h, "GET", url)
		if w.Code != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", url, w.Code)
			continue
		}
		e := decode[apiError](t, w)
		if e.Error == "" {
			t.Errorf("%s: no error message", url)
		}
		if strings.Contains(w.Body.String(), "<") {
			t.Errorf("%s: error body carries raw markup: %s", url, w.Body)
		}
	}
}

func TestHandlerReadOnly(t *testing.T) {
	st, _, _ := newTestStatus(t, "truncate")
	h := st.Handler()
	for _, path := range []string{"/", "/api/status", "/api/explain?name=chat.deepseek.com", "/static/app.js", "/anything"} {
		for _, method := range []string{"POST", "PUT", "PATCH", "DELETE", "OPTIONS"} {
			w := serve(t, h, method, path)
			if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, HEAD" {
				t.Errorf("%s %s: %d Allow %q, want 405", method, path, w.Code, w.Header().Get("Allow"))
			}
		}
	}
	if w := serve(t, h, "HEAD", "/api/status"); w.Code != 200 {
		t.Errorf("HEAD /api/status: %d", w.Code)
	}
}

func TestHandlerPages(t *testing.T) {
	st, _, _ := newTestStatus(t, "truncate")
	h := st.Handler()
	tests := []struct {
		path, ctype, contains string
		code                  int
	}{
		{"/", "text/html; charset=utf-8", `<script src="static/app.js" defer></script>`, 200},
		{"/static/app.js", "text/javascript; charset=utf-8", `"use strict"`, 200},
		{"/static/style.css", "text/css; charset=utf-8", ":root", 200},
		{"/static/icon.svg", "image/svg+xml", "<svg", 200},
		{"/static/index.html", "", "", 404},
		{"/static/nope.js", "", "", 404},
		{"/index.html", "", "", 404},
		{"/api/nope", "application/json", `"error"`, 404},
	}
	for _, tc := range tests {
		w := serve(t, h, "GET", tc.path)
		if w.Code != tc.code {
			t.Errorf("%s: %d, want %d", tc.path, w.Code, tc.code)
			continue
		}
		if tc.ctype != "" && w.Header().Get("Content-Type") != tc.ctype {
			t.Errorf("%s: Content-Type %q, want %q", tc.path, w.Header().Get("Content-Type"), tc.ctype)
		}
		if !strings.Contains(w.Body.String(), tc.contains) {
			t.Errorf("%s: body lacks %q", tc.path, tc.contains)
		}
		if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
			t.Errorf("%s: CSP %q", tc.path, csp)
		}
		if w.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no nosniff", tc.path)
		}
	}
}

func TestRecordPrivacy(t *testing.T) {
	tests := []struct {
		privacy, v4, v6 string
	}{
		{"full", "10.20.1.5", "2001:db8:20::5"},
		{"truncate", "10.20.1.0/24", "2001:db8:20::/56"},
		{"none", "", ""},
		{"", "", ""},
	}
	for _, tc := range tests {
		st, pol, _ := newTestStatus(t, tc.privacy)
		st.Record(hit(pol, "test-mandate", "deepseek.com", "10.20.1.5", testNow))
		st.Record(hit(pol, "test-mandate", "deepseek.com", "2001:db8:20::5", testNow))
		recs, _ := st.recent.latest()
		if recs[1].Client != tc.v4 || recs[0].Client != tc.v6 {
			t.Errorf("privacy %q: clients %q %q, want %q %q", tc.privacy, recs[1].Client, recs[0].Client, tc.v4, tc.v6)
		}
	}
	st, pol, _ := newTestStatus(t, "hash")
	st.Record(hit(pol, "test-mandate", "deepseek.com", "10.20.1.5", testNow))
	st.Record(hit(pol, "test-mandate", "deepseek.com", "10.20.1.5", testNow))
	recs, _ := st.recent.latest()
	if len(recs[0].Client) != 16 || recs[0].Client != recs[1].Client || strings.Contains(recs[0].Client, "10.20") {
		t.Errorf("hash privacy: %q %q", recs[0].Client, recs[1].Client)
	}
}

// TestRecordCopiesAndDoesNotAllocate: the resolver hands events whose name
// and rule live in its own buffers (valid only during the call); the page
// must keep copies, and keeping them must not allocate once the ring is warm.
func TestRecordCopiesAndDoesNotAllocate(t *testing.T) {
	pol := testPolicy(t)
	st := New(Options{Policy: func() *policy.Policy { return pol }, Now: func() time.Time { return testNow }, Recent: 4, Privacy: "truncate"})
	ev := hit(pol, "acme-staff", "chat.deepseek.com", "192.0.2.7", testNow)
	nameBuf := []byte(ev.Name)
	ruleBuf := []byte("*.deepseek.com")
	ev.Name = unsafe.String(unsafe.SliceData(nameBuf), len(nameBuf))
	ev.Rule = unsafe.String(unsafe.SliceData(ruleBuf), len(ruleBuf))
	st.Record(ev)
	copy(nameBuf, "xxxx")
	copy(ruleBuf, "yyyy")
	recs, _ := st.recent.latest()
	if recs[0].Name != "chat.deepseek.com" || recs[0].Rule != "*.deepseek.com" || recs[0].Client != "192.0.2.0/24" {
		t.Fatalf("record changed with the caller's buffers: %+v", recs[0])
	}
	for range 4 { // every slot used once: its buffers have grown
		st.Record(ev)
	}
	if n := testing.AllocsPerRun(100, func() { st.Record(ev) }); n != 0 {
		t.Errorf("%.1f allocations per recorded hit, want 0", n)
	}
}

func TestRecentRingBounded(t *testing.T) {
	pol := testPolicy(t)
	st := New(Options{Policy: func() *policy.Policy { return pol }, Now: func() time.Time { return testNow }, Recent: 5, Privacy: "full"})
	for i := range 12 {
		st.Record(hit(pol, "acme-staff", "n"+itoa(i)+".deepseek.com", "192.0.2.1", testNow.Add(time.Duration(i)*time.Second)))
	}
	recs, seen := st.recent.latest()
	if seen != 12 || len(recs) != 5 || recs[0].Name != "n11.deepseek.com" || recs[4].Name != "n7.deepseek.com" {
		names := []string{}
		for _, r := range recs {
			names = append(names, r.Name)
		}
		t.Errorf("seen %d, records %v", seen, names)
	}
	st.Record(nil)
	st.Record(&policy.Event{})
	if _, seen := st.recent.latest(); seen != 12 {
		t.Errorf("empty events were recorded")
	}
}

// TestAdminToken mounts the handler on a real admin server with a token.
func TestAdminToken(t *testing.T) {
	st, _, _ := newTestStatus(t, "truncate")
	srv, base, token := startAdmin(t, st, true)
	_ = srv
	tests := []struct {
		method, path, auth string
		code               int
	}{
		{"GET", "/", "", 401},
		{"GET", "/api/status", "", 401},
		{"GET", "/api/explain?name=chat.deepseek.com", "", 401},
		{"GET", "/static/app.js", "", 401},
		{"GET", "/", "Bearer wrong-token", 401},
		{"GET", "/", "Basic " + token, 401},
		{"GET", "/", "Bearer " + token, 200},
		{"GET", "/api/status", "Bearer " + token, 200},
		{"GET", "/api/explain?name=chat.deepseek.com&client=10.20.1.5", "Bearer " + token, 200},
		{"GET", "/api/explain?name=bad..name", "Bearer " + token, 400},
		{"POST", "/api/status", "Bearer " + token, 405},
		{"DELETE", "/", "Bearer " + token, 405},
		{"GET", "/healthz", "", 200},
		{"GET", "/readyz", "", 200},
	}
	for _, tc := range tests {
		req, _ := http.NewRequest(tc.method, base+tc.path, nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Errorf("%s %s (auth %q): %d, want %d: %s", tc.method, tc.path, tc.auth, resp.StatusCode, tc.code, body)
		}
		if tc.code == 401 && strings.Contains(string(body), "jurisdictions") {
			t.Errorf("%s %s: a 401 leaks the page", tc.method, tc.path)
		}
	}
}

// startAdmin starts an admin server on 127.0.0.1:0 with st's handler
// mounted at /, and a token file when withToken.
func startAdmin(t testing.TB, st *Status, withToken bool) (*admin.Server, string, string) {
	t.Helper()
	opts := admin.Options{Addr: "127.0.0.1:0"}
	token := ""
	if withToken {
		token = "s3cret-test-token"
		opts.TokenFile = filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(opts.TokenFile, []byte(token+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	srv, err := admin.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv.Handle("/", st.Handler())
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	return srv, "http://" + srv.Addr(), token
}

func TestNoPolicyYet(t *testing.T) {
	st := New(Options{Policy: func() *policy.Policy { return nil }, Now: func() time.Time { return testNow }})
	h := st.Handler()
	w := serve(t, h, "GET", "/api/status")
	if w.Code != 200 {
		t.Fatalf("GET /api/status: %d", w.Code)
	}
	if p := decode[Page](t, w); p.PolicyHash != "" || len(p.Jurisdictions) != 0 || p.ClientPrivacy != "none" {
		t.Errorf("page without a policy: %+v", p)
	}
	if w := serve(t, h, "GET", "/api/explain?name=chat.deepseek.com"); w.Code != http.StatusServiceUnavailable {
		t.Errorf("explain without a policy: %d", w.Code)
	}
}

// TestConcurrentRecordAndRead runs under -race in CI: the resolver records
// hits while the page reads them.
func TestConcurrentRecordAndRead(t *testing.T) {
	st, pol, clk := newTestStatus(t, "hash")
	h := st.Handler()
	done := make(chan struct{})
	for g := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 500 {
				st.PolicyEvent(hit(pol, []string{"test-mandate", "eu-report"}[g%2], "chat.deepseek.com", "10.20.1.5", testNow.Add(-time.Duration(i)*time.Second)))
			}
		}()
	}
	for i := range 20 {
		clk.Set(testNow.Add(time.Duration(i) * time.Millisecond))
		if w := serve(t, h, "GET", "/api/status"); w.Code != 200 {
			t.Fatalf("GET /api/status: %d", w.Code)
		}
	}
	for range 4 {
		<-done
	}
	p := decode[Page](t, serve(t, h, "GET", "/api/status"))
	if p.Hits.Day.Total != 2000 || p.RecentTotal != 2000 || len(p.Recent) != DefaultRecent {
		t.Errorf("day total %d, records %d/%d", p.Hits.Day.Total, len(p.Recent), p.RecentTotal)
	}
}

// TestPolicyPage: the policy's part of /api/status, without a running
// server (what `jurisdns lists --json` prints), is the same as the page's;
// ttl is in seconds; not_current comes from Options.NotCurrent.
func TestPolicyPage(t *testing.T) {
	pol := testPolicy(t)
	st := New(Options{Policy: func() *policy.Policy { return pol }, Now: func() time.Time { return testNow },
		NotCurrent: func() []string { return []string{"corp/x: using the last good copy from 2026-03-09T00:00:00Z"} }})
	live := decode[Page](t, serve(t, st.Handler(), "GET", "/api/status"))
	offline := PolicyPage(pol, testNow)
	if offline.PolicyHash != live.PolicyHash || len(offline.Jurisdictions) != len(live.Jurisdictions) || offline.Summary != live.Summary {
		t.Fatalf("PolicyPage differs from /api/status: %+v vs %+v", offline.Summary, live.Summary)
	}
	for i, j := range offline.Jurisdictions {
		lj := live.Jurisdictions[i]
		if j.ID != lj.ID || j.TTL != lj.TTL || j.Entries != lj.Entries || j.Status != lj.Status || j.Hash != lj.Hash {
			t.Errorf("jurisdiction %d: %+v vs %+v", i, j, lj)
		}
		if want := int(pol.Lookup(j.ID).TTL / time.Second); j.TTL != want {
			t.Errorf("%s: ttl %d, want %d seconds", j.ID, j.TTL, want)
		}
	}
	if len(live.NotCurrent) != 1 || !strings.HasPrefix(live.NotCurrent[0], "corp/x: ") || len(offline.NotCurrent) != 0 {
		t.Errorf("not_current: live %q, offline %q", live.NotCurrent, offline.NotCurrent)
	}
}

func TestAPIStatusQueriesPerTransport(t *testing.T) {
	st, _, _ := newTestStatus(t, "truncate")
	for p, n := range map[Transport]int{UDP: 3, TCP: 1, DoT: 2, DoH: 4} {
		for range n {
			st.Answered(p)
		}
	}
	p := decode[Page](t, serve(t, st.Handler(), "GET", "/api/status"))
	if want := (Queries{UDP: 3, TCP: 1, DoT: 2, DoH: 4}); p.Queries != want {
		t.Errorf("queries %+v, want %+v", p.Queries, want)
	}
}

// The API gives the enforcement log's state, with its last signed
// checkpoint, under "audit" (absent when the log is off).
func TestAPIAudit(t *testing.T) {
	pol := testPolicy(t)
	cp := &audit.Checkpoint{Count: 7, Head: strings.Repeat("0", 64), Time: testNow, Reason: audit.ReasonClose, Key: "k", Sig: "s"}
	st := New(Options{Policy: func() *policy.Policy { return pol }, Now: func() time.Time { return testNow },
		Audit: func() *audit.State {
			return &audit.State{Path: "/var/log/jurisdns/enforcement.log", Writing: false, Error: "disk full", HeadSeq: 9, Signed: true, Checkpoint: cp}
		}})
	w := serve(t, st.Handler(), "GET", "/api/status")
	p := decode[Page](t, w)
	if p.Audit == nil || p.Audit.Writing || p.Audit.Error != "disk full" || p.Audit.HeadSeq != 9 || p.Audit.Checkpoint == nil || *p.Audit.Checkpoint != *cp {
		t.Fatalf("audit = %+v", p.Audit)
	}
	var raw struct {
		Audit struct {
			Checkpoint map[string]any `json:"checkpoint"`
		} `json:"audit"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &raw); err != nil || raw.Audit.Checkpoint["count"] != 7.0 || raw.Audit.Checkpoint["sig"] != "s" {
		t.Errorf("checkpoint not under audit.checkpoint: %v %v", raw, err)
	}
	st = New(Options{Policy: func() *policy.Policy { return pol }, Now: func() time.Time { return testNow }})
	if w := serve(t, st.Handler(), "GET", "/api/status"); strings.Contains(w.Body.String(), `"audit"`) {
		t.Errorf("audit shown without an enforcement log")
	}
}

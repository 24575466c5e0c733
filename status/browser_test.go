package status

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/jurisdns/jurisdns/audit"
	"github.com/jurisdns/jurisdns/internal/testtool"
	"github.com/jurisdns/jurisdns/policy"
)

// browserProblems collects what the page must not produce: console errors
// and warnings, uncaught exceptions, and error entries of the browser log
// (failed loads, CSP violations).
type browserProblems struct {
	mu   sync.Mutex
	list []string
}

func (b *browserProblems) listen(ev any) {
	var msg string
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if ev.Type != runtime.ConsoleAPICalledTypeError && ev.Type != runtime.ConsoleAPICalledTypeWarning && ev.Type != runtime.ConsoleAPICalledTypeAssert {
			return
		}
		var args []string
		for _, a := range ev.Args {
			args = append(args, string(a.Value)+a.Description)
		}
		msg = fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " "))
	case *runtime.EventExceptionThrown:
		msg = "exception: " + (&chromedp.ExceptionError{ExceptionDetails: ev.ExceptionDetails}).Error()
	case *log.EventEntryAdded:
		if ev.Entry.Level != log.EntryLevelError && ev.Entry.Level != log.EntryLevelWarning {
			return
		}
		msg = fmt.Sprintf("log %s/%s: %s %s", ev.Entry.Source, ev.Entry.Level, ev.Entry.Text, ev.Entry.URL)
	default:
		return
	}
	b.mu.Lock()
	b.list = append(b.list, msg)
	b.mu.Unlock()
}

// take returns the problems so far and forgets them.
func (b *browserProblems) take() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	l := b.list
	b.list = nil
	return l
}

// artifactDir is where the screenshot goes: $TEST_ARTIFACTS, else a
// temporary directory of the test.
func artifactDir(t *testing.T) string {
	if d := os.Getenv("TEST_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatalf("TEST_ARTIFACTS: %v", err)
		}
		return d
	}
	return t.TempDir()
}

// startBrowser starts headless Chromium with a fresh profile and no
// network features beyond what the page needs.
func startBrowser(t *testing.T, listen func(any)) context.Context {
	t.Helper()
	chromium := testtool.Need(t, "chromium", "chromium") // Debian's Chromium
	profile := t.TempDir()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("no-pings", true),
		chromedp.Flag("lang", "en-US"),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1440, 1000),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithListener(listen))
	// Cleanups run last-in first-out: stop the browser, then remove the
	// profile (Chromium's helpers may still write to it for a moment)
	// before t.TempDir's own removal.
	t.Cleanup(func() {
		for range 50 {
			if err := os.RemoveAll(profile); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The first Run starts the browser; it must not carry a timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", chromium, err)
	}
	return ctx
}

type pageRow struct {
	ID     string `json:"id"`
	State  string `json:"state"`
	Status string `json:"status"`
	Text   string `json:"text"`
}

// TestBrowser drives headless Chromium against a real admin server with a
// token and the status handler mounted, over the test policy.
func TestBrowser(t *testing.T) {
	testtool.Need(t, "chromium", "chromium")
	st, pol, _ := newTestStatus(t, "truncate")
	st.Published(pol, testNow.Add(-20*time.Minute))
	st.notCurrent = func() []string {
		return []string{"remote/feed: using the last good copy from 2026-03-09T00:00:00Z; first download in progress <b>x</b>"}
	}
	st.audit = func() *audit.State {
		return &audit.State{Writing: false, FailingSince: testNow, Error: "no space left on device", Failed: 3, Signed: true,
			Checkpoint: &audit.Checkpoint{Count: 41, Head: strings.Repeat("ab", 32), Time: testNow}}
	}
	var events []*policy.Event
	for i := range 14 {
		events = append(events, hit(pol, "test-mandate", "chat.deepseek.com", fmt.Sprintf("10.20.%d.5", i), testNow.Add(-time.Duration(i*i)*time.Minute)))
	}
	for i := range 6 {
		events = append(events, hit(pol, "eu-report", "api.deepseek.com", "10.20.3.9", testNow.Add(-time.Duration(i*3+1)*time.Hour)))
	}
	for i := range 5 {
		events = append(events, hit(pol, "acme-staff", "deepseek.com", "192.0.2.44", testNow.Add(-time.Duration(i*7+2)*time.Minute)))
	}
	slices.SortFunc(events, func(a, b *policy.Event) int { return a.Time.Compare(b.Time) })
	for _, ev := range events {
		st.Record(ev)
	}
	_, base, token := startAdmin(t, st, true)

	problems := &browserProblems{}
	bctx := startBrowser(t, problems.listen)
	ctx, cancel := context.WithTimeout(bctx, 45*time.Second)
	defer cancel()

	// Without the token the admin server refuses the page (in a tab of its
	// own, whose expected 401s do not reach the problem listener).
	func() {
		tab, cancelTab := chromedp.NewContext(bctx)
		defer cancelTab()
		tctx, cancel := context.WithTimeout(tab, 20*time.Second)
		defer cancel()
		resp, err := chromedp.RunResponse(tctx, chromedp.Navigate(base+"/"))
		if err != nil {
			t.Fatalf("navigate without token: %v", err)
		}
		if resp.Status != 401 {
			t.Fatalf("without a token the page answered %d, want 401", resp.Status)
		}
		body, err := chromedp.Run(tctx, chromedp.Evaluate[string](`document.body.innerText`))
		if err != nil || strings.Contains(body, "Jurisdictions") {
			t.Fatalf("401 page shows %q (%v)", body, err)
		}
	}()

	// With the token, sent as a header on every request of the tab.
	if _, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
		Headers: network.Headers{"Authorization": "Bearer " + token},
	}); err != nil {
		t.Fatal(err)
	}
	resp, err := chromedp.RunResponse(ctx, chromedp.Navigate(base+"/"))
	if err != nil {
		t.Fatalf("navigate with token: %v", err)
	}
	if resp.Status != 200 {
		t.Fatalf("with the token the page answered %d, want 200", resp.Status)
	}
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`body[data-loaded="true"] #jurisdictions tbody tr[data-id]`))); err != nil {
		t.Fatalf("the page did not render the jurisdictions: %v (problems: %v)", err, problems.take())
	}

	rows, err := chromedp.Run(ctx, chromedp.Evaluate[[]pageRow](`Array.from(document.querySelectorAll("#jurisdictions tbody tr[data-id]")).map(tr => ({
		id: tr.dataset.id, state: tr.dataset.state,
		status: tr.querySelector("td.status").textContent.trim(), text: tr.textContent}))`))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]pageRow{}
	for _, r := range rows {
		got[r.ID] = r
	}
	for id, want := range map[string]string{
		"test-mandate": "active",
		"eu-report":    "report-only",
		"acme-staff":   "active",
		"old-ban":      "expired 2025-06-01",
		"future-ban":   "inactive until 2027-01-01",
		"broken-feed":  "not loaded (fail_open)",
	} {
		if got[id].Status != want {
			t.Errorf("jurisdiction %s shows status %q, want %q", id, got[id].Status, want)
		}
	}
	if len(rows) != 7 {
		t.Errorf("%d jurisdictions in use on the page, want 7", len(rows))
	}
	if r := got["test-mandate"]; !strings.Contains(r.Text, "PSPF Direction 001-2025") || !strings.Contains(r.Text, "2025-02-04") || !strings.Contains(r.Text, "mandated") {
		t.Errorf("test-mandate row lacks instrument, date or tier: %q", r.Text)
	}
	if r := got["broken-feed"]; !strings.Contains(r.Text, "missing-feed") {
		t.Errorf("broken-feed row does not name its failed source: %q", r.Text)
	}

	// The list sources that are not current, as text.
	nc, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => {
		const box = document.getElementById("not-current");
		return box.hidden ? "(hidden)" : Array.from(box.querySelectorAll("li")).map(li => li.textContent).join("|");
	})()`))
	if err != nil {
		t.Fatal(err)
	}
	if nc != "remote/feed: using the last good copy from 2026-03-09T00:00:00Z; first download in progress <b>x</b>" {
		t.Errorf("not-current notice shows %q", nc)
	}

	// Markup in the data is text, never markup.
	type xss struct {
		Flag     any    `json:"flag"`
		Injected int    `json:"injected"`
		Text     string `json:"text"`
		BadLinks int    `json:"badLinks"`
	}
	x, err := chromedp.Run(ctx, chromedp.Evaluate[xss](`({
		flag: window.__xss === undefined ? null : window.__xss,
		injected: document.querySelectorAll('main img, main script, main b, main i, #jurisdictions td td').length,
		text: document.querySelector('tr[data-id="markup-test"]').textContent,
		badLinks: document.querySelectorAll('a[href^="javascript:"]').length})`))
	if err != nil {
		t.Fatal(err)
	}
	if x.Flag != nil || x.Injected != 0 || x.BadLinks != 0 {
		t.Errorf("markup from the policy ran or was parsed: %+v", x)
	}
	for _, lit := range []string{`<script>window.__xss='instrument'</script>`, `<img src=x onerror="window.__xss='title'"> & <b>bold</b>`, `</td><td>injected`} {
		if !strings.Contains(x.Text, lit) {
			t.Errorf("markup-test row does not show %q as text: %q", lit, x.Text)
		}
	}

	// Client mappings, hits charts and enforcement records.
	type counts struct {
		Clients, Bars, HitRows, Recent int
		FirstClient                    string
	}
	c, err := chromedp.Run(ctx, chromedp.Evaluate[counts](`({
		Clients: document.querySelectorAll("#clients tbody tr").length,
		Bars: document.querySelectorAll("#hits svg rect.bar").length,
		HitRows: document.querySelectorAll("#hits tr[data-hits]").length,
		Recent: document.querySelectorAll("#recent tbody tr").length,
		FirstClient: document.querySelector("#recent tbody tr td:nth-child(2)").textContent})`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Clients != 2 || c.HitRows != 3 || c.Bars < 10 || c.Recent != 25 || c.FirstClient != "10.20.0.0/24" {
		t.Errorf("page counts %+v, want 2 clients, 3 hit rows, bars, 25 records, first client 10.20.0.0/24 (the newest)", c)
	}

	// The state of the enforcement log, under the records.
	auditText, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("audit-state")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(auditText, "Enforcement log NOT WRITING since") || !strings.Contains(auditText, "no space left on device (3 lost so far)") ||
		!strings.Contains(auditText, "Last signed checkpoint: 41 lines, head abababababab") {
		t.Errorf("enforcement log state %q", auditText)
	}

	// The explain form gives the verdict for a banned name.
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("explain-name"), "chat.deepseek.com"),
		chromedp.SendKeys(chromedp.ID("explain-client"), "10.20.1.5"),
		chromedp.Click(chromedp.ID("explain-submit")),
		chromedp.WaitVisible(chromedp.CSS(`#explain-result .verdict`)),
	); err != nil {
		t.Fatalf("explain: %v", err)
	}
	verdict, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#explain-result .verdict`)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(verdict, "chat.deepseek.com") || !strings.Contains(verdict, "BLOCKED by test-mandate") {
		t.Errorf("explain verdict %q, want BLOCKED by test-mandate", verdict)
	}
	answer, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#explain-result pre.answer`)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(answer, "NXDOMAIN") || !strings.Contains(answer, "EDE 16 (Censored): test-mandate: PSPF Direction 001-2025") {
		t.Errorf("explain answer %q", answer)
	}
	if p := problems.take(); len(p) > 0 {
		t.Errorf("the page logged problems:\n%s", strings.Join(p, "\n"))
	}

	dir := artifactDir(t)
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`)); err != nil {
		t.Fatal(err)
	}
	for _, shot := range []struct {
		name   string
		action chromedp.Action[[]byte]
	}{
		{"status-page-top.png", chromedp.CaptureScreenshot()},
		{"status-page.png", chromedp.FullScreenshot(100)},
	} {
		name, action := shot.name, shot.action
		shot, err := chromedp.Run(ctx, action)
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, shot, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s (%d bytes)", path, len(shot))
	}

	// A bad name is reported, as text, without a script error.
	if err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("explain-name"), `<img src=x onerror="window.__xss='explain'">`),
		chromedp.Click(chromedp.ID("explain-submit")),
		chromedp.WaitVisible(chromedp.CSS(`#explain-result .verdict[data-decision="error"]`)),
	); err != nil {
		t.Fatalf("explain with a bad name: %v", err)
	}
	msg, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#explain-result .verdict`)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(msg, `<img src=x`) {
		t.Errorf("bad-name error %q does not show the name as text", msg)
	}
	if flag, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.__xss === undefined && document.querySelectorAll("#explain-result img").length === 0`)); err != nil || !flag {
		t.Errorf("the bad name was parsed as markup (%v)", err)
	}
	for _, p := range problems.take() {
		// The browser logs the 400 of the API as a failed load; nothing
		// else may appear.
		if !strings.Contains(p, "400") {
			t.Errorf("unexpected problem after a bad name: %s", p)
		}
	}
}

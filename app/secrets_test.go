package app_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
)

// TestListURLSecretsRedacted: the credentials and the query string of a
// list URL appear nowhere the URL is shown: the status API and page,
// /readyz, /metrics, /api/explain, the logs, before and after the list
// fails to refresh.
func TestListURLSecretsRedacted(t *testing.T) {
	e := newEnv(t, nil)
	var failing atomic.Bool
	ls := newListServer(t, func(w http.ResponseWriter, r *http.Request) {
		user, pass, _ := r.BasicAuth()
		if failing.Load() || user != "alice" || pass != "pw-s3cret" || r.URL.Query().Get("api_key") != "key-s3cret" {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		_, _ = fmt.Fprint(w, remoteList(10))
	})
	e.opts.HTTPClient = ls.Client()
	e.opts.DownloadBackoff = noBackoff
	url := strings.Replace(ls.URL, "https://", "https://alice:pw-s3cret@", 1) + "/list.txt?api_key=key-s3cret"
	e.config(fmt.Sprintf(`lists: {cache_dir: %q}
default_jurisdictions: [remote]
jurisdictions:
  - id: remote
    sources:
      - {name: r, url: %q}
`, filepath.Join(e.dir, "cache"), url))
	a := e.start()
	wantRcode(t, "deepseek", e.query("udp", "chat.deepseek.com", dns.TypeA), dns.RcodeNameError)

	check := func(when string) {
		t.Helper()
		for _, path := range []string{"/api/status", "/", "/readyz", "/metrics", "/api/explain?name=chat.deepseek.com"} {
			code, body := e.get(path)
			if code >= 500 && path != "/readyz" {
				t.Errorf("%s: GET %s = %d", when, path, code)
			}
			if strings.Contains(body, "s3cret") {
				t.Errorf("%s: GET %s shows a secret of the list URL:\n%s", when, path, body)
			}
		}
		for _, r := range e.logs.find(0, func(logRecord) bool { return true }) {
			if s := r.String(); strings.Contains(s, "s3cret") {
				t.Errorf("%s: log shows a secret of the list URL: %s", when, s)
			}
		}
	}
	if _, body := e.get("/api/status"); !strings.Contains(body, "REDACTED") {
		t.Errorf("the status API does not name the source by its redacted URL:\n%s", body)
	}
	check("loaded")
	failing.Store(true)
	if err := a.Refresh(context.Background()); err == nil {
		t.Fatal("refresh of a failing list succeeded")
	} else if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("refresh error shows a secret: %v", err)
	}
	check("after a failed refresh")
	// A connection that fails: net/http's error names the URL.
	ls.Close()
	if err := a.Refresh(context.Background()); err == nil {
		t.Fatal("refresh of an unreachable list succeeded")
	} else if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("refresh error shows a secret: %v", err)
	}
	check("after a refresh that could not connect")
}

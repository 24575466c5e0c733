package app_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jurisdns/jurisdns/app"
	"github.com/jurisdns/jurisdns/config"
)

// syncBuf is a bytes.Buffer safe for the progress printer's goroutine.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestBuildPolicyProgress: a download that takes a while is reported on
// Notes while it runs (source, URL, attempt, bytes so far, the deadline),
// a failed attempt with its retry, and the end.
func TestBuildPolicyProgress(t *testing.T) {
	var mu sync.Mutex
	requests := 0
	srv := newListServer(t, func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		requests++
		n := requests
		mu.Unlock()
		if n == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		head, rest := "slow-listed.example\n", strings.Repeat("#", 1000000)+"\nother.example\n"
		w.Header().Set("Content-Length", fmt.Sprint(len(head)+len(rest)))
		_, _ = w.Write([]byte(head))
		w.(http.Flusher).Flush()
		time.Sleep(700 * time.Millisecond)
		_, _ = w.Write([]byte(rest))
	})
	cfg, err := config.Load(config.LoadOptions{Env: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Jurisdictions = []config.Jurisdiction{{JurisdictionAttrs: config.JurisdictionAttrs{ID: "remote", Title: "Remote"}, Sources: []config.Source{{Name: "slow", URL: srv.URL + "/list.txt"}}}}
	var notes syncBuf
	pol, err := app.BuildPolicyWith(context.Background(), cfg, app.PolicyOptions{
		Notes: &notes, ProgressEvery: 200 * time.Millisecond, HTTPClient: srv.Client(), DownloadBackoff: noBackoff,
	})
	if err != nil {
		t.Fatal(err)
	}
	if pol.Entries("remote") != 2 {
		t.Errorf("remote has %d entries, want 2", pol.Entries("remote"))
	}
	out := notes.String()
	for _, re := range []string{
		`list remote/slow: attempt 1 of 4 failed \(HTTP 503 Service Unavailable\); retrying in `,
		`list remote/slow: downloading from ` + regexp.QuoteMeta(srv.URL) + `/list.txt: attempt 2 of 4, 20 bytes of 976\.6 KiB, [0-9.]+m?s so far \(gives up after 1m0s\)`,
		`list remote/slow: downloaded 976\.6 KiB in `,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("notes lack %s:\n%s", re, out)
		}
	}
}

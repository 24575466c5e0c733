package download

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jurisdns/jurisdns/blocklists"
)

func bodyFiles(t *testing.T, dir, key string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, key+"-*.body"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestCacheLayout(t *testing.T) {
	first, second := makeList(10, true), makeList(11, true)
	srv := newListServer(t, true, first)
	srv.set(func(s *listServer) { s.etag, s.modTime = `"v1"`, epoch.Add(-time.Hour) })
	dir := t.TempDir()
	h := newHarness(t, dir, srv.ts.Client())
	src := Source{Name: "core", URL: srv.ts.URL + "/l"}
	accept := guarded(blocklists.Guards{MaxShrink: 0.1})
	key := cacheKey(src)
	ctx := context.Background()
	if _, err := h.Fetch(ctx, src, accept); err != nil {
		t.Fatal(err)
	}
	// A temporary file left by a crash is cleaned up by the next write.
	leftover := filepath.Join(dir, "."+key+".json.tmp-123")
	if err := os.WriteFile(leftover, []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv.set(func(s *listServer) { s.body, s.etag = second, `"v2"` })
	res, err := h.Fetch(ctx, src, accept)
	if err != nil || res.From != FromNetwork {
		t.Fatalf("second Fetch: From %q, err %v", res.From, err)
	}

	wantBody := key + "-" + hexSum(second)[:16] + ".body"
	files := snapshot(t, dir)
	if len(files) != 2 || files[wantBody] != second {
		names := make([]string, 0, len(files))
		for n := range files {
			names = append(names, n)
		}
		t.Fatalf("cache directory holds %v; want %s.json and %s with the new body", names, key, wantBody)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(files[key+".json"]), &m); err != nil {
		t.Fatalf("metadata: %v", err)
	}
	want := map[string]any{
		"version": 1.0, "name": "core", "url": src.URL, "etag": `"v2"`,
		"last_modified": epoch.Add(-time.Hour).Format("Mon, 02 Jan 2006 15:04:05 GMT"),
		"sha256":        hexSum(second), "size": float64(len(second)), "entries": 11.0,
		"fetched_at": res.FetchedAt.Format(time.RFC3339Nano), "checked_at": res.CheckedAt.Format(time.RFC3339Nano),
		"body": wantBody,
	}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("metadata =\n%v\nwant\n%v", m, want)
	}

	// After a restart the entry count in the metadata is the max_shrink
	// baseline: 11 → 9 loses 18%.
	srv.set(func(s *listServer) { s.body, s.etag = makeList(9, true), `"v3"` })
	restarted := newHarness(t, dir, srv.ts.Client())
	res, err = restarted.Fetch(ctx, src, accept)
	var rej *RejectedError
	if err != nil || !errors.As(res.Err, &rej) || !strings.Contains(rej.Reason, "9 entries, shrunk from 11 by more than max_shrink 0.1") {
		t.Fatalf("after restart: err %v, Result.Err %v; want a max_shrink rejection against 11 entries", err, res.Err)
	}
}

func TestCached(t *testing.T) {
	body := makeList(10, true)
	srv := newListServer(t, true, body)
	srv.set(func(s *listServer) { s.etag = `"e"` })
	dir := t.TempDir()
	src := Source{Name: "core", URL: srv.ts.URL}
	fetched, err := newHarness(t, dir, srv.ts.Client()).Fetch(context.Background(), src, parseLines)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		dir  string
		src  Source
		ok   bool
	}{
		{name: "same source", dir: dir, src: src, ok: true},
		{name: "matching pin", dir: dir, src: Source{Name: "core", URL: srv.ts.URL, SHA256: hexSum(body)}, ok: true},
		{name: "other pin", dir: dir, src: Source{Name: "core", URL: srv.ts.URL, SHA256: hexSum("other")}},
		{name: "other URL", dir: dir, src: Source{Name: "core", URL: srv.ts.URL + "/x"}},
		{name: "other name", dir: dir, src: Source{Name: "core2", URL: srv.ts.URL}},
		{name: "no cache dir", dir: "", src: src},
		{name: "invalid source", dir: dir, src: Source{Name: "core", URL: "ftp://127.0.0.1/"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, ok := newHarness(t, tt.dir, nil).Cached(tt.src)
			if ok != tt.ok {
				t.Fatalf("Cached ok = %v, want %v", ok, tt.ok)
			}
			if !ok {
				return
			}
			want := fetched
			want.From = FromCache
			if !reflect.DeepEqual(res, want) {
				t.Errorf("Cached =\n%+v\nwant\n%+v", res, want)
			}
		})
	}
	if requests, _, _, _ := srv.stats(); requests != 1 {
		t.Errorf("Cached used the network: %d requests", requests)
	}
}

// TestCorruptCache: a damaged cache entry is logged and treated as absent,
// and the next good download replaces it.
func TestCorruptCache(t *testing.T) {
	tests := []struct {
		name    string
		corrupt func(t *testing.T, metaPath, bodyPath string)
		logText string
	}{
		{name: "garbage metadata", logText: "corrupt metadata", corrupt: func(t *testing.T, metaPath, _ string) {
			writeFile(t, metaPath, "{not json")
		}},
		{name: "truncated metadata", logText: "corrupt metadata", corrupt: func(t *testing.T, metaPath, _ string) {
			raw := readFile(t, metaPath)
			writeFile(t, metaPath, raw[:len(raw)/2])
		}},
		{name: "empty metadata", logText: "corrupt metadata", corrupt: func(t *testing.T, metaPath, _ string) {
			writeFile(t, metaPath, "")
		}},
		{name: "unknown version", logText: "metadata version 7", corrupt: func(t *testing.T, metaPath, _ string) {
			editMeta(t, metaPath, func(m map[string]any) { m["version"] = 7 })
		}},
		{name: "malformed sha256", logText: "malformed sha256", corrupt: func(t *testing.T, metaPath, _ string) {
			editMeta(t, metaPath, func(m map[string]any) { m["sha256"] = "../../etc/passwd" })
		}},
		{name: "metadata of another source", logText: "metadata is for source", corrupt: func(t *testing.T, metaPath, _ string) {
			editMeta(t, metaPath, func(m map[string]any) { m["name"] = "other" })
		}},
		{name: "body altered", logText: "does not match its metadata", corrupt: func(t *testing.T, _, bodyPath string) {
			writeFile(t, bodyPath, strings.Replace(readFile(t, bodyPath), "deepseek", "deepseak", 1))
		}},
		{name: "body truncated", logText: "does not match its metadata", corrupt: func(t *testing.T, _, bodyPath string) {
			raw := readFile(t, bodyPath)
			writeFile(t, bodyPath, raw[:len(raw)-3])
		}},
		{name: "body missing", logText: "no such file", corrupt: func(t *testing.T, _, bodyPath string) {
			if err := os.Remove(bodyPath); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := makeList(10, true)
			srv := newListServer(t, true, body)
			srv.set(func(s *listServer) { s.etag = `"e"` })
			dir := t.TempDir()
			src := Source{Name: "core", URL: srv.ts.URL, Retries: -1}
			ctx := context.Background()
			if _, err := newHarness(t, dir, srv.ts.Client()).Fetch(ctx, src, parseLines); err != nil {
				t.Fatal(err)
			}
			key := cacheKey(src)
			bodies := bodyFiles(t, dir, key)
			if len(bodies) != 1 {
				t.Fatalf("body files %v", bodies)
			}
			tt.corrupt(t, filepath.Join(dir, key+".json"), bodies[0])

			h := newHarness(t, dir, srv.ts.Client())
			if _, ok := h.Cached(src); ok {
				t.Error("Cached returned a corrupt copy")
			}
			srv.set(func(s *listServer) { s.mode, s.status = "status", 500 })
			if res, err := h.Fetch(ctx, src, parseLines); err == nil {
				t.Fatalf("Fetch used a corrupt copy: From %q", res.From)
			}
			if logs := h.logs.String(); !strings.Contains(logs, "ignoring the cached copy") || !strings.Contains(logs, tt.logText) {
				t.Errorf("logs lack %q:\n%s", tt.logText, logs)
			}

			// The next download is unconditional and repairs the cache.
			srv.set(func(s *listServer) { s.mode = "" })
			res, err := h.Fetch(ctx, src, parseLines)
			if err != nil || res.From != FromNetwork || string(res.Body) != body {
				t.Fatalf("repairing Fetch: From %q, err %v", res.From, err)
			}
			if _, _, inm, _ := srv.stats(); inm[len(inm)-1] != "" {
				t.Errorf("request after a corrupt cache sent If-None-Match %q", inm[len(inm)-1])
			}
			if res, ok := newHarness(t, dir, nil).Cached(src); !ok || string(res.Body) != body {
				t.Errorf("cache not repaired: ok %v", ok)
			}
		})
	}
}

// TestNotModifiedCachedCopyFailsGuards: a 304 confirms the cached body, but
// a guard added since (config change) refuses it; there is nothing to fall
// back on.
func TestNotModifiedCachedCopyFailsGuards(t *testing.T) {
	srv := newListServer(t, true, makeList(10, false))
	srv.set(func(s *listServer) { s.etag = `"e"` })
	h := newHarness(t, t.TempDir(), srv.ts.Client())
	src := Source{Name: "core", URL: srv.ts.URL}
	ctx := context.Background()
	if _, err := h.Fetch(ctx, src, parseLines); err != nil {
		t.Fatal(err)
	}
	_, err := h.Fetch(ctx, src, guarded(blocklists.Guards{MustContain: []string{"deepseek.com"}}))
	var rej *RejectedError
	if !errors.As(err, &rej) || !strings.Contains(rej.Reason, "cached copy: must_contain deepseek.com: not blocked by this source") {
		t.Fatalf("err = %v, want a rejection of the cached copy", err)
	}
	if _, notMod, _, _ := srv.stats(); notMod != 1 {
		t.Errorf("server served %d 304s, want 1", notMod)
	}
}

// TestUnchangedBodyCheckedOnce: a server without validators sends the
// cached body again, and a guard added since refuses it; the cached copy,
// the same bytes, is not checked a second time.
func TestUnchangedBodyCheckedOnce(t *testing.T) {
	srv := newListServer(t, true, makeList(10, false))
	h := newHarness(t, t.TempDir(), srv.ts.Client())
	src := Source{Name: "core", URL: srv.ts.URL}
	ctx := context.Background()
	if _, err := h.Fetch(ctx, src, parseLines); err != nil {
		t.Fatal(err)
	}
	calls := 0
	guard := guarded(blocklists.Guards{MustContain: []string{"deepseek.com"}})
	_, err := h.Fetch(ctx, src, func(body []byte, baseline int) (int, error) {
		calls++
		return guard(body, baseline)
	})
	var rej *RejectedError
	if !errors.As(err, &rej) || !strings.Contains(rej.Reason, "must_contain deepseek.com") {
		t.Fatalf("err = %v, want the rejection of the update", err)
	}
	if calls != 1 {
		t.Errorf("Accept called %d times on one body, want 1", calls)
	}
	if st := h.Stats()["core"]; st.Rejected != 1 || st.Errors != 1 {
		t.Errorf("Stats = %+v", st)
	}
}

// TestAcceptLastCallIsResultBody checks the documented contract that lets
// callers keep their parsed list from the closure.
func TestAcceptLastCallIsResultBody(t *testing.T) {
	good, bad := makeList(10, true), makeList(3, true)
	srv := newListServer(t, true, good)
	h := newHarness(t, t.TempDir(), srv.ts.Client())
	src := Source{Name: "core", URL: srv.ts.URL}
	var last string
	guard := guarded(blocklists.Guards{MinEntries: 5})
	parse := func(b []byte, baseline int) (int, error) {
		last = string(b)
		return guard(b, baseline)
	}
	for _, serve := range []string{good, bad} {
		srv.set(func(s *listServer) { s.body = serve })
		res, err := h.Fetch(context.Background(), src, parse)
		if err != nil {
			t.Fatal(err)
		}
		if last != string(res.Body) || last != good {
			t.Errorf("serving %d bytes: last parse on %q, Result.Body %q", len(serve), last, res.Body)
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func editMeta(t *testing.T, path string, edit func(map[string]any)) {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(readFile(t, path)), &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, string(b))
}

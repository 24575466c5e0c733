package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jurisdns/jurisdns/blocklists"
	"github.com/jurisdns/jurisdns/config"
	"github.com/jurisdns/jurisdns/download"
)

// loadCall is one call of the list loader: the SHA-256 of the body it
// parsed and the guard that refused it, if any.
type loadCall struct {
	sum, guard string
}

// countLoads makes loadList record its calls for the source named source
// (ParseOptions.Source) until the test ends.
func countLoads(t *testing.T, source string) func() []loadCall {
	var mu sync.Mutex
	var calls []loadCall
	loadList = func(r io.Reader, opts blocklists.ParseOptions, g blocklists.Guards, baseline int, each func(blocklists.Rule)) (*blocklists.Loaded, error) {
		l, err := blocklists.LoadEach(r, opts, g, baseline, each)
		c := loadCall{}
		if l != nil {
			c.sum = l.SHA256
		}
		var ge *blocklists.GuardError
		if errors.As(err, &ge) {
			c.guard = ge.Guard
		}
		if opts.Source == source {
			mu.Lock()
			calls = append(calls, c)
			mu.Unlock()
		}
		return l, err
	}
	t.Cleanup(func() { loadList = blocklists.LoadEach })
	return func() []loadCall {
		mu.Lock()
		defer mu.Unlock()
		out := calls
		calls = nil
		return out
	}
}

func hexSHA256(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// names returns a domains list: deepseek.com (when deepseek), then fillers
// up to n entries.
func names(n int, deepseek bool) string {
	var b strings.Builder
	for i := range n {
		if i == 0 && deepseek {
			b.WriteString("deepseek.com\n")
			continue
		}
		fmt.Fprintf(&b, "filler%d.example\n", i)
	}
	return b.String()
}

// TestURLListParsedOnceGuardedOnce: a URL list goes through the one path,
// downloader → list loader → policy. An accepted body is parsed once (the
// policy does not parse it again); a body that fails a guard is parsed once
// and refused by that guard once, before the downloader would keep it; the
// last good copy is then used, itself parsed once; an unchanged list (304)
// is parsed once. Run for every guard.
func TestURLListParsedOnceGuardedOnce(t *testing.T) {
	good := names(10, true)
	tests := []struct {
		guard string
		pin   bool
		bad   string
	}{
		{guard: "sha256", pin: true, bad: good + "evil.example\n"},
		{guard: "allow_empty", bad: "# emptied\n"},
		{guard: "min_entries", bad: names(7, true)},
		{guard: "max_shrink", bad: names(8, true)},
		{guard: "must_contain", bad: names(10, false)},
	}
	for _, tc := range tests {
		t.Run(tc.guard, func(t *testing.T) {
			var mu sync.Mutex
			body := good
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				b := body
				mu.Unlock()
				w.Header().Set("ETag", `"`+hexSHA256(b)+`"`)
				http.ServeContent(w, r, "", time.Time{}, strings.NewReader(b))
			}))
			defer srv.Close()
			f := download.New(download.Options{CacheDir: t.TempDir(), Client: srv.Client()})
			ds := download.Source{Name: "remote/r", URL: srv.URL + "/list.txt", Retries: -1}
			src := config.Source{Name: "r", URL: ds.URL, MinEntries: 8, MaxShrink: 0.1, MustContain: []string{"deepseek.com"}}
			if tc.pin {
				src.SHA256, ds.SHA256 = hexSHA256(good), hexSHA256(good)
			}
			cfg := &config.Config{
				Jurisdictions:        []config.Jurisdiction{{JurisdictionAttrs: config.JurisdictionAttrs{ID: "remote"}, Sources: []config.Source{src}}},
				DefaultJurisdictions: []string{"remote"},
			}
			opts := BuildOptions{Fetch: func(ctx context.Context, _ string, _ config.Source, accept func([]byte, int) (int, error)) error {
				_, err := f.Fetch(ctx, ds, download.Accept(accept))
				return err
			}}
			calls := countLoads(t, ds.URL)

			first := build(t, cfg, opts)
			if got := calls(); len(got) != 1 || got[0] != (loadCall{sum: hexSHA256(good)}) {
				t.Fatalf("first build: loader calls %v, want one, of the good list", got)
			}
			if first.Entries("remote") != 10 {
				t.Fatalf("first build: %d entries", first.Entries("remote"))
			}

			mu.Lock()
			body = tc.bad
			mu.Unlock()
			opts.Previous = first
			p := build(t, cfg, opts)
			want := []loadCall{{sum: hexSHA256(tc.bad), guard: tc.guard}, {sum: hexSHA256(good)}}
			if got := calls(); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("update: loader calls %v; want the update once, refused by %s, then the last good copy once", got, tc.guard)
			}
			if st := f.Stats()["remote/r"]; st.Rejected != 1 || st.Cache != 1 {
				t.Errorf("downloader stats %+v, want one rejection and the cached copy used", st)
			}
			j := p.Lookup("remote")
			if !j.Loaded || j.Entries != 10 || j.Sources[0].Hash != hexSHA256(good) || j.Sources[0].Err != "" {
				t.Errorf("after the refused update: loaded %v, %d entries, source %+v; want the last good copy", j.Loaded, j.Entries, j.Sources[0])
			}
			if v := p.Match("chat.deepseek.com", nil, testNow); v.Decision != DecisionBlock {
				t.Errorf("deepseek.com no longer blocked: %+v", v)
			}
			if res, ok := f.Cached(ds); !ok || string(res.Body) != good {
				t.Errorf("the cache no longer holds the good list (ok %v)", ok)
			}

			// The server serves the good list again: 304, parsed once.
			mu.Lock()
			body = good
			mu.Unlock()
			build(t, cfg, opts)
			if got := calls(); len(got) != 1 || got[0] != (loadCall{sum: hexSHA256(good)}) {
				t.Fatalf("304: loader calls %v, want one, of the cached list", got)
			}
			if st := f.Stats()["remote/r"]; st.NotModified != 1 {
				t.Errorf("downloader stats %+v, want one 304", st)
			}
		})
	}
}

// urlSources is a jurisdiction with n URL sources, u0 … u(n-1).
func urlSources(n int) *config.Config {
	var srcs []config.Source
	for i := range n {
		srcs = append(srcs, config.Source{Name: fmt.Sprintf("u%d", i), URL: fmt.Sprintf("https://lists.example/u%d.txt", i)})
	}
	return &config.Config{
		Jurisdictions:        []config.Jurisdiction{{JurisdictionAttrs: config.JurisdictionAttrs{ID: "remote", OnLoadFailure: "fail_open"}, Sources: srcs}},
		DefaultJurisdictions: []string{"remote"},
	}
}

// TestURLSourcesLoadInParallel: the URL sources of a build are fetched at
// the same time, at most maxParallelLoads at once (N silent list servers
// cost about N/maxParallelLoads deadlines, not N); their rules still go
// to the index in source order.
func TestURLSourcesLoadInParallel(t *testing.T) {
	const n = 2*maxParallelLoads + 1
	var mu sync.Mutex
	running, most := 0, 0
	all := make(chan struct{}) // closed when maxParallelLoads fetches run at once
	fetch := func(ctx context.Context, _ string, src config.Source, accept func([]byte, int) (int, error)) error {
		mu.Lock()
		running++
		most = max(most, running)
		if running == maxParallelLoads {
			select {
			case <-all:
			default:
				close(all)
			}
		}
		mu.Unlock()
		defer func() {
			mu.Lock()
			running--
			mu.Unlock()
		}()
		select { // each fetch waits until the first maxParallelLoads run together
		case <-all:
		case <-time.After(10 * time.Second):
			return errors.New("fetches did not run in parallel")
		}
		name := strings.TrimSuffix(strings.TrimPrefix(src.URL, "https://lists.example/"), ".txt")
		_, err := accept([]byte(name+".example\n"), blocklists.NoBaseline)
		return err
	}
	p := build(t, urlSources(n), BuildOptions{Fetch: fetch})
	j := p.Lookup("remote")
	if !j.Loaded || j.Entries != n {
		t.Fatalf("loaded %v, %d entries, error %q", j.Loaded, j.Entries, j.LoadError)
	}
	if most != maxParallelLoads {
		t.Errorf("at most %d fetches at once, want %d", most, maxParallelLoads)
	}
	for i := range n {
		v := p.Match(fmt.Sprintf("u%d.example", i), nil, testNow)
		if v.Decision != DecisionBlock || v.Source != fmt.Sprintf("u%d", i) || v.Line != 1 {
			t.Errorf("u%d.example: %+v", i, v)
		}
	}
}

// TestURLLoadsEndWithBuild: a build cancelled while its URL sources are
// being fetched returns, no fetch outlives it, and the fetches not started
// yet are not started.
func TestURLLoadsEndWithBuild(t *testing.T) {
	var mu sync.Mutex
	running, started := 0, 0
	ctx, cancel := context.WithCancel(context.Background())
	fetch := func(ctx context.Context, _ string, _ config.Source, _ func([]byte, int) (int, error)) error {
		mu.Lock()
		running++
		started++
		if started == maxParallelLoads {
			cancel()
		}
		mu.Unlock()
		<-ctx.Done()
		time.Sleep(10 * time.Millisecond) // a download takes a moment to give up
		mu.Lock()
		running--
		mu.Unlock()
		return ctx.Err()
	}
	// Build returns context.Canceled, or a policy whose sources failed
	// (fail_open), depending on when it saw the cancellation.
	if p, err := Build(ctx, urlSources(3*maxParallelLoads), BuildOptions{Fetch: fetch}); err == nil && p.Lookup("remote").Loaded ||
		err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("Build = %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if running != 0 || started > 2*maxParallelLoads {
		t.Errorf("after Build returned: %d fetches running, %d started", running, started)
	}
}

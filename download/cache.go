package download

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/jurisdns/jurisdns/spec"
)

// The cache directory holds, per source, "<key>.json" (the metadata sidecar)
// and "<key>-<first 16 hex digits of the body's sha256>.body". The key is a
// hash of the source's name and URL, so file names are stable and safe
// whatever the URL holds. The body is written first under its own name and
// the sidecar is then renamed over the old one: the sidecar always names a
// complete body, so a crash at any point leaves the previous or the new copy,
// never a mix. The old body is removed afterwards.

const metaVersion = 1

// meta is the JSON sidecar of a cached body.
type meta struct {
	Version      int       `json:"version"`
	Name         string    `json:"name"`
	URL          string    `json:"url"` // credentials redacted
	ETag         string    `json:"etag,omitempty"`
	LastModified string    `json:"last_modified,omitempty"`
	SHA256       string    `json:"sha256"`
	Size         int64     `json:"size"`
	Entries      int       `json:"entries"`
	FetchedAt    time.Time `json:"fetched_at"`
	CheckedAt    time.Time `json:"checked_at"`
	Body         string    `json:"body"` // file name of the body, for people
}

func (m meta) result(body []byte, from string) Result {
	return Result{
		Source:       m.Name,
		Body:         body,
		Entries:      m.Entries,
		From:         from,
		ETag:         m.ETag,
		LastModified: m.LastModified,
		FetchedAt:    m.FetchedAt,
		CheckedAt:    m.CheckedAt,
		SHA256:       m.SHA256,
	}
}

// cached is a verified copy from the cache directory.
type cached struct {
	meta meta
	body []byte
}

// cacheKey names the cache files of src: the name is part of it so that two
// sources sharing a URL with different formats or guards do not share an
// entry count baseline.
func cacheKey(src Source) string {
	return sum256([]byte(src.Name + "\x00" + src.URL))[:32]
}

func (f *Fetcher) metaPath(key string) string { return filepath.Join(f.dir, key+".json") }

func bodyName(key, sum string) string { return key + "-" + sum[:16] + ".body" }

// Cached returns the last good copy of src from the cache directory, without
// network, or false when there is none usable (no CacheDir, nothing stored,
// corrupt, or not matching the source's sha256 pin). The body is verified
// against the recorded sha256; Entries is as recorded. Problems other than a
// missing copy are logged.
func (f *Fetcher) Cached(src Source) (Result, bool) {
	src = src.withDefaults()
	u, err := src.check()
	if err != nil {
		f.log.Warn("no cached copy for an invalid source", "err", err)
		return Result{}, false
	}
	key := cacheKey(src)
	unlock := f.lock(key)
	defer unlock()
	c, _ := f.previous(src, key, f.log.With("source", src.Name, "url", spec.RedactURL(u.String())))
	if c == nil {
		return Result{}, false
	}
	return c.meta.result(c.body, FromCache), true
}

// previous loads the last good copy of src: the verified cached copy (nil if
// there is none usable) and the entry count of the last accepted body, the
// baseline for max_shrink (NoBaseline when none is known).
func (f *Fetcher) previous(src Source, key string, log *slog.Logger) (c *cached, baseline int) {
	if f.dir == "" {
		f.mu.Lock()
		defer f.mu.Unlock()
		if n, ok := f.mem[key]; ok {
			return nil, n
		}
		return nil, NoBaseline
	}
	c, err := f.readCache(src, key)
	if err != nil {
		log.Warn("ignoring the cached copy", "err", err, "path", f.metaPath(key))
		return nil, NoBaseline
	}
	if c == nil {
		return nil, NoBaseline
	}
	if src.SHA256 != "" && c.meta.SHA256 != src.SHA256 {
		log.Warn("ignoring the cached copy: it does not match the sha256 pin",
			"cached_sha256", c.meta.SHA256, "pin", src.SHA256)
		return nil, c.meta.Entries
	}
	return c, c.meta.Entries
}

// readCache reads and verifies the cached copy of src; (nil, nil) when there
// is none.
func (f *Fetcher) readCache(src Source, key string) (*cached, error) {
	fail := func(format string, args ...any) (*cached, error) {
		return nil, fmt.Errorf("download: cache of source %q (%s) in %s: %s",
			src.Name, spec.RedactURL(src.URL), f.dir, fmt.Sprintf(format, args...))
	}
	raw, err := os.ReadFile(f.metaPath(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return fail("%v", err)
	}
	var m meta
	if err := json.Unmarshal(raw, &m); err != nil {
		return fail("corrupt metadata %s: %v", key+".json", err)
	}
	switch {
	case m.Version != metaVersion:
		return fail("metadata version %d, want %d", m.Version, metaVersion)
	case m.Name != src.Name || (m.URL != spec.RedactURL(src.URL) && m.URL != oldRedact(src.URL)):
		return fail("metadata is for source %q (%s)", m.Name, m.URL)
	case !isHexSHA256(m.SHA256):
		return fail("metadata has a malformed sha256 %q", m.SHA256)
	case m.Entries < 0 || m.Size < 0 || m.Size > src.MaxSize:
		return fail("metadata has a bad size %d or entry count %d", m.Size, m.Entries)
	}
	m.Body = bodyName(key, m.SHA256) // never a path taken from the file
	fh, err := os.Open(filepath.Join(f.dir, m.Body))
	if err != nil {
		return fail("%v", err)
	}
	defer fh.Close()
	body, err := io.ReadAll(io.LimitReader(fh, m.Size+1))
	if err != nil {
		return fail("%v", err)
	}
	if int64(len(body)) != m.Size || sum256(body) != m.SHA256 {
		return fail("body %s does not match its metadata (size or sha256)", m.Body)
	}
	return &cached{meta: m, body: body}, nil
}

// writeCache stores an accepted body and its metadata (see the comment at
// the top of this file).
func (f *Fetcher) writeCache(key string, m meta, body []byte) error {
	if err := os.MkdirAll(f.dir, 0o755); err != nil {
		return fmt.Errorf("download: cache of source %q: %w", m.Name, err)
	}
	m.Body = bodyName(key, m.SHA256)
	if err := writeFileAtomic(f.dir, m.Body, body); err != nil {
		return fmt.Errorf("download: cache of source %q: %w", m.Name, err)
	}
	if err := f.writeMeta(key, m); err != nil {
		return err
	}
	// Remove bodies no sidecar names any more, and temporary files left
	// by a crash. Fetches of one key are serialized by the caller.
	names, _ := filepath.Glob(filepath.Join(f.dir, key+"-*.body"))
	tmps, _ := filepath.Glob(filepath.Join(f.dir, "."+key+"*.tmp-*"))
	for _, p := range append(names, tmps...) {
		if filepath.Base(p) != m.Body {
			if err := os.Remove(p); err != nil {
				f.log.Warn("could not remove an old cache file", "path", p, "err", err)
			}
		}
	}
	return nil
}

func (f *Fetcher) writeMeta(key string, m meta) error {
	m.Body = bodyName(key, m.SHA256)
	raw, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("download: cache of source %q: %w", m.Name, err)
	}
	if err := writeFileAtomic(f.dir, key+".json", append(raw, '\n')); err != nil {
		return fmt.Errorf("download: cache of source %q: %w", m.Name, err)
	}
	return nil
}

// writeFileAtomic writes data to dir/name through a synced temporary file
// renamed into place, then syncs the directory.
func writeFileAtomic(dir, name string, data []byte) (err error) {
	tmp, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return err
	}
	syncDir(dir)
	return nil
}

// syncDir makes a rename durable where the platform supports it; failures
// (some platforms cannot sync a directory) are ignored.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}

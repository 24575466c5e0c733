package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"

	"github.com/jurisdns/jurisdns/blocklists/shipped"
)

// shippedFile is the schema of one blocklists/shipped/<id>.yaml file (see
// package shipped for its documentation).
type shippedFile struct {
	ID            string          `yaml:"id"`
	Title         string          `yaml:"title"`
	Authority     string          `yaml:"authority"`
	Instrument    string          `yaml:"instrument"`
	Links         []string        `yaml:"links"`
	Effective     string          `yaml:"effective"`
	Expires       string          `yaml:"expires"`
	Tier          string          `yaml:"tier"`
	Mode          string          `yaml:"mode"`
	Action        string          `yaml:"action"`
	Sinkhole      []string        `yaml:"sinkhole"`
	EDE           *int            `yaml:"ede"`
	TTL           string          `yaml:"ttl"`
	OnLoadFailure string          `yaml:"on_load_failure"`
	Default       bool            `yaml:"default"`
	Notes         string          `yaml:"notes"`
	Sources       []shippedSource `yaml:"sources"`
	Allow         []shippedEntry  `yaml:"allow"`

	file string // "shipped/<id>.yaml"
}

type shippedSource struct {
	Name    string         `yaml:"name"`
	Format  string         `yaml:"format"`
	Match   string         `yaml:"match"`
	Entries []shippedEntry `yaml:"entries"`
}

type shippedEntry struct {
	Rule        string `yaml:"rule"`
	Cite        string `yaml:"cite"`
	Action      string `yaml:"action"`
	Collateral  string `yaml:"collateral"`
	Unconfirmed bool   `yaml:"unconfirmed"`

	line int // line of the entry in its file
}

// UnmarshalYAML decodes an entry and remembers its line in the file.
func (e *shippedEntry) UnmarshalYAML(n *yaml.Node) error {
	type plain shippedEntry
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	*e = shippedEntry(p)
	e.line = n.Line
	return nil
}

var (
	shippedOnce  sync.Once
	shippedFiles []*shippedFile
	shippedErr   error
)

// loadShipped parses the embedded files once.
func loadShipped() ([]*shippedFile, error) {
	shippedOnce.Do(func() {
		shippedFiles, shippedErr = parseShippedFS(shipped.FS)
	})
	return shippedFiles, shippedErr
}

// parseShippedFS parses every *.yaml file at the root of fsys, sorted by
// name, and checks what Build relies on: ids match file names and are
// unique, entries have a rule and a citation.
func parseShippedFS(fsys fs.FS) ([]*shippedFile, error) {
	names, err := fs.Glob(fsys, "*.yaml")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var errs []error
	var out []*shippedFile
	for _, name := range names {
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		f, err := parseShippedFile(name, b)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, f)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

func parseShippedFile(name string, b []byte) (*shippedFile, error) {
	f := &shippedFile{file: "shipped/" + name}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(f); err != nil {
		return nil, fmt.Errorf("%s: %w", f.file, err)
	}
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{f.file}, args...)...))
	}
	badLine := func(line int, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s:%d: "+format, append([]any{f.file, line}, args...)...))
	}
	if want := strings.TrimSuffix(path.Base(name), ".yaml"); f.ID != want {
		bad("id %q does not match the file name (want %q)", f.ID, want)
	}
	if f.Title == "" || f.Instrument == "" || f.Tier == "" {
		bad("title, instrument and tier are required")
	}
	for i, s := range f.Sources {
		if s.Name == "" {
			bad("sources[%d]: no name", i)
		}
		for _, e := range s.Entries {
			if strings.TrimSpace(e.Rule) == "" {
				badLine(e.line, "entry without a rule")
			}
			if strings.TrimSpace(e.Cite) == "" {
				badLine(e.line, "entry %q cites no source", e.Rule)
			}
		}
	}
	for _, e := range f.Allow {
		if strings.TrimSpace(e.Rule) == "" || strings.TrimSpace(e.Cite) == "" {
			badLine(e.line, "allow entry needs a rule and a cite")
		}
	}
	return f, errors.Join(errs...)
}

// ShippedDefaults returns the ids of the shipped jurisdictions that the
// default configuration enables (default: true in their file), in id order.
// Build uses them when Config.DefaultJurisdictions is nil.
func ShippedDefaults() []string {
	files, err := loadShipped()
	if err != nil {
		return nil
	}
	var ids []string
	for _, f := range files {
		if f.Default {
			ids = append(ids, f.ID)
		}
	}
	return ids
}

// ShippedIDs returns the ids of every shipped jurisdiction, in id order.
func ShippedIDs() []string {
	files, err := loadShipped()
	if err != nil {
		return nil
	}
	ids := make([]string, len(files))
	for i, f := range files {
		ids[i] = f.ID
	}
	return ids
}

package policy

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/jurisdns/jurisdns/blocklists/shipped"
	"github.com/jurisdns/jurisdns/spec"
)

// shippedFile is one parsed blocklists/shipped/<id>.yaml: its data (the
// schema is spec's, documented for readers in docs/jurisdictions.md,
// generated from this data; see WriteRegister) and what parseShippedFile
// learnt checking it.
type shippedFile struct {
	spec.ShippedJurisdiction

	file    string         // "shipped/<id>.yaml"
	instrOf map[string]int // link URL -> index of the instrument it belongs to
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
	// The decoder of the configuration: unknown keys, values of the wrong
	// kind and unknown enum values are errors with file:line.
	if err := spec.DecodeYAML(f.file, b, &f.ShippedJurisdiction); err != nil {
		return nil, err
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
	if err := spec.CheckID(f.ID); err != nil {
		bad("id: %v", err)
	}
	if f.Title == "" || f.Tier == "" {
		bad("title and tier are required")
	}
	if len(f.Instruments) == 0 {
		bad("instruments: at least one instrument is required")
	}
	// A government instrument has a date; the operator's own policy (tier
	// local) may have none.
	needDate := f.Tier == spec.TierMandated || f.Tier == spec.TierAdvisory
	if f.Tier == spec.TierAdvisory && f.Mode != spec.ModeReport {
		bad("mode: an advisory jurisdiction ships in mode report (an operator may enforce it in their configuration)")
	}
	instrOf := map[string]int{} // link URL -> instrument index
	seen := map[string]string{}
	checkLink := func(key string, l spec.ShippedLink) {
		if err := checkHTTPS(l.URL); err != nil {
			badLine(l.Line, "%s.url: %v", key, err)
		}
		if strings.TrimSpace(l.Title) == "" {
			badLine(l.Line, "%s.title: a link needs a short title (publisher: document)", key)
		}
		if other, dup := seen[l.URL]; dup {
			badLine(l.Line, "%s.url: %s is also %s", key, l.URL, other)
		}
		seen[l.URL] = key
	}
	for i, in := range f.Instruments {
		key := fmt.Sprintf("instruments[%d]", i)
		if strings.TrimSpace(in.Name) == "" || strings.TrimSpace(in.Issuer) == "" || strings.TrimSpace(in.Scope) == "" {
			badLine(in.Line, "%s: name, issuer and scope are required", key)
		}
		switch {
		case in.Date == "" && needDate:
			badLine(in.Line, "%s.date: required for a %s jurisdiction", key, f.Tier)
		case in.Date != "":
			if _, err := parseDate(in.Date); err != nil {
				badLine(in.Line, "%s.date: %v", key, err)
			}
		}
		if in.Repealed != "" {
			r, err := parseDate(in.Repealed)
			if err != nil {
				badLine(in.Line, "%s.repealed: %v", key, err)
			} else if d, err := parseDate(in.Date); err == nil && in.Date != "" && !d.Before(r) {
				badLine(in.Line, "%s.repealed: %s is not after date %s", key, in.Repealed, in.Date)
			}
		}
		if len(in.Links) == 0 {
			badLine(in.Line, "%s.links: at least one public link is required", key)
		}
		for k, l := range in.Links {
			checkLink(fmt.Sprintf("%s.links[%d]", key, k), l)
			instrOf[l.URL] = i
		}
	}
	names := map[string]bool{}
	for k, l := range f.NameSources {
		checkLink(fmt.Sprintf("name_sources[%d]", k), l)
		names[l.URL] = true
	}
	checkEntry := func(key string, e *spec.ShippedEntry) {
		if strings.TrimSpace(e.Rule) == "" {
			badLine(e.Line, "%s: entry without a rule", key)
		}
		if strings.TrimSpace(e.Cite) == "" {
			badLine(e.Line, "%s.cite: entry %q cites no source", key, e.Rule)
		} else if _, ok := instrOf[e.Cite]; !ok {
			badLine(e.Line, "%s.cite: %q is not a link of any instrument of %s", key, e.Cite, f.ID)
		}
		if e.Names != "" && !names[e.Names] && !isInstrLink(instrOf, e.Names) {
			badLine(e.Line, "%s.names: %q is not listed in name_sources or an instrument's links", key, e.Names)
		}
	}
	for i := range f.Sources {
		s := &f.Sources[i]
		if s.Name == "" {
			bad("sources[%d]: no name", i)
		}
		for k := range s.Entries {
			checkEntry(fmt.Sprintf("sources[%d].entries[%d]", i, k), &s.Entries[k])
		}
	}
	for k := range f.Allow {
		checkEntry(fmt.Sprintf("allow[%d]", k), &f.Allow[k])
	}
	f.instrOf = instrOf
	return f, errors.Join(errs...)
}

func isInstrLink(instrOf map[string]int, u string) bool {
	_, ok := instrOf[u]
	return ok
}

// checkHTTPS accepts an absolute https URL with a host.
func checkHTTPS(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return err
	case u.Scheme != "https" || u.Host == "":
		return fmt.Errorf("%q is not an absolute https URL", s)
	}
	return nil
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

package policy

import (
	"errors"
	"io/fs"
	"sort"
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
	// Checked by the rules of the vocabulary: the id rule and the
	// attributes of a configured jurisdiction, the provenance of every
	// entry.
	if err := f.Validate(f.file); err != nil {
		return nil, err
	}
	f.instrOf = f.InstrumentOf()
	return f, nil
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

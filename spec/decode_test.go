package spec

import (
	"strings"
	"testing"
	"time"
)

const shippedSample = `id: x
title: T
tier: mandated
mode: enforce
ttl: 90s
ede: 16
instruments:
  - name: Direction 1
    issuer: A ministry
    date: "2025-02-04"
    scope: Government devices
    links:
      - url: https://gov.example/direction-1
        title: "Ministry: Direction 1"
sources:
  - name: s
    format: domains
    match: exact
    entries:
      - rule: a.example
        cite: https://gov.example/direction-1
        action: nodata
`

// TestDecodeYAML: the shipped schema comes out typed, with the lines of the
// mappings that carry LineKey.
func TestDecodeYAML(t *testing.T) {
	t.Parallel()
	var f ShippedJurisdiction
	if err := DecodeYAML("shipped/x.yaml", []byte(shippedSample), &f); err != nil {
		t.Fatal(err)
	}
	if f.Tier != TierMandated || f.Mode != ModeEnforce || f.TTL != 90*time.Second || f.EDE == nil || *f.EDE != 16 {
		t.Errorf("attributes %+v", f)
	}
	if len(f.Instruments) != 1 || f.Instruments[0].Line != 8 || f.Instruments[0].Links[0].Line != 13 {
		t.Errorf("instruments %+v", f.Instruments)
	}
	e := f.Sources[0].Entries[0]
	if f.Sources[0].Match != MatchExact || e.Rule != "a.example" || e.Action != EntryNoData || e.Line != 20 {
		t.Errorf("source %+v", f.Sources[0])
	}
	if err := f.Validate("shipped/x.yaml"); err != nil {
		t.Errorf("Validate: %v", err)
	}
	// The line is not a key.
	err := DecodeYAML("shipped/x.yaml", []byte("id: x\n$line: 3\n"), &f)
	if err == nil || !strings.Contains(err.Error(), `shipped/x.yaml:2: unknown key "$line"`) {
		t.Errorf("$line as a key: %v", err)
	}
}

// FuzzDecodeYAML: any input decodes or fails with errors that name the
// source, never panics.
func FuzzDecodeYAML(f *testing.F) {
	f.Add([]byte(shippedSample))
	f.Add([]byte("id: x\ntier: national\nsources: [{name: s, entries: [{rule: a, action: x}]}]\n"))
	f.Add([]byte("a: &a [*a, *a]\n"))
	f.Add([]byte("ttl: 1\nede: 99999999999999999999\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var s ShippedJurisdiction
		err := DecodeYAML("f.yaml", data, &s)
		if err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, "f.yaml") {
					t.Fatalf("error line without its source: %q", line)
				}
			}
			return
		}
		_ = s.Validate("f.yaml")
	})
}

package spec

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// keysOf lists the keys of struct type t in field order, descending into
// squashed embedded structs as mapstructure does, so that a key written
// twice (an own field beside an embedded one) shows up twice.
func keysOf(t reflect.Type) []string {
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		if isSquash(f) {
			keys = append(keys, keysOf(f.Type)...)
			continue
		}
		if f.Anonymous {
			keys = append(keys, "<embedded "+f.Name+" without squash>")
			continue
		}
		if name := KeyName(f); name != "" {
			keys = append(keys, name)
		}
	}
	return keys
}

// TestJurisdictionKeysSquashed: the configured and the shipped jurisdiction
// both have the keys of JurisdictionAttrs at their own level (embedded and
// squashed, not a nested mapping), each key once.
func TestJurisdictionKeysSquashed(t *testing.T) {
	attrs := FieldsByKey(reflect.TypeFor[JurisdictionAttrs]())
	for _, typ := range []reflect.Type{reflect.TypeFor[Jurisdiction](), reflect.TypeFor[ShippedJurisdiction]()} {
		keys := FieldsByKey(typ)
		for k := range attrs {
			if f, ok := keys[k]; !ok || f.Type != attrs[k].Type {
				t.Errorf("%v: key %q is not JurisdictionAttrs' own", typ, k)
			}
		}
		if _, ok := keys[""]; ok {
			t.Errorf(`%v: the embedded struct is a key ""`, typ)
		}
		seen := make(map[string]bool)
		for _, k := range keysOf(typ) {
			if seen[k] || strings.HasPrefix(k, "<") {
				t.Errorf("%v: key %s", typ, k)
			}
			seen[k] = true
		}
	}
}

// TestDecodeConfiguredJurisdiction: a configured jurisdiction's YAML sets
// the embedded attributes and its own keys, and a misspelt attribute is
// reported at its line with the nearest key.
func TestDecodeConfiguredJurisdiction(t *testing.T) {
	t.Parallel()
	const doc = "id: acme\ntier: local\nmode: report\nttl: 30s\nede: 15\ninstrument: IT policy\nallow: [ok.example]\n"
	var j Jurisdiction
	if err := DecodeYAML("c.yaml", []byte(doc), &j); err != nil {
		t.Fatal(err)
	}
	ede := 15
	want := Jurisdiction{
		JurisdictionAttrs: JurisdictionAttrs{ID: "acme", Tier: TierLocal, Mode: ModeReport, TTL: 30 * time.Second, EDE: &ede},
		Instrument:        "IT policy",
		Allow:             []string{"ok.example"},
	}
	if !reflect.DeepEqual(j, want) {
		t.Errorf("got %+v\nwant %+v", j, want)
	}
	err := DecodeYAML("c.yaml", []byte("id: acme\ntierr: local\n"), &Jurisdiction{})
	if err == nil || !strings.Contains(err.Error(), `c.yaml:2: unknown key "tierr"`) || !strings.Contains(err.Error(), `"tier"`) {
		t.Errorf("misspelt tier: %v", err)
	}
}

package spec

import (
	"reflect"
	"testing"
	"time"
)

// TestJurisdictionAttrsMapped: every field of JurisdictionAttrs is a field
// of Jurisdiction with the same key and type, and Attrs copies it, so a key
// added to JurisdictionAttrs cannot be forgotten in the configuration.
func TestJurisdictionAttrsMapped(t *testing.T) {
	at := reflect.TypeFor[JurisdictionAttrs]()
	jt := reflect.TypeFor[Jurisdiction]()
	var j Jurisdiction
	jv := reflect.ValueOf(&j).Elem()
	for i := range at.NumField() {
		f := at.Field(i)
		g, ok := jt.FieldByName(f.Name)
		if !ok || g.Type != f.Type || g.Tag.Get("mapstructure") != f.Tag.Get("mapstructure") {
			t.Errorf("Jurisdiction has no field %s of type %v with key %q", f.Name, f.Type, f.Tag.Get("mapstructure"))
			continue
		}
		// A distinct non-zero value per field.
		v := jv.FieldByIndex(g.Index)
		switch v.Kind() {
		case reflect.String:
			v.SetString(f.Name)
		case reflect.Int64:
			v.SetInt(int64(i+1) * int64(time.Second))
		case reflect.Slice:
			v.Set(reflect.ValueOf([]string{f.Name}))
		case reflect.Pointer:
			n := i + 1
			v.Set(reflect.ValueOf(&n))
		default:
			t.Fatalf("field %s: kind %v not covered by the test", f.Name, v.Kind())
		}
	}
	got := reflect.ValueOf(j.Attrs())
	for i := range at.NumField() {
		want := jv.FieldByName(at.Field(i).Name)
		if !reflect.DeepEqual(got.Field(i).Interface(), want.Interface()) {
			t.Errorf("Attrs().%s = %v, want %v", at.Field(i).Name, got.Field(i), want)
		}
	}
}

// TestShippedKeysSquashed: the keys of JurisdictionAttrs are keys of a
// shipped file's top level, not of a nested mapping.
func TestShippedKeysSquashed(t *testing.T) {
	keys := FieldsByKey(reflect.TypeFor[ShippedJurisdiction]())
	for k := range FieldsByKey(reflect.TypeFor[JurisdictionAttrs]()) {
		if _, ok := keys[k]; !ok {
			t.Errorf("key %q is not a key of a shipped jurisdiction", k)
		}
	}
	if _, ok := keys[""]; ok {
		t.Error(`the embedded struct is a key ""`)
	}
}

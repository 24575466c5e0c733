package spec

// The YAML decoder of the vocabulary: the user's configuration file and
// environment values (through package config and viper) and the shipped
// jurisdictions (DecodeYAML) are read by the same code, with the same
// errors: an unknown key with the nearest known one, a value of the wrong
// kind, each with file:line and key path.

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"gopkg.in/yaml.v3"
)

var (
	durationType    = reflect.TypeFor[time.Duration]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// LineKey is the mapstructure tag of a struct field that receives the line
// of the YAML mapping the struct was decoded from (an int field; the
// shipped data's entries, instruments and links cite their lines). It is
// not a key: a document that writes it gets "unknown key".
const LineKey = "$line"

// KeyName is the key of a struct field: its mapstructure tag, or "" when
// the field is not a key.
func KeyName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
	if name == "-" || name == LineKey {
		return ""
	}
	return name
}

// FieldsByKey maps the keys of a struct type to its fields; the keys of
// an embedded struct tagged `mapstructure:",squash"` (ShippedJurisdiction's
// JurisdictionAttrs) are the type's own.
func FieldsByKey(t reflect.Type) map[string]reflect.StructField {
	m := make(map[string]reflect.StructField, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if isSquash(f) {
			for k, sf := range FieldsByKey(f.Type) {
				m[k] = sf
			}
			continue
		}
		if name := KeyName(f); name != "" {
			m[name] = f
		}
	}
	return m
}

// isSquash reports whether f is an embedded struct whose keys are its
// parent's (mapstructure's ",squash").
func isSquash(f reflect.StructField) bool {
	if !f.Anonymous || f.Type.Kind() != reflect.Struct {
		return false
	}
	_, opts, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
	return slices.Contains(strings.Split(opts, ","), "squash")
}

// hasLine reports whether struct type t has a LineKey field.
func hasLine(t reflect.Type) bool {
	for i := range t.NumField() {
		if t.Field(i).Tag.Get("mapstructure") == LineKey {
			return true
		}
	}
	return false
}

// DecodeYAML decodes a YAML document into out, a pointer to a struct
// whose fields carry mapstructure tags (the shipped jurisdictions): the
// checks of ParseYAML, and the enums' UnmarshalText where they are written,
// then the values set on the struct by mapstructure (the enums through
// the same UnmarshalText). Every problem is reported at once (errors.Join),
// each as "src:line: key.path: problem".
func DecodeYAML(src string, data []byte, out any) error {
	t := reflect.TypeOf(out)
	if t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("DecodeYAML: %T is not a pointer to a struct", out)
	}
	m, errs := parseYAML(&decoder{src: src, lines: true, enums: true}, data, t.Elem())
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		DecodeHook:  mapstructure.TextUnmarshallerHookFunc(),
		ErrorUnused: true,
		Result:      out,
	})
	if err != nil {
		return err
	}
	if err := dec.Decode(m); err != nil {
		// Unreachable when ParseYAML is right: it checked every key and
		// value against the type already.
		return fmt.Errorf("%s: %w", src, err)
	}
	return nil
}

// maxNodes bounds the YAML nodes one decode visits, aliases included, so a
// document of nested aliases cannot blow up.
const maxNodes = 1 << 20

// decoder turns YAML nodes into the plain values handed to viper, checking
// them against the Config types: unknown keys, wrong kinds and unparsable
// scalars become errors that name the source, the line and the key path.
// Values come out typed (time.Duration, int64, float64, bool, string,
// []string, map[string]any, []any), so the final decode has nothing to guess.
type decoder struct {
	src   string // file name or environment variable
	lines bool   // whether to add :line after src
	// enums checks the text of the enums (UnmarshalText) where it is
	// written. Off for the configuration, whose Validate reports a bad enum
	// with every other problem of the file.
	enums bool
	nodes int
	errs  []error
}

// errorf records a problem at node n and key path.
func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	var b strings.Builder
	b.WriteString(d.src)
	if d.lines && n != nil && n.Line > 0 {
		fmt.Fprintf(&b, ":%d", n.Line)
	}
	b.WriteString(": ")
	if path != "" {
		b.WriteString(path)
		b.WriteString(": ")
	}
	fmt.Fprintf(&b, format, args...)
	d.errs = append(d.errs, errors.New(b.String()))
}

// ParseYAML parses a whole YAML document as struct type t into the plain
// values of its keys (the map viper merges, or DecodeYAML sets on the
// struct), checking every key and value against t.
func ParseYAML(src string, data []byte, t reflect.Type) (map[string]any, []error) {
	return parseYAML(&decoder{src: src, lines: true}, data, t)
}

// parseYAML parses a whole document with d.
func parseYAML(d *decoder, data []byte, t reflect.Type) (map[string]any, []error) {
	src := d.src
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, []error{yamlError(src, err)}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return map[string]any{}, nil // empty file
	}
	root := doc.Content[0]
	if isNull(root) {
		return map[string]any{}, nil
	}
	v, ok := d.value(root, t, "")
	if len(d.errs) > 0 {
		return nil, d.errs
	}
	m, _ := v.(map[string]any)
	if !ok || m == nil {
		m = map[string]any{}
	}
	return m, nil
}

// yamlLine finds the line number in a yaml.v3 syntax error.
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlError rewrites a yaml.v3 syntax error as "file:line: message".
func yamlError(src string, err error) error {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		return fmt.Errorf("%s:%s: %s", src, m[1], m[2])
	}
	return fmt.Errorf("%s: %s", src, strings.TrimPrefix(msg, "yaml: "))
}

// isNull reports whether n is an explicit or implicit YAML null.
func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// value decodes n as a value of type t at key path. ok is false when nothing
// should be set (a null section, a null optional number).
func (d *decoder) value(n *yaml.Node, t reflect.Type, path string) (v any, ok bool) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
		d.nodes++
	}
	d.nodes++
	if d.nodes > maxNodes {
		if d.nodes == maxNodes+1 {
			d.errorf(n, "", "document too large (more than %d values after expanding aliases)", maxNodes)
		}
		return nil, false
	}
	switch {
	case t.Kind() == reflect.Struct && t != durationType:
		if isNull(n) {
			return nil, false
		}
		if n.Kind != yaml.MappingNode {
			d.errorf(n, path, "must be a mapping of keys, not %s", kindName(n))
			return nil, false
		}
		return d.mapping(n, t, path), true
	case t.Kind() == reflect.Slice:
		if isNull(n) {
			if t.Elem().Kind() == reflect.Struct {
				return []any{}, true
			}
			return []string{}, true
		}
		if n.Kind != yaml.SequenceNode {
			d.errorf(n, path, "must be a list, not %s", kindName(n))
			return nil, false
		}
		return d.sequence(n, t, path), true
	case t.Kind() == reflect.Pointer:
		if isNull(n) {
			return nil, false
		}
		return d.value(n, t.Elem(), path)
	}
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, path, "must be a single value, not %s", kindName(n))
		return nil, false
	}
	if t.Kind() == reflect.String {
		if isNull(n) {
			return "", true
		}
		if d.enums && reflect.PointerTo(t).Implements(textUnmarshaler) {
			u := reflect.New(t).Interface().(encoding.TextUnmarshaler)
			if err := u.UnmarshalText([]byte(n.Value)); err != nil {
				d.errorf(n, path, "%v", err)
				return nil, false
			}
		}
		return n.Value, true
	}
	if isNull(n) {
		d.errorf(n, path, "missing value")
		return nil, false
	}
	v, err := ParseScalar(t, n.Value)
	if err != nil {
		d.errorf(n, path, "%v", err)
		return nil, false
	}
	return v, true
}

// mapping decodes a YAML mapping as struct type t.
func (d *decoder) mapping(n *yaml.Node, t reflect.Type, path string) map[string]any {
	fields := FieldsByKey(t)
	out := make(map[string]any, len(n.Content)/2)
	seen := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, vn := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, path, "a key must be a plain name, not %s", kindName(k))
			continue
		}
		key := join(path, k.Value)
		if k.ShortTag() == "!!merge" {
			d.errorf(k, path, "YAML merge keys (<<) are not supported")
			continue
		}
		f, known := fields[k.Value]
		if !known {
			d.errorf(k, "", "unknown key %q%s", key, suggestKey(path, k.Value, fields))
			continue
		}
		if line, dup := seen[k.Value]; dup {
			d.errorf(k, "", "duplicate key %q (first at line %d)", key, line)
			continue
		}
		seen[k.Value] = k.Line
		if v, ok := d.value(vn, f.Type, key); ok {
			out[k.Value] = v
		}
	}
	if hasLine(t) {
		out[LineKey] = n.Line
	}
	return out
}

// sequence decodes a YAML sequence as slice type t.
func (d *decoder) sequence(n *yaml.Node, t reflect.Type, path string) any {
	if t.Elem().Kind() == reflect.Struct {
		out := make([]any, 0, len(n.Content))
		for i, e := range n.Content {
			if v, ok := d.value(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); ok {
				out = append(out, v)
			} else {
				out = append(out, map[string]any{})
			}
		}
		return out
	}
	out := make([]string, 0, len(n.Content))
	for i, e := range n.Content {
		if e.Kind == yaml.ScalarNode && !isNull(e) && d.nodes < maxNodes {
			d.nodes++ // the common case, without formatting a path
			out = append(out, e.Value)
			continue
		}
		if v, ok := d.value(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); ok {
			s, _ := v.(string)
			out = append(out, s)
		}
	}
	return out
}

// ParseScalar parses the text of a number, boolean or duration of type t.
func ParseScalar(t reflect.Type, s string) (any, error) {
	switch {
	case t == durationType:
		v, err := time.ParseDuration(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a duration (write it with a unit: \"700ms\", \"2s\", \"24h\")", s)
		}
		return v, nil
	case t.Kind() == reflect.String:
		return s, nil
	case t.Kind() == reflect.Bool:
		v, err := strconv.ParseBool(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a boolean (true or false)", s)
		}
		return v, nil
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		v, err := strconv.ParseInt(s, 10, t.Bits())
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				return nil, fmt.Errorf("%s is out of range", s)
			}
			return nil, fmt.Errorf("%q is not an integer", s)
		}
		return v, nil
	case t.Kind() == reflect.Float64 || t.Kind() == reflect.Float32:
		v, err := strconv.ParseFloat(s, t.Bits())
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", s)
		}
		return v, nil
	}
	return nil, fmt.Errorf("unsupported type %s", t) // a new field type: extend ParseScalar
}

// kindName names the kind of a YAML node for error messages.
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("the value %q", n.Value)
	}
	return "this"
}

// join appends a key to a key path.
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// suggestKey proposes the nearest known key for a misspelt one.
func suggestKey(path, key string, fields map[string]reflect.StructField) string {
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	if best := Nearest(key, names); best != "" {
		return fmt.Sprintf(" (did you mean %q?)", join(path, best))
	}
	return ""
}

// Nearest returns the candidate closest to s by edit distance, if it is
// close enough to be a typo, else "".
func Nearest(s string, candidates []string) string {
	s = strings.ToLower(s)
	best, bestDist := "", 3 // a typo is at most 2 edits away
	if len(s) <= 4 {
		bestDist = 2
	}
	for _, c := range candidates {
		dist := editDistance(s, c)
		if dist < bestDist || (dist == bestDist && best != "" && c < best) {
			best, bestDist = c, dist
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// ParseYAMLValue parses the YAML (or JSON) flow value of one key, of type
// t, written in the environment variable src: a list of objects such as
// JURISDNS_CLIENTS. ok is false when the text is empty or null.
func ParseYAMLValue(src, key, text string, t reflect.Type) (v any, ok bool, errs []error) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		return nil, false, []error{fmt.Errorf("%s: %s: %s", src, key, strings.TrimPrefix(err.Error(), "yaml: "))}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, false, nil
	}
	d := &decoder{src: src}
	v, ok = d.value(doc.Content[0], t, key)
	if len(d.errs) > 0 {
		return nil, false, d.errs
	}
	return v, ok, nil
}

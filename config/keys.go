package config

import (
	_ "embed"
	"reflect"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/jurisdns/jurisdns/spec"
)

//go:embed default.yaml
var defaultYAML []byte

// Default returns the embedded default configuration: the YAML that Load
// starts from, with a comment documenting every key. The caller may modify
// the returned slice.
func Default() []byte {
	return append([]byte(nil), defaultYAML...)
}

// DefaultSource is Config.Source when no file was loaded.
const DefaultSource = "embedded default"

// EnvPrefix starts the environment variable of every key.
const EnvPrefix = "JURISDNS_"

// EnvConfig names the configuration file when neither LoadOptions.Path nor
// --config is given. It is the one JURISDNS_ variable that is not a key.
const EnvConfig = EnvPrefix + "CONFIG"

// KeyInfo describes one leaf key of Config.
type KeyInfo struct {
	// Key is the dotted key path ("cache.max_ttl").
	Key string
	// Env is the environment variable that sets it ("JURISDNS_CACHE_MAX_TTL").
	Env string
	// Type is the Go type of the field ("time.Duration", "[]string",
	// "[]config.Client"); an enum of spec is "string", the kind it is
	// written as.
	Type string
	// Doc is the first paragraph of the key's comment in the embedded
	// default, on one line.
	Doc string
}

// leaf is a KeyInfo with the field type, used by Load.
type leaf struct {
	KeyInfo
	typ reflect.Type
}

var durationType = reflect.TypeFor[time.Duration]()

// leaves lists every leaf key of Config in field order, computed once.
var leaves = sync.OnceValue(func() []leaf {
	var doc yaml.Node
	_ = yaml.Unmarshal(defaultYAML, &doc) // a broken default fails the tests
	var out []leaf
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := range t.NumField() {
			f := t.Field(i)
			name := tagName(f)
			if name == "" {
				continue
			}
			key := prefix + name
			if f.Type.Kind() == reflect.Struct && f.Type != durationType {
				walk(f.Type, key+".")
				continue
			}
			out = append(out, leaf{
				KeyInfo: KeyInfo{
					Key:  key,
					Env:  EnvName(key),
					Type: typeName(f.Type),
					Doc:  firstParagraph(commentOf(&doc, key)),
				},
				typ: f.Type,
			})
		}
	}
	walk(reflect.TypeFor[Config](), "")
	return out
})

// Keys returns every leaf key of Config, in the order of the struct fields,
// with its environment variable, Go type and documentation. Lists of objects
// (clients, jurisdictions, zones) are leaves: their environment variable
// takes a YAML flow value.
func Keys() []KeyInfo {
	ls := leaves()
	out := make([]KeyInfo, len(ls))
	for i, l := range ls {
		out[i] = l.KeyInfo
	}
	return out
}

// typeName is the type of a key as Keys shows it: a list of objects by its
// name in this package ("[]config.Client", an alias of spec's), an enum of
// spec by the kind it is written as ("string"; Validate names its values),
// any other type by its Go name.
func typeName(t reflect.Type) string {
	switch {
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct:
		return "[]config." + t.Elem().Name()
	case t.Kind() == reflect.String:
		return "string"
	}
	return t.String()
}

// EnvName returns the environment variable of a key path:
// EnvName("access.rate_limit.qps") is "JURISDNS_ACCESS_RATE_LIMIT_QPS".
func EnvName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// tagName and fieldsByKey are spec's: the keys of a struct type.
var (
	tagName     = spec.KeyName
	fieldsByKey = spec.FieldsByKey
)

// lookupKey finds the value node of a dotted key path in a YAML document,
// and the key node that names it. Both are nil when the path is absent.
func lookupKey(doc *yaml.Node, key string) (k, v *yaml.Node) {
	n := doc
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	for part := range strings.SplitSeq(key, ".") {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil, nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == part {
				k, next = n.Content[i], n.Content[i+1]
				break
			}
		}
		if next == nil {
			return nil, nil
		}
		n = next
	}
	return k, n
}

// commentOf returns the comment above a key of a YAML document.
func commentOf(doc *yaml.Node, key string) string {
	k, _ := lookupKey(doc, key)
	if k == nil {
		return ""
	}
	return k.HeadComment
}

// firstParagraph turns the first paragraph of a YAML comment into one line.
func firstParagraph(comment string) string {
	var words []string
	for line := range strings.SplitSeq(comment, "\n") {
		line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "#"))
		if line == "" {
			if len(words) > 0 {
				break
			}
			continue
		}
		words = append(words, line)
	}
	return strings.Join(words, " ")
}

package config

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// TestDefaultDocumentsEveryKey keeps default.yaml complete: every leaf key
// of Config is present in it, with a comment.
func TestDefaultDocumentsEveryKey(t *testing.T) {
	t.Parallel()
	var doc yaml.Node
	if err := yaml.Unmarshal(Default(), &doc); err != nil {
		t.Fatal(err)
	}
	keys := Keys()
	if len(keys) < 40 {
		t.Fatalf("only %d keys", len(keys))
	}
	for _, k := range keys {
		if kn, _ := lookupKey(&doc, k.Key); kn == nil {
			t.Errorf("%s is missing from default.yaml", k.Key)
		}
		if k.Doc == "" {
			t.Errorf("%s has no comment in default.yaml", k.Key)
		}
	}
}

// TestKeys checks the reflected key list: unique keys and environment
// variables derived from the key path.
func TestKeys(t *testing.T) {
	t.Parallel()
	keys := Keys()
	seenKey := make(map[string]bool)
	seenEnv := make(map[string]bool)
	for _, k := range keys {
		if seenKey[k.Key] || seenEnv[k.Env] {
			t.Errorf("duplicate key or variable: %+v", k)
		}
		seenKey[k.Key], seenEnv[k.Env] = true, true
		if k.Env != EnvName(k.Key) || k.Env == EnvConfig {
			t.Errorf("%s: env %s", k.Key, k.Env)
		}
	}
	want := map[string]KeyInfo{
		"access.rate_limit.qps": {Key: "access.rate_limit.qps", Env: "JURISDNS_ACCESS_RATE_LIMIT_QPS", Type: "float64",
			Doc: "Sustained queries per second per client prefix; 0 turns limiting off."},
		"upstreams.try_timeout": {Key: "upstreams.try_timeout", Env: "JURISDNS_UPSTREAMS_TRY_TIMEOUT", Type: "time.Duration",
			Doc: "Bound on one try against one server; at most timeout."},
		"clients": {Key: "clients", Env: "JURISDNS_CLIENTS", Type: "[]config.Client",
			Doc: "Client networks and the jurisdictions that apply to them; the longest matching subnet wins. " +
				"Each entry has a unique name, subnets (CIDR) and jurisdictions (ids)."},
	}
	for _, k := range keys {
		if w, ok := want[k.Key]; ok {
			wantEq(t, k, w)
			delete(want, k.Key)
		}
		if k.Key == "" || strings.Contains(k.Key, "Source") {
			t.Errorf("bad key %+v", k)
		}
	}
	if len(want) > 0 {
		t.Errorf("keys not found: %v", want)
	}
	// Keys returns a copy.
	keys[0].Key = "changed"
	if Keys()[0].Key != "listen" {
		t.Error("Keys returned shared state")
	}
}

// envSamples gives two different environment values per leaf type, and the
// values they decode to.
func envSamples(t reflect.Type) (in [2]string, out [2]any, ok bool) {
	switch {
	case t == durationType:
		return [2]string{"7s", "1h2m"}, [2]any{7 * time.Second, time.Hour + 2*time.Minute}, true
	case t.Kind() == reflect.String:
		return [2]string{"a", "b c"}, [2]any{reflect.ValueOf("a").Convert(t).Interface(), reflect.ValueOf("b c").Convert(t).Interface()}, true
	case t.Kind() == reflect.Bool:
		return [2]string{"true", "false"}, [2]any{true, false}, true
	case t.Kind() == reflect.Int:
		return [2]string{"7", "-8"}, [2]any{7, -8}, true
	case t.Kind() == reflect.Int64:
		return [2]string{"7", "-8"}, [2]any{int64(7), int64(-8)}, true
	case t.Kind() == reflect.Float64:
		return [2]string{"7.5", "8"}, [2]any{7.5, 8.0}, true
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
		return [2]string{"a,b", "c"}, [2]any{[]string{"a", "b"}, []string{"c"}}, true
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct:
		one := reflect.MakeSlice(t, 1, 1).Interface()
		return [2]string{"[]", "[{}]"}, [2]any{reflect.MakeSlice(t, 0, 0).Interface(), one}, true
	}
	return in, out, false
}

// fieldByKey finds the field of a key path in a Config value.
func fieldByKey(v reflect.Value, key string) reflect.Value {
	for part := range strings.SplitSeq(key, ".") {
		f, ok := fieldsByKey(v.Type())[part]
		if !ok {
			return reflect.Value{}
		}
		v = v.FieldByIndex(f.Index)
	}
	return v
}

// TestEveryKeyHasAWorkingEnvVar sets each leaf key through its variable and
// reads it back from the Config, so a new field is covered automatically.
func TestEveryKeyHasAWorkingEnvVar(t *testing.T) {
	t.Parallel()
	for _, l := range leaves() {
		t.Run(l.Key, func(t *testing.T) {
			t.Parallel()
			in, out, ok := envSamples(l.typ)
			if !ok {
				t.Fatalf("no environment support for type %s: extend parseScalar and envSamples", l.typ)
			}
			for i := range in {
				cfg, err := Load(LoadOptions{Env: []string{l.Env + "=" + in[i]}})
				if err != nil {
					t.Fatal(err)
				}
				got := fieldByKey(reflect.ValueOf(cfg).Elem(), l.Key)
				if !got.IsValid() || !reflect.DeepEqual(got.Interface(), out[i]) {
					t.Errorf("%s=%s: got %v, want %#v", l.Env, in[i], got, out[i])
				}
			}
		})
	}
}

// exampleStart opens a commented-out example in default.yaml.
var exampleStart = regexp.MustCompile(`^# (clients|jurisdictions|zones|tsig_keys):$`)

// defaultExamples extracts the commented-out examples of default.yaml as
// one YAML document.
func defaultExamples(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	in := false
	for line := range strings.SplitSeq(string(Default()), "\n") {
		switch {
		case exampleStart.MatchString(line):
			in = true
			b.WriteString(strings.TrimPrefix(line, "# ") + "\n")
		case in && strings.HasPrefix(line, "#   "):
			b.WriteString(strings.TrimPrefix(line, "# ") + "\n")
		default:
			in = false
		}
	}
	return b.String()
}

// elemKeys lists the keys inside the list-of-object keys of t, without
// indexes ("jurisdictions.sources.url").
func elemKeys(t reflect.Type, prefix string, inList bool, out map[string]bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		name := tagName(f)
		if name == "" {
			continue
		}
		key := prefix + name
		if inList {
			out[key] = true
		}
		switch {
		case f.Type.Kind() == reflect.Struct && f.Type != durationType:
			elemKeys(f.Type, key+".", inList, out)
		case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
			elemKeys(f.Type.Elem(), key+".", true, out)
		}
	}
}

// docKeys lists the keys of a YAML node tree without indexes.
func docKeys(n *yaml.Node, prefix string, out map[string]bool) {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			docKeys(c, prefix, out)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := prefix + n.Content[i].Value
			out[key] = true
			docKeys(n.Content[i+1], key+".", out)
		}
	}
}

// TestDefaultExamples keeps the commented-out examples of default.yaml
// valid and complete: uncommented, they load and validate, and they use
// every key of clients, jurisdictions (and their sources) and zones.
func TestDefaultExamples(t *testing.T) {
	t.Parallel()
	examples := defaultExamples(t)
	for _, key := range []string{"clients:", "jurisdictions:", "zones:"} {
		if !strings.Contains(examples, key+"\n") {
			t.Errorf("no example of %s in default.yaml", key)
		}
	}
	cfg, err := Load(LoadOptions{Path: writeFile(t, examples), Env: []string{}})
	if err != nil {
		t.Fatalf("%v\n%s", err, examples)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("%v\n%s", err, examples)
	}
	if !slices.ContainsFunc(cfg.Jurisdictions, func(j Jurisdiction) bool { return j.ID == "au-gov" && j.Mode == "report" }) {
		t.Error("no example overrides a shipped jurisdiction")
	}
	want := make(map[string]bool)
	elemKeys(reflect.TypeFor[Config](), "", false, want)
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(examples), &doc); err != nil {
		t.Fatal(err)
	}
	got := make(map[string]bool)
	docKeys(&doc, "", got)
	for k := range want {
		if !got[k] {
			t.Errorf("the examples in default.yaml do not show %s", k)
		}
	}
	if len(want) < 30 {
		t.Errorf("only %d element keys: %v", len(want), want)
	}
}

func ExampleKeys() {
	for _, k := range Keys()[:3] {
		fmt.Println(k.Key, k.Env, k.Type)
	}
	// Output:
	// listen JURISDNS_LISTEN []string
	// upstreams.servers JURISDNS_UPSTREAMS_SERVERS []string
	// upstreams.strategy JURISDNS_UPSTREAMS_STRATEGY string
}

package docs

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/jurisdns/jurisdns/config"
)

var update = flag.Bool("update", false, "rewrite configuration.md from config.Keys()")

const referenceFile = "configuration.md"

// TestConfigurationReference fails when configuration.md is not what
// config.Keys() and the embedded default give today. Refresh it with
// `go generate ./docs` (or go test ./docs -run TestConfigurationReference
// -update).
func TestConfigurationReference(t *testing.T) {
	want, err := configurationReference()
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(referenceFile, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(referenceFile)
	if err != nil {
		t.Fatalf("%v: run `go generate ./docs`", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("docs/%s is stale (the configuration keys or their comments in config/default.yaml changed): run `go generate ./docs` and commit it\n%s",
			referenceFile, firstDiff(got, want))
	}
}

// TestConfigurationReferenceCoversEveryKey guards the generator itself:
// every key appears with its environment variable, and a key added to the
// config package shows up in the table.
func TestConfigurationReferenceCoversEveryKey(t *testing.T) {
	ref, err := configurationReference()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range config.Keys() {
		row := fmt.Sprintf("| `%s` | `%s` | %s |", k.Key, k.Env, typeName(k.Type))
		if !bytes.Contains(ref, []byte(row)) {
			t.Errorf("no row starting %s", row)
		}
	}
}

// configurationReference renders configuration.md.
func configurationReference() ([]byte, error) {
	var doc yaml.Node
	def := config.Default()
	if err := yaml.Unmarshal(def, &doc); err != nil {
		return nil, fmt.Errorf("embedded default: %w", err)
	}
	var b bytes.Buffer
	b.WriteString(`# Configuration reference

<!-- Generated from config.Keys() and config/default.yaml by ` + "`go generate ./docs`" + `.
     Do not edit: a test fails when this file is stale. -->

jurisdns reads its configuration in layers, each one over the one before:

1. the embedded default (` + "`jurisdns config default`" + ` prints it, with a comment on every key; it is
   also reproduced at the end of this page);
2. a YAML file, from ` + "`--config FILE`" + ` or, without the flag, the ` + "`" + config.EnvConfig + "`" + ` environment
   variable. A section in the file changes only the keys it names; a list replaces the default list
   as a whole;
3. ` + "`" + config.EnvPrefix + "*`" + ` environment variables, one per key below;
4. the flags ` + "`--listen`, `--upstream`, `--log-level` and `--admin`" + `.

Unknown keys and values that do not parse are errors that name the key and where the value came
from; ` + "`jurisdns validate`" + ` reports every problem at once.

A ` + "`" + config.EnvPrefix + "*`" + ` variable that names no key never stops jurisdns. Kubernetes injects service-link
variables into every pod of a namespace (` + "`JURISDNS_SERVICE_HOST`, `JURISDNS_PORT_53_UDP_ADDR`" + `, ... for a
Service named jurisdns; Docker's ` + "`--link`" + ` sets the same shapes): those are recognised and ignored. Any
other unknown name is a warning at start, with the key it is near (` + "`JURISDNS_CACHE_SIZ`: did you mean `JURISDNS_CACHE_SIZE`?" + `),
counted in ` + "`jurisdns_config_unknown_env_variables`" + `, and an error only under
` + "`jurisdns validate --strict-env`" + `. The shipped manifests set ` + "`enableServiceLinks: false`" + ` as well.

How to write a value in an environment variable:

| type | example |
|---|---|
| string | ` + "`JURISDNS_ADMIN=0.0.0.0:8053`" + ` (an empty value sets ` + "`\"\"`" + `, e.g. ` + "`JURISDNS_ADMIN=`" + ` turns the admin listener off) |
| bool | ` + "`JURISDNS_CACHE_PREFETCH=false`" + ` |
| int, int64, float64 | ` + "`JURISDNS_CACHE_SIZE=200000`" + `, ` + "`JURISDNS_ACCESS_RATE_LIMIT_QPS=12.5`" + ` |
| time.Duration | Go durations: ` + "`JURISDNS_UPSTREAMS_TIMEOUT=1500ms`" + `, ` + "`JURISDNS_LISTS_REFRESH=6h`" + ` |
| []string | comma- or space-separated: ` + "`JURISDNS_LISTEN=\"0.0.0.0:53 [::]:53\"`" + ` |
| list of objects | a YAML or JSON flow value: ` + "`JURISDNS_CLIENTS='[{name: floor-3, subnets: [10.40.3.0/24], jurisdictions: [au-gov, bypass]}]'`" + ` |

In a container, this is how everything is configured without a file (see [container.md](container.md)).

## Keys

| key | environment variable | type | default | what it does |
|---|---|---|---|---|
`)
	for _, k := range config.Keys() {
		fmt.Fprintf(&b, "| `%s` | `%s` | %s | %s | %s |\n", k.Key, k.Env, typeName(k.Type), defaultOf(&doc, k.Key), cell(k.Doc))
	}
	b.WriteString(`
The entries of ` + "`clients`, `jurisdictions` and `zones`" + ` have keys of their own; the comments of the embedded
default below describe each of them.

## The embedded default

` + "```yaml\n")
	b.Write(def)
	if !bytes.HasSuffix(def, []byte("\n")) {
		b.WriteByte('\n')
	}
	b.WriteString("```\n")
	return b.Bytes(), nil
}

// typeName shows a Go type the way an operator reads it.
func typeName(t string) string {
	switch {
	case strings.HasPrefix(t, "[]config."):
		return "list of " + strings.ToLower(strings.TrimPrefix(t, "[]config.")) + " objects"
	case t == "time.Duration":
		return "duration"
	}
	return t
}

// defaultOf renders the embedded default value of a dotted key.
func defaultOf(doc *yaml.Node, key string) string {
	n := doc
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	for part := range strings.SplitSeq(key, ".") {
		var next *yaml.Node
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == part {
					next = n.Content[i+1]
					break
				}
			}
		}
		if next == nil {
			return ""
		}
		n = next
	}
	return "`" + strings.ReplaceAll(flow(n), "`", "'") + "`"
}

// flow writes a YAML node on one line.
func flow(n *yaml.Node) string {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Value == "" {
			return `""`
		}
		return n.Value
	case yaml.SequenceNode:
		parts := make([]string, len(n.Content))
		for i, c := range n.Content {
			parts[i] = flow(c)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case yaml.MappingNode:
		parts := make([]string, 0, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			parts = append(parts, n.Content[i].Value+": "+flow(n.Content[i+1]))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return ""
}

// cell makes text safe in a Markdown table cell.
func cell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}

// firstDiff shows the first line that differs.
func firstDiff(got, want []byte) string {
	g := strings.Split(string(got), "\n")
	w := strings.Split(string(want), "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d:\n  file:      %s\n  generated: %s", i+1, gl, wl)
		}
	}
	return ""
}

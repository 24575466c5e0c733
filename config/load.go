package config

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/jurisdns/jurisdns/spec"
)

// LoadOptions says where Load reads the configuration from.
type LoadOptions struct {
	// Path is the YAML file. Empty means the --config flag of Flags if set,
	// else JURISDNS_CONFIG from Env, else the embedded default alone.
	Path string
	// Env is the environment as "KEY=value" strings; nil means os.Environ().
	Env []string
	// Flags holds the flags defined by RegisterFlags (it may hold others and
	// may be nil). Only flags that were set are applied.
	Flags *pflag.FlagSet
}

// flagKeys maps the flags of RegisterFlags to the keys they set.
var flagKeys = []struct{ flag, key string }{
	{"listen", "listen"},
	{"upstream", "upstreams.servers"},
	{"log-level", "log.level"},
	{"admin", "admin"},
}

// RegisterFlags defines the configuration flags on fs: --config/-c and the
// common keys --listen and --upstream (repeatable; they replace the
// configured list), --log-level and --admin. Load reads them back.
func RegisterFlags(fs *pflag.FlagSet) {
	fs.StringP("config", "c", "", "configuration file (YAML); default $"+EnvConfig+", else the embedded default")
	fs.StringSlice("listen", nil, "address to serve DNS on, host:port (repeatable; replaces listen)")
	fs.StringSlice("upstream", nil, "upstream server: IP[:port], udp://, tcp://, tls://, https:// (repeatable; replaces upstreams.servers)")
	fs.String("log-level", "", "log level: debug, info, warn or error (log.level)")
	fs.String("admin", "", `admin HTTP address host:port, "" to turn it off (admin)`)
}

// Load reads the configuration: the embedded default, then the YAML file
// merged over it (a list in the file replaces the default list), then the
// JURISDNS_* environment, then the flags that were set. Unknown keys, unknown
// JURISDNS_ variables and unparsable values are errors naming the key and
// where the value came from; Load reports all of them at once (errors.Join).
//
// Load does not call Validate. It uses a fresh viper instance per call and
// is safe for concurrent use.
func Load(opts LoadOptions) (*Config, error) {
	env := opts.Env
	if env == nil {
		env = os.Environ()
	}
	vars := jurisdnsVars(env)

	path := opts.Path
	if path == "" && opts.Flags != nil {
		if f := opts.Flags.Lookup("config"); f != nil && f.Changed {
			path = f.Value.String()
		}
	}
	if path == "" {
		path = vars[EnvConfig]
	}

	v := viper.New()
	def, err := defaultMap()
	if err != nil {
		return nil, err
	}
	if err := v.MergeConfigMap(def); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}

	var errs []error

	source := DefaultSource
	if path != "" {
		source = path
		data, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("reading configuration: %w", err))
		} else {
			m, ferrs := spec.ParseYAML(path, data, configType)
			errs = append(errs, ferrs...)
			if len(ferrs) == 0 {
				if err := v.MergeConfigMap(m); err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", path, err))
				}
			}
		}
	}

	envErrs, unknown := applyEnv(v, vars)
	errs = append(errs, envErrs...)
	if opts.Flags != nil {
		applyFlags(v, opts.Flags)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	var cfg Config
	// The enums of spec (tier, mode, format, ...) are strings: their text
	// is decoded as is, and Validate checks it against the same list their
	// UnmarshalText accepts, so that a bad value is reported with every
	// other problem of the file, not alone.
	if err := v.UnmarshalExact(&cfg); err != nil {
		// Unreachable when the decoder above is right: it checked every key
		// and value already.
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg.Source = source
	cfg.UnknownEnv = unknown
	return &cfg, nil
}

// configType is the type a configuration document is checked against.
var configType = reflect.TypeFor[Config]()

// parsedDefault is the embedded default, decoded once.
var parsedDefault = sync.OnceValues(func() (map[string]any, error) {
	m, errs := spec.ParseYAML(DefaultSource, defaultYAML, configType)
	if len(errs) > 0 {
		return nil, fmt.Errorf("config: the embedded default is broken: %w", errors.Join(errs...))
	}
	return m, nil
})

// defaultMap returns a fresh copy of the decoded default, which viper may
// modify.
func defaultMap() (map[string]any, error) {
	m, err := parsedDefault()
	if err != nil {
		return nil, err
	}
	return deepCopy(m).(map[string]any), nil
}

// deepCopy copies the maps and slices of a decoded value.
func deepCopy(v any) any {
	switch v := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		s := make([]any, len(v))
		for i, e := range v {
			s[i] = deepCopy(e)
		}
		return s
	case []string:
		return slices.Clone(v)
	}
	return v
}

// jurisdnsVars picks the JURISDNS_* variables out of an environment; a later
// duplicate wins.
func jurisdnsVars(env []string) map[string]string {
	vars := make(map[string]string)
	for _, kv := range env {
		name, value, ok := strings.Cut(kv, "=")
		if ok && strings.HasPrefix(name, EnvPrefix) {
			vars[name] = value
		}
	}
	return vars
}

// applyEnv sets every JURISDNS_* variable that names a key on v, in name
// order. A bad value of a key is an error; a name that is no key is not: it
// is returned as a notice (platforms set such names, see EnvNotice).
func applyEnv(v *viper.Viper, vars map[string]string) ([]error, []EnvNotice) {
	byEnv := make(map[string]leaf)
	names := make([]string, 0, len(leaves())+1)
	for _, l := range leaves() {
		byEnv[l.Env] = l
		names = append(names, l.Env)
	}
	names = append(names, EnvConfig)

	var errs []error
	var unknown []EnvNotice
	for _, name := range slices.Sorted(maps.Keys(vars)) {
		if name == EnvConfig {
			continue
		}
		l, ok := byEnv[name]
		if !ok {
			n := EnvNotice{Name: name, ServiceLink: isServiceLink(name, vars[name])}
			if !n.ServiceLink {
				if best := spec.Nearest(name, lowerAll(names)); best != "" {
					n.DidYouMean = strings.ToUpper(best)
				}
			}
			unknown = append(unknown, n)
			continue
		}
		val, verrs := envValue(name, l, vars[name])
		if len(verrs) > 0 {
			errs = append(errs, verrs...)
			continue
		}
		v.Set(l.Key, val)
	}
	return errs, unknown
}

// envValue parses the value of the environment variable of one leaf key.
// Lists of strings are comma- or whitespace-separated, or a YAML flow list;
// lists of objects are a YAML (or JSON) flow list.
func envValue(name string, l leaf, s string) (any, []error) {
	t := l.typ
	if t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String &&
		!strings.HasPrefix(strings.TrimSpace(s), "[") {
		return strings.FieldsFunc(s, func(r rune) bool {
			return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
		}), nil
	}
	if t.Kind() == reflect.Slice {
		val, ok, errs := spec.ParseYAMLValue(name, l.Key, s, t)
		if len(errs) > 0 {
			return nil, errs
		}
		if !ok {
			return emptySlice(t), nil
		}
		return val, nil
	}
	if t.Kind() == reflect.String {
		return s, nil
	}
	val, err := spec.ParseScalar(t, strings.TrimSpace(s))
	if err != nil {
		return nil, []error{fmt.Errorf("%s: %s: %w", name, l.Key, err)}
	}
	return val, nil
}

// emptySlice is the empty value of a list type.
func emptySlice(t reflect.Type) any {
	if t.Elem().Kind() == reflect.Struct {
		return []any{}
	}
	return []string{}
}

// applyFlags sets the keys of the flags that were set on fs.
func applyFlags(v *viper.Viper, fs *pflag.FlagSet) {
	for _, fk := range flagKeys {
		f := fs.Lookup(fk.flag)
		if f == nil || !f.Changed {
			continue
		}
		var val any = f.Value.String()
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			val = slices.Clone(sv.GetSlice())
		}
		v.Set(fk.key, val)
	}
}

func lowerAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.ToLower(s)
	}
	return out
}

// Package config reads jurisdns's configuration: Load (viper: the embedded
// default, a YAML file, the JURISDNS_* environment, flags) decodes it into
// a spec.Config, checking every key and value against the types of package
// spec with the file:line or variable of each problem; Keys describes every
// key. The types and Validate live in spec, the typed vocabulary the other
// parts take; config names them here for its callers (app, the CLI).
//
// The rest of the program receives a *spec.Config and never imports viper.
package config

import "github.com/jurisdns/jurisdns/spec"

// The configuration types, from spec (see there).
type (
	Config            = spec.Config
	Upstreams         = spec.Upstreams
	Cache             = spec.Cache
	Server            = spec.Server
	Access            = spec.Access
	RateLimit         = spec.RateLimit
	Client            = spec.Client
	Jurisdiction      = spec.Jurisdiction
	JurisdictionAttrs = spec.JurisdictionAttrs
	StructuredErrors  = spec.StructuredErrors
	Source            = spec.Source
	Transfer          = spec.Transfer
	TSIGKey           = spec.TSIGKey
	RPZOut            = spec.RPZOut
	Lists             = spec.Lists
	Zone              = spec.Zone
	AdminAuth         = spec.AdminAuth
	Audit             = spec.Audit
	Log               = spec.Log
	TLS               = spec.TLS
	DoT               = spec.DoT
	DoH               = spec.DoH
	Dnstap            = spec.Dnstap
	EnvNotice         = spec.EnvNotice
)

// ParseDate, TSIGKeyName and ServerAddr are spec's.
var (
	ParseDate   = spec.ParseDate
	TSIGKeyName = spec.TSIGKeyName
	ServerAddr  = spec.ServerAddr
)

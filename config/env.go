package config

import (
	"fmt"
	"regexp"
	"strings"
)

// EnvNotice is a JURISDNS_* environment variable that names no key.
//
// Such a name never stops jurisdns: Kubernetes injects service-link
// variables into every pod of a namespace (enableServiceLinks is true by
// default), and a Service named jurisdns or jurisdns-office gives every pod
// JURISDNS_SERVICE_HOST, JURISDNS_PORT_53_UDP_ADDR, JURISDNS_OFFICE_SERVICE_PORT
// and the like; Docker's legacy --link sets the same shapes (plus _NAME and
// _ENV_*). Those are recognised and ignored silently. Any other unknown name
// is a warning at start, with the key it is one edit from, and an error only
// under `jurisdns validate --strict-env`.
type EnvNotice struct {
	// Name is the variable.
	Name string
	// ServiceLink says the name has the shape of a Kubernetes service link
	// or a Docker link variable.
	ServiceLink bool
	// DidYouMean is the variable of the key that Name is one or two edits
	// from, if any: almost certainly a typo.
	DidYouMean string
}

// String is the notice as a one-line warning.
func (n EnvNotice) String() string {
	switch {
	case n.ServiceLink:
		return n.Name + ": not a jurisdns key (a Kubernetes service-link or Docker link variable); ignored"
	case n.DidYouMean != "":
		return fmt.Sprintf("%s: unknown environment variable, ignored (did you mean %s?)", n.Name, n.DidYouMean)
	}
	return n.Name + ": unknown environment variable, ignored"
}

// EnvWarnings are the unknown JURISDNS_* variables worth a warning: every
// one but the service-link shapes, in name order.
func (c *Config) EnvWarnings() []EnvNotice {
	var out []EnvNotice
	for _, n := range c.UnknownEnv {
		if !n.ServiceLink {
			out = append(out, n)
		}
	}
	return out
}

// serviceLink matches the names the kubelet injects for a Service whose
// name, upper-cased with '-' as '_', starts with JURISDNS (the Service
// "jurisdns" itself has an empty middle part):
//
//	{SVC}_SERVICE_HOST, {SVC}_SERVICE_PORT, {SVC}_SERVICE_PORT_{PORTNAME},
//	{SVC}_PORT, {SVC}_PORT_{N}_{PROTO}, {SVC}_PORT_{N}_{PROTO}_{PROTO|PORT|ADDR}
//
// Docker's --link sets the {ALIAS}_PORT* shapes too.
var serviceLink = regexp.MustCompile(`^JURISDNS_(?:[A-Z0-9_]+_)?(?:` +
	`SERVICE_HOST|SERVICE_PORT(?:_[A-Z0-9_]+)?|` +
	`PORT(?:_[0-9]+_(?:TCP|UDP|SCTP)(?:_(?:PROTO|PORT|ADDR))?)?)$`)

// dockerLink matches the other variables of Docker's legacy --link for an
// alias starting with jurisdns: {ALIAS}_NAME (value "/container/alias") and
// {ALIAS}_ENV_{VAR} (the linked container's environment).
var dockerLink = regexp.MustCompile(`^JURISDNS_(?:[A-Z0-9_]+_)?(?:NAME|ENV_[A-Za-z0-9_]+)$`)

// isServiceLink reports whether name (with its value) is a platform's link
// variable rather than an attempt at a jurisdns key.
func isServiceLink(name, value string) bool {
	if serviceLink.MatchString(name) {
		return true
	}
	if !dockerLink.MatchString(name) {
		return false
	}
	if strings.HasSuffix(name, "_NAME") {
		return strings.HasPrefix(value, "/")
	}
	return true
}

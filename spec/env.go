package spec

import "fmt"

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

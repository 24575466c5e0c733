package config

import (
	"regexp"
	"strings"
)

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

// Package docs holds the documentation of jurisdns. Its one Go duty is to
// keep configuration.md, the reference of every configuration key, in step
// with the config package: the test fails when the file is stale, and
// `go generate ./docs` rewrites it.
package docs

//go:generate go test -run ^TestConfigurationReference$ -update .

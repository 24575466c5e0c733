// Package docs holds the documentation of jurisdns. Its Go duties are to
// keep configuration.md, the reference of every configuration key, in step
// with the config package (the test fails when the file is stale, and
// `go generate ./docs` rewrites it), and to hold the code to the import
// rules architecture.md states.
package docs

//go:generate go test -run ^TestConfigurationReference$ -update .

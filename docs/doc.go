// Package docs holds the documentation of jurisdns. Its Go duties are to
// keep the generated references in step with the code and data they
// describe, configuration.md (every configuration key, from the config
// package) and jurisdictions.md (every shipped jurisdiction, from
// blocklists/shipped): the tests fail when a file is stale, and
// `go generate ./docs` rewrites both; and to hold the code to the import
// rules architecture.md states.
package docs

//go:generate go test -run ^(TestConfigurationReference|TestJurisdictionRegister)$ -update .

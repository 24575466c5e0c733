// Package docs holds the documentation of jurisdns. Its Go duty is to keep
// the generated references in step with the code and data they describe:
// configuration.md (every configuration key, from the config package) and
// jurisdictions.md (every shipped jurisdiction, from blocklists/shipped). The
// tests fail when a file is stale, and `go generate ./docs` rewrites both.
package docs

//go:generate go test -run ^(TestConfigurationReference|TestJurisdictionRegister)$ -update .

// Package shipped holds the jurisdictions that ship with jurisdns, one YAML
// file per jurisdiction (<id>.yaml), embedded in the binary. Package policy
// reads and checks them; this package only embeds them. The schema, and the
// register of every file generated from this data, is docs/jurisdictions.md.
package shipped

import "embed"

// FS holds the shipped jurisdiction files, <id>.yaml at its root.
//
//go:embed *.yaml
var FS embed.FS

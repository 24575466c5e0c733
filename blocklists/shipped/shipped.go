// Package shipped holds the jurisdictions that ship with jurisdns, one YAML
// file per jurisdiction (<id>.yaml), embedded in the binary. Package policy
// reads them; this package only embeds them.
//
// Every file has the jurisdiction's metadata and its list:
//
//	id:          jurisdiction id, equal to the file name without ".yaml"
//	title, authority, instrument: who banned what, and by which instrument
//	links:       the source URLs (from JURISDICTIONS.md)
//	effective, expires: "2006-01-02" or RFC 3339; active in [effective, expires), empty = unbounded
//	tier:        mandated | local | advisory
//	mode:        enforce | report
//	action:      nxdomain | nodata | null | ip | refused | drop
//	ede:         RFC 8914 code: 16 (Censored) for an external legal requirement, 15 (Blocked) for the operator's own policy
//	ttl:         block TTL (Go duration)
//	default:     true when the embedded default configuration enables it
//	notes:       scope, caveats and everything UNCONFIRMED
//	sources:     [{name, format, match, entries: [{rule, cite, action, collateral, unconfirmed}]}]
//	allow:       [{rule, cite}]
//
// Each entry is one line of its source's format (rule) with the JURISDICTIONS.md
// row or hostname table it comes from (cite). An entry may carry its own
// action (nxdomain, nodata or drop) that replaces the jurisdiction's action
// for that entry. Entries marked unconfirmed are recorded for the reader but
// never loaded, and no default-enabled jurisdiction has any.
package shipped

import "embed"

// FS holds the shipped jurisdiction files, <id>.yaml at its root.
//
//go:embed *.yaml
var FS embed.FS

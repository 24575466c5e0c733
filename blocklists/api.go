// Package blocklists parses block lists (plain domains, hosts, adblock,
// wildcard, RPZ) into canonical rules and indexes them in a compact,
// immutable matcher whose lookup cost depends on the labels of the queried
// name, not on the size of the lists.
//
// [Load] is the list loader every source goes through: one parse of the
// list, its rules kept ([Rules]), the SHA-256 of its bytes, and each of its
// [Guards] checked once. Where the bytes come from (a file, a download, a
// zone transfer) is the caller's business.
//
// blocklists does not import config/: callers map their configuration to
// ParseOptions and IndexBuilder calls.
package blocklists

import (
	"net/netip"

	"github.com/jurisdns/jurisdns/spec"
)

// Kind says which names a rule covers.
type Kind uint8

const (
	// Suffix covers the name and every name below it (deepseek.com covers
	// chat.deepseek.com). It is the default for every plain format.
	Suffix Kind = iota
	// Exact covers the name only.
	Exact
	// Below covers the names below the name but not the name itself
	// (wildcard "*.example.com", RPZ "*.example.com").
	Below
)

// Action is what a rule asks for. Plain lists produce Block (or Allow for
// adblock "@@" exceptions); RPZ files can ask for the others.
type Action uint8

const (
	// Block: the jurisdiction's own block action applies.
	Block Action = iota
	// Allow: an exception that lifts blocks (adblock @@, RPZ rpz-passthru.,
	// a jurisdiction's allow entries).
	Allow
	// NXDomain: RPZ "CNAME .".
	NXDomain
	// NoData: RPZ "CNAME *.".
	NoData
	// Drop: RPZ "CNAME rpz-drop.".
	Drop
	// LocalData: RPZ local A/AAAA records (Rule.Addrs).
	LocalData
)

// Format names a list format: the configuration's enum (spec.Format).
type Format = spec.Format

// The list formats.
const (
	FormatDomains  = spec.FormatDomains
	FormatHosts    = spec.FormatHosts
	FormatAdblock  = spec.FormatAdblock
	FormatWildcard = spec.FormatWildcard
	FormatRPZ      = spec.FormatRPZ
)

// Rule is one parsed list entry.
type Rule struct {
	// Name is canonical: lower case, IDN labels in punycode, no trailing
	// dot, no leading "*." (Kind says Below instead). It is valid only
	// during the callback that receives it: copy it to keep it.
	Name   string
	Kind   Kind
	Action Action
	// Addrs holds the addresses of an RPZ LocalData rule (a fresh slice:
	// it may be kept).
	Addrs []netip.Addr
	// Line is the 1-based line number in the source.
	Line int
}

// ParseOptions says how to read one source.
type ParseOptions struct {
	// Source names the file or source in error messages ("lists/x.txt").
	Source string
	// Format of the list; empty means FormatDomains.
	Format Format
	// Match is Suffix (default) or Exact; it applies to entries whose
	// format does not say (plain domains, hosts, adblock ||d^ is Suffix
	// always, wildcard *.d is Below always, RPZ follows RPZ).
	Match Kind
	// MaxBadShare rejects the source when more than this share of its
	// non-comment lines is invalid; 0 means the default (0.5), a negative
	// value rejects a source with any invalid line, 1 never rejects.
	MaxBadShare float64
	// Origin, when set, is the name of an RPZ zone ("rpz.example"): the
	// origin of its relative names and the apex its triggers are below.
	// Empty means: the owner of the file's first SOA record, else its first
	// $ORIGIN, else the root (owner names are then the triggers
	// themselves). Other formats ignore it.
	Origin string
}

// LineError is a bad line of a source.
type LineError struct {
	Source string
	Line   int
	Reason string
}

// Error formats the error as "source:line: reason".
func (e *LineError) Error() string {
	return e.Source + ":" + itoa(e.Line) + ": " + e.Reason
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	neg := n < 0
	if neg {
		n = -n
	}
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}

package policy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jurisdns/jurisdns/spec"
)

// RegisterStatuses returns the status (Jurisdiction.Status) of every
// shipped jurisdiction at t, by id. A register written at one date is stale
// at another when these differ.
func RegisterStatuses(t time.Time) (map[string]string, error) {
	p, err := Build(context.Background(), &spec.Config{DefaultJurisdictions: []string{}}, BuildOptions{})
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, j := range p.Jurisdictions() {
		out[j.ID] = j.Status(t)
	}
	return out, nil
}

// WriteRegister writes docs/jurisdictions.md: the schema of a shipped file
// and one section per shipped jurisdiction (title, tier, mode, dates, its
// status on the day asOf, instruments with their links, rules with what each
// cites, and what it deliberately leaves out), all from the embedded data.
func WriteRegister(w io.Writer, asOf time.Time) error {
	files, err := loadShipped()
	if err != nil {
		return err
	}
	p, err := Build(context.Background(), &spec.Config{DefaultJurisdictions: []string{}}, BuildOptions{})
	if err != nil {
		return err
	}
	day := asOf.UTC().Format(time.DateOnly)
	var b bytes.Buffer
	b.WriteString(registerHead)
	fmt.Fprintf(&b, "## The register\n\nStatus on %s (00:00 UTC), the day this file was generated. A test fails when a\n"+
		"jurisdiction's status has changed since, or when the data no longer gives this file.\n\n", day)
	b.WriteString("| id | title | tier | mode | effective | expires | status | default |\n|---|---|---|---|---|---|---|---|\n")
	for _, f := range files {
		j := p.Lookup(f.ID)
		fmt.Fprintf(&b, "| [`%s`](#%s) | %s | %s | %s | %s | %s | %s | %s |\n", j.ID, j.ID, cell(j.Title), j.Tier, j.Mode,
			dateOr(j.Effective, "—"), dateOr(j.Expires, "—"), j.Status(asOf), yesNo(j.Default))
	}
	for _, f := range files {
		writeJurisdiction(&b, f, p.Lookup(f.ID), asOf)
	}
	_, err = w.Write(b.Bytes())
	return err
}

func writeJurisdiction(b *bytes.Buffer, f *shippedFile, j *Jurisdiction, asOf time.Time) {
	fmt.Fprintf(b, "\n### %s\n\n**%s**\n\n", j.ID, md(j.Title))
	ede := "15 (Blocked)"
	if j.EDE == 16 {
		ede = "16 (Censored)"
	} else if j.EDE != 15 {
		ede = itoa(int(j.EDE))
	}
	fmt.Fprintf(b, "- Authority: %s\n", md(j.Authority))
	fmt.Fprintf(b, "- Tier %s, mode %s, action %s, EDE %s, block TTL %ds\n", j.Tier, j.Mode, j.Action, ede, int(j.TTL/time.Second))
	fmt.Fprintf(b, "- Effective %s, expires %s; status on %s: **%s**\n", dateOr(j.Effective, "(unbounded)"), dateOr(j.Expires, "(never)"),
		asOf.UTC().Format(time.DateOnly), j.Status(asOf))
	if j.Default {
		b.WriteString("- Enabled by the default configuration for clients that match no `clients` entry\n")
	} else {
		b.WriteString("- Not a default: applies to the clients a configuration maps to it\n")
	}
	b.WriteString("\nInstruments (the deciding one for a rule is the one it cites while in force, else the first in force):\n\n")
	for i, in := range j.Instruments {
		fmt.Fprintf(b, "%d. **%s**. %s", i+1, md(in.Name), md(in.Issuer))
		if !in.Date.IsZero() {
			fmt.Fprintf(b, ", in force from %s", FormatDate(in.Date))
		}
		if !in.Repealed.IsZero() {
			fmt.Fprintf(b, " until %s (repealed)", FormatDate(in.Repealed))
		}
		fmt.Fprintf(b, ".\n   %s\n", md(in.Scope))
		for _, l := range in.Links {
			fmt.Fprintf(b, "   - [%s](%s)\n", md(l.Title), l.URL)
		}
	}
	if len(j.NameSources) > 0 {
		b.WriteString("\nSources of the hostnames:\n\n")
		for _, l := range j.NameSources {
			fmt.Fprintf(b, "- [%s](%s)\n", md(l.Title), l.URL)
		}
	}
	b.WriteString("\n| rule | match | instrument cited | names from | note |\n|---|---|---|---|---|\n")
	for _, s := range f.Sources {
		match := s.Match
		if match == "" {
			match = "suffix"
		}
		for _, e := range s.Entries {
			var note []string
			if e.Action != "" {
				note = append(note, "answer "+string(e.Action))
			}
			if e.Unconfirmed {
				note = append(note, "UNCONFIRMED: recorded, not loaded")
			}
			if e.Collateral != "" {
				note = append(note, "collateral: "+e.Collateral)
			}
			fmt.Fprintf(b, "| `%s` | %s | [%s](%s) | %s | %s |\n", e.Rule, match, cell(shortTitle(j, e.Cite)), e.Cite,
				nameLink(j, e.Names), cell(strings.Join(note, "; ")))
		}
	}
	for _, e := range f.Allow {
		fmt.Fprintf(b, "| `%s` | allow | [%s](%s) | %s | lifts this jurisdiction's blocks |\n", e.Rule, cell(shortTitle(j, e.Cite)), e.Cite, nameLink(j, e.Names))
	}
	if len(j.LeavesOut) > 0 {
		b.WriteString("\nDeliberately left out:\n\n")
		for _, s := range j.LeavesOut {
			fmt.Fprintf(b, "- %s\n", md(s))
		}
	}
	if j.Notes != "" {
		fmt.Fprintf(b, "\n%s\n", md(strings.Join(strings.Fields(j.Notes), " ")))
	}
}

// shortTitle is the title of the instrument link u.
func shortTitle(j *Jurisdiction, u string) string {
	for _, in := range j.Instruments {
		for _, l := range in.Links {
			if l.URL == u {
				return l.Title
			}
		}
	}
	return u
}

func nameLink(j *Jurisdiction, u string) string {
	if u == "" {
		return ""
	}
	for _, l := range j.NameSources {
		if l.URL == u {
			return "[" + cell(l.Title) + "](" + u + ")"
		}
	}
	return "[" + cell(shortTitle(j, u)) + "](" + u + ")"
}

func dateOr(t time.Time, none string) string {
	if t.IsZero() {
		return none
	}
	return FormatDate(t)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// md escapes the characters Markdown would read as markup in running text.
func md(s string) string {
	return strings.NewReplacer("*", `\*`, "_", `\_`, "<", "&lt;", "[", `\[`).Replace(strings.TrimSpace(s))
}

// cell is md for a table cell.
func cell(s string) string { return strings.ReplaceAll(md(s), "|", `\|`) }

const registerHead = `# Shipped jurisdictions

<!-- Generated from blocklists/shipped/*.yaml by ` + "`go generate ./docs`" + `.
     Do not edit: a test fails when this file is stale. -->

jurisdns ships one jurisdiction per file in ` + "`blocklists/shipped/`" + `, embedded in the binary. Each one names
the instruments behind it (a statute, an order, a directive, a ruling or the operator's own policy) with
public links, and each rule cites the instrument it comes from. ` + "`jurisdns lists`" + ` shows them with their status,
` + "`jurisdns check --client IP NAME`" + ` names the instrument that decides for that client, and the EDE
EXTRA-TEXT of a block names it too (` + "`au-gov: PSPF Direction 001-2025; rule deepseek.com (deepseek-core)`" + `).

**The default.** A client that matches no ` + "`clients`" + ` entry gets ` + "`ai-deepseek`" + ` and ` + "`bypass`" + `: DeepSeek is
blocked with EDE 15 (Blocked) and a text that says it is the operator's policy and names the governments
that ban DeepSeek on their own systems. No government's instrument binds a client just because it uses
this resolver, so EDE 16 (Censored) and a government's instrument are given only to the clients that a
configuration maps to that government's jurisdiction.

**Tiers and modes.** ` + "`mandated`" + ` is a binding external requirement (EDE 16; a local allow entry cannot lift
it); ` + "`local`" + ` is the operator's own policy (EDE 15); ` + "`advisory`" + ` is guidance, a recommendation or a caution,
and ships in mode ` + "`report`" + ` (logged and counted, answered normally). An operator may set mode ` + "`enforce`" + ` for
an advisory jurisdiction in the configuration. Nothing marked UNCONFIRMED is enforced by default: an
unconfirmed rule is recorded and never loaded, and no default jurisdiction holds one.

## The schema of a shipped file

` + "```yaml" + `
id: au-gov                  # the file name without .yaml
title: "Australia: ..."     # one line: who bans what, where
authority: "..."            # the body or bodies behind the instruments
instruments:                # at least one, the primary first
  - name: "PSPF Direction 001-2025"   # as the EDE text and check name it
    issuer: "..."           # who issued it
    date: "2025-02-04"      # when it took effect: 2006-01-02 (00:00 UTC) or RFC 3339;
                            # required for mandated and advisory jurisdictions
    repealed: "..."         # optional: when it stopped
    scope: "..."            # whom and what it covers, in its own terms
    links:                  # public https sources, the official one first
      - url: https://...
        title: "Home Affairs: PSPF Direction 001-2025"   # publisher: document
name_sources:               # optional: public sources of the hostnames (who owns a name)
  - {url: https://..., title: "..."}
effective: "2025-02-04"     # active in [effective, expires); empty = unbounded
expires: ""
tier: mandated              # mandated | local | advisory (advisory ships in mode report)
mode: enforce               # enforce | report
action: nxdomain            # nxdomain | nodata | null | ip | refused | drop
ede: 16                     # RFC 8914: 16 Censored (external requirement), 15 Blocked (operator)
ttl: 60s                    # block TTL
default: false              # enabled by the default configuration for unmapped clients
notes: |                    # caveats and everything UNCONFIRMED
leaves_out:                 # what it deliberately does not block, and why
  - "..."
sources:
  - name: deepseek-core
    format: domains         # domains | hosts | adblock | wildcard | rpz
    match: suffix           # suffix (the name and all below) | exact
    entries:
      - rule: deepseek.com
        cite: https://...   # must be one of the instruments' links
        names: https://...  # optional: one of name_sources
        action: nxdomain    # optional: nxdomain | nodata | drop, replaces the jurisdiction's action
        collateral: "..."   # optional: what else the rule breaks
        unconfirmed: true   # optional: recorded, never loaded
allow:                      # optional: [{rule, cite}], names this jurisdiction does not block
` + "```" + `

The loader rejects a file whose cite names no listed link, whose link is not https or has no title, whose
government instrument has no date, whose advisory tier is not in report mode, or whose expires is not after
its effective, each with the file, line and key path. A configuration that sets ` + "`instrument`" + ` or ` + "`links`" + `
for a shipped jurisdiction replaces its instruments: the EDE text then names the configured instrument.

`

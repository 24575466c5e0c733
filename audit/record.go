package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// Genesis is the prev value of the first record of a chain: 64 zeros.
const Genesis = "0000000000000000000000000000000000000000000000000000000000000000"

// MaxLineSize is the longest line, in bytes without the newline, that [Verify]
// and [Open] accept. The Writer shortens string fields to maxFieldLen bytes, so
// its own lines stay far below it.
const MaxLineSize = 64 << 10

// maxFieldLen is the longest value the Writer stores in one string field of a
// Record; longer values are cut at a UTF-8 boundary.
const maxFieldLen = 1024

// Record is one line of the enforcement log: one policy hit.
//
// The caller fills in what it knows; the Writer sets Seq and Prev, sets Time
// when it is zero, and stores Time in UTC.
type Record struct {
	// Time is when the query was answered (UTC in the log).
	Time time.Time `json:"time"`
	// Seq is the record's position in the chain: one more than the previous
	// record's, across rotated files. The first record of a new chain has seq 1.
	Seq uint64 `json:"seq"`
	// Client is the client as rendered by ClientString for the configured
	// client_privacy ("" for none).
	Client string `json:"client"`
	// Name is the queried name.
	Name string `json:"name"`
	// Type is the query type ("A", "AAAA", ...).
	Type string `json:"type"`
	// Jurisdiction is the id of the jurisdiction whose rule matched.
	Jurisdiction string `json:"jurisdiction"`
	// Tier is the jurisdiction's tier (mandated, local, advisory).
	Tier string `json:"tier"`
	// Instrument is the legal or policy instrument the jurisdiction cites.
	Instrument string `json:"instrument"`
	// Rule is the list entry that matched.
	Rule string `json:"rule"`
	// Source is the name or path of the list the rule came from.
	Source string `json:"source"`
	// Line is the rule's line in Source (0 when unknown).
	Line int `json:"line"`
	// PolicyHash identifies the policy snapshot that gave the verdict.
	PolicyHash string `json:"policy_hash"`
	// Action is the block action (nxdomain, nodata, null, ip, refused, drop).
	Action string `json:"action"`
	// Mode is enforce or report.
	Mode string `json:"mode"`
	// Prev is the hex SHA-256 of the previous line of the chain, without its
	// newline, or Genesis for the first record.
	Prev string `json:"prev"`
}

// lineHash returns the hex SHA-256 of one log line (without its newline).
func lineHash(line []byte) string {
	sum := sha256.Sum256(line)
	return hex.EncodeToString(sum[:])
}

// validHash reports whether s is 64 lowercase hex characters.
func validHash(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// parseRecord decodes one log line and checks the fields the chain relies on.
func parseRecord(line []byte) (Record, error) {
	var r Record
	if len(bytes.TrimSpace(line)) == 0 {
		return r, errors.New("empty line")
	}
	if err := json.Unmarshal(line, &r); err != nil {
		return r, fmt.Errorf("not a valid record: %w", err)
	}
	if !validHash(r.Prev) {
		return r, fmt.Errorf("not a valid record: prev %q is not a hex SHA-256", clip(r.Prev, 80))
	}
	return r, nil
}

// clip shortens s to at most n bytes without splitting a UTF-8 sequence.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// clipFields shortens every string field of r to maxFieldLen bytes.
func clipFields(r *Record) {
	for _, p := range []*string{&r.Client, &r.Name, &r.Type, &r.Jurisdiction, &r.Tier,
		&r.Instrument, &r.Rule, &r.Source, &r.PolicyHash, &r.Action, &r.Mode} {
		*p = clip(*p, maxFieldLen)
	}
}

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
	// Event is empty for a policy hit. The Writer's own lines carry it:
	// EventCheckpoint, EventTorn or EventResumed, with the matching field
	// below; their policy fields are empty.
	Event string `json:"event,omitempty"`
	// Checkpoint is set on a checkpoint line.
	Checkpoint *Checkpoint `json:"checkpoint,omitempty"`
	// Torn is set on a torn-line event.
	Torn *Torn `json:"torn,omitempty"`
	// Resumed is set on a resumed event.
	Resumed *Resumed `json:"resumed,omitempty"`
	// Prev is the hex SHA-256 of the previous line of the chain, without its
	// newline, or Genesis for the first record.
	Prev string `json:"prev"`
}

// Events: the lines the Writer adds to the chain itself.
const (
	// EventCheckpoint is a signed statement of the chain so far (see
	// [Checkpoint]).
	EventCheckpoint = "checkpoint"
	// EventTorn says that Open found an incomplete last line and moved it
	// aside (see [Torn]).
	EventTorn = "torn"
	// EventResumed says that writing resumed after write errors (see
	// [Resumed]).
	EventResumed = "resumed"
)

// Torn describes an incomplete or invalid last line that Open moved out of
// the log before it continued the chain.
type Torn struct {
	// From is the log file the bytes were cut from and Line their line
	// number in it.
	From string `json:"from"`
	Line int    `json:"line"`
	// Bytes is how many bytes were cut; SHA256 is their hash.
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
	// File is where they were appended (Path + ".torn"); Kept is how many of
	// them it holds (at most MaxTornKept). File is empty and Error says why
	// when they could not be saved.
	File  string `json:"file,omitempty"`
	Kept  int64  `json:"kept"`
	Error string `json:"error,omitempty"`
	// Reason says what was wrong with the line.
	Reason string `json:"reason"`
}

// Resumed describes an outage of the log: from the first failed write
// until writing succeeded again.
type Resumed struct {
	From  time.Time `json:"from"`
	Until time.Time `json:"until"`
	// Error is the first write error of the outage.
	Error string `json:"error"`
	// Buffered is how many records were kept in memory during the outage
	// and written before this line; Lost is how many were not kept (the
	// buffer was full) and are missing from the log.
	Buffered uint64 `json:"buffered"`
	Lost     uint64 `json:"lost"`
}

// eventLine is how the Writer encodes its own lines: the chain fields and
// one event, without the policy fields of a Record.
type eventLine struct {
	Time       time.Time   `json:"time"`
	Seq        uint64      `json:"seq"`
	Event      string      `json:"event"`
	Checkpoint *Checkpoint `json:"checkpoint,omitempty"`
	Torn       *Torn       `json:"torn,omitempty"`
	Resumed    *Resumed    `json:"resumed,omitempty"`
	Prev       string      `json:"prev"`
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

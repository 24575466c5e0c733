// Package audit is jurisdns's tamper-evident enforcement log and its optional
// general query log.
//
// # Enforcement log
//
// Every policy hit (mode enforce or report) becomes one JSON line, a [Record].
// Each record carries, in its prev field, the hex SHA-256 of the exact bytes of
// the previous line (without its newline); the first record of a chain carries
// [Genesis] (64 zeros). Each record also carries a seq that grows by one along
// the chain. Editing a line changes its hash, so the next record's prev no
// longer matches; deleting or reordering a line breaks the seq sequence. [Verify]
// walks one file or a rotated set and reports the first broken record as a
// [*ChainError].
//
// A [Writer] never blocks its caller: [Writer.Log] puts the record on a bounded
// queue and counts a drop when the queue is full. One goroutine assigns seq and
// prev, encodes, writes (whenever the queue runs empty, or 64 KiB are
// pending) and rotates by size. The chain continues across rotated files
// (path.1 … path.N, path.1 the newest rotated file) and across restarts:
// [Open] reads the last line of the existing file (or of path.1 when the
// file is empty) and goes on from it.
//
// # Events
//
// Besides policy hits, the Writer chains lines of its own, marked by an
// event field: a [Torn] event when Open found an incomplete last line (a
// crash or a full disk cut a write short) and moved it into path.torn; a
// [Resumed] event after an outage; and [Checkpoint] lines.
//
// # Outages
//
// A write that fails part-way is cut back off the file, so the file never
// ends in part of a line. While writes fail, records are chained in memory
// up to Options.MaxBuffered bytes and the rest are counted as lost
// ([Writer.Failed]); the Writer retries every Options.RetryInterval, and the
// first success writes what it kept, then a resumed event that says how many
// were lost. [Writer.Err] and [Writer.State] report the outage.
//
// # Limits of the chain, and signed checkpoints
//
// A hash chain proves that the records between its anchor and its last record
// are the ones that were written, in order, but anyone who can write the file
// can re-compute it, cut its end or delete its start. With
// Options.SigningKey, the Writer adds Ed25519-signed checkpoints: when it
// opens the log, as the first line of every file it starts, every
// Options.CheckpointRecords records, every Options.CheckpointInterval and on
// Close. Each names the number of lines before it and the hash of the last
// one. [VerifyWith] and a public key then catch an edited, re-chained or
// head-deleted log; a checkpoint kept elsewhere ([Writer.LastCheckpoint],
// published on /metrics and the status API) also catches a log cut short of
// it. What no signature covers: the lines after the last checkpoint, and
// whole rotated files removed from the old end (which rotation itself does
// once MaxFiles files exist).

// # Query log
//
// [QueryLog] writes one plain JSON line per query ([QueryEntry]), without a
// chain, through the same kind of non-blocking queue and the same size-based
// rotation. Whether it is enabled is the caller's decision (off by default in
// the configuration).
//
// # Client privacy
//
// Records hold the client as [ClientString] renders it for the configured
// client_privacy mode: full, truncate (/24 for IPv4, /56 for IPv6), hash (keyed
// with a salt) or none.
package audit

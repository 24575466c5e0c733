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
// prev, encodes, writes (buffered, flushed whenever the queue runs empty) and
// rotates by size. The chain continues across rotated files (path.1 … path.N,
// path.1 the newest rotated file) and across restarts: [Open] reads the last
// record of the existing file (or of path.1 when the file is empty) and goes on
// from it.
//
// # Limits of the chain
//
// A hash chain proves that the records between its anchor and its last record
// are the ones that were written, in order. It cannot, on its own, show that
// records were cut off at the end (the last lines removed) or at the start (the
// oldest rotated file removed, which rotation itself does once MaxFiles files
// exist). [Verify] accepts the first record it reads as the anchor; [Report]
// says whether that anchor is the genesis record and gives the hash of the last
// line, and the Writer logs its head (seq and hash) through its slog.Logger at
// every rotation and on Close, so an operator who ships those log lines
// elsewhere can check both ends.
//
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

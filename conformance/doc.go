// Package conformance holds the DNS conformance suite of jurisdns: tests
// that run a whole jurisdns (app.New) on 127.0.0.1 and check it against a
// real authoritative server and against the RFCs.
//
//   - knot_test.go starts knotd (Debian package knot) on 127.0.0.1 with the
//     zones of testdata/conformance — two of them signed by knot at test
//     time (NSEC and NSEC3), a TXT RRset larger than 1232 bytes, CNAME
//     chains across zones, wildcards, NXDOMAIN/NODATA, IDN labels, a
//     253-character name — points jurisdns at it, and compares what
//     jurisdns returns over UDP and TCP with what knot returns: answer,
//     authority and additional sets, rcode, flags, and TTLs that are never
//     above knot's.
//   - dnssec_test.go and edns_test.go check DNSSEC transparency (DO and CD
//     forwarded, AD per RFC 6840 §5.7, the cache keyed by DO and CD) and
//     EDNS hygiene (no client option forwarded, none echoed, cookies) with
//     resolvertest upstreams that record what they receive.
//   - malformed_test.go sends garbage, truncated headers, wrong counts,
//     every opcode, other classes, EDNS version 1, stalled and idle TCP
//     connections, over UDP and TCP: never a panic, never a hang, and a
//     normal query works afterwards.
//
// Every socket is on 127.0.0.1; jurisdns forwards only to the test's own
// servers. The knot tests skip with a message when knotd is not installed
// (CI installs it: apt-get install -y knot).
package conformance

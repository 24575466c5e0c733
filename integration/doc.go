// Package integration holds end-to-end tests that run the jurisdns binary
// as an office would: clients in their own network namespaces, the system's
// stub resolver (getent) and dig on the client side, knot as the upstream.
//
// The tests need root (ip netns) and the binaries ip, knotd, dig and
// getent (Debian: iproute2, knot, dnsutils, libc-bin). Without them they
// skip with a message saying what is missing, except under CI=true, where
// a missing prerequisite is a failure: CI installs them.
//
// Every address they use is in 198.18.0.0/24, inside network namespaces
// the test creates and deletes itself, or on a namespace's loopback.
package integration

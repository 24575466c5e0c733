//go:build race

package blocklists

// raceEnabled is true when the tests run with the race detector, which
// makes the million-rule tests too slow for the package's time budget.
const raceEnabled = true

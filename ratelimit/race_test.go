//go:build race

package ratelimit

// raceEnabled shortens the heaviest tests, which the race detector slows
// about fifty-fold.
const raceEnabled = true

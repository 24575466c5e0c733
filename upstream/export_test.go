package upstream

// DoTGoroutines returns the number of connection goroutines a tls://
// upstream runs.
func DoTGoroutines(u Upstream) int { return int(u.(*dot).live.Load()) }

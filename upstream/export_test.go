package upstream

// DoTGoroutines returns the number of connection goroutines a tls://
// upstream runs.
func DoTGoroutines(u Upstream) int { return int(u.(*dot).live.Load()) }

// MuxSockets and MuxMaxUses are udpMux's sockets per server and queries
// per socket.
const MuxSockets, MuxMaxUses = muxSockets, muxMaxUses

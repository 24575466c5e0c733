package spec

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// Dnstap configures the dnstap output (https://dnstap.info): the queries,
// answers and upstream exchanges, each with the policy applied, as protobuf
// over Frame Streams to a collector.
type Dnstap struct {
	// Socket is the path of the collector's unix socket; empty (and TCP
	// empty) turns dnstap off.
	Socket string `mapstructure:"socket"`
	// TCP is the collector's IP:port, instead of Socket.
	TCP string `mapstructure:"tcp"`
	// Identity names this server in every message; empty means the host name.
	Identity string `mapstructure:"identity"`
	// Messages are client (CLIENT_QUERY and CLIENT_RESPONSE) and forwarder
	// (FORWARDER_QUERY and FORWARDER_RESPONSE).
	Messages []string `mapstructure:"messages"`
	// QueueSize bounds the events waiting for the collector; beyond it
	// events are dropped and counted.
	QueueSize int `mapstructure:"queue_size"`
}

// Enabled reports whether dnstap output is configured.
func (d Dnstap) Enabled() bool { return d.Socket != "" || d.TCP != "" }

// Wants reports whether messages lists kind (client or forwarder).
func (d Dnstap) Wants(kind string) bool {
	for _, m := range d.Messages {
		if strings.EqualFold(strings.TrimSpace(m), kind) {
			return true
		}
	}
	return false
}

// validateDnstap checks the dnstap keys; with dnstap off only their syntax.
func (c *Config) validateDnstap(p *problems) {
	d := c.Dnstap
	if d.Socket != "" && d.TCP != "" {
		p.add("dnstap", "socket and tcp are both set: give the collector's unix socket or its TCP address, not both")
	}
	if d.TCP != "" {
		host, port, err := net.SplitHostPort(d.TCP)
		switch {
		case err != nil:
			p.add("dnstap.tcp", "%q is not IP:port", d.TCP)
		default:
			if _, err := netip.ParseAddr(host); err != nil {
				p.add("dnstap.tcp", "%q: host %q is not an IP address (no name is resolved for the collector)", d.TCP, host)
			}
			if err := checkPort(d.TCP, port); err != nil {
				p.add("dnstap.tcp", "%v", err)
			}
		}
	}
	if strings.ContainsRune(d.Socket, 0) {
		p.add("dnstap.socket", "%q contains a NUL byte", d.Socket)
	}
	seen := map[string]int{}
	for i, m := range d.Messages {
		path := fmt.Sprintf("dnstap.messages[%d]", i)
		v := strings.ToLower(strings.TrimSpace(m))
		if v != "client" && v != "forwarder" {
			p.add(path, "%q is not one of client, forwarder", m)
			continue
		}
		if first, dup := seen[v]; dup {
			p.add(path, "%q is already dnstap.messages[%d]", m, first)
			continue
		}
		seen[v] = i
	}
	if d.Enabled() && len(d.Messages) == 0 {
		p.add("dnstap.messages", "is empty: name client, forwarder or both (or turn dnstap off by leaving socket and tcp empty)")
	}
	if d.QueueSize < 1 || d.QueueSize > 1_000_000 {
		p.add("dnstap.queue_size", "%d is not from 1 to 1000000", d.QueueSize)
	}
}

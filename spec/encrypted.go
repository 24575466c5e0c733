package spec

import (
	"fmt"
	"strings"
)

// validateEncrypted checks tls, dot, doh and ddr: listen addresses that do
// not collide with each other or with the TCP side of listen, a certificate
// pair whenever DoT or DoH is served, and ddr only with an endpoint to
// designate. It does not open the certificate files (the app does, at start
// and on reload).
func (c *Config) validateEncrypted(p *problems) {
	// Every address takes a TCP port: listen (DNS over TCP), dot, doh.
	owner := make(map[string]string)
	for i, a := range c.Listen {
		if _, dup := owner[a]; !dup {
			owner[a] = fmt.Sprintf("listen[%d]", i)
		}
	}
	checkList := func(key string, list []string) {
		for i, a := range list {
			path := fmt.Sprintf("%s[%d]", key, i)
			if err := checkListenAddr(a); err != nil {
				p.add(path, "%v", err)
				continue
			}
			if strings.HasSuffix(a, ":0") { // a port the kernel picks never collides
				continue
			}
			if first, dup := owner[a]; dup {
				p.add(path, "%q is already %s (both need its TCP port)", a, first)
				continue
			}
			owner[a] = path
		}
	}
	checkList("dot.listen", c.DoT.Listen)
	checkList("doh.listen", c.DoH.Listen)

	checkPositive(p, "tls.handshake_timeout", c.TLS.HandshakeTimeout)
	checkPositive(p, "dot.idle_timeout", c.DoT.IdleTimeout)
	if c.DoT.MaxConnections < 1 {
		p.add("dot.max_connections", "%d is less than 1", c.DoT.MaxConnections)
	}
	checkPositive(p, "doh.idle_timeout", c.DoH.IdleTimeout)
	if c.DoH.MaxConnections < 1 {
		p.add("doh.max_connections", "%d is less than 1", c.DoH.MaxConnections)
	}
	if c.DoH.MaxStreams < 1 {
		p.add("doh.max_streams", "%d is less than 1", c.DoH.MaxStreams)
	}
	switch path := c.DoH.Path; {
	case !strings.HasPrefix(path, "/"):
		p.add("doh.path", "%q does not start with /", path)
	case strings.ContainsAny(path, "?#{} \t"):
		p.add("doh.path", "%q is not a plain URL path (no query, fragment, template or space)", path)
	}

	if c.Encrypted() {
		if c.TLS.CertFile == "" {
			p.add("tls.cert_file", "is required to serve dot.listen or doh.listen")
		}
		if c.TLS.KeyFile == "" {
			p.add("tls.key_file", "is required to serve dot.listen or doh.listen")
		}
	}
	if c.DDR && !c.Encrypted() {
		p.add("ddr", "is true, but neither dot.listen nor doh.listen is set: there is no encrypted endpoint to designate")
	}
}

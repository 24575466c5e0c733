package resolver_test

import (
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/config"
	"github.com/jurisdns/jurisdns/resolver/resolvertest"
	"github.com/jurisdns/jurisdns/spec"
)

// send queries name from src and returns the reply, or nil on no reply.
func send(t *testing.T, src, addr, netw, name string) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	c := clientFrom(src, netw, 400*time.Millisecond)
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		return nil
	}
	return r
}

func TestAccessControl(t *testing.T) {
	up := resolvertest.StartUpstream(t, resolvertest.Echo())
	for _, action := range []string{"refuse", "drop"} {
		t.Run(action, func(t *testing.T) {
			h := start(t, []string{up.Addr()}, func(c *config.Config) {
				c.Access.Allow = []string{"127.0.0.1/32", "::1/128"}
				c.Access.Action = spec.AccessAction(action)
			})
			for _, n := range nets {
				if r := send(t, "127.0.0.1", h.addr, n, "ok.example."); r == nil || r.Rcode != dns.RcodeSuccess {
					t.Fatalf("%s: allowed client: %v", n, r)
				}
				r := send(t, "127.0.0.2", h.addr, n, "ok.example.")
				switch {
				case n == "tcp":
					// A TCP outsider is closed at accept, whatever the action.
					if r != nil {
						t.Errorf("%s: outside client got an answer: %v", n, r)
					}
				case action == "refuse":
					if r == nil || r.Rcode != dns.RcodeRefused {
						t.Errorf("%s: outside client got %v, want REFUSED", n, r)
					}
				case action == "drop":
					if r != nil {
						t.Errorf("%s: outside client got an answer: %v", n, r)
					}
				}
			}
		})
	}
}

func TestRateLimit(t *testing.T) {
	up := resolvertest.StartUpstream(t, resolvertest.Echo())
	for _, action := range []string{"drop", "truncate"} {
		t.Run(action, func(t *testing.T) {
			h := start(t, []string{up.Addr()}, func(c *config.Config) {
				c.Access.RateLimit = config.RateLimit{QPS: 1, Burst: 3, IPv4Prefix: 32, IPv6Prefix: 64, Exempt: []string{"127.0.0.9/32"}, Action: spec.RateLimitAction(action)}
			})
			answered, limited := 0, 0
			for i := 0; i < 6; i++ {
				r := send(t, "127.0.0.3", h.addr, "udp", "rl.example.")
				switch {
				case r == nil:
					limited++
				case r.Truncated:
					if action != "truncate" || len(r.Answer) != 0 {
						t.Errorf("unexpected truncated reply %v", r)
					}
					limited++
				default:
					answered++
				}
			}
			if answered != 3 || limited != 3 {
				t.Errorf("answered %d, limited %d; want 3 and 3 (burst 3, clock stopped)", answered, limited)
			}
			// Another client has its own bucket; an exempt one is never
			// limited; TCP is never limited.
			if r := send(t, "127.0.0.4", h.addr, "udp", "rl.example."); r == nil || r.Truncated {
				t.Errorf("other client limited: %v", r)
			}
			for i := 0; i < 6; i++ {
				if r := send(t, "127.0.0.9", h.addr, "udp", "rl.example."); r == nil || r.Truncated {
					t.Fatalf("exempt client limited at query %d", i)
				}
			}
			if r := send(t, "127.0.0.3", h.addr, "tcp", "rl.example."); r == nil || r.Rcode != dns.RcodeSuccess {
				t.Errorf("tcp from a limited client: %v", r)
			}
			h.clock.Add(2 * time.Second) // refill two tokens
			if r := send(t, "127.0.0.3", h.addr, "udp", "rl.example."); r == nil || r.Truncated {
				t.Errorf("after refill: %v", r)
			}
		})
	}
}

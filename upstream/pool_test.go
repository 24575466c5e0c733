package upstream

import (
	"net"
	"testing"
)

// TestUDPSocketsCounted checks the gauges behind
// jurisdns_upstream_udp_sockets{,_idle}. Not parallel: the counts are
// process-wide and the parallel tests run after this one.
func TestUDPSocketsCounted(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	p := &udpPool{raddr: pc.LocalAddr().(*net.UDPAddr)}
	open0, idle0 := UDPSockets()
	check := func(step string, open, idle int64) {
		t.Helper()
		o, i := UDPSockets()
		if o-open0 != open || i-idle0 != idle {
			t.Fatalf("%s: open %+d idle %+d, want %+d %+d", step, o-open0, i-idle0, open, idle)
		}
	}
	a, err := p.get()
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.get()
	if err != nil {
		t.Fatal(err)
	}
	check("two in use", 2, 0)
	p.put(a, true)
	check("one back in the pool", 2, 1)
	if c, err := p.get(); err != nil || c != a {
		t.Fatalf("get = %p, %v; want the idle socket %p", c, err, a)
	}
	check("taken again", 2, 0)
	p.put(a, false) // an error: closed
	check("closed after an error", 1, 0)
	b.uses = udpMaxUses
	p.put(b, true) // used up: closed
	check("closed when used up", 0, 0)
	var used []*pooledUDP
	for range udpMaxIdle + 2 {
		c, err := p.get()
		if err != nil {
			t.Fatal(err)
		}
		used = append(used, c)
	}
	check("in use", udpMaxIdle+2, 0)
	for _, c := range used {
		p.put(c, true)
	}
	check("back, the pool full", udpMaxIdle, udpMaxIdle) // the two beyond udpMaxIdle closed
	p.close()
	check("after close", 0, 0)
}

package upstream_test

import (
	"context"
	"net"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/upstream"
)

// startReflector answers every UDP query on 127.0.0.1 with the query
// itself, QR set: the cheapest correct upstream, so that a benchmark
// measures the client's side.
func startReflector(tb testing.TB) string {
	tb.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = pc.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			n, addr, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if n < 12 {
				continue
			}
			buf[2] |= 0x80
			_, _ = pc.WriteToUDPAddrPort(buf[:n], addr)
		}
	}()
	return pc.LocalAddr().String()
}

// cpuTime is the CPU (user and system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkGroupUDPParallel measures a query through a Group to one udp://
// upstream (a reflector in the process) with 16 queries in flight per
// core, as the miss path sends them: a context with the query's deadline,
// a fresh name each time. cpu-ns/op is the process's CPU per query (the
// reflector's included), steadier than ns/op on a shared machine.
func BenchmarkGroupUDPParallel(b *testing.B) {
	g := reflectorGroup(b)
	var seq atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(16)
	cpu0 := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m := new(dns.Msg)
			m.SetQuestion("host"+strconv.FormatInt(seq.Add(1), 10)+".example.", dns.TypeA)
			m.SetEdns0(1232, false)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			if _, err := g.Exchange(ctx, m); err != nil {
				b.Error(err)
			}
			cancel()
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

// BenchmarkGroupUDPSerial is BenchmarkGroupUDPParallel one query at a time:
// ns/op is the round trip.
func BenchmarkGroupUDPSerial(b *testing.B) {
	g := reflectorGroup(b)
	b.ReportAllocs()
	cpu0 := cpuTime()
	n := 0
	for b.Loop() {
		n++
		m := new(dns.Msg)
		m.SetQuestion("host"+strconv.Itoa(n)+".example.", dns.TypeA)
		m.SetEdns0(1232, false)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if _, err := g.Exchange(ctx, m); err != nil {
			b.Error(err)
		}
		cancel()
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(n), "cpu-ns/op")
}

// reflectorGroup is a Group of one udp:// upstream, a reflector in the
// process, closed when b ends.
func reflectorGroup(b *testing.B) *upstream.Group {
	b.Helper()
	u, err := upstream.Parse(startReflector(b), upstream.Options{})
	if err != nil {
		b.Fatal(err)
	}
	g, err := upstream.NewGroup([]upstream.Upstream{u}, upstream.GroupOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = g.Close() })
	return g
}

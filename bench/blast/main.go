// Command blast is bench/run.sh's batched DNS load generator: a closed loop
// over a few UDP sockets that sends with sendmmsg and reads with recvmmsg
// (on Linux, on sockets outside Go's poller: see io_linux.go), keeping a fixed number of
// queries in flight on each socket. On one core dnsperf tops out near what
// a fast server answers (it costs about as much CPU per query as the
// server), so it cannot show a server faster than itself; blast spends far
// less per query and can.
//
//	blast -server 127.0.0.1:5303 -queries names.txt -duration 10s
//
// The query file is dnsperf's format: "name type" per line ("example.com A").
// Every query is packed once at start; sending only writes a new ID. An
// answer counts when its ID is one in flight on that socket and its question
// is the one sent; a query without an answer within -timeout is lost. The
// last line is machine-readable:
//
//	blast sent=N answered=N lost=N mismatched=N qps=N p50_ms=N p99_ms=N
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

func main() {
	var o options
	flag.StringVar(&o.server, "server", "127.0.0.1:5303", "UDP address of the server under test")
	queries := flag.String("queries", "", "query file: one \"name type\" per line (dnsperf's format)")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "how long to send")
	flag.IntVar(&o.sockets, "sockets", 4, "UDP sockets (each its own goroutine and source port)")
	flag.IntVar(&o.outstanding, "outstanding", 64, "queries in flight per socket")
	flag.IntVar(&o.batch, "batch", 32, "datagrams per sendmmsg/recvmmsg")
	flag.DurationVar(&o.timeout, "timeout", 2*time.Second, "an answer later than this is lost")
	edns := flag.Bool("edns", true, "send an OPT record (1232 bytes, like dnsperf -e)")
	flag.Parse()
	if *queries == "" {
		log.Fatal("blast: -queries is required")
	}
	qs, err := readQueries(*queries, *edns)
	if err != nil {
		log.Fatal(err)
	}
	o.queries = qs
	r, err := run(context.Background(), o)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(r)
}

type options struct {
	server      string
	queries     [][]byte // packed queries, ID 0
	duration    time.Duration
	sockets     int
	outstanding int
	batch       int
	timeout     time.Duration
}

// result is what one run measured.
type result struct {
	sent, answered, lost, mismatched int
	elapsed                          time.Duration
	latencies                        []time.Duration // a sample, sorted, for the percentiles
}

func (r result) String() string {
	p := func(q float64) float64 {
		if len(r.latencies) == 0 {
			return 0
		}
		return float64(r.latencies[int(q*float64(len(r.latencies)-1))].Microseconds()) / 1000
	}
	return fmt.Sprintf("blast sent=%d answered=%d lost=%d mismatched=%d qps=%.0f p50_ms=%.3f p99_ms=%.3f",
		r.sent, r.answered, r.lost, r.mismatched, float64(r.answered)/r.elapsed.Seconds(), p(0.50), p(0.99))
}

// readQueries packs every "name type" line of path.
func readQueries(path string, edns bool) ([][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		qtype := dns.TypeA
		if len(fields) > 1 {
			t, ok := dns.StringToType[strings.ToUpper(fields[1])]
			if !ok {
				return nil, fmt.Errorf("%s:%d: unknown type %q", path, line, fields[1])
			}
			qtype = t
		}
		b, err := packQuery(fields[0], qtype, edns)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %v", path, line, err)
		}
		out = append(out, b)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no queries", path)
	}
	return out, nil
}

func packQuery(name string, qtype uint16, edns bool) ([]byte, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.Id = 0
	if edns {
		m.SetEdns0(1232, false)
	}
	return m.Pack()
}

// run drives o.sockets closed loops for o.duration, then waits up to
// o.timeout for the answers still in flight.
func run(ctx context.Context, o options) (result, error) {
	if o.sockets < 1 || o.outstanding < 1 || o.outstanding > 32768 || o.batch < 1 || len(o.queries) == 0 {
		return result{}, errors.New("blast: need sockets ≥ 1, 1 ≤ outstanding ≤ 32768, batch ≥ 1 and queries")
	}
	raddr, err := net.ResolveUDPAddr("udp", o.server)
	if err != nil {
		return result{}, err
	}
	var (
		mu    sync.Mutex
		total result
		wg    sync.WaitGroup
		errs  []error
	)
	start := time.Now()
	stopSend := start.Add(o.duration)
	for i := range o.sockets {
		c, err := net.DialUDP("udp", nil, raddr)
		if err != nil {
			return result{}, err
		}
		_ = c.SetReadBuffer(4 << 20)
		_ = c.SetWriteBuffer(4 << 20)
		bc, err := newBatchConn(c, o.batch)
		if err != nil {
			return result{}, err
		}
		l := &loop{o: o, c: bc, rng: rand.New(rand.NewPCG(uint64(i), uint64(start.UnixNano())))}
		wg.Go(func() {
			defer bc.close()
			r, err := l.run(ctx, stopSend)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			}
			total.sent += r.sent
			total.answered += r.answered
			total.lost += r.lost
			total.mismatched += r.mismatched
			total.latencies = append(total.latencies, r.latencies...)
		})
	}
	wg.Wait()
	total.elapsed = o.duration
	slices.Sort(total.latencies)
	return total, errors.Join(errs...)
}

// loop is one socket's closed loop. Queries in flight are kept by ID in a
// table of 65536 slots.
type loop struct {
	o   options
	c   batchConn
	rng *rand.Rand

	sentAt   [65536]time.Time // zero: the ID is free
	query    [65536]int32     // index into o.queries of the query sent with that ID
	inflight int
	next     int // the next query of o.queries to send
	r        result
}

const sampleEvery = 16 // keep one latency in 16 for the percentiles

func (l *loop) run(ctx context.Context, stopSend time.Time) (result, error) {
	outBufs := make([][]byte, l.o.batch)
	for i := range outBufs {
		outBufs[i] = make([]byte, 0, 512)
	}
	lastExpire := time.Now()
	var t time.Time // when the batch being read came: read once per batch
	got := func(b []byte) {
		if t.IsZero() {
			t = time.Now()
		}
		l.answer(b, t)
	}
	for {
		now := time.Now()
		sending := now.Before(stopSend) && ctx.Err() == nil
		if !sending && l.inflight == 0 {
			return l.r, nil
		}
		if !sending && now.After(stopSend.Add(l.o.timeout)) {
			l.expire(now.Add(l.o.timeout + time.Second)) // everything left is lost
			return l.r, nil
		}
		// Fill the window.
		n := 0
		for sending && l.inflight+n < l.o.outstanding && n < len(outBufs) {
			id := l.freeID()
			qi := l.next
			l.next = (l.next + 1) % len(l.o.queries)
			b := append(outBufs[n][:0], l.o.queries[qi]...)
			binary.BigEndian.PutUint16(b, id)
			outBufs[n] = b
			l.sentAt[id] = now
			l.query[id] = int32(qi)
			n++
		}
		if n > 0 {
			if err := l.c.write(outBufs[:n]); err != nil {
				return l.r, fmt.Errorf("blast: send: %w", err)
			}
		}
		l.inflight += n
		l.r.sent += n
		// Read what has come; wait longer only when the window is full.
		wait := 50 * time.Microsecond
		if l.inflight >= l.o.outstanding || !sending {
			wait = time.Millisecond
		}
		t = time.Time{}
		if err := l.c.read(wait, got); err != nil {
			return l.r, fmt.Errorf("blast: receive: %w", err)
		}
		if t.IsZero() {
			t = time.Now()
		}
		if t.Sub(lastExpire) > 10*time.Millisecond {
			l.expire(t)
			lastExpire = t
		}
	}
}

// batchConn sends and reads the datagrams of one connected UDP socket in
// batches.
type batchConn interface {
	// write sends every datagram of bufs.
	write(bufs [][]byte) error
	// read hands got each datagram there is, up to a batch; if there is
	// none, it waits up to wait for some.
	read(wait time.Duration, got func(b []byte)) error
	close() error
}

// freeID picks a random ID not in flight (the window is at most half of the
// ID space, so this ends fast).
func (l *loop) freeID() uint16 {
	for {
		id := uint16(l.rng.Uint32())
		if l.sentAt[id].IsZero() {
			return id
		}
	}
}

// answer matches one reply: QR set, an ID in flight, the question sent.
func (l *loop) answer(b []byte, now time.Time) {
	if len(b) < 12 {
		l.r.mismatched++
		return
	}
	id := binary.BigEndian.Uint16(b)
	at := l.sentAt[id]
	if at.IsZero() || b[2]&0x80 == 0 {
		l.r.mismatched++
		return
	}
	q := l.o.queries[l.query[id]]
	qlen := questionLen(q)
	if qlen == 0 || len(b) < 12+qlen || string(b[12:12+qlen]) != string(q[12:12+qlen]) {
		l.r.mismatched++
		return
	}
	l.sentAt[id] = time.Time{}
	l.inflight--
	l.r.answered++
	if l.r.answered%sampleEvery == 0 {
		l.r.latencies = append(l.r.latencies, now.Sub(at))
	}
}

// expire counts as lost every query older than the timeout.
func (l *loop) expire(now time.Time) {
	if l.inflight == 0 {
		return
	}
	limit := now.Add(-l.o.timeout)
	for id := range l.sentAt {
		if at := l.sentAt[id]; !at.IsZero() && at.Before(limit) {
			l.sentAt[id] = time.Time{}
			l.inflight--
			l.r.lost++
		}
	}
}

// questionLen is the length of the question section of the packed query q
// (uncompressed name, type, class), or 0 if it does not parse.
func questionLen(q []byte) int {
	i := 12
	for i < len(q) {
		l := int(q[i])
		if l == 0 {
			if i+5 > len(q) {
				return 0
			}
			return i + 5 - 12
		}
		if l > 63 {
			return 0
		}
		i += l + 1
	}
	return 0
}

package resolver

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/blocklists"
	"github.com/jurisdns/jurisdns/internal/dnsname"
	"github.com/jurisdns/jurisdns/internal/udpsock"
	"github.com/jurisdns/jurisdns/policy"
	"github.com/jurisdns/jurisdns/ratelimit"
)

const (
	// maxUDPSize is the largest UDP answer we send and the size we
	// advertise (DNS flag day 2020).
	maxUDPSize = 1232
	// maxInflight and maxInflightPerClient are the defaults of
	// server.max_inflight and server.max_inflight_per_client.
	maxInflight          = 4096
	maxInflightPerClient = 1024
	// maxTCPPerClient is the default of server.max_tcp_per_client.
	maxTCPPerClient = 64
)

// Server serves DNS over UDP and TCP on every listen address. Every query
// uses the runtime snapshot it loaded when it arrived; Swap installs a new
// one atomically.
type Server struct {
	rt    atomic.Pointer[Runtime]
	cache *Cache
	log   *slog.Logger
	now   func() time.Time
	// wallClock is set when now is time.Now: a time.Now read for a
	// duration then doubles as the clock's reading.
	wallClock bool
	obs       Observer
	audit     policy.Auditor
	qlog      QueryLogger

	notify NotifyFunc // NOTIFY handler (xfr.go)
	xfr    XfrFunc    // zone transfer handler of the stream transports (xfr.go)

	budget  budget         // slow-path queries in flight, UDP and TCP
	jobs    chan udpJob    // slow-path UDP queries for idle workers
	quit    chan struct{}  // closed by Shutdown: idle workers exit
	wg      sync.WaitGroup // listener loops
	senders []*udpSender   // of the UDP listener sockets, started by Serve
	sendq   chan struct{}  // closed by Shutdown once the queries are over: the senders write what is left and stop
	qwg     sync.WaitGroup // in-flight slow-path queries
	closing atomic.Bool

	mu        sync.Mutex
	udp       []udpsock.Conn
	tcp       []net.Listener
	conns     map[*tcpConn]struct{}
	perClient map[netip.Addr]int // TCP connections per client address
	maxTCP    int
	addrs     []string
}

// ServerOptions configures a Server.
type ServerOptions struct {
	// Cache is shared across runtimes (it survives reloads); nil disables
	// caching.
	Cache *Cache
	// Logger receives the server's logs; per-query logs are at debug.
	Logger *slog.Logger
	// Now is the clock (tests inject one).
	Now func() time.Time
	// Observer receives metrics events; nil means none.
	Observer Observer
	// Auditor receives policy hits for the enforcement log; nil means none.
	Auditor policy.Auditor
	// QueryLogger receives every answered query; nil means none.
	QueryLogger QueryLogger
}

// NewServer returns a server. Install a runtime (NewRuntime, Swap), then
// call Listen and Serve.
func NewServer(opts ServerOptions) *Server {
	s := &Server{
		cache:     opts.Cache,
		log:       opts.Logger,
		now:       opts.Now,
		obs:       opts.Observer,
		audit:     opts.Auditor,
		qlog:      opts.QueryLogger,
		jobs:      make(chan udpJob),
		quit:      make(chan struct{}),
		sendq:     make(chan struct{}),
		conns:     map[*tcpConn]struct{}{},
		perClient: map[netip.Addr]int{},
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if s.now == nil {
		s.now = time.Now
		s.wallClock = true
	}
	if s.obs == nil {
		s.obs = nopObserver{}
	}
	return s
}

// Runtime returns the current snapshot.
func (s *Server) Runtime() *Runtime { return s.rt.Load() }

// RateLimitStats returns the state of the current runtime's rate limiter
// (the zero Stats when limiting is off or before the first runtime). A
// reload that changes access.rate_limit starts a new limiter.
func (s *Server) RateLimitStats() ratelimit.Stats {
	if rt := s.rt.Load(); rt != nil {
		return rt.limiter.Stats()
	}
	return ratelimit.Stats{}
}

// Swap installs rt for every query that arrives from now on and returns the
// previous snapshot, which it retires: queries in flight finish on the one
// they loaded, and the retired runtime is closed when the last of them is
// done (at the latest after its query timeout). The server owns rt from
// now on; Shutdown closes it. The returned runtime may still be read (its
// Policy, its Config) but not installed again.
func (s *Server) Swap(rt *Runtime) *Runtime {
	old := s.rt.Swap(rt)
	if old != nil && old != rt {
		old.retire()
	}
	return old
}

// acquire returns the current runtime, entered (see Runtime.enter): the
// caller must leave it. nil when the current runtime is retired, which
// happens only once Shutdown closed it.
func (s *Server) acquire() *Runtime {
	for {
		rt := s.rt.Load()
		if rt == nil {
			return nil
		}
		if rt.enter() {
			return rt
		}
		if s.rt.Load() == rt {
			return nil
		}
	}
}

// Cache returns the server's cache (nil when caching is off).
func (s *Server) Cache() *Cache { return s.cache }

// Addrs returns the bound listen addresses (after Listen), useful with port 0.
func (s *Server) Addrs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.addrs...)
}

// Listen binds UDP and TCP on every address. With port 0 the UDP and TCP
// sockets of one address share the port the kernel picked for UDP.
// workers UDP sockets (SO_REUSEPORT) are opened per address; 0 means one
// per CPU.
func (s *Server) Listen(addrs []string, workers, maxTCP int) error {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	if maxTCP <= 0 {
		maxTCP = 1000
	}
	s.mu.Lock()
	s.maxTCP = maxTCP
	s.mu.Unlock()
	lc := net.ListenConfig{Control: reusePort}
	for _, a := range addrs {
		var err error
		// With port 0 the kernel picks the UDP port; TCP may find it
		// taken by someone else: try again with another port.
		for try := 0; try < 20; try++ {
			if err = s.listenOne(lc, a, workers); err == nil || !strings.HasSuffix(a, ":0") {
				break
			}
		}
		if err != nil {
			s.closeListeners()
			return err
		}
	}
	return nil
}

// listenOne binds the UDP sockets and the TCP listener of one address.
func (s *Server) listenOne(lc net.ListenConfig, a string, workers int) error {
	first, err := lc.ListenPacket(context.Background(), "udp", a)
	if err != nil {
		return fmt.Errorf("listen udp %s: %w", a, err)
	}
	bound := first.LocalAddr().String()
	conns := []udpsock.Conn{udpsock.Take(first.(*net.UDPConn))}
	for i := 1; i < workers; i++ {
		pc, err := lc.ListenPacket(context.Background(), "udp", bound)
		if err != nil {
			break // SO_REUSEPORT unavailable: one socket serves all
		}
		conns = append(conns, udpsock.Take(pc.(*net.UDPConn)))
	}
	l, err := net.Listen("tcp", bound)
	if err != nil {
		for _, c := range conns {
			_ = c.Close()
		}
		return fmt.Errorf("listen tcp %s: %w", bound, err)
	}
	s.mu.Lock()
	s.udp = append(s.udp, conns...)
	s.tcp = append(s.tcp, l)
	s.addrs = append(s.addrs, bound)
	s.mu.Unlock()
	return nil
}

// Serve starts the read loops of every bound socket and returns at once.
func (s *Server) Serve() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.udp {
		snd := newUDPSender(c)
		s.senders = append(s.senders, snd)
		go snd.run(s.sendq)
		s.wg.Add(1)
		go s.serveUDP(c, snd)
	}
	for _, l := range s.tcp {
		s.wg.Add(1)
		go s.serveTCP(l)
	}
	s.wg.Add(1)
	go s.relieve()
}

// Shutdown stops accepting queries, waits for in-flight queries (up to
// ctx) so their answers still go out, then closes every socket and the
// current runtime (its upstream connections).
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closing.Swap(true) { // under mu: begin cannot add to qwg after this
		close(s.quit)
	}
	s.mu.Unlock()
	// Stop reading: UDP reads return at once (the sockets stay open for the
	// answers still to come); TCP stops accepting.
	s.mu.Lock()
	for _, c := range s.udp {
		_ = c.SetReadDeadline(time.Now())
	}
	for _, l := range s.tcp {
		_ = l.Close()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.qwg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	// The answers of the queries that are over go out before the sockets
	// close; a query still running after that writes its own.
	s.mu.Lock()
	senders := s.senders
	if len(senders) > 0 {
		close(s.sendq)
		s.senders = nil
	}
	s.mu.Unlock()
	for _, snd := range senders {
		<-snd.done
	}
	s.closeListeners()
	s.mu.Lock()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	if rt := s.rt.Load(); rt != nil {
		rt.retire() // waits for prefetches still running
		select {
		case <-rt.Closed():
		case <-ctx.Done():
			_ = rt.Close()
			if err == nil {
				err = ctx.Err()
			}
		}
	}
	return err
}

// begin registers an in-flight query; false once Shutdown has begun, when
// the query must not start.
func (s *Server) begin() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false
	}
	s.qwg.Add(1)
	return true
}

func (s *Server) closeListeners() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.udp {
		_ = c.Close()
	}
	for _, l := range s.tcp {
		_ = l.Close()
	}
}

// worker holds the per-goroutine buffers of a UDP read loop.
type worker struct {
	in   []byte
	out  []byte
	name []byte
	// ev and rule are reused for the policy event of every blocked query
	// on the fast path (see policy.Auditor: the event is valid only during the
	// call).
	ev   policy.Event
	rule []byte
	// qev is reused for the query log event of every fast-path answer
	// (see QueryLogger: the event is valid only during the call).
	qev QueryEvent
	// v is the policy's verdict of the query (classify writes it; cleared
	// after a query it matched, so that it keeps no policy alive).
	v policy.Verdict
	// missUp is set by fast, to the upstreams of the name, when the query
	// passed every check and only its answer was not cached: missUDP can
	// resolve it with the runtime fast checked it with. missQ, missName (in
	// name's buffer) and missClients are what fast read of that query, for
	// startMiss, which runs right after it in the same goroutine.
	missUp      Exchanger
	missQ       question
	missName    []byte
	missClients *policy.ClientSet
	// snd writes the slow path's answers of a listener loop's socket.
	snd *udpSender
	// hit is the cache entry fast loads every lookup into.
	hit entry
	// batchNow, when set, is the time fastAnswer answers at instead of
	// reading the clock: the batched UDP loop reads it once per
	// recvmmsg batch (the queries of one batch arrived together), which
	// saves a clock read per query. Zero elsewhere.
	batchNow time.Time
}

// now is the time a query handled by w is answered at: w's batch time,
// else the server's clock.
func (w *worker) now(s *Server) time.Time {
	if !w.batchNow.IsZero() {
		return w.batchNow
	}
	return s.now()
}

func (s *Server) serveUDP(c udpsock.Conn, snd *udpSender) {
	defer s.wg.Done()
	if s.serveUDPBatch(c, snd) {
		return
	}
	w := &worker{in: make([]byte, 65535), out: make([]byte, 0, 4096), name: make([]byte, 0, 256), snd: snd}
	for {
		n, addr, err := c.ReadFromUDPAddrPort(w.in)
		if err != nil {
			if s.closing.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		out, stop := s.handleUDP(w, c, w.in[:n], addr)
		if out != nil {
			_, _ = c.WriteToUDPAddrPort(out, addr)
		}
		if stop {
			return
		}
	}
}

// handleUDP handles one UDP packet: rate limit, fast path, or the slow path
// in its own goroutine (which writes its own answer). It returns the answer
// to send now, if any, and stop when the server is shutting down.
func (s *Server) handleUDP(w *worker, c udpsock.Conn, pkt []byte, addr netip.AddrPort) (out []byte, stop bool) {
	rt := s.rt.Load() // the query's one load of the snapshot
	client := addr.Addr().Unmap()
	// The ACL comes first: an outsider gets REFUSED, or with action drop
	// nothing at all (no TC=1 from the rate limiter, no overload SERVFAIL).
	if !rt.allowed(client) {
		if rt.AccessDrop {
			s.obs.Refused("acl")
			return nil, false
		}
		return s.slow(pkt, addr, UDP), false // REFUSED: no upstream work
	}
	if rt.limiter != nil && !rt.limiter.Allow(client) {
		// Over the client's rate: drop, or TC=1 to push it to TCP
		// (which cannot be spoofed and is not limited).
		s.obs.RateLimited()
		if rt.limitTruncate {
			out = tcReply(w.out, pkt)
			if out != nil {
				w.out = out[:0]
			}
			return out, false
		}
		return nil, false
	}
	if out, ok := s.fast(w, rt, pkt, addr); ok {
		return out, false
	}
	// The slow path parses the whole message and may wait for an
	// upstream: it runs in a worker goroutine, bounded by the budget.
	if !s.budget.acquire(client, rt.maxInflight, rt.maxInflightPerClient) {
		s.obs.Overloaded()
		return overloadReply(pkt), false
	}
	if !s.begin() {
		s.budget.release(client)
		return nil, true
	}
	j := udpJob{addr: addr, c: c, snd: w.snd, rt: rt, up: w.missUp}
	if !rt.enter() { // rt was retired since the load: take its successor
		if j.rt, j.up = s.acquire(), nil; j.rt == nil {
			s.budget.release(client)
			s.qwg.Done()
			return nil, false
		}
	}
	if j.up != nil && s.startMiss(w, &j, pkt) {
		return nil, false // in flight upstream: its reply finishes it
	}
	j.pkt = append([]byte(nil), pkt...) // pkt is the read loop's buffer
	select {
	case s.jobs <- j: // an idle worker took it
	default:
		go s.udpWorker(j)
	}
	return nil, false
}

// udpJob is a UDP query for the slow path.
type udpJob struct {
	pkt  []byte
	addr netip.AddrPort
	c    udpsock.Conn
	snd  *udpSender // writes the answer; nil: the worker writes it to c
	// rt is the runtime the query uses, entered (the worker leaves it).
	rt *Runtime
	// up is set when fast found the query missable with rt: the upstreams
	// of its name.
	up Exchanger
	// h is set when an asyncMiss hands the query over (see handover).
	h *handover
}

// workerIdle is how long a slow-path worker waits for another query before
// it exits.
const workerIdle = 5 * time.Second

// udpWorker runs slow-path UDP queries, j first, then whatever handleUDP
// hands it until it has been idle for workerIdle. Long-lived workers keep
// their grown stacks: a new goroutine per query spends a tenth of a cache
// miss growing its stack through the upstream exchange.
func (s *Server) udpWorker(j udpJob) {
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	w := &worker{out: make([]byte, 0, 4096), name: make([]byte, 0, 256)}
	for {
		var out []byte
		if j.up != nil {
			out = s.missUDPFrom(w, j.pkt, j.addr, j.rt, j.up, j.h)
		} else {
			out = s.resolve(j.rt, j.pkt, j.addr, UDP)
		}
		if out != nil {
			if j.snd != nil {
				j.snd.send(out, j.addr)
			} else {
				_, _ = j.c.WriteToUDPAddrPort(out, j.addr)
			}
		}
		j.rt.leave()
		s.budget.release(j.addr.Addr())
		s.qwg.Done()
		// A job already waiting is taken without touching the idle
		// timer (a Reset and a select on its channel cost a timer-heap
		// update each).
		select {
		case j = <-s.jobs:
			continue
		default:
		}
		idle.Reset(workerIdle)
		select {
		case j = <-s.jobs:
		case <-idle.C:
			return
		case <-s.quit:
			return
		}
	}
}

// overloadReply is a SERVFAIL echoing the header and question, or nil when
// the packet does not even look like a query.
func overloadReply(pkt []byte) []byte {
	m := new(dns.Msg)
	if err := m.Unpack(pkt); err != nil || m.Response || len(m.Question) != 1 {
		return nil
	}
	r := new(dns.Msg)
	r.SetRcode(m, dns.RcodeServerFailure)
	r.RecursionAvailable = true
	out, err := r.Pack()
	if err != nil {
		return nil
	}
	return out
}

// fast answers a UDP query on the wire fast path (see fastAnswer).
func (s *Server) fast(w *worker, rt *Runtime, pkt []byte, addr netip.AddrPort) ([]byte, bool) {
	return s.fastAnswer(w, rt, pkt, addr, UDP)
}

// fastAnswer answers, without a dns.Msg, the queries whose link (classify)
// it can write byte for byte as the full path would: blocks and fresh
// cache hits. It returns ok=false for everything else, and then sets
// w.missUp when the query is a plain cache miss for the forwarder (the UDP
// miss path resolves it with rt). The reply is fitted to the transport:
// over UDP an answer too big for the client goes to the full path (which
// truncates it); over DoT and DoH it is padded (RFC 8467). It lives in
// w.out until w's next query.
func (s *Server) fastAnswer(w *worker, rt *Runtime, pkt []byte, addr netip.AddrPort, proto Proto) ([]byte, bool) {
	w.missUp, w.missClients = nil, nil
	q, canon, ok := parseQuery(pkt, w.name)
	if !ok || q.qclass != dns.ClassINET || q.ednsVer != 0 || s.cache == nil || localOnly(q.qtype) || s.xfrType(q.qtype) {
		return nil, false
	}
	w.name = canon[:0]
	client := addr.Addr().Unmap()
	if !rt.allowed(client) {
		return nil, false
	}
	name := unsafe.String(unsafe.SliceData(canon), len(canon))
	now := w.now(s)
	cs := rt.Policy.ClientSet(client)
	v := &w.v
	r := rt.classify(name, q.qtype, cs, now, v)
	if v.Decision != policy.DecisionNone || v.NReported > 0 {
		// The verdict refers to the policy's data: keep none of it in w.
		defer func() { *v = policy.Verdict{} }()
	}
	if v.NReported > 0 { // report-mode hits: their events are the full path's
		return nil, false
	}
	var out []byte
	switch r.link {
	case linkBlock:
		if out, ok = fastBlock(w.out, pkt, &q, name, v, rt.soaTail(v.Jurisdiction), proto != UDP); !ok {
			return nil, false
		}
		w.out = out[:0]
		if s.audit != nil || s.qlog != nil {
			s.fastPolicyEvent(w, rt, now, client, name, q.qtype, v)
		}
		rcode := int(binary.BigEndian.Uint16(out[2:]) & 0xF)
		s.obs.Answered(proto, q.qtype, rcode)
		if s.qlog != nil {
			w.qev = QueryEvent{Time: now, Client: client, Port: addr.Port(), Proto: proto, Name: string(canon), Qtype: q.qtype,
				Rcode: rcode, Blocked: true, Query: pkt, Response: out, Policy: &w.ev}
			s.qlog.Query(&w.qev)
			w.qev = QueryEvent{}
		}
		w.ev = policy.Event{} // keep nothing alive
	case linkForward:
		e := s.cache.load(&w.hit, name, q.qtype, q.do, q.flags&flagCD != 0)
		if e == nil || !e.fresh(now) {
			w.missUp = rt.forwardTo(r.fwd)
			w.missQ, w.missName, w.missClients = q, canon, cs
			return nil, false
		}
		if cnameListed(rt, e, cs, now) || (proto == UDP && !fitsUDP(e, &q)) {
			return nil, false
		}
		out = e.appendReply(w.out, pkt, &q, now, 0, false)
		w.out = out[:0]
		rt.maybePrefetch(e, now)
		s.obs.CacheHit()
		s.obs.Answered(proto, q.qtype, e.rcode)
		if s.qlog != nil {
			w.qev = QueryEvent{Time: now, Client: client, Port: addr.Port(), Proto: proto, Name: e.name, Qtype: q.qtype, Rcode: e.rcode, Cached: true,
				Query: pkt, Response: out}
			s.qlog.Query(&w.qev)
			w.qev = QueryEvent{}
		}
	default:
		return nil, false
	}
	if proto == DoT || proto == DoH {
		out = appendPadding(out)
		w.out = out[:0]
	}
	return out, true
}

// fastPolicyEvent hands the enforcement of verdict v to the auditor
// without allocating: the event and the rule text live in w, the name in
// the fast path's buffer. The event stays in w.ev for the query log; the
// caller clears it.
func (s *Server) fastPolicyEvent(w *worker, rt *Runtime, now time.Time, client netip.Addr, name string, qtype uint16, v *policy.Verdict) {
	rule := v.Rule
	if v.Kind == blocklists.Below { // v.RuleText() without the concatenation
		w.rule = append(append(w.rule[:0], "*."...), v.Rule...)
		rule = unsafe.String(unsafe.SliceData(w.rule), len(w.rule))
	}
	w.ev = newPolicyEvent(rt, now, client, name, qtype, v, v.Jurisdiction, rule, v.Action.String(), "enforce")
	if s.audit != nil {
		s.audit.PolicyEvent(&w.ev)
	}
}

// slow answers a query with the current runtime (see resolve).
func (s *Server) slow(pkt []byte, client netip.AddrPort, proto Proto) []byte {
	rt := s.acquire()
	if rt == nil {
		return nil // shut down
	}
	defer rt.leave()
	return s.resolve(rt, pkt, client, proto)
}

// resolve parses a query fully, applies the edge checks and runs the engine
// of rt, which the caller has entered. It returns the packed reply, or nil
// to send nothing.
func (s *Server) resolve(rt *Runtime, pkt []byte, client netip.AddrPort, proto Proto) []byte {
	m := new(dns.Msg)
	if err := m.Unpack(pkt); err != nil {
		return s.formErr(pkt, proto)
	}
	if m.Response {
		s.obs.Dropped("response")
		return nil // QR=1: never answer a response (reflection)
	}
	if m.Opcode == dns.OpcodeNotify && s.notify != nil { // RPZ feeds (xfr.go)
		if out, ok := s.notify(pkt, m, client); ok {
			return out
		}
	}
	if proto == UDP { // rpz_out SOA probes (xfr.go)
		if out, ok := s.udpXfr(pkt, m, client); ok {
			return out
		}
	}
	addr := client.Addr().Unmap()
	var resp *dns.Msg
	switch {
	case !rt.allowed(addr):
		s.obs.Refused("acl")
		if rt.AccessDrop {
			return nil
		}
		resp = rcodeReply(m, dns.RcodeRefused)
	case m.Opcode != dns.OpcodeQuery:
		resp = rcodeReply(m, dns.RcodeNotImplemented)
	case len(m.Question) != 1:
		resp = rcodeReply(m, dns.RcodeFormatError)
	case countOPT(m) > 1:
		resp = rcodeReply(m, dns.RcodeFormatError) // RFC 6891 §6.1.1
	case m.IsEdns0() != nil && m.IsEdns0().Version() != 0:
		// RFC 6891 §6.1.3: BADVERS, with our own OPT at version 0.
		resp = rcodeReply(m, dns.RcodeBadVers)
	case m.Question[0].Qclass != dns.ClassINET:
		resp = rcodeReply(m, dns.RcodeRefused)
	case m.Question[0].Qtype == 0:
		resp = rcodeReply(m, dns.RcodeFormatError) // reserved (RFC 6895 §3.1)
	}
	if resp != nil {
		return s.finish(m, nil, resp, proto)
	}
	q := m.Question[0]
	req := &Request{
		Msg:    m,
		Client: netip.AddrPortFrom(addr, client.Port()),
		Proto:  proto,
		Name:   dnsname.Canonical(q.Name),
		Qtype:  q.Qtype,
		CD:     m.CheckingDisabled,
	}
	if s.qlog != nil {
		req.Wire = pkt
	}
	if opt := m.IsEdns0(); opt != nil {
		req.EDNS = true
		req.DO = opt.Do()
	}
	req.Clients = rt.Policy.ClientSet(addr)
	ctx, cancel := context.WithTimeout(context.Background(), rt.QueryTimeout)
	defer cancel()
	start := time.Now()
	resp, err := s.engine(ctx, rt, req)
	return s.reply(m, req, resp, err, start)
}

// reply packs the engine's answer (or its error, as SERVFAIL with the EDE the
// error carries) to query m, counts and logs it. It returns nil to send
// nothing (policy action drop).
func (s *Server) reply(m *dns.Msg, req *Request, resp *dns.Msg, err error, start time.Time) []byte {
	if err != nil {
		q := m.Question[0]
		s.log.Debug("query failed", "name", q.Name, "type", dns.TypeToString[q.Qtype], "client", req.Client.Addr(), "err", err)
		resp = rcodeReply(m, dns.RcodeServerFailure)
		var ede *EDEError
		if errors.As(err, &ede) {
			addEDE(resp, ede.Code, ede.Text)
		}
	}
	if resp == nil {
		s.obs.Dropped("policy")
		if s.qlog != nil {
			s.qlog.Query(&QueryEvent{Time: s.now(), Client: req.Client.Addr(), Port: req.Client.Port(), Proto: req.Proto, Name: req.Name,
				Qtype: req.Qtype, Duration: time.Since(start), Blocked: req.Blocked, Query: req.Wire, Dropped: true, Policy: req.Policy})
		}
		return nil
	}
	out := s.finish(m, req, resp, req.Proto)
	if s.qlog != nil {
		s.qlog.Query(&QueryEvent{Time: s.now(), Client: req.Client.Addr(), Port: req.Client.Port(), Proto: req.Proto, Name: req.Name, Qtype: req.Qtype,
			Rcode: resp.Rcode, Duration: time.Since(start), Cached: req.Cached, Blocked: req.Blocked,
			Query: req.Wire, Response: out, Policy: req.Policy})
	}
	return out
}

// countOPT counts the OPT records of m.
func countOPT(m *dns.Msg) int {
	n := 0
	for _, rr := range m.Extra {
		if rr.Header().Rrtype == dns.TypeOPT {
			n++
		}
	}
	return n
}

// rcodeReply is an empty reply with rcode to the query m.
func rcodeReply(m *dns.Msg, rcode int) *dns.Msg {
	r := new(dns.Msg)
	r.SetRcode(m, rcode)
	if len(m.Question) > 1 {
		r.Question = nil
	}
	return r
}

// formErr answers an unparseable query with FORMERR when at least its
// header is there and it is not a response; otherwise it is dropped.
func (s *Server) formErr(pkt []byte, proto Proto) []byte {
	if len(pkt) < hdrLen || binary.BigEndian.Uint16(pkt[2:])&flagQR != 0 {
		s.obs.Dropped("malformed")
		return nil
	}
	s.obs.Refused("malformed")
	out := make([]byte, hdrLen)
	copy(out, pkt[:4])
	flags := binary.BigEndian.Uint16(pkt[2:])
	flags = flagQR | flags&(0xF<<11) | flags&flagRD | flagRA | dns.RcodeFormatError
	binary.BigEndian.PutUint16(out[2:], flags)
	s.obs.Answered(proto, 0, dns.RcodeFormatError)
	return out
}

// finish turns the engine's answer into the reply for query m: the client's
// ID and question (case kept), reply header hygiene, EDNS mirrored with our
// size and the engine's EDE options, and the size fitted to the client.
func (s *Server) finish(m *dns.Msg, req *Request, resp *dns.Msg, proto Proto) []byte {
	resp.Id = m.Id
	resp.Response = true
	resp.Opcode = m.Opcode
	if len(m.Question) == 1 {
		resp.Question = m.Question
	}
	resp.RecursionDesired = m.RecursionDesired
	resp.CheckingDisabled = m.CheckingDisabled
	resp.RecursionAvailable = true
	if m.Opcode != dns.OpcodeQuery {
		// RA, AD and CD are defined for QUERY only (RFC 1035 §4.1.1,
		// RFC 4035 §3.2): a NOTIMP answer to another opcode clears them.
		resp.RecursionAvailable = false
		resp.CheckingDisabled = false
		resp.AuthenticatedData = false
	}
	resp.Zero = false
	resp.Truncated = false
	clientOpt := m.IsEdns0()
	if resp.AuthenticatedData && !(m.AuthenticatedData || (clientOpt != nil && clientOpt.Do())) {
		resp.AuthenticatedData = false
	}
	// Collect EDE options the engine attached, drop every OPT.
	var ede []dns.EDNS0
	extra := resp.Extra[:0]
	for _, rr := range resp.Extra {
		if o, ok := rr.(*dns.OPT); ok {
			for _, op := range o.Option {
				if op.Option() == dns.EDNS0EDE {
					ede = append(ede, op)
				}
			}
			continue
		}
		extra = append(extra, rr)
	}
	resp.Extra = extra
	limit := dns.MaxMsgSize
	if proto == UDP {
		limit = dns.MinMsgSize
	}
	if clientOpt != nil {
		o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT, Class: maxUDPSize}}
		o.SetDo(clientOpt.Do())
		o.Option = ede
		if resp.Rcode > 0xF {
			o.SetExtendedRcode(uint16(resp.Rcode))
		}
		resp.Extra = append(resp.Extra, o)
		if proto == UDP {
			limit = int(max(min(clientOpt.UDPSize(), maxUDPSize), dns.MinMsgSize))
		}
	} else if resp.Rcode > 0xF {
		resp.Rcode = dns.RcodeFormatError // BADVERS needs an OPT; cannot happen without one
	}
	resp.Compress = true
	if resp.Len() > limit {
		truncate(resp)
	}
	out, err := resp.Pack()
	if err != nil {
		s.log.Debug("packing reply failed", "err", err)
		r := rcodeReply(m, dns.RcodeServerFailure)
		if out, err = r.Pack(); err != nil {
			return nil
		}
		resp = r
	}
	qtype := uint16(0)
	if req != nil {
		qtype = req.Qtype
	}
	s.obs.Answered(proto, qtype, resp.Rcode)
	return out
}

// truncate empties an answer too big for the client's UDP size: header
// (TC=1), question and OPT only, never a partial RRset (RFC 2181 §9); the
// client asks again over TCP.
func truncate(resp *dns.Msg) {
	resp.Truncated = true
	resp.Answer, resp.Ns = nil, nil
	extra := resp.Extra[:0]
	for _, rr := range resp.Extra {
		if rr.Header().Rrtype == dns.TypeOPT {
			extra = append(extra, rr)
		}
	}
	resp.Extra = extra
}

// addEDE attaches an Extended DNS Error (RFC 8914) to resp inside an OPT
// that finish keeps only when the client sent EDNS. text is cut to 200
// bytes on a UTF-8 boundary.
func addEDE(resp *dns.Msg, code uint16, text string) {
	if len(text) > 200 {
		cut := 200
		for cut > 0 && text[cut]&0xC0 == 0x80 {
			cut--
		}
		text = text[:cut]
	}
	opt := resp.IsEdns0()
	if opt == nil {
		opt = &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT, Class: maxUDPSize}}
		resp.Extra = append(resp.Extra, opt)
	}
	opt.Option = append(opt.Option, &dns.EDNS0_EDE{InfoCode: code, ExtraText: text})
}

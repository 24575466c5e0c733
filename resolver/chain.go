package resolver

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/upstream"
)

// Exchanger sends a query upstream (an *upstream.Group in production).
type Exchanger interface {
	Exchange(ctx context.Context, m *dns.Msg) (*dns.Msg, error)
}

// deadlineExchanger is an Exchanger that takes the query's deadline beside
// its context (upstream.Group.ExchangeBy): a flight then needs no context
// and timer of its own.
type deadlineExchanger interface {
	ExchangeBy(ctx context.Context, m *dns.Msg, deadline time.Time) (*dns.Msg, error)
}

// forwarder is the cache-and-forward link of the engine: a fresh cached
// answer is served from the cache; otherwise identical concurrent misses
// share one upstream query (a flight), the answer is cached, and when
// every upstream fails an expired entry within serve_stale is served with
// EDE 3 (RFC 8767). It belongs to one runtime and holds no reference to the
// server: the cache, the observer and the clock are handed to it.
type forwarder struct {
	rt       *Runtime
	cache    *Cache
	obs      Observer
	now      func() time.Time
	flights  flights
	stale    time.Duration
	prefetch bool
}

var _ Handler = (*forwarder)(nil)

func (f *forwarder) Resolve(ctx context.Context, req *Request) (*dns.Msg, error) {
	now := f.now()
	e := f.cache.get(req.Name, req.Qtype, req.DO, req.CD)
	if e != nil && e.fresh(now) {
		req.Cached = true
		f.obs.CacheHit()
		if f.prefetch {
			f.rt.maybePrefetch(e, now)
		}
		return e.reply(req, now, false)
	}
	f.obs.CacheMiss()
	fresh, m, err := f.fetch(ctx, req)
	return f.answer(req, e, fresh, m, err, now)
}

// answer turns what fetch returned into the reply: the new entry's answer,
// the uncacheable message, or, when every upstream failed, the expired
// entry old if it is within serve_stale (RFC 8767, with EDE 3).
func (f *forwarder) answer(req *Request, old, fresh *entry, m *dns.Msg, err error, now time.Time) (*dns.Msg, error) {
	if err == nil {
		if fresh != nil {
			return fresh.reply(req, f.now(), false)
		}
		return m, nil
	}
	if old != nil && f.stale > 0 && now.Sub(old.stored) < time.Duration(old.ttl)*time.Second+f.stale {
		m, rerr := old.reply(req, now, true)
		if rerr == nil {
			req.Cached = true
			f.obs.CacheStale()
			addEDE(m, dns.ExtendedErrorCodeStaleAnswer, "stale answer: upstreams unreachable")
			return m, nil
		}
	}
	return nil, err
}

// fetch asks the upstreams, coalescing identical concurrent misses, and
// caches the answer. It returns the new cache entry, or, for an answer that
// is not cacheable, the caller's own copy of the message.
func (f *forwarder) fetch(ctx context.Context, req *Request) (*entry, *dns.Msg, error) {
	key := flightKey{name: req.Name, qtype: req.Qtype}
	if req.DO {
		key.flags |= keyDO
	}
	if req.CD {
		key.flags |= keyCD
	}
	fl, leader := f.flights.join(key)
	if leader {
		// The flight runs in the first caller's goroutine (a long-lived
		// worker, see udpWorker), bounded by the query timeout like the
		// callers themselves.
		return f.flyLed(ctx, req, key, fl)
	}
	fl.wg.Wait()
	return fl.result(true)
}

// flyLed flies fl, a flight the caller leads (from join, or from leadWith
// for an asyncMiss whose try failed), and returns its result as fetch does.
func (f *forwarder) flyLed(ctx context.Context, req *Request, key flightKey, fl *flight) (*entry, *dns.Msg, error) {
	return fl.result(f.fly(ctx, req, key, fl))
}

// result is the landed flight's outcome for one caller: the entry, the
// message (a copy when others share it) or the error.
func (fl *flight) result(shared bool) (*entry, *dns.Msg, error) {
	if fl.err != nil {
		return nil, nil, fl.err
	}
	if fl.e != nil {
		return fl.e, nil, nil
	}
	if !shared {
		// Nobody else holds the message: no copy needed.
		return nil, fl.m, nil
	}
	return nil, fl.m.Copy(), nil
}

// fly asks the upstreams for the flight fl and caches the answer; it
// reports whether other callers joined the flight (and so share its
// result). A panic leaves the joined callers an error, not a nil result.
func (f *forwarder) fly(ctx context.Context, req *Request, key flightKey, fl *flight) (shared bool) {
	fl.err = errFlightAborted
	defer func() { shared = f.flights.land(key, fl) }()
	m := fl.query(req)
	// The flight must not die with the first caller's context.
	base := ctx
	if base.Done() != nil {
		base = context.WithoutCancel(base)
	}
	up := req.up // set by localZones or missUDP
	if up == nil {
		up = f.rt.upstreamFor(req.Name)
	}
	var (
		resp *dns.Msg
		err  error
	)
	if ax, ok := up.(afterExchanger); ok && req.after != nil {
		resp, err = ax.ExchangeAfter(base, m, req.after.a, req.after.bad, req.after.err)
	} else if dx, ok := up.(deadlineExchanger); ok {
		wall := req.wall
		if wall.IsZero() {
			wall = time.Now()
		}
		resp, err = dx.ExchangeBy(base, m, wall.Add(f.rt.QueryTimeout))
	} else {
		fctx, cancel := context.WithTimeout(base, f.rt.QueryTimeout)
		resp, err = up.Exchange(fctx, m)
		cancel()
	}
	if err != nil {
		fl.err = upstreamErr(err)
		return
	}
	fl.err = nil
	resp.Authoritative = false // only local zones answer with AA
	scrub(resp, req.Name)
	// A cacheable answer is served from its entry, so the miss gets
	// exactly what later hits get (clamped TTLs, RFC 2308 SOA TTL).
	if fl.e = f.cache.put(req, resp, f.now()); fl.e == nil {
		fl.m = resp
	}
	return
}

// errFlightAborted is what the callers joined to a flight get when its
// leader panicked before it landed.
var errFlightAborted = errors.New("resolver: upstream query aborted")

// flightKey names a flight: the question and the DO and CD bits (keyDO,
// keyCD), as the cache keys its entries.
type flightKey struct {
	name  string
	qtype uint16
	flags uint8
}

// flight is one upstream query in flight and its result, shared by the
// callers that asked the same question meanwhile (singleflight without
// the key string, the closure and the interface boxing a miss paid). The
// query to the upstreams is built inside it: one allocation for both.
type flight struct {
	wg   sync.WaitGroup // done when the flight has landed
	dups int            // callers that joined the leader; under flights.mu
	e    *entry         // the new cache entry, or
	m    *dns.Msg       // the uncacheable answer, or
	err  error          // the failure

	// q is where fly builds the query sent upstream: in the same
	// allocation as the flight for join's flights (flightWithQuery), made
	// by query for an asyncMiss's (leadWith), whose first try has a query
	// of its own.
	q *flightQuery
}

// flightQuery is the query of a flight, built without SetQuestion's and
// SetEdns0's allocations.
type flightQuery struct {
	msg   dns.Msg
	qs    [1]dns.Question
	extra [1]dns.RR
	opt   dns.OPT
}

// flightWithQuery is a flight and its query in one allocation.
type flightWithQuery struct {
	flight
	q flightQuery
}

// query builds in fl the query sent upstream for req: the question, RD,
// CD as the client asked, and an OPT with our UDP size and the client's DO
// bit (what SetQuestion and SetEdns0 build, without their allocations).
func (fl *flight) query(req *Request) *dns.Msg {
	if fl.q == nil {
		fl.q = new(flightQuery)
	}
	q := fl.q
	m := &q.msg
	m.Id = dns.Id()
	m.RecursionDesired = true
	m.CheckingDisabled = req.CD
	q.qs[0] = dns.Question{Name: req.Name, Qtype: req.Qtype, Qclass: dns.ClassINET}
	m.Question = q.qs[:]
	q.opt.Hdr = dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}
	q.opt.SetUDPSize(maxUDPSize)
	if req.DO {
		q.opt.SetDo()
	}
	q.extra[0] = &q.opt
	m.Extra = q.extra[:]
	return m
}

// flights is the table of the flights in the air (see flight).
type flights struct {
	mu sync.Mutex
	m  map[flightKey]*flight
}

// join returns the flight for key and true if the caller is its leader
// (it must fly it and land it), or the flight in the air and false.
func (t *flights) join(key flightKey) (*flight, bool) {
	t.mu.Lock()
	if fl, ok := t.m[key]; ok {
		fl.dups++
		t.mu.Unlock()
		return fl, false
	}
	if t.m == nil {
		t.m = make(map[flightKey]*flight)
	}
	fq := &flightWithQuery{}
	fl := &fq.flight
	fl.q = &fq.q
	fl.wg.Add(1)
	t.m[key] = fl
	t.mu.Unlock()
	return fl, true
}

// leadWith registers the caller's flight fl (zero, or landed unshared and
// reset) for key, which the caller leads, or returns false when one is
// already in the air (the caller then joins it as usual).
func (t *flights) leadWith(key flightKey, fl *flight) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.m[key]; ok {
		return false
	}
	if t.m == nil {
		t.m = make(map[flightKey]*flight)
	}
	fl.wg.Add(1)
	t.m[key] = fl
	return true
}

// land takes fl out of the table and releases the callers that joined it;
// it reports whether there were any.
func (t *flights) land(key flightKey, fl *flight) bool {
	t.mu.Lock()
	delete(t.m, key)
	shared := fl.dups > 0
	t.mu.Unlock()
	fl.wg.Done()
	return shared
}

// upstreamErr maps an upstream failure to a SERVFAIL with EDE 22 (no
// reachable authority) or 23 (network error).
func upstreamErr(err error) error {
	var ede *EDEError
	if errors.As(err, &ede) {
		return err
	}
	code := uint16(dns.ExtendedErrorCodeNetworkError)
	var ue *upstream.Error
	if errors.As(err, &ue) {
		code = ue.Code
	} else if errors.Is(err, context.DeadlineExceeded) {
		code = dns.ExtendedErrorCodeNoReachableAuthority
	}
	text := "upstreams unreachable"
	if code == dns.ExtendedErrorCodeNetworkError {
		text = "upstream network error"
	}
	return &EDEError{Code: code, Text: text, Err: err}
}

// maybePrefetch refreshes a popular entry shortly before it expires: when
// less than a tenth of its lifetime is left and it was hit at least twice
// (an earlier lookup found it, see entry.claimPrefetch). At most one
// refresh per entry runs at a time. The refresh runs in rt (it keeps rt
// from being closed until it is over); a retired runtime starts none.
func (rt *Runtime) maybePrefetch(e *entry, now time.Time) {
	if !rt.prefetch || !e.claimPrefetch(now) {
		return
	}
	// e.name may be the caller's buffer: the refresh outlives the call.
	req := &Request{Name: strings.Clone(e.name), Qtype: e.qtype, DO: e.flags&keyDO != 0, CD: e.flags&keyCD != 0}
	if !rt.enter() {
		e.endPrefetch()
		return
	}
	// mark is the claimed record (e itself may be the caller's reused
	// entry): a refresh that stores no new answer (the upstreams failed,
	// the answer is not cacheable) clears the claim, or the entry would
	// never be refreshed again. After a new answer is stored the mark no
	// longer names the indexed record, and ending it does nothing.
	mark := entry{shard: e.shard, key: e.key, pos: e.pos}
	go func() {
		defer rt.leave()
		ctx, cancel := context.WithTimeout(context.Background(), rt.QueryTimeout)
		defer cancel()
		_, _, _ = rt.fwd.fetch(ctx, req)
		mark.endPrefetch()
	}()
}

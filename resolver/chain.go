package resolver

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sync/singleflight"

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
// share one upstream query (singleflight), the answer is cached, and when
// every upstream fails an expired entry within serve_stale is served with
// EDE 3 (RFC 8767). It belongs to one runtime and holds no reference to the
// server: the cache, the observer and the clock are handed to it.
type forwarder struct {
	rt       *Runtime
	cache    *Cache
	obs      Observer
	now      func() time.Time
	sf       *singleflight.Group
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
	key := req.Name + "/" + strconv.Itoa(int(req.Qtype))
	if req.DO {
		key += "/do"
	}
	if req.CD {
		key += "/cd"
	}
	// Do runs the flight in the first caller's goroutine (a long-lived
	// worker, see udpWorker), bounded by the query timeout like the
	// callers themselves.
	v, err, _ := f.sf.Do(key, func() (any, error) {
		m := new(dns.Msg)
		m.SetQuestion(req.Name, req.Qtype)
		m.CheckingDisabled = req.CD
		m.SetEdns0(maxUDPSize, req.DO)
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
		if dx, ok := up.(deadlineExchanger); ok {
			resp, err = dx.ExchangeBy(base, m, time.Now().Add(f.rt.QueryTimeout))
		} else {
			fctx, cancel := context.WithTimeout(base, f.rt.QueryTimeout)
			resp, err = up.Exchange(fctx, m)
			cancel()
		}
		if err != nil {
			return nil, upstreamErr(err)
		}
		resp.Authoritative = false // only local zones answer with AA
		scrub(resp, req.Name)
		// A cacheable answer is served from its entry, so the miss gets
		// exactly what later hits get (clamped TTLs, RFC 2308 SOA TTL).
		if e := f.cache.put(req, resp, f.now()); e != nil {
			return e, nil
		}
		return resp, nil
	})
	if err != nil {
		return nil, nil, err
	}
	if e, ok := v.(*entry); ok {
		return e, nil, nil
	}
	return nil, v.(*dns.Msg).Copy(), nil
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

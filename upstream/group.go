package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Strategies for GroupOptions.Strategy.
const (
	// StrategyFailover tries healthy upstreams in the configured order.
	StrategyFailover = "failover"
	// StrategyRandom tries healthy upstreams in a random order per query.
	StrategyRandom = "random"
	// StrategyParallel races healthy upstreams two at a time, in order; the
	// first good reply wins and the other query is cancelled.
	StrategyParallel = "parallel"
)

// Extended DNS Error codes (RFC 8914) carried by *Error.
const (
	EDENoReachableAuthority uint16 = 22
	EDENetworkError         uint16 = 23
)

const (
	defaultGroupTimeout = 2 * time.Second
	defaultTryTimeout   = 700 * time.Millisecond
	minBackoff          = time.Second
	maxBackoff          = 30 * time.Second
)

// GroupOptions configure a Group. The zero value is usable.
type GroupOptions struct {
	// Strategy is "failover" (default), "random" or "parallel".
	Strategy string
	// Timeout bounds one Group.Exchange, all tries included. Default 2s.
	Timeout time.Duration
	// TryTimeout bounds one try of one upstream (a UDP query and its TCP
	// retry). Default 700ms.
	TryTimeout time.Duration
	// Now is the clock for health backoff and Observe durations. Default time.Now.
	Now func() time.Time
	// Rand orders upstreams for the random strategy. It is used under a
	// lock. Default: the math/rand/v2 global source.
	Rand *rand.Rand
	// Logger receives health changes (info) and failed tries (debug).
	// Default: a logger that discards.
	Logger *slog.Logger
	// Observe, if not nil, is called after every try with the upstream's
	// name, the time the try took and its error (nil for any reply,
	// SERVFAIL included; context.Canceled for the loser of a parallel race).
	// It must be safe for concurrent use and fast.
	Observe func(upstream string, d time.Duration, err error)
}

// Error is returned by Group.Exchange when no upstream gave a usable reply.
// Code is the Extended DNS Error (RFC 8914) a server should send with its
// SERVFAIL: 22 (No Reachable Authority) when every try timed out, 23
// (Network Error) otherwise.
type Error struct {
	Code uint16
	Errs []error
}

func (e *Error) Error() string {
	msgs := make([]string, len(e.Errs))
	for i, err := range e.Errs {
		msgs[i] = err.Error()
	}
	return fmt.Sprintf("upstream: no upstream answered (EDE %d): %s", e.Code, strings.Join(msgs, "; "))
}

// Unwrap returns the errors of the individual tries.
func (e *Error) Unwrap() []error { return e.Errs }

// Group sends each query to one or more of a set of upstreams, following a
// strategy and keeping per-upstream health. It is safe for concurrent use.
//
// Health: a try that fails with a network error or timeout marks the
// upstream down for a backoff of 1s, doubled per consecutive failure up to
// 30s; a reply of any kind (SERVFAIL too: it may be about one broken domain)
// resets it. Down upstreams are skipped while healthy ones remain; they are
// tried last, as a last resort, when no healthy upstream answered at all.
// Recovery is probed inline, without a background goroutine: once the backoff
// has expired, the next query to reach the upstream claims the probe (others
// keep skipping it meanwhile) and tries it; success makes it healthy again,
// failure doubles the backoff.
//
// A SERVFAIL or REFUSED reply counts as a failure for the query (the next
// upstream is tried) but is returned when no better reply comes.
type Group struct {
	ups    []*member
	opts   GroupOptions
	randMu sync.Mutex
	log    *slog.Logger
	// wallClock is set when opts.Now is time.Now: one reading then serves
	// as both the deadline clock's and the health clock's.
	wallClock bool
}

// Group satisfies Upstream so that it can stand wherever one server can.
var _ Upstream = (*Group)(nil)

var _ io.Closer = (*Group)(nil)

type member struct {
	up Upstream

	mu        sync.Mutex
	fails     int       // consecutive failures
	downUntil time.Time // skipped until then, when fails > 0
	probing   bool      // a query has claimed the recovery probe
}

// NewGroup returns a Group over ups (at least one) with opts.
func NewGroup(ups []Upstream, opts GroupOptions) (*Group, error) {
	if len(ups) == 0 {
		return nil, errors.New("upstream: group needs at least one upstream")
	}
	switch opts.Strategy {
	case "":
		opts.Strategy = StrategyFailover
	case StrategyFailover, StrategyRandom, StrategyParallel:
	default:
		return nil, fmt.Errorf("upstream: unknown strategy %q (want failover, random or parallel)", opts.Strategy)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = defaultGroupTimeout
	}
	if opts.TryTimeout <= 0 {
		opts.TryTimeout = defaultTryTimeout
	}
	wallClock := opts.Now == nil
	if wallClock {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	g := &Group{opts: opts, log: log, wallClock: wallClock}
	for i, u := range ups {
		if u == nil {
			return nil, fmt.Errorf("upstream: group: upstream %d is nil", i)
		}
		g.ups = append(g.ups, &member{up: u})
	}
	return g, nil
}

// Close closes the group's upstreams that hold connections (those that
// implement io.Closer: tls:// and https://) and returns their errors
// joined. The group must not be used afterwards. Closing an upstream twice
// is harmless, so upstreams may be shared by groups.
func (g *Group) Close() error {
	var errs []error
	for _, m := range g.ups {
		if c, ok := m.up.(io.Closer); ok {
			if err := c.Close(); err != nil {
				errs = append(errs, fmt.Errorf("upstream: closing %s: %w", m.up, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Upstreams returns the names of the group's upstreams, in configured order.
func (g *Group) Upstreams() []string {
	names := make([]string, len(g.ups))
	for i, m := range g.ups {
		names[i] = m.up.String()
	}
	return names
}

// String returns the strategy and the upstreams, e.g. "failover(udp://192.0.2.1:53, ...)".
func (g *Group) String() string {
	return g.opts.Strategy + "(" + strings.Join(g.Upstreams(), ", ") + ")"
}

// Exchange sends m to the group's upstreams according to the strategy and
// returns the first good reply (rcode other than SERVFAIL and REFUSED), else
// the first SERVFAIL/REFUSED reply, else an *Error. It returns within the
// group's Timeout or ctx's deadline, whichever is earlier. If ctx is
// cancelled, it returns ctx's error.
func (g *Group) Exchange(ctx context.Context, m *dns.Msg) (*dns.Msg, error) {
	return g.ExchangeBy(ctx, m, time.Now().Add(g.opts.Timeout))
}

var _ deadlineExchanger = (*Group)(nil)

func (g *Group) exchangeBy(ctx context.Context, m *dns.Msg, _, deadline time.Time) (*dns.Msg, error) {
	return g.ExchangeBy(ctx, m, deadline)
}

// ExchangeBy is Exchange bounded by deadline as well (and still by ctx's
// deadline and the group's Timeout): a caller that has a deadline but no
// need to cancel passes it here instead of deriving a context for it, and
// the tries of plain upstreams then cost no context or timer at all.
func (g *Group) ExchangeBy(ctx context.Context, m *dns.Msg, deadline time.Time) (*dns.Msg, error) {
	start := time.Now()
	dl := start.Add(g.opts.Timeout)
	if deadline.Before(dl) {
		dl = deadline
	}
	healthy, down := g.order(g.clock(start))
	return g.exchange(ctx, m, start, dl, healthy, down, nil, nil)
}

// ExchangeAfter is ExchangeBy for a query whose first try went out with
// StartUDP (a) and gave no usable reply: bad is the SERVFAIL or REFUSED
// reply it got (nil if none), tryErr the error that ended it (nil if it
// got a reply). The upstreams are asked in the strategy's order as
// ExchangeBy asks them, each once, so the one a asked is not asked again;
// the deadline is the one StartUDP had. A truncated reply is not a reason
// to call it: ExchangeBy's own UDP try does the TCP retry.
func (g *Group) ExchangeAfter(ctx context.Context, m *dns.Msg, a *Async, bad *dns.Msg, tryErr error) (*dns.Msg, error) {
	start := time.Now()
	healthy, down := g.order(g.clock(start))
	without := func(ms []*member) []*member {
		for i, mb := range ms {
			if mb == a.mb {
				return append(append(make([]*member, 0, len(ms)-1), ms[:i]...), ms[i+1:]...)
			}
		}
		return ms
	}
	var errs []error
	if tryErr != nil {
		errs = []error{tryErr}
	}
	return g.exchange(ctx, m, start, a.dl, without(healthy), without(down), bad, errs)
}

// exchange asks healthy, then, if none of them answered at all, down, by
// the deadline dl (or ctx's), as ExchangeBy describes; fallback and errs
// are what earlier tries got. start is a time.Now reading.
func (g *Group) exchange(ctx context.Context, m *dns.Msg, start, dl time.Time, healthy, down []*member, fallback *dns.Msg, errs []error) (*dns.Msg, error) {
	if cdl, ok := ctx.Deadline(); ok && cdl.Before(dl) {
		dl = cdl
	}
	// clk is a clock reading for the next deadline check (start, for the
	// first), or zero to read the clock.
	clk := start
	// tryAll returns a good reply, or nil after trying every one of ups.
	tryAll := func(ups []*member) *dns.Msg {
		width := 1
		if g.opts.Strategy == StrategyParallel {
			width = 2
		}
		for len(ups) > 0 && !expiredAt(ctx, dl, &clk) {
			n := min(width, len(ups))
			resp, bad, es := g.race(ctx, dl, ups[:n], m)
			errs = append(errs, es...)
			if resp != nil {
				return resp
			}
			if fallback == nil {
				fallback = bad
			}
			ups = ups[n:]
		}
		return nil
	}
	if resp := tryAll(healthy); resp != nil {
		return resp, nil
	}
	if fallback == nil {
		// No healthy upstream answered at all: last resort, the down ones.
		if resp := tryAll(down); resp != nil {
			return resp, nil
		}
	}
	if fallback != nil {
		return fallback, nil
	}
	if err := ctx.Err(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return nil, fmt.Errorf("upstream: %w", err)
	}
	if expired(ctx, dl) {
		errs = append(errs, fmt.Errorf("overall timeout %v: %w", g.opts.Timeout, context.DeadlineExceeded))
	}
	code := EDENoReachableAuthority
	for _, err := range errs {
		if !isTimeout(err) {
			code = EDENetworkError
			break
		}
	}
	return nil, &Error{Code: code, Errs: errs}
}

// order returns the upstreams to try for one query: the healthy ones (and
// one whose recovery probe this query claimed) in strategy order, and the
// down ones, for a last resort.
//
// now is the reading of the group's clock. When every member is usable and
// the strategy keeps their order, healthy is g.ups itself (capped: the
// callers only read it), with no allocation.
func (g *Group) order(now time.Time) (healthy, down []*member) {
	i := 0
	if g.opts.Strategy != StrategyRandom {
		for i < len(g.ups) && g.ups[i].usable(now) {
			i++
		}
		if i == len(g.ups) {
			return g.ups[:i:i], nil
		}
	}
	healthy = make([]*member, 0, len(g.ups))
	healthy = append(healthy, g.ups[:i]...)
	if i < len(g.ups) && g.opts.Strategy != StrategyRandom {
		// g.ups[i] was found not usable above; it is not asked twice
		// (usable may claim a recovery probe).
		down = append(down, g.ups[i])
		i++
	}
	for _, m := range g.ups[i:] {
		if m.usable(now) {
			healthy = append(healthy, m)
		} else {
			down = append(down, m)
		}
	}
	if g.opts.Strategy == StrategyRandom {
		g.shuffle(healthy)
		g.shuffle(down)
	}
	return healthy, down
}

func (g *Group) shuffle(ms []*member) {
	swap := func(i, j int) { ms[i], ms[j] = ms[j], ms[i] }
	if g.opts.Rand == nil {
		rand.Shuffle(len(ms), swap)
		return
	}
	g.randMu.Lock()
	g.opts.Rand.Shuffle(len(ms), swap)
	g.randMu.Unlock()
}

// usable reports whether m may be tried now: it is healthy, or its backoff
// has expired and this caller claims the recovery probe.
func (m *member) usable(now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fails == 0 {
		return true
	}
	if m.probing || now.Before(m.downUntil) {
		return false
	}
	m.probing = true
	return true
}

// result records the outcome of a try: ok (any reply) or a failure that is
// the upstream's fault.
func (g *Group) result(m *member, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.probing = false
	if err == nil {
		if m.fails > 0 {
			g.log.Info("upstream is up again", "upstream", m.up.String(), "after_failures", m.fails)
		}
		m.fails = 0
		return
	}
	m.fails++
	backoff := maxBackoff
	if m.fails <= 6 { // 1s << 5 = 32s > cap
		backoff = min(minBackoff<<(m.fails-1), maxBackoff)
	}
	m.downUntil = g.opts.Now().Add(backoff)
	if m.fails == 1 {
		g.log.Info("upstream marked down", "upstream", m.up.String(), "backoff", backoff, "err", err)
	}
}

// release gives up a claimed probe without a verdict (the try was cut short
// by the caller or the overall deadline, so it says nothing about health).
func (m *member) release() {
	m.mu.Lock()
	m.probing = false
	m.mu.Unlock()
}

// deadlineExchanger is an Upstream that takes the deadline of one try
// beside the caller's context, which then only cancels: a try costs no
// context and no timer of its own (a context.WithTimeout per try was 7% of
// a cache miss's CPU and 40% of its allocations).
type deadlineExchanger interface {
	// exchangeBy is Exchange bounded by deadline as well as by ctx.
	// now is a time.Now reading the caller took just before.
	exchangeBy(ctx context.Context, m *dns.Msg, now, deadline time.Time) (*dns.Msg, error)
}

type tryResult struct {
	m    *member
	resp *dns.Msg
	err  error
}

// race tries ups concurrently (a single one is tried in the calling
// goroutine) and returns the first good reply, or else the first
// SERVFAIL/REFUSED reply as bad, plus the errors of the tries.
func (g *Group) race(ctx context.Context, dl time.Time, ups []*member, m *dns.Msg) (good, bad *dns.Msg, errs []error) {
	if len(ups) == 1 {
		r := g.try(ctx, dl, ups[0], m)
		if r.err != nil {
			return nil, nil, []error{r.err}
		}
		if isBadRcode(r.resp.Rcode) {
			return nil, r.resp, nil
		}
		return r.resp, nil, nil
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan tryResult, len(ups))
	for _, u := range ups {
		go func() { results <- g.try(rctx, dl, u, m) }()
	}
	for range ups {
		r := <-results
		switch {
		case r.err != nil:
			if !errors.Is(r.err, context.Canceled) || ctx.Err() != nil {
				errs = append(errs, r.err)
			}
		case isBadRcode(r.resp.Rcode):
			if bad == nil {
				bad = r.resp
			}
		default:
			if good == nil {
				good = r.resp
				cancel() // the other tries lose; the loop waits for them to return
			}
		}
	}
	return good, bad, errs
}

// try sends m to one upstream with the per-try timeout (and by dl, the
// exchange's deadline) and records health. A plain (udp:// or tcp://)
// upstream takes the try's deadline as an argument; the others get it in a
// context of their own.
func (g *Group) try(ctx context.Context, dl time.Time, mb *member, m *dns.Msg) tryResult {
	wall := time.Now()
	start := g.clock(wall)
	tryDL := wall.Add(g.opts.TryTimeout)
	if dl.Before(tryDL) {
		tryDL = dl
	}
	var (
		resp *dns.Msg
		err  error
	)
	if te, ok := mb.up.(deadlineExchanger); ok {
		resp, err = te.exchangeBy(ctx, m, wall, tryDL)
	} else {
		tctx, cancel := context.WithDeadline(ctx, tryDL)
		resp, err = mb.up.Exchange(tctx, m)
		cancel()
	}
	if g.opts.Observe != nil {
		g.opts.Observe(mb.up.String(), g.opts.Now().Sub(start), err)
	}
	switch {
	case err == nil:
		g.result(mb, nil)
	case expired(ctx, dl) || errors.Is(err, ErrBusy) || errors.Is(err, errSocketShared):
		// Cut short by the caller, the overall deadline or a won race,
		// not sent (too many in flight), or failed by an ICMP error
		// already counted for another query: no verdict on the upstream.
		mb.release()
	default:
		g.log.Debug("upstream try failed", "upstream", mb.up.String(), "err", err)
		g.result(mb, err)
	}
	return tryResult{m: mb, resp: resp, err: err}
}

// expired reports whether ctx is done or the exchange's deadline dl has
// passed (dl is never later than ctx's deadline).
func expired(ctx context.Context, dl time.Time) bool {
	return ctx.Err() != nil || !time.Now().Before(dl)
}

// expiredAt is expired with the clock reading *now if it is not zero (it
// is then used up: zeroed for the next call), saving a read of the clock
// taken just before.
func expiredAt(ctx context.Context, dl time.Time, now *time.Time) bool {
	t := *now
	if t.IsZero() {
		return expired(ctx, dl)
	}
	*now = time.Time{}
	return ctx.Err() != nil || !t.Before(dl)
}

// clock returns the group's clock (Options.Now) reading: wall itself, a
// time.Now reading just taken, when the clock is time.Now.
func (g *Group) clock(wall time.Time) time.Time {
	if g.wallClock {
		return wall
	}
	return g.opts.Now()
}

func isBadRcode(rcode int) bool {
	return rcode == dns.RcodeServerFailure || rcode == dns.RcodeRefused
}

// isTimeout reports whether err is a timeout (as opposed to e.g. connection
// refused or a mismatched reply).
func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

package download

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"time"
)

// MaxJitter bounds the jitter of NextRefresh: a period varies by ±50% at most.
const MaxJitter = 0.5

// NextRefresh returns period varied by up to ±jitter of itself (0.1 means
// ±10%), uniformly, so that many resolvers do not hit a list server at the
// same moment. jitter is clamped to [0, MaxJitter]. rnd returns a number in
// [0, 1); nil means math/rand/v2.Float64. A period ≤ 0 returns 0.
func NextRefresh(period time.Duration, jitter float64, rnd func() float64) time.Duration {
	if period <= 0 {
		return 0
	}
	if !(jitter > 0) {
		return period
	}
	jitter = min(jitter, MaxJitter)
	if rnd == nil {
		rnd = rand.Float64
	}
	r := min(max(rnd(), 0), 1)
	return period + time.Duration(float64(period)*jitter*(2*r-1))
}

// Refresher calls Refresh on a jittered period until its context is done.
type Refresher struct {
	// Period between refreshes, such as 24h; required.
	Period time.Duration
	// Jitter varies each wait by up to ±Jitter of itself (see NextRefresh).
	Jitter float64
	// RetryPeriod replaces Period after a refresh that returned an error,
	// so that a failed refresh is retried sooner; 0 means the smaller of
	// Period and one hour.
	RetryPeriod time.Duration
	// Refresh does the work; required. Its error is logged.
	Refresh func(ctx context.Context) error
	// Rand is passed to NextRefresh; nil means math/rand/v2.Float64.
	Rand func() float64
	// Timer starts a timer of d and returns its channel and a stop
	// function; nil means time.NewTimer. Tests inject one to fire at will.
	Timer func(d time.Duration) (c <-chan time.Time, stop func() bool)
	// Logger receives refresh failures; nil discards them.
	Logger *slog.Logger
	// Immediate makes Run refresh once at once, before the first wait
	// (a start-up that served the last good copies fetches them now).
	Immediate bool
}

// Run waits a jittered period, calls Refresh, and repeats until ctx is done;
// it refreshes at once first only with Immediate (otherwise the caller
// loaded the lists itself). A failed refresh is retried after RetryPeriod. It
// returns nil when ctx is done, and an error only for a Refresher without a
// positive Period or a Refresh function.
func (r *Refresher) Run(ctx context.Context) error {
	if r.Period <= 0 || r.Refresh == nil {
		return errors.New("download: Refresher needs a positive Period and a Refresh function")
	}
	retry := r.RetryPeriod
	if retry <= 0 {
		retry = min(r.Period, time.Hour)
	}
	timer := r.Timer
	if timer == nil {
		timer = func(d time.Duration) (<-chan time.Time, func() bool) {
			t := time.NewTimer(d)
			return t.C, t.Stop
		}
	}
	log := r.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	period := r.Period
	for first := true; ; first = false {
		if !first || !r.Immediate {
			c, stop := timer(NextRefresh(period, r.Jitter, r.Rand))
			select {
			case <-ctx.Done():
				stop()
				return nil
			case <-c:
			}
		}
		if err := r.Refresh(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			log.Warn("refresh failed", "err", err, "retry_period", retry)
			period = retry
		} else {
			period = r.Period
		}
	}
}

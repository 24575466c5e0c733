package download

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestNextRefresh(t *testing.T) {
	const day = 24 * time.Hour
	tests := []struct {
		name   string
		period time.Duration
		jitter float64
		rnd    float64
		want   time.Duration
	}{
		{name: "no jitter", period: day, jitter: 0, rnd: 0.99, want: day},
		{name: "middle", period: day, jitter: 0.1, rnd: 0.5, want: day},
		{name: "lowest", period: day, jitter: 0.1, rnd: 0, want: day - day/10},
		{name: "high", period: day, jitter: 0.1, rnd: 0.75, want: day + day/20},
		{name: "jitter clamped", period: day, jitter: 3, rnd: 0, want: day / 2},
		{name: "negative jitter", period: day, jitter: -1, rnd: 0, want: day},
		{name: "bad rnd clamped", period: day, jitter: 0.1, rnd: -5, want: day - day/10},
		{name: "zero period", period: 0, jitter: 0.1, rnd: 0.3, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NextRefresh(tt.period, tt.jitter, func() float64 { return tt.rnd }); got != tt.want {
				t.Errorf("NextRefresh(%v, %v, %v) = %v, want %v", tt.period, tt.jitter, tt.rnd, got, tt.want)
			}
		})
	}
	for range 1000 { // the default source of randomness stays in bounds
		if got := NextRefresh(day, 0.1, nil); got < day-day/10 || got > day+day/10 {
			t.Fatalf("NextRefresh(24h, 0.1, nil) = %v", got)
		}
	}
}

// fakeTimers hands every timer's duration to the test and fires it when the
// test says so.
type fakeTimers struct {
	started chan time.Duration
	fire    chan time.Time
	stopped chan struct{}
}

func newFakeTimers() *fakeTimers {
	return &fakeTimers{started: make(chan time.Duration), fire: make(chan time.Time), stopped: make(chan struct{}, 1)}
}

func (f *fakeTimers) timer(d time.Duration) (<-chan time.Time, func() bool) {
	f.started <- d
	return f.fire, func() bool { f.stopped <- struct{}{}; return true }
}

func TestRefresherRun(t *testing.T) {
	timers := newFakeTimers()
	calls := make(chan struct{})
	results := make(chan error)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := &Refresher{
		Period:      24 * time.Hour,
		Jitter:      0.1,
		RetryPeriod: time.Hour,
		Rand:        func() float64 { return 1 }, // +10%
		Timer:       timers.timer,
		Refresh: func(context.Context) error {
			calls <- struct{}{}
			return <-results
		},
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()

	steps := []struct {
		result   error
		wantNext time.Duration
	}{
		{result: nil, wantNext: 24*time.Hour + 144*time.Minute},
		{result: errors.New("unreachable"), wantNext: time.Hour + 6*time.Minute},
		{result: errors.New("still unreachable"), wantNext: time.Hour + 6*time.Minute},
		{result: nil, wantNext: 24*time.Hour + 144*time.Minute},
	}
	if d := <-timers.started; d != 24*time.Hour+144*time.Minute {
		t.Fatalf("first wait %v", d)
	}
	select {
	case <-calls:
		t.Fatal("Refresh called before the first period")
	default:
	}
	for i, s := range steps {
		timers.fire <- time.Time{}
		<-calls
		results <- s.result
		if d := <-timers.started; d != s.wantNext {
			t.Errorf("step %d: next wait %v, want %v", i, d, s.wantNext)
		}
	}
	cancel()
	<-timers.stopped
	if err := <-done; err != nil {
		t.Errorf("Run returned %v after cancel, want nil", err)
	}
}

func TestRefresherInvalid(t *testing.T) {
	for _, r := range []*Refresher{
		{Refresh: func(context.Context) error { return nil }},
		{Period: time.Hour},
	} {
		if err := r.Run(context.Background()); err == nil {
			t.Errorf("Run(%+v) = nil, want an error", r)
		}
	}
}

// TestRefresherImmediate: with Immediate, Run refreshes before any wait,
// and a failed first refresh is retried after RetryPeriod.
func TestRefresherImmediate(t *testing.T) {
	timers := newFakeTimers()
	calls := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	r := &Refresher{
		Period: 24 * time.Hour, RetryPeriod: time.Hour, Immediate: true, Timer: timers.timer,
		Refresh: func(context.Context) error { calls <- struct{}{}; return errors.New("unreachable") },
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	select {
	case <-calls:
	case d := <-timers.started:
		t.Fatalf("Run waited %v before the immediate refresh", d)
	}
	if d := <-timers.started; d != time.Hour {
		t.Errorf("wait after a failed immediate refresh = %v, want the retry period 1h", d)
	}
	cancel()
	<-timers.stopped
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
}

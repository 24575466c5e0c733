package status

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

func seriesOf(w Window, id string) *Series {
	for i := range w.Series {
		if w.Series[i].Jurisdiction == id {
			return &w.Series[i]
		}
	}
	return nil
}

func TestCountersBuckets(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 30, 45, 0, time.UTC)
	c := NewCounters()
	c.Add("a", now)                      // current minute, current hour
	c.Add("a", now.Add(-30*time.Second)) // 12:30:15: current minute
	c.Add("a", now.Add(-2*time.Minute))  // 12:28: two minutes ago
	c.Add("a", now.Add(-59*time.Minute)) // 11:31: oldest minute of the hour window
	c.Add("a", now.Add(-61*time.Minute)) // 11:29: out of the hour, in the day (hour 11)
	c.Add("a", now.Add(-23*time.Hour))   // 13:30 yesterday: oldest hour of the day window
	c.Add("a", now.Add(-25*time.Hour))   // out of both windows
	c.Add("b", now.Add(-3*time.Hour))    // day only
	c.Add("b", now.Add(-3*time.Hour))

	hour, day := c.Snapshot(now)
	if hour.Buckets != 60 || hour.Step != 60 || day.Buckets != 24 || day.Step != 3600 {
		t.Fatalf("windows: hour %d×%ds, day %d×%ds", hour.Buckets, hour.Step, day.Buckets, day.Step)
	}
	if want := time.Date(2026, 3, 10, 11, 31, 0, 0, time.UTC); !hour.Start.Equal(want) {
		t.Errorf("hour start %v, want %v", hour.Start, want)
	}
	if want := time.Date(2026, 3, 9, 13, 0, 0, 0, time.UTC); !day.Start.Equal(want) {
		t.Errorf("day start %v, want %v", day.Start, want)
	}
	a := seriesOf(hour, "a")
	if a == nil || a.Total != 4 || len(a.Counts) != 60 {
		t.Fatalf("hour series a = %+v, want total 4 over 60 buckets", a)
	}
	if a.Counts[59] != 2 || a.Counts[57] != 1 || a.Counts[0] != 1 {
		t.Errorf("hour buckets of a: last=%d, -2min=%d, first=%d; want 2, 1, 1", a.Counts[59], a.Counts[57], a.Counts[0])
	}
	if seriesOf(hour, "b") != nil {
		t.Errorf("b has no hit in the last hour but has a series")
	}
	da, db := seriesOf(day, "a"), seriesOf(day, "b")
	if da == nil || da.Total != 6 || db == nil || db.Total != 2 {
		t.Fatalf("day totals: a=%+v b=%+v, want 6 and 2", da, db)
	}
	// Hour 12 holds 3 hits (12:28, 12:30:15, 12:30:45), hour 11 two, the
	// oldest hour one.
	if da.Counts[23] != 3 || da.Counts[22] != 2 || da.Counts[0] != 1 {
		t.Errorf("day buckets of a: %v", da.Counts)
	}
	if day.Total != 8 || hour.Total != 4 {
		t.Errorf("totals: hour %d day %d, want 4 and 8", hour.Total, day.Total)
	}
	if day.Series[0].Jurisdiction != "a" {
		t.Errorf("series not sorted by total: %v", day.Series)
	}
}

func TestCountersRollover(t *testing.T) {
	t0 := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	c := NewCounters()
	c.Add("j", t0)
	c.Add("j", t0)

	// One hour later the minute bucket of t0 is reused: an event there must
	// reset it, not add to the old count.
	t1 := t0.Add(time.Hour)
	c.Add("j", t1)
	hour, day := c.Snapshot(t1)
	if s := seriesOf(hour, "j"); s == nil || s.Total != 1 || s.Counts[59] != 1 {
		t.Fatalf("after rollover hour series = %+v, want 1 hit in the last bucket", s)
	}
	if s := seriesOf(day, "j"); s == nil || s.Total != 3 || s.Counts[22] != 2 || s.Counts[23] != 1 {
		t.Fatalf("day series = %+v, want 2 in the previous hour and 1 in this one", s)
	}

	// A late event older than its minute bucket's current period is dropped
	// from the hour window, not counted into the newer minute; its hour is
	// still in the day window.
	c.Add("j", t0.Add(30*time.Second))
	hour, day = c.Snapshot(t1)
	if s := seriesOf(hour, "j"); s.Total != 1 {
		t.Errorf("a stale event leaked into the current minute: %+v", s)
	}
	if s := seriesOf(day, "j"); s.Total != 4 || s.Counts[22] != 3 {
		t.Errorf("the late event belongs to the previous hour: %+v", s)
	}

	// Reading later without new events: buckets age out without a write.
	hour, day = c.Snapshot(t1.Add(59 * time.Minute))
	if s := seriesOf(hour, "j"); s == nil || s.Counts[0] != 1 || s.Total != 1 {
		t.Errorf("59 minutes later the hit should be the oldest bucket: %+v", s)
	}
	hour, day = c.Snapshot(t1.Add(60 * time.Minute))
	if seriesOf(hour, "j") != nil {
		t.Errorf("60 minutes later the hit should have left the hour window")
	}
	if s := seriesOf(day, "j"); s == nil || s.Total != 4 {
		t.Errorf("the day still holds every hit: %+v", s)
	}

	// A day later the series is forgotten altogether.
	hour, day = c.Snapshot(t1.Add(25 * time.Hour))
	if len(hour.Series)+len(day.Series) != 0 || len(c.series) != 0 {
		t.Errorf("after a day: %d/%d series, %d kept", len(hour.Series), len(day.Series), len(c.series))
	}
}

func TestCountersBounded(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	c := NewCounters()
	for i := range maxSeries + 10 {
		c.Add(fmt.Sprintf("j%04d", i), now)
	}
	if len(c.series) != maxSeries+1 {
		t.Fatalf("%d series kept, want the cap %d plus %q", len(c.series), maxSeries, OtherSeries)
	}
	hour, _ := c.Snapshot(now)
	o := seriesOf(hour, OtherSeries)
	if o == nil || o.Total != 10 {
		t.Errorf("other series = %+v, want 10 hits", o)
	}
	if hour.Total != uint64(maxSeries+10) {
		t.Errorf("total %d, want %d", hour.Total, maxSeries+10)
	}
}

func TestCountersConcurrent(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	c := NewCounters()
	done := make(chan struct{})
	for g := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 1000 {
				c.Add([]string{"a", "b"}[g%2], now.Add(time.Duration(i)*time.Millisecond))
				if i%100 == 0 {
					c.Snapshot(now)
				}
			}
		}()
	}
	for range 4 {
		<-done
	}
	hour, _ := c.Snapshot(now.Add(time.Second))
	if hour.Total != 4000 {
		t.Errorf("total %d, want 4000", hour.Total)
	}
	ids := []string{hour.Series[0].Jurisdiction, hour.Series[1].Jurisdiction}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"a", "b"}) {
		t.Errorf("series %v", ids)
	}
}

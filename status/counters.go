package status

import (
	"slices"
	"sync"
	"time"
)

// Windows of the hit counters: the last hour in minutes and the last day in
// hours.
const (
	hourBuckets = 60
	dayBuckets  = 24
)

// maxSeries bounds the number of jurisdictions counted separately; hits of
// further ones are counted under one more series, OtherSeries. Configuration bounds the real
// number far below this; the cap keeps memory bounded whatever happens.
const maxSeries = 1024

// OtherSeries is the series that counts the hits of jurisdictions beyond the
// cap.
const OtherSeries = "(other)"

// ring counts events in n fixed-width buckets: bucket i holds the count of
// period stamp[i] (a Unix time divided by the width). A bucket is reset when
// an event of a newer period lands in it, so old counts roll off without a
// timer.
type ring struct {
	count []uint64
	stamp []int64
}

func newRing(n int) ring {
	return ring{count: make([]uint64, n), stamp: make([]int64, n)}
}

func (r *ring) add(period int64) {
	n := int64(len(r.count))
	i := mod(period, n)
	switch {
	case r.stamp[i] == period:
		r.count[i]++
	case r.stamp[i] < period:
		r.stamp[i], r.count[i] = period, 1
	}
	// r.stamp[i] > period: the event is older than the window; dropped.
}

// read returns the counts of the n periods ending with period last (oldest
// first) and their sum.
func (r *ring) read(last int64, out []uint64) ([]uint64, uint64) {
	n := int64(len(r.count))
	var sum uint64
	for p := last - n + 1; p <= last; p++ {
		var c uint64
		if i := mod(p, n); r.stamp[i] == p {
			c = r.count[i]
		}
		out = append(out, c)
		sum += c
	}
	return out, sum
}

// newest is the latest period with a count.
func (r *ring) newest() int64 {
	m := int64(-1 << 63)
	for i, s := range r.stamp {
		if r.count[i] > 0 && s > m {
			m = s
		}
	}
	return m
}

func mod(a, n int64) int64 {
	m := a % n
	if m < 0 {
		m += n
	}
	return m
}

// series is the hits of one jurisdiction.
type series struct {
	minutes ring // hourBuckets one-minute buckets
	hours   ring // dayBuckets one-hour buckets
}

// Counters counts policy hits per jurisdiction over the last hour (per
// minute) and the last day (per hour). Memory is fixed per jurisdiction and
// the number of jurisdictions is capped. It is safe for concurrent use.
type Counters struct {
	mu     sync.Mutex
	series map[string]*series
}

// NewCounters returns empty counters.
func NewCounters() *Counters {
	return &Counters{series: map[string]*series{}}
}

// Add counts one hit of jurisdiction at time t.
func (c *Counters) Add(jurisdiction string, t time.Time) {
	sec := t.Unix()
	c.mu.Lock()
	s := c.series[jurisdiction]
	if s == nil {
		if len(c.series) >= maxSeries {
			jurisdiction = OtherSeries
			s = c.series[jurisdiction]
		}
		if s == nil {
			s = &series{minutes: newRing(hourBuckets), hours: newRing(dayBuckets)}
			c.series[jurisdiction] = s
		}
	}
	s.minutes.add(floorDiv(sec, 60))
	s.hours.add(floorDiv(sec, 3600))
	c.mu.Unlock()
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// Window is the hits of every jurisdiction over one window.
type Window struct {
	// Start is the start of the oldest bucket; Step the width of a bucket
	// in seconds. Bucket k covers [Start + k*Step, Start + (k+1)*Step).
	Start time.Time `json:"start"`
	Step  int       `json:"step_seconds"`
	// Buckets is the number of buckets of every series.
	Buckets int `json:"buckets"`
	// Total is the sum of every series.
	Total uint64 `json:"total"`
	// Series has one entry per jurisdiction with hits in the window, most
	// hits first.
	Series []Series `json:"series"`
}

// Series is the hits of one jurisdiction over a window.
type Series struct {
	Jurisdiction string   `json:"jurisdiction"`
	Total        uint64   `json:"total"`
	Counts       []uint64 `json:"counts"`
}

// Snapshot returns the hits of the hour and of the day that end at now (the
// bucket of now included). Jurisdictions without a hit in the last day are
// forgotten.
func (c *Counters) Snapshot(now time.Time) (hour, day Window) {
	sec := now.Unix()
	lastMin, lastHour := floorDiv(sec, 60), floorDiv(sec, 3600)
	hour = Window{Start: time.Unix((lastMin-hourBuckets+1)*60, 0).UTC(), Step: 60, Buckets: hourBuckets, Series: []Series{}}
	day = Window{Start: time.Unix((lastHour-dayBuckets+1)*3600, 0).UTC(), Step: 3600, Buckets: dayBuckets, Series: []Series{}}
	c.mu.Lock()
	for id, s := range c.series {
		if s.hours.newest() <= lastHour-dayBuckets && s.minutes.newest() <= lastMin-hourBuckets {
			delete(c.series, id)
			continue
		}
		if counts, sum := s.minutes.read(lastMin, make([]uint64, 0, hourBuckets)); sum > 0 {
			hour.Series = append(hour.Series, Series{Jurisdiction: id, Total: sum, Counts: counts})
			hour.Total += sum
		}
		if counts, sum := s.hours.read(lastHour, make([]uint64, 0, dayBuckets)); sum > 0 {
			day.Series = append(day.Series, Series{Jurisdiction: id, Total: sum, Counts: counts})
			day.Total += sum
		}
	}
	c.mu.Unlock()
	sortSeries(hour.Series)
	sortSeries(day.Series)
	return hour, day
}

func sortSeries(s []Series) {
	slices.SortFunc(s, func(a, b Series) int {
		if a.Total != b.Total {
			if a.Total > b.Total {
				return -1
			}
			return 1
		}
		if a.Jurisdiction < b.Jurisdiction {
			return -1
		}
		if a.Jurisdiction > b.Jurisdiction {
			return 1
		}
		return 0
	})
}

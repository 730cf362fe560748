package attack

import (
	"fmt"
	"math"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// Segment is a stretch of an attack whose rate moves linearly from From to
// To requests per second over Duration (From == To: a constant rate).
type Segment struct {
	Duration time.Duration
	From, To float64
}

// Schedule is an open-model vegeta.Pacer made of segments: it asks for
// hits at the times the schedule says, whatever the server's answers do,
// so a slow server cannot slow the load (no coordinated omission). It
// covers constant, linear and spike shapes; steps run one constant
// schedule per step.
type Schedule struct {
	Segments []Segment
}

var _ vegeta.Pacer = Schedule{}

// Constant is a schedule of one constant rate.
func Constant(rate float64, d time.Duration) Schedule {
	return Schedule{Segments: []Segment{{Duration: d, From: rate, To: rate}}}
}

// Linear ramps from one rate to another.
func Linear(from, to float64, d time.Duration) Schedule {
	return Schedule{Segments: []Segment{{Duration: d, From: from, To: to}}}
}

// Spike runs at base, jumps to peak at spikeAt for spikeDur, then returns
// to base until d.
func Spike(base, peak float64, spikeAt, spikeDur, d time.Duration) Schedule {
	var s Schedule
	for _, seg := range []Segment{
		{Duration: spikeAt, From: base, To: base},
		{Duration: spikeDur, From: peak, To: peak},
		{Duration: d - spikeAt - spikeDur, From: base, To: base},
	} {
		if seg.Duration > 0 {
			s.Segments = append(s.Segments, seg)
		}
	}
	return s
}

// Scale returns the schedule with every rate multiplied by f.
func (s Schedule) Scale(f float64) Schedule {
	out := Schedule{Segments: make([]Segment, len(s.Segments))}
	for i, seg := range s.Segments {
		out.Segments[i] = Segment{Duration: seg.Duration, From: seg.From * f, To: seg.To * f}
	}
	return out
}

// Duration is the schedule's total length.
func (s Schedule) Duration() time.Duration {
	var d time.Duration
	for _, seg := range s.Segments {
		d += seg.Duration
	}
	return d
}

// Hits is the number of hits the schedule asks for in its first t.
func (s Schedule) Hits(t time.Duration) float64 {
	var h float64
	for _, seg := range s.Segments {
		if t <= 0 {
			break
		}
		d := min(t, seg.Duration)
		h += seg.hits(d.Seconds())
		t -= d
	}
	return h
}

// Expected is the number of hits in the whole schedule.
func (s Schedule) Expected() float64 { return s.Hits(s.Duration()) }

// MeanRate is the schedule's average rate.
func (s Schedule) MeanRate() float64 {
	if d := s.Duration(); d > 0 {
		return s.Expected() / d.Seconds()
	}
	return 0
}

// Rate is the rate the schedule asks for at elapsed.
func (s Schedule) Rate(elapsed time.Duration) float64 {
	for _, seg := range s.Segments {
		if elapsed < seg.Duration {
			return seg.rate(elapsed.Seconds())
		}
		elapsed -= seg.Duration
	}
	return 0
}

// Pace tells vegeta how long to wait before the next hit: until the time
// the schedule gives the next hit, or not at all when that time has passed
// (the attack is behind and catches up).
func (s Schedule) Pace(elapsed time.Duration, hits uint64) (time.Duration, bool) {
	if elapsed >= s.Duration() {
		return 0, true
	}
	at, ok := s.timeOf(float64(hits + 1))
	if !ok {
		return 0, true
	}
	return max(at-elapsed, 0), false
}

// timeOf is when the schedule reaches h hits; false if it never does.
func (s Schedule) timeOf(h float64) (time.Duration, bool) {
	var start time.Duration
	for _, seg := range s.Segments {
		in := seg.hits(seg.Duration.Seconds())
		if h <= in {
			t := seg.solve(h)
			return start + time.Duration(t*float64(time.Second)), true
		}
		h -= in
		start += seg.Duration
	}
	return 0, false
}

func (seg Segment) slope() float64 {
	if seg.Duration <= 0 {
		return 0
	}
	return (seg.To - seg.From) / seg.Duration.Seconds()
}

func (seg Segment) rate(t float64) float64 { return seg.From + seg.slope()*t }

// hits is the integral of the rate over the segment's first t seconds.
func (seg Segment) hits(t float64) float64 { return seg.From*t + seg.slope()*t*t/2 }

// solve returns the t (seconds) at which the segment reaches h hits.
func (seg Segment) solve(h float64) float64 {
	a, k := seg.From, seg.slope()/2
	if math.Abs(k) < 1e-12 {
		if a <= 0 {
			return seg.Duration.Seconds()
		}
		return h / a
	}
	disc := a*a + 4*k*h
	if disc < 0 {
		return seg.Duration.Seconds()
	}
	return (-a + math.Sqrt(disc)) / (2 * k)
}

// String describes the schedule, e.g. "200/s for 20s" or "100→500/s for 1m".
func (s Schedule) String() string {
	parts := make([]string, len(s.Segments))
	for i, seg := range s.Segments {
		if seg.From == seg.To {
			parts[i] = fmt.Sprintf("%g/s for %s", seg.From, seg.Duration)
		} else {
			parts[i] = fmt.Sprintf("%g→%g/s for %s", seg.From, seg.To, seg.Duration)
		}
	}
	return strings.Join(parts, ", then ")
}

package attack

import (
	"math"
	"testing"
	"time"
)

func TestScheduleHitsAndRate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		s        Schedule
		at       time.Duration
		hits     float64
		rate     float64
		expected float64
	}{
		{"constant", Constant(100, 10*time.Second), 2 * time.Second, 200, 100, 1000},
		{"linear", Linear(100, 300, 10*time.Second), 5 * time.Second, 750, 200, 2000},
		{"spike before", Spike(10, 1000, 2*time.Second, time.Second, 5*time.Second), time.Second, 10, 10, 1040},
		{"spike during", Spike(10, 1000, 2*time.Second, time.Second, 5*time.Second), 2500 * time.Millisecond, 520, 1000, 1040},
		{"spike after", Spike(10, 1000, 2*time.Second, time.Second, 5*time.Second), 4 * time.Second, 1030, 10, 1040},
		{"scaled", Constant(100, 10*time.Second).Scale(0.5), 2 * time.Second, 100, 50, 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.s.Hits(tt.at); math.Abs(got-tt.hits) > 1e-6 {
				t.Errorf("Hits(%s) = %v, want %v", tt.at, got, tt.hits)
			}
			if got := tt.s.Rate(tt.at); math.Abs(got-tt.rate) > 1e-6 {
				t.Errorf("Rate(%s) = %v, want %v", tt.at, got, tt.rate)
			}
			if got := tt.s.Expected(); math.Abs(got-tt.expected) > 1e-6 {
				t.Errorf("Expected() = %v, want %v", got, tt.expected)
			}
		})
	}
}

// Pace must hand out hits at the times the schedule says: following its
// waits from hit to hit reproduces Hits at every point.
func TestSchedulePaceFollowsHits(t *testing.T) {
	t.Parallel()
	for name, s := range map[string]Schedule{
		"constant": Constant(50, 4*time.Second),
		"linear":   Linear(10, 200, 4*time.Second),
		"down":     Linear(200, 10, 4*time.Second),
		"spike":    Spike(20, 400, time.Second, time.Second, 4*time.Second),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var elapsed time.Duration
			var hits uint64
			for {
				wait, stop := s.Pace(elapsed, hits)
				if stop {
					break
				}
				// On schedule, every hit after the first waits for its time:
				// two hits at once would be a burst the schedule never asked for.
				if hits > 0 && wait <= 0 {
					t.Fatalf("at %s after %d hits: no wait; the schedule spaces hits", elapsed, hits)
				}
				elapsed += wait + 50*time.Microsecond // a sleep always overshoots a little
				if elapsed >= s.Duration() {
					break
				}
				hits++
				if want := s.Hits(elapsed); math.Abs(float64(hits)-want) > 1.01 {
					t.Fatalf("at %s: %d hits sent, the schedule says %.2f", elapsed, hits, want)
				}
			}
			if want := s.Expected(); math.Abs(float64(hits)-want) > 1.01 {
				t.Errorf("%d hits in all, want %.1f", hits, want)
			}
		})
	}
}

// A pacer that is behind its schedule asks for the next hit at once: the
// load does not wait for a slow server (open model).
func TestSchedulePaceCatchesUp(t *testing.T) {
	t.Parallel()
	s := Constant(100, 10*time.Second)
	if wait, stop := s.Pace(time.Second, 10); wait != 0 || stop {
		t.Errorf("behind by 90 hits: wait %s stop %v, want 0 false", wait, stop)
	}
	if _, stop := s.Pace(10*time.Second, 1000); !stop {
		t.Error("at the end: want stop")
	}
}

func TestWeightedRound(t *testing.T) {
	t.Parallel()
	round := weightedRound([]float64{1, 3, 6}, 1000)
	counts := map[int]int{}
	for _, i := range round {
		counts[i]++
	}
	if counts[0] != 100 || counts[1] != 300 || counts[2] != 600 {
		t.Errorf("counts %v, want 100/300/600", counts)
	}
	// Smooth: the heavy choice never runs more than a few times in a row.
	run, longest := 0, 0
	for i := 1; i < len(round); i++ {
		if round[i] == round[i-1] {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	if longest > 3 {
		t.Errorf("a choice repeats %d times in a row; want an interleaved round", longest+1)
	}
}

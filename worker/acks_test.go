package main

import (
	"slices"
	"testing"
)

type ackCall struct {
	tag      uint64
	multiple bool
}

// newTestAcker returns an acker without its goroutine: the test flushes.
func newTestAcker(calls *[]ackCall) *acker {
	return &acker{ack: func(tag uint64, multiple bool) error {
		*calls = append(*calls, ackCall{tag, multiple})
		return nil
	}, kick: make(chan struct{}, 1)}
}

func TestAcker(t *testing.T) {
	t.Parallel()
	type step struct {
		ack, reject []uint64
		want        []ackCall // after a flush
	}
	tests := []struct {
		name  string
		steps []step
		left  int // deliveries still pending at the end
	}{
		{"a run in order is one multiple ack", []step{
			{ack: []uint64{1, 2, 3, 4}, want: []ackCall{{4, true}}},
		}, 0},
		{"out of order within the run", []step{
			{ack: []uint64{3, 1, 4, 2}, want: []ackCall{{4, true}}},
		}, 0},
		{"a slow head holds no ack back", []step{
			{ack: []uint64{2, 3}, want: []ackCall{{2, false}, {3, false}}},
			{ack: []uint64{4}, want: []ackCall{{4, false}}},
			{ack: []uint64{1}, want: []ackCall{{1, true}}},
		}, 0},
		{"a reject inside a run is skipped by the multiple ack", []step{
			{ack: []uint64{1, 3, 4}, reject: []uint64{2}, want: []ackCall{{4, true}}},
		}, 0},
		{"a run ending in a reject acks up to the last ack", []step{
			{ack: []uint64{1, 2}, reject: []uint64{3, 4}, want: []ackCall{{2, true}}},
		}, 0},
		{"only rejects send nothing", []step{
			{reject: []uint64{1, 2, 3, 4}, want: nil},
		}, 0},
		{"an abandoned delivery is never acked", []step{
			{ack: []uint64{1, 3, 4}, want: []ackCall{{1, true}, {3, false}, {4, false}}},
		}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var calls []ackCall
			a := newTestAcker(&calls)
			for tag := uint64(1); tag <= 4; tag++ {
				a.delivered(tag)
			}
			for i, s := range tt.steps {
				calls = nil
				for _, tag := range s.reject {
					a.rejected(tag)
				}
				for _, tag := range s.ack {
					a.acked(tag)
				}
				a.flush()
				if !slices.Equal(calls, s.want) {
					t.Errorf("step %d: acks %v, want %v", i, calls, s.want)
				}
			}
			if len(a.pending) != tt.left {
				t.Errorf("%d deliveries pending, want %d: %+v", len(a.pending), tt.left, a.pending)
			}
		})
	}
}

// Every acked delivery is acked exactly once, whatever the order and
// however the flushes fall, and a multiple ack never covers a delivery
// that was not acked.
func TestAckerCoversEachOnce(t *testing.T) {
	t.Parallel()
	const n = 500
	var calls []ackCall
	a := newTestAcker(&calls)
	for tag := uint64(1); tag <= n; tag++ {
		a.delivered(tag)
	}
	order := make([]uint64, 0, n)
	for tag := uint64(1); tag <= n; tag++ {
		order = append(order, tag)
	}
	// Swap neighbours to finish slightly out of order; 450 is abandoned,
	// 200 is rejected.
	for i := 0; i+1 < n; i += 3 {
		order[i], order[i+1] = order[i+1], order[i]
	}
	for i, tag := range order {
		switch tag {
		case 450:
		case 200:
			a.rejected(tag)
		default:
			a.acked(tag)
		}
		if i%7 == 0 {
			a.flush()
		}
	}
	a.flush()
	acked := map[uint64]int{}
	var last uint64
	for _, c := range calls {
		if !c.multiple {
			acked[c.tag]++
			continue
		}
		for tag := last + 1; tag <= c.tag; tag++ {
			if _, done := acked[tag]; !done && tag != 200 { // rejected: settled already
				acked[tag]++
			}
		}
		last = c.tag
	}
	for tag := uint64(1); tag <= n; tag++ {
		want := 1
		if tag == 450 || tag == 200 {
			want = 0
		}
		if got := acked[tag]; got != want {
			t.Errorf("delivery %d acked %d times, want %d", tag, got, want)
		}
	}
	if len(calls) >= n/3 {
		t.Errorf("%d acks for %d deliveries: runs were not merged", len(calls), n)
	}
}

package main

import (
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/docket/docket/internal/docket"
)

// The lanes sit between every delivery and its handler. These benchmarks
// measure what one job costs them with a handler that does nothing: queueing,
// the lane goroutine's start, the hand-over and the wait for the job to
// finish. They are the baseline to compare a change against with benchstat.

const (
	// benchWindow is how many jobs are in flight at once, the consumer's
	// default prefetch: each loop waits for them every benchWindow jobs.
	benchWindow = 256
	// benchLaneDepth is the -lane-depth default.
	benchLaneDepth = 8
)

// BenchmarkLanesDispatch: with 1000 users each job starts and ends its own
// lane; with one user one lane runs them all.
func BenchmarkLanesDispatch(b *testing.B) {
	b.Run("users=1000", func(b *testing.B) { benchmarkLanes(b, 1000, false) })
	b.Run("users=1", func(b *testing.B) { benchmarkLanes(b, 1, false) })
}

// BenchmarkLanesOffer goes through offer with spilling set as the worker
// sets it. With one user most jobs spill, as a flooding user's do.
func BenchmarkLanesOffer(b *testing.B) {
	b.Run("users=1000", func(b *testing.B) { benchmarkLanes(b, 1000, true) })
	b.Run("users=1", func(b *testing.B) { benchmarkLanes(b, 1, true) })
}

// benchmarkLanes hands the worker's jobs round-robin to users' lanes. It
// counts a job done as the worker settles a delivery: when it has run, or
// at once when it spills (the worker acks it then; the job kept to run
// later is marked early and not counted again).
func benchmarkLanes(b *testing.B, users int, viaOffer bool) {
	keys := make([]uuid.UUID, users)
	for i := range keys {
		keys[i] = uuid.New()
	}
	var settled sync.WaitGroup
	l := newLanes(func(j job) {
		if !j.early {
			settled.Done()
		}
	})
	if viaOffer {
		// As handlePartition sets it.
		l.spillOver(benchLaneDepth,
			func(a, b job) bool { return a.msg.Seq > b.msg.Seq },
			func(j job) job { j.early = true; return j })
	}
	var seq int64
	b.ReportAllocs()
	for b.Loop() {
		seq++
		key := keys[int(seq)%users]
		j := job{msg: docket.Message{ID: key, UserID: key, Seq: seq, Type: docket.TypeEcho}}
		settled.Add(1)
		if viaOffer {
			switch l.offer(key, j) {
			case offerSpilled:
				settled.Done()
			case offerRefused:
				b.Fatal("offer refused a job before stop")
			}
		} else if !l.dispatch(key, j) {
			b.Fatal("dispatch refused a job before stop")
		}
		if seq%benchWindow == 0 {
			settled.Wait()
		}
	}
	// The last, partial window finishes untimed: at most benchWindow-1 of
	// the b.N jobs.
	settled.Wait()
	l.stop()
}

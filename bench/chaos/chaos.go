// Package chaos injects a scenario's faults into the processes and
// servers of a local bench run, on the attack's clock, and measures how
// the system recovered from each: the time to the first 202 after the
// fault ended, and the time until the backlog was back to normal.
//
// Run executes the schedule through an Injector (Local does it for real:
// the bench-started service and workers, the local RabbitMQ and
// PostgreSQL); Recover computes a fault's recovery from the attack's
// records and the backlog samples. Both are plain functions of their
// inputs, so the schedule and the recovery are tested without a server.
package chaos

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/docket/docket/bench/scenario"
)

// Injector begins and ends faults.
type Injector interface {
	// Begin starts the fault: the process or server is down when it returns.
	Begin(ctx context.Context, f scenario.Fault) error
	// End undoes the fault: the process or server is started again when it
	// returns (for a server: it answers again).
	End(ctx context.Context, f scenario.Fault) error
}

// Clock is the time Run follows; tests pass a fake one.
type Clock interface {
	Now() time.Time
	// SleepUntil returns at t, or with ctx's error when ctx ends first.
	SleepUntil(ctx context.Context, t time.Time) error
}

// RealClock is the wall clock.
type RealClock struct{}

// Now is time.Now.
func (RealClock) Now() time.Time { return time.Now() }

// SleepUntil sleeps until t or until ctx ends.
func (RealClock) SleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// Record is what happened to one fault.
type Record struct {
	Fault scenario.Fault
	// Started is when the fault began; Down when it had taken effect (the
	// process or server was down); Ended when it was undone (started again).
	Started, Down, Ended time.Time
	// Err says what went wrong in beginning or ending the fault.
	Err error
}

// DownFor is how long the fault lasted, from its start to its end.
func (r Record) DownFor() time.Duration { return r.Ended.Sub(r.Started) }

// Run injects the faults one after another, each at start + At, ended at
// start + At + Duration (or as soon as its beginning took effect, when
// that took longer). A fault that has begun is always ended, even when ctx
// ends (an interrupted run must not leave the broker or the database
// down). logf, if not nil, tells of each step.
func Run(ctx context.Context, start time.Time, faults []scenario.Fault, inj Injector, clock Clock, logf func(format string, args ...any)) []Record {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	var out []Record
	for _, f := range faults {
		if err := clock.SleepUntil(ctx, start.Add(f.At)); err != nil {
			break
		}
		rec := Record{Fault: f, Started: clock.Now()}
		logf("fault: %s: begin", f)
		beginErr := inj.Begin(ctx, f)
		rec.Down = clock.Now()
		if beginErr != nil {
			logf("fault: %s: begin failed: %v", f, beginErr)
		}
		// The wait ends early when ctx does: the fault is undone at once.
		_ = clock.SleepUntil(ctx, start.Add(f.End()))
		endErr := inj.End(context.WithoutCancel(ctx), f)
		rec.Ended = clock.Now()
		if endErr != nil {
			logf("fault: %s: end failed: %v", f, endErr)
		} else {
			logf("fault: %s: ended after %s", f, rec.DownFor().Round(10*time.Millisecond))
		}
		if beginErr != nil {
			beginErr = fmt.Errorf("begin: %w", beginErr)
		}
		if endErr != nil {
			endErr = fmt.Errorf("end: %w", endErr)
		}
		rec.Err = errors.Join(beginErr, endErr)
		out = append(out, rec)
	}
	return out
}

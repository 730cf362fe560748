package runner

import (
	"context"
	"time"

	"github.com/docket/docket/bench/api"
	"github.com/docket/docket/bench/attack"
	"github.com/docket/docket/bench/chaos"
	"github.com/docket/docket/bench/report"
)

// startFaults injects the scenario's faults on the clock of an attack
// that starts now. The returned wait blocks until every fault has been
// undone and returns what happened; call it before the stack is stopped,
// also when the attack failed.
func (r *run) startFaults(ctx context.Context) (wait func() []chaos.Record) {
	inj := &chaos.Local{Stack: r.stack, PGVersion: r.pgVersion}
	start := time.Now()
	done := make(chan []chaos.Record, 1)
	go func() {
		done <- chaos.Run(ctx, start, r.sc.Faults, inj, chaos.RealClock{}, func(format string, args ...any) {
			r.logf("bench: "+format, args...)
		})
	}()
	return func() []chaos.Record { return <-done }
}

// backlogStep is the resolution of the run's backlog series.
const backlogStep = 250 * time.Millisecond

// runBacklog is the run's own backlog over time, from the listing (server
// clock: the same machine's in local mode, the only mode with faults),
// from a little before the first fault until the last finish.
func runBacklog(rows map[string]api.Row, firstFault time.Time) []chaos.Sample {
	spans := make([]chaos.Span, 0, len(rows))
	end := firstFault
	for _, row := range rows {
		s := chaos.Span{Accepted: row.AcceptedAt}
		if row.ProcessedAt != nil {
			s.Finished = *row.ProcessedAt
			end = later(end, s.Finished)
		}
		end = later(end, s.Accepted)
		spans = append(spans, s)
	}
	return chaos.BacklogSeries(spans, firstFault.Add(-chaos.BeforeWindow-time.Second), end.Add(backlogStep), backlogStep)
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// faultFigures computes each fault's recovery for the report.
func faultFigures(recs []chaos.Record, records []*attack.Record, backlog []chaos.Sample) []report.Fault {
	optMS := func(d *time.Duration) *float64 {
		if d == nil {
			return nil
		}
		v := report.Round(float64(*d) / float64(time.Millisecond))
		return &v
	}
	out := make([]report.Fault, 0, len(recs))
	for _, fr := range recs {
		rc := chaos.Recover(fr, records, backlog)
		f := report.Fault{
			Action:        fr.Fault.Action,
			Worker:        fr.Fault.Worker,
			AtMS:          float64(fr.Fault.At.Milliseconds()),
			DurationMS:    float64(fr.Fault.Duration.Milliseconds()),
			StartedAt:     fr.Started.UTC(),
			EndedAt:       fr.Ended.UTC(),
			DownMS:        float64(fr.DownFor().Milliseconds()),
			FirstAcceptMS: optMS(rc.FirstAcceptAfter),
			Failed:        rc.Failed,
			BacklogBefore: rc.BacklogBefore,
			BacklogPeak:   rc.BacklogPeak,
			BacklogNormal: chaos.NormalLevel(rc.BacklogBefore),
			RecoveredMS:   optMS(rc.BacklogRecovered),
		}
		if fr.Err != nil {
			f.Error = fr.Err.Error()
		}
		out = append(out, f)
	}
	return out
}

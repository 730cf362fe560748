package chaos

import (
	"slices"
	"time"

	"github.com/docket/docket/bench/attack"
)

// Sample is the backlog at one time.
type Sample struct {
	At    time.Time
	Value float64
}

// BeforeWindow is how far back before a fault the backlog's normal level
// is taken from: the highest sample in that window.
const BeforeWindow = 5 * time.Second

// NormalLevel is the backlog that counts as back to normal after a fault
// that began with the backlog at before: half as much again, plus 100
// (a backlog near zero moves by a few dozen between samples).
func NormalLevel(before float64) float64 { return before*1.5 + 100 }

// Recovery is how the system recovered from one fault.
type Recovery struct {
	// FirstAcceptAfter is the time from the fault's end to the first 202
	// received at or after it; nil if none came.
	FirstAcceptAfter *time.Duration
	// Failed counts the requests sent from the fault's start to the first
	// 202 after its end that got no 202 (refused, or no answer).
	Failed int
	// BacklogBefore is the highest backlog sampled in BeforeWindow before
	// the fault; BacklogPeak the highest from its start to its recovery.
	BacklogBefore, BacklogPeak float64
	// BacklogRecovered is the time from the fault's end to the first
	// sample at or after it with the backlog at most
	// NormalLevel(BacklogBefore); nil if the samples never got there.
	BacklogRecovered *time.Duration
	// Sampled says whether any backlog sample was taken.
	Sampled bool
}

// Recover computes the recovery from a fault, from the attack's records
// (any order) and the backlog samples (in time order).
func Recover(rec Record, records []*attack.Record, backlog []Sample) Recovery {
	var out Recovery
	var firstAccept time.Time
	for _, r := range records {
		if r.Code != 202 || r.Received.Before(rec.Ended) {
			continue
		}
		if firstAccept.IsZero() || r.Received.Before(firstAccept) {
			firstAccept = r.Received
		}
	}
	if !firstAccept.IsZero() {
		d := firstAccept.Sub(rec.Ended)
		out.FirstAcceptAfter = &d
	}
	for _, r := range records {
		if r.Code == 202 || r.Sent.Before(rec.Started) {
			continue
		}
		if firstAccept.IsZero() || r.Sent.Before(firstAccept) {
			out.Failed++
		}
	}

	out.Sampled = len(backlog) > 0
	for _, s := range backlog {
		if !s.At.Before(rec.Started.Add(-BeforeWindow)) && s.At.Before(rec.Started) {
			out.BacklogBefore = max(out.BacklogBefore, s.Value)
		}
	}
	normal := NormalLevel(out.BacklogBefore)
	for _, s := range backlog {
		if s.At.Before(rec.Started) {
			continue
		}
		out.BacklogPeak = max(out.BacklogPeak, s.Value)
		if !s.At.Before(rec.Ended) && s.Value <= normal {
			d := s.At.Sub(rec.Ended)
			out.BacklogRecovered = &d
			break
		}
	}
	return out
}

// Span is one accepted request's life on the server's clock, from its
// listing: accepted_at and processed_at (zero while unfinished).
type Span struct {
	Accepted, Finished time.Time
}

// BacklogSeries counts, every step from from to to, the requests accepted
// and not yet finished: the run's own backlog, exact, from the listing.
// (The service's docket_backlog gauge is an estimate of the whole
// database's, counted now and then; it is not what recovery is judged on.)
func BacklogSeries(spans []Span, from, to time.Time, step time.Duration) []Sample {
	if step <= 0 || to.Before(from) {
		return nil
	}
	accepted := make([]time.Time, 0, len(spans))
	finished := make([]time.Time, 0, len(spans))
	for _, s := range spans {
		accepted = append(accepted, s.Accepted)
		if !s.Finished.IsZero() {
			finished = append(finished, s.Finished)
		}
	}
	slices.SortFunc(accepted, time.Time.Compare)
	slices.SortFunc(finished, time.Time.Compare)
	var out []Sample
	a, f := 0, 0
	for t := from; !t.After(to); t = t.Add(step) {
		for a < len(accepted) && !accepted[a].After(t) {
			a++
		}
		for f < len(finished) && !finished[f].After(t) {
			f++
		}
		out = append(out, Sample{At: t, Value: float64(a - f)})
	}
	return out
}

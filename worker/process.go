package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/docket/docket/internal/docket"
	"github.com/docket/docket/internal/postgres"
)

// outcome says what to do with a delivery once processing returns.
type outcome int

const (
	ack     outcome = iota // finished (now or before): remove from the queue
	abandon                // stopped midway: leave unacked, it is redelivered
	reject                 // names no request: dead-letter it
)

// process brings request m to a finish, in its user's order: if requests
// before it are unfinished, it finishes those first, from their database
// rows; if m is finished already (a redelivery), it does nothing. It
// returns abandon only when ctx ends.
func (w *worker) process(ctx context.Context, m docket.Message) outcome {
	if out, ok := w.runUnclaimed(ctx, m); ok {
		return out
	}
	for attempt := 0; ; attempt++ {
		if attempt > 0 && !sleep(ctx, w.dbBackoff(attempt)) {
			return abandon
		}
		c, ok, err := w.proc.Claim(ctx, m)
		if err != nil {
			w.log.Warn("claim failed; retrying", "request", m.ID, "err", err)
			continue
		}
		if ok {
			return w.attempt(ctx, c)
		}
		st, err := w.proc.State(ctx, m.ID)
		if errors.Is(err, postgres.ErrNoRequest) {
			unknownMessages.Inc()
			w.log.Error("message names no request; dead-lettering it", "request", m.ID, "user", m.UserID, "seq", m.Seq)
			return reject
		}
		if err != nil {
			w.log.Warn("read request state failed; retrying", "request", m.ID, "err", err)
			continue
		}
		switch {
		case st.FinishedSeq >= m.Seq:
			duplicates.Inc()
			return ack
		case st.FinishedSeq < m.Seq-1:
			gap, err := w.proc.Unfinished(ctx, m.UserID, st.FinishedSeq, m.Seq)
			if err != nil {
				w.log.Warn("read gap failed; retrying", "request", m.ID, "err", err)
				continue
			}
			for _, g := range gap {
				gapFills.Inc()
				if out := w.process(ctx, g); out == abandon {
					return abandon
				}
			}
			attempt = -1 // the gap is filled: claim m again at once
		default:
			// The counter stands right before m, yet the claim failed: the
			// row is finished while the counter is not, which the finish
			// statement never writes. Count it and let the queue's
			// delivery limit end it rather than loop.
			fifoViolations.Inc()
			w.log.Error("request finished out of step with its user's counter", "request", m.ID, "seq", m.Seq, "finished_seq", st.FinishedSeq, "status", st.Status)
			return reject
		}
	}
}

// runUnclaimed runs a request with an instant, pure handler (echo) straight
// from the payload its message carries, and finishes it without a claim:
// one statement instead of two. The finish applies only where the user's
// counter stands right before the request, so running it early cannot
// break the user's order. ok is false when the message carries no payload,
// the handler is not instant, or the finish did not apply (a duplicate or a
// gap): process then takes the claimed path, which tells them apart.
func (w *worker) runUnclaimed(ctx context.Context, m docket.Message) (out outcome, ok bool) {
	if m.Type != docket.TypeEcho || m.Payload == nil {
		return 0, false
	}
	start := time.Now()
	result, err := runHandler(ctx, m.Type, m.Payload, 1)
	processingSeconds(m.Type).UpdateDuration(start)
	if err != nil {
		return 0, false
	}
	f, err := w.proc.Finish(ctx, postgres.Finish{ID: m.ID, UserID: m.UserID, Seq: m.Seq,
		Status: docket.StatusDone, Result: result, Unclaimed: true})
	if err != nil || !f.Applied {
		return 0, false
	}
	processed(m.Type, docket.StatusDone).Inc()
	endToEndSeconds.Update(time.Since(f.AcceptedAt).Seconds())
	return ack, true
}

// attempt runs a claimed request's attempts in the lane, with backoff between
// them, and writes its outcome with the user's counter.
func (w *worker) attempt(ctx context.Context, c postgres.Claimed) outcome {
	for {
		start := time.Now()
		result, err := runHandler(ctx, c.Type, c.Payload, c.Attempts)
		processingSeconds(c.Type).UpdateDuration(start)
		if ctx.Err() != nil {
			return abandon
		}
		f := postgres.Finish{ID: c.ID, UserID: c.UserID, Seq: c.Seq, Status: docket.StatusDone, Result: result}
		if err != nil {
			var perm permanentError
			if !errors.As(err, &perm) && c.Attempts <= w.cfg.MaxRetries {
				retries.Inc()
				if !sleep(ctx, w.retryBackoff(c.Attempts)) {
					return abandon
				}
				next, ok, cerr := w.reclaim(ctx, c.Message)
				if cerr != nil {
					return abandon
				}
				if !ok { // finished meanwhile by another worker
					duplicates.Inc()
					return ack
				}
				c = next
				continue
			}
			f.Status, f.Result = docket.StatusFailed, nil
			f.Error = fmt.Sprintf("gave up after %d attempts: %v", c.Attempts, err)
		}
		return w.finish(ctx, c, f)
	}
}

// reclaim claims the request again for its next attempt, riding out
// database outages.
func (w *worker) reclaim(ctx context.Context, m docket.Message) (postgres.Claimed, bool, error) {
	for attempt := 0; ; attempt++ {
		c, ok, err := w.proc.Claim(ctx, m)
		if err == nil {
			return c, ok, nil
		}
		if !sleep(ctx, w.dbBackoff(attempt+1)) {
			return postgres.Claimed{}, false, ctx.Err()
		}
	}
}

// finish writes the outcome; the statement applies only in the user's
// order. A finish that does not apply was done by someone else (a
// redelivery raced this one) unless the counter is behind, which would be
// an ordering violation.
func (w *worker) finish(ctx context.Context, c postgres.Claimed, f postgres.Finish) outcome {
	for attempt := 0; ; attempt++ {
		if attempt > 0 && !sleep(ctx, w.dbBackoff(attempt)) {
			return abandon
		}
		fin, err := w.proc.Finish(ctx, f)
		if err != nil {
			w.log.Warn("finish failed; retrying", "request", f.ID, "err", err)
			continue
		}
		if fin.Applied {
			processed(c.Type, f.Status).Inc()
			endToEndSeconds.Update(time.Since(c.AcceptedAt).Seconds())
			return ack
		}
		st, err := w.proc.State(ctx, f.ID)
		if err != nil {
			continue
		}
		if st.FinishedSeq >= f.Seq {
			duplicates.Inc()
		} else {
			fifoViolations.Inc()
			w.log.Error("finish refused: the user's counter is behind this request", "request", f.ID, "seq", f.Seq, "finished_seq", st.FinishedSeq)
		}
		return ack
	}
}

// retryBackoff is the wait before attempt+1 of a failing request:
// exponential from RetryBackoff, capped at RetryBackoffMax, with jitter.
func (w *worker) retryBackoff(attempt int) time.Duration {
	return jitter(min(w.cfg.RetryBackoff<<min(attempt-1, 20), w.cfg.RetryBackoffMax))
}

// dbBackoff is the wait before retrying a database step after a failure.
func (w *worker) dbBackoff(attempt int) time.Duration {
	return jitter(min(50*time.Millisecond<<min(attempt-1, 10), 2*time.Second))
}

func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}

// sleep waits d unless ctx ends first; it reports whether it waited.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

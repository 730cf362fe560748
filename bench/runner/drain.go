package runner

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/docket/docket/bench/api"
	"github.com/docket/docket/bench/attack"
	"github.com/docket/docket/bench/progress"
)

// tracker follows the accepted requests until they finish. It polls each
// user's listing from a cursor past the user's finished prefix, so a poll
// costs one page per user with work outstanding, not the whole history.
type tracker struct {
	client *api.Client
	users  map[string]*api.User

	mu          sync.Mutex
	rows        map[string]api.Row // id -> latest row seen
	outstanding map[string]map[string]bool
	cursor      map[string]int64
	accepted    int
	finished    int
}

func newTracker(client *api.Client, users []*api.User) *tracker {
	t := &tracker{
		client:      client,
		users:       map[string]*api.User{},
		rows:        map[string]api.Row{},
		outstanding: map[string]map[string]bool{},
		cursor:      map[string]int64{},
	}
	for _, u := range users {
		t.users[u.Name] = u
	}
	return t
}

// add starts tracking the accepted records.
func (t *tracker) add(records []*attack.Record) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range records {
		if r.Code != 202 || r.ID == "" {
			continue
		}
		t.accepted++
		if row, ok := t.rows[r.ID]; ok && row.Finished() {
			t.finished++
			continue
		}
		if t.outstanding[r.User] == nil {
			t.outstanding[r.User] = map[string]bool{}
		}
		t.outstanding[r.User][r.ID] = true
	}
}

func (t *tracker) counts() (finished, accepted int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.finished, t.accepted
}

// poll lists, once, every user with outstanding requests.
func (t *tracker) poll(ctx context.Context) error {
	t.mu.Lock()
	var users []*api.User
	for name, ids := range t.outstanding {
		if len(ids) > 0 {
			users = append(users, t.users[name])
		}
	}
	t.mu.Unlock()
	return forEach(ctx, users, 8, func(ctx context.Context, u *api.User) error {
		t.mu.Lock()
		cursor := t.cursor[u.Name]
		t.mu.Unlock()
		rows, err := t.client.ListAfter(ctx, u, cursor)
		if err != nil {
			return err
		}
		t.mu.Lock()
		defer t.mu.Unlock()
		advancing := true
		for _, row := range rows {
			t.rows[row.ID] = row
			if !row.Finished() {
				advancing = false
				continue
			}
			if advancing && row.Seq > cursor {
				t.cursor[u.Name] = row.Seq
			}
			if t.outstanding[u.Name][row.ID] {
				delete(t.outstanding[u.Name], row.ID)
				t.finished++
			}
		}
		return nil
	})
}

// drain polls until every accepted request has finished or timeout
// passes, showing finished/accepted. It returns whether all finished.
func (r *run) drain(ctx context.Context, label string, timeout time.Duration) (bool, time.Duration, error) {
	start := time.Now()
	r.metrics.setPhase("drain")
	var polls atomic.Int64
	line := progress.Start(r.progressOut(), r.cfg.TTY, 5*time.Second, func() string {
		f, a := r.tracker.counts()
		pct := 100.0
		if a > 0 {
			pct = 100 * float64(f) / float64(a)
		}
		return fmt.Sprintf("drain %s: %d/%d finished (%.1f%%), %s of at most %s, %d polls",
			label, f, a, pct, time.Since(start).Round(100*time.Millisecond), timeout, polls.Load())
	})
	defer line.Stop()
	deadline := start.Add(timeout)
	for {
		if f, a := r.tracker.counts(); f >= a {
			return true, time.Since(start), nil
		}
		if time.Now().After(deadline) {
			return false, time.Since(start), nil
		}
		if err := r.tracker.poll(ctx); err != nil {
			return false, time.Since(start), fmt.Errorf("drain: %w", err)
		}
		polls.Add(1)
		if f, a := r.tracker.counts(); f >= a {
			return true, time.Since(start), nil
		}
		select {
		case <-ctx.Done():
			return false, time.Since(start), ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// listAll fetches every user's full listing (GET /requests from seq 0,
// paginated), for the verifier.
func (r *run) listAll(ctx context.Context, users []*api.User) (map[string][]api.Row, error) {
	var done atomic.Int64
	line := progress.Start(r.progressOut(), r.cfg.TTY, 5*time.Second, func() string {
		return fmt.Sprintf("verify: listed %d/%d users", done.Load(), len(users))
	})
	defer line.Stop()
	var mu sync.Mutex
	out := map[string][]api.Row{}
	err := forEach(ctx, users, 8, func(ctx context.Context, u *api.User) error {
		rows, err := r.client.ListAfter(ctx, u, 0)
		if err != nil {
			return err
		}
		mu.Lock()
		out[u.Name] = rows
		mu.Unlock()
		done.Add(1)
		return nil
	})
	return out, err
}

package runner

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/docket/docket/bench/api"
	"github.com/docket/docket/bench/progress"
	"github.com/docket/docket/bench/scenario"
)

// newUsers makes the scenario's users, bench-<runid>-<n>, with random
// passwords, grouped as the scenario says.
func newUsers(sc *scenario.Scenario, runID string) map[string][]*api.User {
	groups := map[string][]*api.User{}
	n := 0
	for _, g := range sc.Users {
		for range g.Count {
			n++
			groups[g.Name] = append(groups[g.Name], &api.User{
				Name:     fmt.Sprintf("bench-%s-%d", runID, n),
				Password: rand.Text(),
				Group:    g.Name,
			})
		}
	}
	return groups
}

// setupUsers registers every user and, unless login is false, logs it in,
// with at most concurrency calls at a time. The server's bcrypt pool may
// answer 503 overloaded: the client retries after Retry-After.
func (r *run) setupUsers(ctx context.Context, users []*api.User, concurrency int, login bool) error {
	var ready atomic.Int64
	what := "registered and logged in"
	if !login {
		what = "registered"
	}
	line := progress.Start(r.progressOut(), r.cfg.TTY, 5*time.Second, func() string {
		return fmt.Sprintf("setup: %d/%d users %s", ready.Load(), len(users), what)
	})
	defer line.Stop()
	return forEach(ctx, users, concurrency, func(ctx context.Context, u *api.User) error {
		if err := r.client.Register(ctx, u); err != nil {
			return err
		}
		if login {
			if err := r.client.Login(ctx, u); err != nil {
				return err
			}
		}
		ready.Add(1)
		return nil
	})
}

// forEach runs f on every item, at most n at a time, and returns the first
// error (after which the rest are not started).
func forEach[T any](ctx context.Context, items []T, n int, f func(context.Context, T) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, max(n, 1))
	var wg sync.WaitGroup
	for _, it := range items {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := f(ctx, it); err != nil {
				cancel(err)
			}
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}

// refreshTokens logs users in again when their token is within margin of
// expiring, until ctx ends: API.md tokens live an hour, a soak may not.
func (r *run) refreshTokens(ctx context.Context, users []*api.User, margin time.Duration) {
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var due []*api.User
		for _, u := range users {
			if time.Until(u.Expires()) < margin {
				due = append(due, u)
			}
		}
		if err := forEach(ctx, due, 2, r.client.Login); err != nil && ctx.Err() == nil {
			r.note("token refresh failed: %v", err)
		}
	}
}

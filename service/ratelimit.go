package main

import (
	"math"
	"sync"
	"time"

	"github.com/google/uuid"
	"golang.org/x/time/rate"
)

// maxTrackedUsers bounds the users whose buckets are kept at once. Beyond
// it a new user goes unlimited until the next sweep frees room: the map
// must not grow with whatever an attacker can make up, and a bucket is only
// made for a user with a valid token, so reaching the bound at all takes
// that many accounts active within one refill time.
const maxTrackedUsers = 100_000

// userLimiter is the per-user rate limit of POST /requests: a token bucket
// per user (USER_RATE_LIMIT requests per second, bursts of twice that), so
// that one user cannot take the whole intake, and with it the backlog that
// BACKLOG_LIMIT shares among everyone, from the others. Buckets live in
// memory while their user is active; a bucket untouched for the time it
// takes to refill is full again, the same as a new one, and is forgotten.
type userLimiter struct {
	limit rate.Limit
	burst int
	idle  time.Duration // refill time of a whole burst

	mu        sync.Mutex
	users     map[uuid.UUID]*userBucket
	lastSweep time.Time
}

type userBucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// newUserLimiter returns a limiter of perSecond requests per user, or nil
// (no limit) for 0.
func newUserLimiter(perSecond float64) *userLimiter {
	if perSecond <= 0 {
		return nil
	}
	burst := max(1, int(math.Ceil(2*perSecond)))
	return &userLimiter{
		limit: rate.Limit(perSecond),
		burst: burst,
		idle:  time.Duration(float64(burst) / perSecond * float64(time.Second)),
		users: map[uuid.UUID]*userBucket{},
	}
}

// allow takes one request of user's bucket at now. When the bucket is
// empty it returns false and how long until the next request would pass.
// A nil limiter allows everything.
func (l *userLimiter) allow(user uuid.UUID, now time.Time) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) >= l.idle {
		l.sweep(now)
	}
	b := l.users[user]
	if b == nil {
		if len(l.users) >= maxTrackedUsers {
			return true, 0
		}
		b = &userBucket{lim: rate.NewLimiter(l.limit, l.burst)}
		l.users[user] = b
	}
	b.seen = now
	if b.lim.AllowN(now, 1) {
		return true, 0
	}
	missing := 1 - b.lim.TokensAt(now)
	return false, time.Duration(missing / float64(l.limit) * float64(time.Second))
}

// sweep forgets the buckets idle for a whole refill time.
func (l *userLimiter) sweep(now time.Time) {
	for u, b := range l.users {
		if now.Sub(b.seen) >= l.idle {
			delete(l.users, u)
		}
	}
	l.lastSweep = now
}

// tracked returns the number of buckets kept.
func (l *userLimiter) tracked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.users)
}

// retryAfter is the Retry-After value, in whole seconds (at least 1), for a
// wait of d.
func retryAfter(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

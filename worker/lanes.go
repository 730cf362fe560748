package main

import (
	"sync"

	"github.com/google/uuid"
)

// lanes runs jobs so that one key's jobs (one user's requests) run one after
// another in arrival order, and different keys' jobs run concurrently. A
// lane is a goroutine that lives while its key has queued jobs.
//
// With a depth set (spillOver), a key holds at most depth queued jobs; a job
// offered beyond that is not queued but kept aside as the key's spilled job
// (only the newest one, by the newer function), which runs when the key's
// queue empties. That bounds what one busy key holds, however much it is
// sent.
type lanes[J any] struct {
	run func(J)

	mu       sync.Mutex
	queues   map[uuid.UUID][]J
	stopping bool
	wg       sync.WaitGroup

	depth   int
	spilled map[uuid.UUID]J
	newer   func(a, b J) bool
	mark    func(J) J
}

func newLanes[J any](run func(J)) *lanes[J] {
	return &lanes[J]{run: run, queues: map[uuid.UUID][]J{}, spilled: map[uuid.UUID]J{}}
}

// spillOver sets the depth beyond which offer spills, how to tell the
// newer of two spilled jobs, and how to mark a job as spilled. Call it
// before any offer.
func (l *lanes[J]) spillOver(depth int, newer func(a, b J) bool, mark func(J) J) {
	l.depth, l.newer, l.mark = depth, newer, mark
}

// offerResult says what offer did with a job.
type offerResult int

const (
	offerQueued  offerResult = iota // queued behind the key's earlier jobs
	offerSpilled                    // kept aside (or dropped for a newer one): the key is busy
	offerRefused                    // the lanes are stopping: it will not run
)

// offer queues j like dispatch while key has fewer than depth queued jobs;
// beyond that it keeps j as the key's spilled job if j is newer than the
// one kept so far.
func (l *lanes[J]) offer(key uuid.UUID, j J) offerResult {
	l.mu.Lock()
	if l.depth > 0 && !l.stopping && len(l.queues[key]) >= l.depth {
		if old, ok := l.spilled[key]; !ok || l.newer(j, old) {
			l.spilled[key] = l.mark(j)
		}
		l.mu.Unlock()
		return offerSpilled
	}
	l.mu.Unlock()
	if !l.dispatch(key, j) {
		return offerRefused
	}
	return offerQueued
}

// dispatch queues j behind key's earlier jobs. It reports false once the
// lanes are stopping: j will not run.
func (l *lanes[J]) dispatch(key uuid.UUID, j J) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopping {
		return false
	}
	q, busy := l.queues[key]
	l.queues[key] = append(q, j)
	if !busy {
		lanesActive.Inc()
		l.wg.Go(func() { l.drive(key) })
	}
	return true
}

func (l *lanes[J]) drive(key uuid.UUID) {
	defer lanesActive.Dec()
	for {
		l.mu.Lock()
		q := l.queues[key]
		if len(q) == 0 && !l.stopping {
			if sp, ok := l.spilled[key]; ok {
				delete(l.spilled, key)
				q = append(q, sp)
			}
		}
		if l.stopping || len(q) == 0 {
			delete(l.queues, key)
			l.mu.Unlock()
			return
		}
		j := q[0]
		var zero J
		q[0] = zero
		if len(q) == 1 {
			l.queues[key] = q[:0]
		} else {
			l.queues[key] = q[1:]
		}
		l.mu.Unlock()
		l.run(j)
	}
}

// active returns the number of keys with queued or running jobs.
func (l *lanes[J]) active() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.queues)
}

// stop lets each lane finish the job it is running, drops the jobs still
// queued, and waits. It returns the dropped queued jobs; spilled jobs are
// dropped too.
func (l *lanes[J]) stop() []J {
	l.mu.Lock()
	l.stopping = true
	var dropped []J
	for _, q := range l.queues {
		dropped = append(dropped, q...)
	}
	clear(l.spilled)
	l.mu.Unlock()
	l.wg.Wait()
	return dropped
}

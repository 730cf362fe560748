package main

import (
	"sync"

	"github.com/google/uuid"
)

// lanes runs jobs so that one key's jobs (one user's requests) run one after
// another in arrival order, and different keys' jobs run concurrently. A
// lane is a goroutine that lives while its key has queued jobs.
type lanes[J any] struct {
	run func(J)

	mu       sync.Mutex
	queues   map[uuid.UUID][]J
	stopping bool
	wg       sync.WaitGroup
}

func newLanes[J any](run func(J)) *lanes[J] {
	return &lanes[J]{run: run, queues: map[uuid.UUID][]J{}}
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
// queued, and waits. It returns the dropped jobs.
func (l *lanes[J]) stop() []J {
	l.mu.Lock()
	l.stopping = true
	var dropped []J
	for _, q := range l.queues {
		dropped = append(dropped, q...)
	}
	l.mu.Unlock()
	l.wg.Wait()
	return dropped
}

package main

import (
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/uuid"
)

// testTimeout bounds every wait: long enough for a loaded CI machine under
// -race, short enough that a deadlock fails rather than hangs.
const testTimeout = 10 * time.Second

// waitFor polls cond until it holds, and fails the test after testTimeout.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not so after %s", what, testTimeout)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitGroup waits for wg, and fails the test after testTimeout.
func waitGroup(t *testing.T, what string, wg *sync.WaitGroup) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(testTimeout):
		t.Fatalf("%s: not done after %s", what, testTimeout)
	}
}

// receive takes one value from ch, and fails the test after testTimeout.
func receive[T any](t *testing.T, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(testTimeout):
		t.Fatalf("%s: nothing after %s", what, testTimeout)
		panic("unreachable")
	}
}

func (l *lanes[J]) isStopping() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stopping
}

func TestLanesRunOneKeyInOrderAndAlone(t *testing.T) {
	t.Parallel()
	const keys, jobsPerKey = 50, 200
	type job struct{ key, n int }
	var (
		running    [keys]atomic.Int32
		last       [keys]atomic.Int64 // n of the key's last job run
		overlaps   atomic.Int64
		outOfOrder atomic.Int64
		done       sync.WaitGroup
	)
	l := newLanes(func(j job) {
		defer done.Done()
		if running[j.key].Add(1) != 1 {
			overlaps.Add(1)
		}
		if prev := last[j.key].Swap(int64(j.n)); prev != int64(j.n-1) {
			outOfOrder.Add(1)
		}
		if j.n%3 == 0 {
			time.Sleep(time.Microsecond) // let other lanes, and this key's next dispatch, in
		}
		running[j.key].Add(-1)
	})
	ids := make([]uuid.UUID, keys)
	for k := range ids {
		ids[k] = uuid.New()
	}
	done.Add(keys * jobsPerKey)
	var dispatchers sync.WaitGroup
	for k := range keys {
		dispatchers.Go(func() {
			for n := 1; n <= jobsPerKey; n++ {
				if !l.dispatch(ids[k], job{k, n}) {
					t.Errorf("dispatch(key %d, job %d) = false before stop", k, n)
				}
			}
		})
	}
	dispatchers.Wait()
	waitGroup(t, "all jobs run", &done)

	if n := overlaps.Load(); n > 0 {
		t.Errorf("%d times a key's job started while another of its jobs ran", n)
	}
	if n := outOfOrder.Load(); n > 0 {
		t.Errorf("%d jobs ran out of their key's dispatch order", n)
	}
	for k := range keys {
		if got := last[k].Load(); got != jobsPerKey {
			t.Errorf("key %d: last job run is %d, want %d", k, got, jobsPerKey)
		}
	}
	waitFor(t, "idle lanes exit", func() bool { return l.active() == 0 })
	if dropped := l.stop(); len(dropped) != 0 {
		t.Errorf("stop() of idle lanes dropped %d jobs", len(dropped))
	}
}

func TestLanesRunKeysConcurrently(t *testing.T) {
	t.Parallel()

	// If lanes ran keys one after another, A's job would wait for B's job,
	// which would wait for A's: the timeout ends the test instead.
	t.Run("B runs while A waits for it", func(t *testing.T) {
		t.Parallel()
		bRan := make(chan struct{})
		aSawB := make(chan bool, 1)
		l := newLanes(func(j string) {
			switch j {
			case "a":
				select {
				case <-bRan:
					aSawB <- true
				case <-time.After(testTimeout):
					aSawB <- false
				}
			case "b":
				close(bRan)
			}
		})
		l.dispatch(uuid.New(), "a")
		l.dispatch(uuid.New(), "b")
		if !receive(t, "A's job", aSawB) {
			t.Fatal("key B's job did not run while key A's job was running: keys are serialized")
		}
		l.stop()
	})

	t.Run("twenty keys all at once", func(t *testing.T) {
		t.Parallel()
		const keys = 20
		var started sync.WaitGroup
		started.Add(keys)
		allStarted := make(chan struct{})
		go func() {
			started.Wait()
			close(allStarted)
		}()
		var timedOut atomic.Int32
		l := newLanes(func(int) {
			started.Done()
			select {
			case <-allStarted:
			case <-time.After(testTimeout):
				timedOut.Add(1)
			}
		})
		for k := range keys {
			l.dispatch(uuid.New(), k)
		}
		receive(t, "all twenty jobs running at once", allStarted)
		l.stop()
		if n := timedOut.Load(); n > 0 {
			t.Errorf("%d jobs gave up waiting for the others", n)
		}
	})
}

func TestLanesStop(t *testing.T) {
	t.Parallel()
	a, b, c := uuid.New(), uuid.New(), uuid.New()
	started := make(chan string, 16)
	release := make(chan struct{})
	var (
		mu  sync.Mutex
		ran []string
	)
	l := newLanes(func(j string) {
		started <- j
		if j == "a1" || j == "b1" {
			<-release
		}
		mu.Lock()
		ran = append(ran, j)
		mu.Unlock()
	})
	for _, d := range []struct {
		key uuid.UUID
		job string
	}{{a, "a1"}, {b, "b1"}, {a, "a2"}, {c, "c1"}, {a, "a3"}, {b, "b2"}} {
		if !l.dispatch(d.key, d.job) {
			t.Fatalf("dispatch(%s) = false before stop", d.job)
		}
	}
	var first []string
	for len(first) < 3 {
		first = append(first, receive(t, "jobs a1, b1 and c1 start", started))
	}
	slices.Sort(first)
	if !slices.Equal(first, []string{"a1", "b1", "c1"}) {
		t.Fatalf("first jobs to start: %v, want a1, b1, c1", first)
	}
	// c1 is done or ending: its lane exits, a's and b's stay.
	waitFor(t, "c1's lane exits", func() bool { return l.active() == 2 })

	stopped := make(chan []string, 1)
	go func() { stopped <- l.stop() }()
	waitFor(t, "stop begins", l.isStopping)
	if l.dispatch(a, "a4") || l.dispatch(uuid.New(), "d1") {
		t.Error("dispatch after stop = true, want false")
	}
	select {
	case dropped := <-stopped:
		t.Fatalf("stop returned %v while a1 and b1 were still running", dropped)
	default:
	}
	close(release)
	dropped := receive(t, "stop returns once a1 and b1 finish", stopped)

	if i, j := slices.Index(dropped, "a2"), slices.Index(dropped, "a3"); i < 0 || j < i {
		t.Errorf("dropped %v: want a2 then a3", dropped)
	}
	slices.Sort(dropped)
	if !slices.Equal(dropped, []string{"a2", "a3", "b2"}) {
		t.Errorf("dropped %v, want the queued jobs a2, a3, b2", dropped)
	}
	mu.Lock()
	slices.Sort(ran)
	if !slices.Equal(ran, []string{"a1", "b1", "c1"}) {
		t.Errorf("ran %v, want a1, b1, c1: running jobs finish, queued ones never start", ran)
	}
	mu.Unlock()
	if got := l.active(); got != 0 {
		t.Errorf("active() after stop = %d, want 0", got)
	}
	if again := l.stop(); len(again) != 0 {
		t.Errorf("second stop() dropped %v, want nothing", again)
	}
}

func TestLanesActive(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	started := make(chan int, 8)
	l := newLanes(func(j int) {
		started <- j
		<-release
	})
	if got := l.active(); got != 0 {
		t.Fatalf("active() of new lanes = %d", got)
	}
	keys := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
	for i, k := range keys {
		l.dispatch(k, i)
		if got := l.active(); got != i+1 {
			t.Errorf("active() after dispatching to %d keys = %d", i+1, got)
		}
	}
	l.dispatch(keys[0], 3) // queued behind job 0: no new lane
	if got := l.active(); got != 3 {
		t.Errorf("active() with a second job for a busy key = %d, want 3", got)
	}
	for range 3 {
		receive(t, "first jobs start", started)
	}
	close(release)
	if got := receive(t, "the queued job starts", started); got != 3 {
		t.Errorf("job %d started, want 3", got)
	}
	waitFor(t, "lanes exit when idle", func() bool { return l.active() == 0 })
	waitGroup(t, "lane goroutines end", &l.wg)

	// A key whose lane ended gets a new one.
	l.dispatch(keys[0], 4)
	if got := receive(t, "a job for a key whose lane ended", started); got != 4 {
		t.Errorf("job %d started, want 4", got)
	}
	waitFor(t, "lanes exit when idle", func() bool { return l.active() == 0 })
	l.stop()
}

// TestLanesLeaveNoGoroutines runs in a synctest bubble, which fails if any
// goroutine it started is still there at the end.
func TestLanesLeaveNoGoroutines(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var ran atomic.Int32
		l := newLanes(func(d time.Duration) {
			time.Sleep(d)
			ran.Add(1)
		})
		for k := range 10 {
			key := uuid.New()
			for j := range 5 {
				l.dispatch(key, time.Duration(k*j)*time.Millisecond)
			}
		}
		time.Sleep(time.Second) // fake time: every job is done after 36ms
		synctest.Wait()
		if got := ran.Load(); got != 50 {
			t.Errorf("%d jobs ran, want 50", got)
		}
		if got := l.active(); got != 0 {
			t.Errorf("active() when idle = %d, want 0", got)
		}
	})
}

// TestLanesSpillOver: beyond depth, a key keeps only its newest offered job
// aside, marked, and runs it after its queue empties.
func TestLanesSpillOver(t *testing.T) {
	type j struct {
		n      int
		marked bool
	}
	release, started := make(chan struct{}), make(chan struct{})
	var (
		mu  sync.Mutex
		ran []j
	)
	l := newLanes(func(x j) {
		if x.n == 0 {
			close(started)
			<-release
		}
		mu.Lock()
		ran = append(ran, x)
		mu.Unlock()
	})
	l.spillOver(2, func(a, b j) bool { return a.n > b.n }, func(x j) j { x.marked = true; return x })
	key := uuid.New()
	want := []offerResult{offerQueued, offerQueued, offerQueued, offerSpilled, offerSpilled, offerSpilled}
	for n, w := range want {
		// Job 0 runs (and blocks), so two more fill the queue.
		if got := l.offer(key, j{n: []int{0, 1, 2, 5, 3, 4}[n]}); got != w {
			t.Fatalf("offer %d: %v, want %v", n, got, w)
		}
		if n == 0 {
			<-started
		}
	}
	close(release)
	waitFor(t, "lanes idle", func() bool { return l.active() == 0 })
	mu.Lock()
	defer mu.Unlock()
	if len(ran) != 4 || ran[0].n != 0 || ran[1].n != 1 || ran[2].n != 2 || ran[3] != (j{n: 5, marked: true}) {
		t.Fatalf("ran %+v; want 0, 1, 2, then the newest spilled (5) marked", ran)
	}
	if l.stop(); l.offer(key, j{n: 9}) != offerRefused {
		t.Fatal("offer after stop was not refused")
	}
}

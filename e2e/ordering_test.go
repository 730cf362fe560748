package e2e

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/docket/docket/e2e/harness"
)

// sent is the client's record of one request.
type sent struct {
	user        int
	start, done time.Time
	seq         int64
	id          string
}

// checkHappensBefore fails when a request whose 202 arrived before another
// of the same user was sent got the larger seq.
func checkHappensBefore(t *testing.T, records []sent) {
	t.Helper()
	byUser := map[int][]sent{}
	for _, r := range records {
		byUser[r.user] = append(byUser[r.user], r)
	}
	broken := 0
	for _, rs := range byUser {
		for _, a := range rs {
			for _, b := range rs {
				if a.done.Before(b.start) && a.seq >= b.seq {
					broken++
					if broken <= 3 {
						t.Errorf("user %d: seq %d answered before seq %d was sent", a.user, a.seq, b.seq)
					}
				}
			}
		}
	}
	if broken > 0 {
		t.Fatalf("%d happens-before pairs broken", broken)
	}
}

// mixed returns the body of a user's i-th request: mostly echo, with
// sleeps, CPU work and failures that succeed on retry.
func mixed(i int) string {
	switch i % 10 {
	case 6:
		return `{"type":"sleep","payload":{"ms":5}}`
	case 7:
		return `{"type":"cpu","payload":{"iterations":2000}}`
	case 8:
		return `{"type":"fail","payload":{"times":1}}`
	default:
		return fmt.Sprintf(`{"type":"echo","payload":{"i":%d}}`, i)
	}
}

// TestOrderingManyWorkersManyUsers runs 4 workers over 8 partitions with
// 120 users whose requests overlap in flight (4 concurrent senders per
// user), with more than 2,000 requests waiting at once: each user's first
// request sleeps while the rest pile up behind it. Every request must
// finish exactly once, in its user's seq order, each starting only after
// its predecessor finished.
func TestOrderingManyWorkersManyUsers(t *testing.T) {
	const (
		workers  = 4
		users    = 120
		perUser  = 20
		senders  = 4
		firstMS  = 10000 // the longest sleep: submission under load takes seconds
		minPeak  = 2000
		finishIn = 3 * time.Minute
	)
	s := harness.NewStack(t, 8)
	s.StartService()
	for range workers {
		s.StartWorker()
	}
	clients := make([]*harness.Client, users)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range users {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			clients[i] = s.NewUser(fmt.Sprintf("order-user-%03d", i))
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	var (
		mu      sync.Mutex
		records []sent
		peak    int64
	)
	submit := func(u, i int) {
		r := sent{user: u, start: time.Now()}
		code, a, err := clients[u].Submit(mixedFirst(i, firstMS))
		r.done = time.Now()
		if err != nil || code != 202 {
			t.Errorf("user %d request %d: %d %v", u, i, code, err)
			return
		}
		r.seq, r.id = a.Seq, a.ID
		mu.Lock()
		records = append(records, r)
		mu.Unlock()
	}
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() { // the number of requests accepted and not finished
		defer close(sampled)
		for {
			var n int64
			if err := s.DB.QueryRow(t.Context(), `SELECT count(*) FROM requests WHERE status IN ('queued', 'processing')`).Scan(&n); err == nil && n > peak {
				mu.Lock()
				peak = n
				mu.Unlock()
			}
			select {
			case <-stopSampling:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	for u := range users {
		submit(u, 0) // the slow first request of each user
	}
	for u := range users {
		for k := range senders {
			wg.Go(func() {
				for i := 1 + k; i < perUser; i += senders {
					submit(u, i)
				}
			})
		}
	}
	wg.Wait()
	s.WaitFinished(finishIn)
	close(stopSampling)
	<-sampled
	if t.Failed() {
		t.FailNow()
	}
	checkHappensBefore(t, records)
	ids := make([]string, len(records))
	for i, r := range records {
		ids[i] = r.id
	}
	rep := s.Verify(ids)
	if !rep.Clean() || rep.Requests != users*perUser {
		t.Fatalf("verify: %s (want %d requests)", rep, users*perUser)
	}
	var violations, gapFills, dups float64
	for _, w := range s.Workers() {
		for name, dst := range map[string]*float64{"docket_fifo_violations_total": &violations, "docket_gap_fills_total": &gapFills, "docket_duplicates_total": &dups} {
			v, err := harness.Metric(w.MetricsURL, name)
			if err != nil {
				t.Fatalf("scrape %s: %v", w.MetricsURL, err)
			}
			*dst += v
		}
	}
	if violations != 0 {
		t.Fatalf("docket_fifo_violations_total = %v", violations)
	}
	if peak < minPeak {
		t.Fatalf("at most %d requests were in flight at once; the test needs %d", peak, minPeak)
	}
	t.Logf("ordering: workers=%d users=%d requests=%d peak_in_flight=%d: violations=%v lost=%d applied_twice=%d started_early=%d (gap fills %v, duplicates %v)",
		workers, users, rep.Requests, peak, violations, rep.Unfinished+rep.Missing, rep.AppliedTwice, rep.StartedEarly, gapFills, dups)
}

// mixedFirst is mixed, but a user's first request sleeps firstMS.
func mixedFirst(i, firstMS int) string {
	if i == 0 {
		return fmt.Sprintf(`{"type":"sleep","payload":{"ms":%d}}`, firstMS)
	}
	return mixed(i)
}

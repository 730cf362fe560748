package e2e

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/docket/docket/e2e/harness"
	"github.com/docket/docket/internal/testenv"
)

// newUsers registers n users in parallel.
func newUsers(t *testing.T, s *harness.Stack, prefix string, n int) []*harness.Client {
	t.Helper()
	clients := make([]*harness.Client, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { clients[i] = s.NewUser(fmt.Sprintf("%s-%03d", prefix, i)) })
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return clients
}

// submitAll sends perUser requests for each client (sequentially per user,
// users in parallel) and returns the accepted ids.
func submitAll(t *testing.T, clients []*harness.Client, perUser int, body func(i int) string) []string {
	t.Helper()
	var (
		mu  sync.Mutex
		ids []string
		wg  sync.WaitGroup
	)
	for u, c := range clients {
		wg.Go(func() {
			for i := range perUser {
				code, a, err := c.Submit(body(i))
				if err != nil || code != 202 {
					t.Errorf("user %d request %d: %d %v", u, i, code, err)
					return
				}
				mu.Lock()
				ids = append(ids, a.ID)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return ids
}

func countStatus(t *testing.T, s *harness.Stack, status string) int {
	t.Helper()
	var n int
	if err := s.DB.QueryRow(t.Context(), `SELECT count(*) FROM requests WHERE status = $1`, status).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", status, err)
	}
	return n
}

// TestWorkerKilledMidProcessing kills (SIGKILL) the worker that holds every
// partition (rebalancing is off, so the first worker keeps them all) while
// requests are being processed: its partitions move to the standby worker
// (single active consumer), nothing is lost, nothing is
// applied twice, and each user's order holds. Two flooding users make the
// killed worker spill (ack early) deliveries beyond its lane depth, so the
// requests it had acked but not run are recovered from the database by the
// service's sweeper.
func TestWorkerKilledMidProcessing(t *testing.T) {
	s := harness.NewStack(t, 4, "PREFETCH=64", "LANE_DEPTH=4", "SWEEP_AFTER=1s", "SWEEP_INTERVAL=200ms", "REBALANCE_INTERVAL=0")
	s.StartService()
	active := s.StartWorker()
	s.StartWorker() // standby: single active consumer gives the first worker every partition
	clients := newUsers(t, s, "kill", 40)
	ids := submitAll(t, clients, 15, func(int) string { return `{"type":"sleep","payload":{"ms":30}}` })
	flooders := newUsers(t, s, "flood", 2)
	var floods []*harness.Client
	for _, f := range flooders {
		for range 8 { // concurrent senders: the user's requests pile up in its lane
			floods = append(floods, f)
		}
	}
	ids = append(ids, submitAll(t, floods, 10, func(int) string { return `{"type":"sleep","payload":{"ms":30}}` })...)

	testenv.Eventually(t, time.Minute, func() bool {
		return countStatus(t, s, "done") >= 100 && countStatus(t, s, "processing") > 0
	}, "work did not get going")
	spilled, err := harness.Metric(active.MetricsURL, "docket_spilled_deliveries_total")
	if err != nil || spilled == 0 {
		t.Fatalf("the active worker spilled %v deliveries (%v); the test needs some acked early", spilled, err)
	}
	inFlight := countStatus(t, s, "processing")
	killedAt := time.Now()
	active.Kill()
	s.WaitFinished(2 * time.Minute)
	recovered := time.Since(killedAt)

	rep := s.Verify(ids)
	if !rep.Clean() || rep.Requests != len(ids) {
		t.Fatalf("verify: %s (want %d requests)", rep, len(ids))
	}
	standby := s.Workers()[1]
	violations, err := harness.Metric(standby.MetricsURL, "docket_fifo_violations_total")
	if err != nil || violations != 0 {
		t.Fatalf("standby worker's docket_fifo_violations_total = %v, %v", violations, err)
	}
	t.Logf("worker kill: %d requests, %d processing and %v spilled at the kill; all finished %s later: lost=%d applied_twice=%d started_early=%d order_broken=%d",
		len(ids), inFlight, spilled, recovered.Round(time.Millisecond), rep.Unfinished+rep.Missing, rep.AppliedTwice, rep.StartedEarly, rep.OrderBroken)
}

// TestWorkerGracefulShutdown sends SIGTERM to a worker with long requests
// running: it exits cleanly within its shutdown timeout, handing back what
// it did not finish, and a new worker finishes everything exactly once.
func TestWorkerGracefulShutdown(t *testing.T) {
	s := harness.NewStack(t, 4)
	s.StartService()
	w := s.StartWorker("SHUTDOWN_TIMEOUT=2s")
	clients := newUsers(t, s, "term", 10)
	ids := submitAll(t, clients, 4, func(int) string { return `{"type":"sleep","payload":{"ms":1500}}` })
	testenv.Eventually(t, 30*time.Second, func() bool { return countStatus(t, s, "processing") == len(clients) }, "not every user's first request started")

	took, code := w.Terminate(10 * time.Second)
	if code != 0 {
		t.Fatalf("worker exit code %d after SIGTERM:\n%s", code, w.Tail(20))
	}
	if took > 5*time.Second {
		t.Fatalf("worker took %s to exit; the bound is its 2s shutdown timeout plus teardown", took)
	}
	done := countStatus(t, s, "done")
	if done < len(clients) {
		t.Fatalf("%d requests done after SIGTERM; the %d running ones should have finished", done, len(clients))
	}
	s.StartWorker()
	s.WaitFinished(2 * time.Minute)
	rep := s.Verify(ids)
	if !rep.Clean() || rep.Requests != len(ids) {
		t.Fatalf("verify: %s", rep)
	}
	t.Logf("worker SIGTERM: exited in %s with %d of %d done; the next worker finished the rest: %s", took.Round(time.Millisecond), done, len(ids), rep)
}

package e2e

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/docket/docket/e2e/harness"
)

// TestServiceKilledMidLoad kills the API (SIGKILL) while users are sending:
// requests it committed but had not yet published, or answered 202 just
// before dying, are still processed, because a new service's sweeper
// publishes every stalled user's newest request and the worker fills the
// rest from the database.
func TestServiceKilledMidLoad(t *testing.T) {
	s := harness.NewStack(t, 4, "SWEEP_AFTER=1s", "SWEEP_INTERVAL=200ms")
	first := s.StartService()
	s.StartWorker()
	clients := newUsers(t, s, "svc-kill", 20)

	var (
		mu       sync.Mutex
		accepted []string
		wg       sync.WaitGroup
		stop     = make(chan struct{})
	)
	for _, c := range clients {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				code, a, err := c.Submit(fmt.Sprintf(`{"payload":{"i":%d}}`, i))
				if err == nil && code == 202 {
					mu.Lock()
					accepted = append(accepted, a.ID)
					mu.Unlock()
				}
			}
		})
	}
	time.Sleep(2 * time.Second)
	first.Kill()
	close(stop)
	wg.Wait()

	s.StartService() // a new instance on the same database and broker
	s.WaitFinished(time.Minute)
	rep := s.Verify(accepted)
	if !rep.Clean() {
		t.Fatalf("after the service was killed: %s (accepted %d)", rep, len(accepted))
	}
	if rep.Requests < len(accepted) {
		t.Fatalf("%d rows for %d accepted requests", rep.Requests, len(accepted))
	}
	t.Logf("service kill: %d answered 202 before the kill, %d rows in all (some committed without an answer); every one finished once, in order: %s",
		len(accepted), rep.Requests, rep)
}

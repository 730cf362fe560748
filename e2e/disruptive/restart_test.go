// Package disruptive restarts the local RabbitMQ and PostgreSQL servers
// while docket runs under load, and proves that every accepted request
// still finishes exactly once and in order. It disturbs every other user of
// those servers, so `make test` runs it alone, after the other packages.
package disruptive

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docket/docket/e2e/harness"
	"github.com/docket/docket/internal/testenv"
)

// load sends requests from every client in a loop (one at a time per user)
// until stop closes, and returns the ids of those answered 202. Other
// answers (503 while the database is down) are counted, not failures.
func load(clients []*harness.Client, stop <-chan struct{}) (ids func() []string, refused *atomic.Int64) {
	var (
		mu       sync.Mutex
		accepted []string
		wg       sync.WaitGroup
	)
	refused = &atomic.Int64{}
	for _, c := range clients {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				body := fmt.Sprintf(`{"type":"echo","payload":{"i":%d}}`, i)
				if i%5 == 4 {
					body = `{"type":"sleep","payload":{"ms":20}}`
				}
				code, a, err := c.Submit(body)
				if err == nil && code == 202 {
					mu.Lock()
					accepted = append(accepted, a.ID)
					mu.Unlock()
				} else {
					refused.Add(1)
					time.Sleep(20 * time.Millisecond)
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
	return func() []string {
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return accepted
	}, refused
}

func sh(t *testing.T, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func pgVersion(t *testing.T) string {
	t.Helper()
	entries, err := os.ReadDir("/etc/postgresql")
	if err != nil || len(entries) == 0 {
		t.Fatalf("no PostgreSQL cluster under /etc/postgresql: %v", err)
	}
	return entries[0].Name()
}

// run drives load through a fault: fault() takes the server down, restore()
// brings it back. It reports the recovery and checks the outcome.
func run(t *testing.T, name string, fault, restore func()) {
	s := harness.NewStack(t, 8, "SWEEP_AFTER=1s", "SWEEP_INTERVAL=200ms")
	s.StartService()
	w1, w2 := s.StartWorker(), s.StartWorker()
	clients := make([]*harness.Client, 30)
	for i := range clients {
		clients[i] = s.NewUser(fmt.Sprintf("%s-%02d", name, i))
	}
	if t.Failed() {
		t.FailNow()
	}
	stop := make(chan struct{})
	ids, refused := load(clients, stop)
	time.Sleep(3 * time.Second)

	down := time.Now()
	fault()
	time.Sleep(3 * time.Second) // requests keep coming while it is down
	restore()
	back := time.Now()
	ready := func(url string) func() bool {
		return func() bool {
			code, _, err := harness.Do(harnessClient, "GET", url, "", nil, nil)
			return err == nil && code == 200
		}
	}
	testenv.Eventually(t, 2*time.Minute, ready(s.API+"/readyz"), "service not ready after %s came back", name)
	serviceReady := time.Since(back)
	for _, w := range []*harness.Proc{w1, w2} {
		testenv.Eventually(t, 2*time.Minute, ready(strings.Replace(w.MetricsURL, "/metrics", "/readyz", 1)), "worker not ready after %s came back", name)
	}
	workersReady := time.Since(back)
	time.Sleep(3 * time.Second) // and keep coming after
	close(stop)
	accepted := ids()
	drainStart := time.Now()
	s.WaitFinished(2 * time.Minute)
	rep := s.Verify(accepted)
	if !rep.Clean() || rep.Requests != len(accepted) {
		t.Fatalf("after %s restart: %s (accepted %d)", name, rep, len(accepted))
	}
	for _, p := range []*harness.Proc{s.Workers()[0], s.Workers()[1]} {
		if p.Exited() {
			t.Fatalf("a worker exited during the %s restart:\n%s", name, p.Tail(20))
		}
		if v, err := harness.Metric(p.MetricsURL, "docket_fifo_violations_total"); err != nil || v != 0 {
			t.Fatalf("docket_fifo_violations_total = %v, %v", v, err)
		}
	}
	t.Logf("%s restart: down %s; service ready %s and workers ready %s after it came back; %d accepted (%d refused meanwhile), all finished %s after the load stopped: %s",
		name, back.Sub(down).Round(time.Millisecond), serviceReady.Round(time.Millisecond), workersReady.Round(time.Millisecond),
		len(accepted), refused.Load(), time.Since(drainStart).Round(time.Millisecond), rep)
}

var harnessClient = testenvHTTPClient()

// TestRabbitMQRestart stops the broker node while requests flow: the
// service keeps answering 202 (the rows are durable), publishers and
// consumers reconnect by themselves, and every 202 finishes.
func TestRabbitMQRestart(t *testing.T) {
	run(t, "rabbitmq", func() {
		sh(t, "rabbitmqctl", "-q", "shutdown")
	}, func() {
		sh(t, "rabbitmq-server", "-detached")
		// await_startup fails at once while the node's VM is not up yet.
		testenv.Eventually(t, 2*time.Minute, func() bool {
			return exec.Command("rabbitmqctl", "-q", "await_startup").Run() == nil
		}, "rabbitmq did not start again")
	})
}

// TestPostgresRestart stops PostgreSQL while requests flow: the service
// answers 503 (nothing written) while it is down, service and workers
// reconnect by themselves, and every 202 finishes.
func TestPostgresRestart(t *testing.T) {
	v := pgVersion(t)
	run(t, "postgres", func() {
		sh(t, "pg_ctlcluster", "--skip-systemctl-redirect", v, "main", "stop", "-m", "fast")
	}, func() {
		sh(t, "pg_ctlcluster", "--skip-systemctl-redirect", v, "main", "start")
	})
}

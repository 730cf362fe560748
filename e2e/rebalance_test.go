package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/docket/docket/e2e/harness"
	"github.com/docket/docket/internal/testenv"
)

// TestWorkersSpreadPartitions runs 8 partitions with 2, then 4 workers
// while users keep sending: the partitions spread until each worker is the
// active consumer of at most its share (8 / workers, rounded up), as the
// broker's management API and each worker's docket_partitions_active both
// say. Then one worker is killed and another stopped with SIGTERM: their
// partitions move to the others, which spread them again. Every request
// finishes exactly once and in its user's order through all the handovers.
func TestWorkersSpreadPartitions(t *testing.T) {
	const (
		partitions = 8
		users      = 30
		pause      = 30 * time.Millisecond // between one user's requests
	)
	s := harness.NewStack(t, partitions,
		"REBALANCE_INTERVAL=1s", "RABBITMQ_MANAGEMENT_URL="+testenv.ManagementURL(),
		"SWEEP_AFTER=1s", "SWEEP_INTERVAL=200ms")
	uri, err := amqp.ParseURI(s.AMQPURL)
	if err != nil {
		t.Fatalf("parse %s: %v", s.AMQPURL, err)
	}
	s.StartService()
	clients := newUsers(t, s, "spread", users)

	var (
		mu      sync.Mutex
		records []sent
		stop    = make(chan struct{})
		senders sync.WaitGroup
	)
	for u, c := range clients {
		senders.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(pause):
				}
				r := sent{user: u, start: time.Now()}
				code, a, err := c.Submit(mixed(i))
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
		})
	}
	stopLoad := func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		senders.Wait()
	}
	defer stopLoad()

	live := []*harness.Proc{s.StartWorker(), s.StartWorker()}
	took2 := waitSpread(t, uri.Vhost, partitions, live)
	live = append(live, s.StartWorker(), s.StartWorker())
	took4 := waitSpread(t, uri.Vhost, partitions, live)
	released := sumMetric(t, live, "docket_partitions_released_total")

	live[0].Kill()
	tookKill := waitSpread(t, uri.Vhost, partitions, live[1:])
	if _, code := live[1].Terminate(20 * time.Second); code != 0 {
		t.Fatalf("worker exit code %d after SIGTERM:\n%s", code, live[1].Tail(20))
	}
	live = live[2:]
	tookTerm := waitSpread(t, uri.Vhost, partitions, live)

	stopLoad()
	s.WaitFinished(2 * time.Minute)
	if t.Failed() {
		t.FailNow()
	}
	checkHappensBefore(t, records)
	ids := make([]string, len(records))
	for i, r := range records {
		ids[i] = r.id
	}
	rep := s.Verify(ids)
	if !rep.Clean() || rep.Requests != len(ids) {
		t.Fatalf("verify: %s (want %d requests)", rep, len(ids))
	}
	if v := sumMetric(t, live, "docket_fifo_violations_total"); v != 0 {
		t.Fatalf("docket_fifo_violations_total = %v", v)
	}
	if released == 0 {
		t.Fatalf("no worker released a partition, yet they spread")
	}
	t.Logf("spread: 2 workers in %s, 4 in %s (%v releases); after a SIGKILL 3 in %s, after a SIGTERM 2 in %s; %d requests: %s; surviving workers: duplicates %v, gap fills %v",
		took2.Round(time.Millisecond), took4.Round(time.Millisecond), released, tookKill.Round(time.Millisecond), tookTerm.Round(time.Millisecond),
		len(ids), rep, sumMetric(t, live, "docket_duplicates_total"), sumMetric(t, live, "docket_gap_fills_total"))
}

// waitSpread waits until the broker lists one consuming connection per live
// worker, every partition has an active consumer, and no connection is
// active on more than its share; and each worker's docket_partitions_active
// is within its share and they add up to every partition.
func waitSpread(t *testing.T, vhost string, partitions int, live []*harness.Proc) time.Duration {
	t.Helper()
	start := time.Now()
	share := (partitions + len(live) - 1) / len(live)
	for {
		why := spreadProblem(t, vhost, partitions, share, live)
		if why == "" {
			return time.Since(start)
		}
		if time.Since(start) > 90*time.Second {
			t.Fatalf("after %s, partitions are not spread over %d workers (share %d): %s", time.Since(start).Round(time.Second), len(live), share, why)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// spreadProblem says what keeps the partitions from being spread, or "".
func spreadProblem(t *testing.T, vhost string, partitions, share int, live []*harness.Proc) string {
	t.Helper()
	list, err := consumers(vhost)
	if err != nil {
		t.Fatalf("management API: %v", err)
	}
	conns := map[string]bool{}
	active := map[string]int{} // connection → partitions active on
	covered := map[int]bool{}
	for _, c := range list {
		i, err := strconv.Atoi(strings.TrimPrefix(c.Queue.Name, "docket.requests."))
		if err != nil || i >= partitions || c.Connection() == "" {
			continue
		}
		conns[c.Connection()] = true
		if c.Active {
			active[c.Connection()]++
			covered[i] = true
		}
	}
	switch {
	case len(conns) != len(live):
		return fmt.Sprintf("the broker lists %d consuming connections", len(conns))
	case len(covered) != partitions:
		return fmt.Sprintf("%d partitions have an active consumer", len(covered))
	}
	for _, n := range active {
		if n > share {
			return fmt.Sprintf("active per connection %v", active)
		}
	}
	var sum float64
	gauges := make([]float64, len(live))
	for k, w := range live {
		v, err := harness.Metric(w.MetricsURL, "docket_partitions_active")
		if err != nil {
			t.Fatalf("scrape %s: %v", w.MetricsURL, err)
		}
		gauges[k], sum = v, sum+v
		if v > float64(share) {
			return fmt.Sprintf("docket_partitions_active %v", gauges)
		}
	}
	if sum != float64(partitions) {
		return fmt.Sprintf("docket_partitions_active %v", gauges)
	}
	return ""
}

// listedConsumer is a consumer as the management API lists it.
type listedConsumer struct {
	Active bool `json:"active"`
	Queue  struct {
		Name string `json:"name"`
	} `json:"queue"`
	// An object, or [] for a channel the broker has no statistics of yet.
	ChannelDetails json.RawMessage `json:"channel_details"`
}

// Connection is the name of the consumer's connection, "" when unknown.
func (c listedConsumer) Connection() string {
	var d struct {
		Name string `json:"connection_name"`
	}
	_ = json.Unmarshal(c.ChannelDetails, &d)
	return d.Name
}

// consumers lists the vhost's consumers from the management API.
func consumers(vhost string) ([]listedConsumer, error) {
	base, err := url.Parse(testenv.ManagementURL())
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequest(http.MethodGet, base.Scheme+"://"+base.Host+"/api/consumers/"+url.PathEscape(vhost), nil)
	if err != nil {
		return nil, err
	}
	if base.User != nil {
		pw, _ := base.User.Password()
		req.SetBasicAuth(base.User.Username(), pw)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", req.URL.Path, resp.Status, body)
	}
	var list []listedConsumer
	return list, json.Unmarshal(body, &list)
}

// sumMetric adds a metric up over the workers.
func sumMetric(t *testing.T, workers []*harness.Proc, name string) float64 {
	t.Helper()
	var sum float64
	for _, w := range workers {
		v, err := harness.Metric(w.MetricsURL, name)
		if err != nil {
			t.Fatalf("scrape %s: %v", w.MetricsURL, err)
		}
		sum += v
	}
	return sum
}

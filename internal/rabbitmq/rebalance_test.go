package rabbitmq

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/docket/docket/internal/docket"
	"github.com/docket/docket/internal/testenv"
)

func TestPlanRebalance(t *testing.T) {
	t.Parallel()
	const me = "w-aaaa-p"
	listed := func(tag string, partition int, active bool, conn string) apiConsumer {
		var c apiConsumer
		c.Tag, c.Active, c.Queue.Name, c.Channel.Connection = tag, active, PartitionQueue(partition), conn
		return c
	}
	// mine subscribes to every partition of p with tags me<i>-1.
	mine := func(p int, delivered ...int) []subscription {
		subs := make([]subscription, p)
		for i := range subs {
			subs[i] = subscription{tag: fmt.Sprintf("%s%d-1", me, i), delivered: slices.Contains(delivered, i)}
		}
		return subs
	}
	tests := []struct {
		name  string
		round rebalanceRound
		subs  []subscription
		want  rebalancePlan
	}{
		{
			name:  "alone: keep everything",
			round: rebalanceRound{ok: true, consumers: []apiConsumer{listed(me+"0-1", 0, true, "c1"), listed(me+"1-1", 1, true, "c1")}},
			subs:  mine(2),
			want:  rebalancePlan{active: 2, workers: 1, share: 2},
		},
		{
			name: "a second worker waits: release the highest, up to the cap (2 here)",
			round: rebalanceRound{ok: true, consumers: []apiConsumer{
				listed("x-bbbb-p0-1", 0, false, "c2"), listed("x-bbbb-p5-1", 5, false, "c2"),
			}},
			subs: mine(8, 0, 1, 2, 3, 4, 5, 6, 7),
			want: rebalancePlan{active: 8, workers: 2, share: 4, release: []int{7, 6}},
		},
		{
			name:  "one over the share",
			round: rebalanceRound{ok: true, consumers: []apiConsumer{listed("x-bbbb-p0-1", 0, true, "c2")}},
			subs:  mine(8, 1, 2, 3, 4, 5),
			want:  rebalancePlan{active: 5, workers: 2, share: 4, release: []int{5}},
		},
		{
			name: "listed active under an old tag does not count",
			round: rebalanceRound{ok: true, consumers: []apiConsumer{
				listed(me+"0-1", 0, true, "c1"), listed(me+"1-1r1", 1, true, "c1"), listed(me+"2-1", 2, true, "c1"),
				listed("x-bbbb-p0-1", 0, false, "c2"), listed("x-cccc-p0-1", 0, false, "c3"),
			}},
			subs: mine(4),
			want: rebalancePlan{active: 2, workers: 3, share: 2},
		},
		{
			name: "partitions being released and other queues do not count",
			round: rebalanceRound{ok: true, consumers: []apiConsumer{
				listed("x-bbbb-p0-1", 0, false, "c2"),
				{Tag: "other", Active: true, Queue: struct {
					Name string `json:"name"`
				}{"docket.requests.dead"}},
			}},
			subs: func() []subscription {
				s := mine(4, 0, 1, 2, 3)
				s[3].releasing = true
				return s
			}(),
			want: rebalancePlan{active: 3, workers: 2, share: 2, release: []int{2}},
		},
		{
			name: "a consumer without channel details is not counted as a worker",
			round: rebalanceRound{ok: true, consumers: []apiConsumer{
				listed("x-bbbb-p0-1", 0, false, ""), listed("x-bbbb-p1-1", 1, false, "c2"),
			}},
			subs: mine(4, 0, 1, 2, 3),
			want: rebalancePlan{active: 4, workers: 2, share: 2, release: []int{3, 2}},
		},
		{
			name:  "management API unreachable: count, release nothing",
			round: rebalanceRound{ok: false},
			subs:  mine(4, 0, 1, 2, 3),
			want:  rebalancePlan{active: 4},
		},
		{
			name: "more workers than partitions",
			round: rebalanceRound{ok: true, consumers: []apiConsumer{
				listed("x-b-p0-1", 0, false, "c2"), listed("x-c-p0-1", 0, false, "c3"), listed("x-d-p0-1", 0, false, "c4"),
			}},
			subs: mine(2, 0, 1),
			want: rebalancePlan{active: 2, workers: 4, share: 1, release: []int{1}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := planRebalance(tt.round, tt.subs, me, 2)
			if got.active != tt.want.active || got.workers != tt.want.workers || got.share != tt.want.share || !slices.Equal(got.release, tt.want.release) {
				t.Errorf("planRebalance = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDecodeConsumerListing(t *testing.T) {
	t.Parallel()
	// As RabbitMQ 3.10 writes it; the second consumer's channel has no
	// statistics yet.
	const listing = `[{"active":true,"activity_status":"single_active","consumer_tag":"w-1-p3-1",
		"channel_details":{"connection_name":"127.0.0.1:43568 -> 127.0.0.1:5672","number":10},
		"queue":{"name":"docket.requests.3","vhost":"/"}},
		{"active":false,"activity_status":"waiting","consumer_tag":"w-2-p3-1","channel_details":[],
		"queue":{"name":"docket.requests.3","vhost":"/"}}]`
	var list []apiConsumer
	if err := json.Unmarshal([]byte(listing), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || !list[0].Active || list[0].Tag != "w-1-p3-1" || list[0].Queue.Name != "docket.requests.3" ||
		list[0].Channel.Connection != "127.0.0.1:43568 -> 127.0.0.1:5672" || list[1].Active || list[1].Channel.Connection != "" {
		t.Fatalf("decoded %+v", list)
	}
}

func TestPartitionOf(t *testing.T) {
	t.Parallel()
	for queue, want := range map[string]int{"docket.requests.0": 0, "docket.requests.7": 7, "docket.requests.8": -1,
		"docket.requests.07": -1, "docket.requests.dead": -1, "docket.requests.-1": -1, "other.3": -1} {
		i, ok := partitionOf(queue, 8)
		if (want < 0 && ok) || (want >= 0 && (!ok || i != want)) {
			t.Errorf("partitionOf(%q, 8) = %d, %v; want %d", queue, i, ok, want)
		}
	}
}

// listConsumers reads the vhost's consumers from the management API.
func listConsumers(t testing.TB, vhost string) []apiConsumer {
	t.Helper()
	var list []apiConsumer
	manage(t, http.MethodGet, "/api/consumers/"+url.PathEscape(vhost), &list)
	return list
}

// activeByConsumer counts, from the management API, the partitions each of
// the consumers is active on, and the partitions with no active consumer.
func activeByConsumer(t testing.TB, vhost string, partitions int, consumers ...*runningConsumer) (counts []int, uncovered int) {
	t.Helper()
	counts = make([]int, len(consumers))
	covered := make([]bool, partitions)
	for _, c := range listConsumers(t, vhost) {
		i, ok := partitionOf(c.Queue.Name, partitions)
		if !ok || !c.Active {
			continue
		}
		covered[i] = true
		for k, rc := range consumers {
			if strings.HasPrefix(c.Tag, rc.tagPrefix) {
				counts[k]++
			}
		}
	}
	for _, c := range covered {
		if !c {
			uncovered++
		}
	}
	return counts, uncovered
}

// waitSpread waits until each consumer is active on at most its fair share
// of the partitions and every partition has an active consumer.
func waitSpread(t testing.TB, vhost string, partitions int, consumers ...*runningConsumer) time.Duration {
	t.Helper()
	start := time.Now()
	share := (partitions + len(consumers) - 1) / len(consumers)
	var counts []int
	var uncovered int
	testenv.Eventually(t, 60*time.Second, func() bool {
		counts, uncovered = activeByConsumer(t, vhost, partitions, consumers...)
		for _, n := range counts {
			if n > share {
				return false
			}
		}
		return uncovered == 0
	}, "partitions not spread over %d consumers (share %d): active %v, %d without an active consumer", len(consumers), share, counts, uncovered)
	return time.Since(start)
}

// TestConsumersSpreadPartitions starts consumers one after another on 8
// partitions while messages flow: the partitions spread until each consumer
// is active on at most its share, every message is handled, and each
// partition's messages are acked in order across the handovers. When a
// consumer stops, its partitions move to the others.
func TestConsumersSpreadPartitions(t *testing.T) {
	t.Parallel()
	const partitions = 8
	cfg := testConfig(t, partitions)
	cfg.RebalanceInterval = 200 * time.Millisecond
	cfg.Prefetch = 20
	vhost := vhostOf(t, cfg.URL)
	p := newPublisher(t, cfg)

	var (
		mu      sync.Mutex
		lastSeq [partitions]int // the last acked seq per partition
		acked   atomic.Int64
		reorder int
	)
	handle := func(name string) handleFunc {
		return func(ctx context.Context, partition int, deliveries <-chan amqp.Delivery) {
			for d := range deliveries {
				m := decodeTestMessage(t, d.Body)
				time.Sleep(time.Millisecond) // some work
				mu.Lock()
				if m.Seq <= lastSeq[partition] {
					reorder++
					if reorder <= 5 {
						t.Errorf("%s: partition %d acks seq %d after seq %d", name, partition, m.Seq, lastSeq[partition])
					}
				} else {
					lastSeq[partition] = m.Seq
					acked.Add(1)
				}
				mu.Unlock()
				if err := d.Ack(false); err != nil {
					t.Errorf("%s: ack partition %d seq %d: %v", name, partition, m.Seq, err)
				}
			}
		}
	}
	stop := make(chan struct{})
	var published atomic.Int64
	var pubs sync.WaitGroup
	for i := range partitions {
		pubs.Go(func() {
			for seq := 1; ; seq++ {
				select {
				case <-stop:
					return
				case <-time.After(5 * time.Millisecond):
				}
				m := testMessage{G: i, Seq: seq, ID: fmt.Sprintf("%d.%d", i, seq)}
				if err := p.Publish(context.Background(), docket.RoutingKey(i), m.encode()); err != nil {
					t.Errorf("publish %s: %v", m.ID, err)
					return
				}
				published.Add(1)
			}
		})
	}
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		pubs.Wait()
	}()

	named := func(name string) Config { c := cfg; c.Name = cfg.Name + "-" + name; return c }
	a := startConsumer(t, named("a"), handle("a"))
	b := startConsumer(t, named("b"), handle("b"))
	took2 := waitSpread(t, vhost, partitions, a, b)
	c := startConsumer(t, named("c"), handle("c"))
	d := startConsumer(t, named("d"), handle("d"))
	took4 := waitSpread(t, vhost, partitions, a, b, c, d)
	a.stop(t)
	tookStop := waitSpread(t, vhost, partitions, b, c, d)

	close(stop)
	pubs.Wait()
	testenv.Eventually(t, 30*time.Second, func() bool { return acked.Load() == published.Load() },
		"acked %d of %d published", acked.Load(), published.Load())
	t.Logf("spread over 2 consumers in %s, over 4 in %s, over 3 again %s after one stopped; %d messages acked in order; partitions released: %d, %d, %d, %d",
		took2.Round(time.Millisecond), took4.Round(time.Millisecond), tookStop.Round(time.Millisecond), acked.Load(),
		a.released.Load(), b.released.Load(), c.released.Load(), d.released.Load())
}

// TestReleaseIsGraceful releases a partition while its handler runs a
// message: the handler sees its deliveries end with its context alive,
// finishes and acks the message, and only then does the next consumer
// start on the partition, with the message after it.
func TestReleaseIsGraceful(t *testing.T) {
	t.Parallel()
	const partitions = 2
	cfg := testConfig(t, partitions)
	cfg.Prefetch = 10
	vhost := vhostOf(t, cfg.URL)
	p := newPublisher(t, cfg)
	publishN(t, p, 1, 1, 20)

	var (
		mu        sync.Mutex
		events    []string
		running   = make(chan struct{})
		finish    = make(chan struct{})
		firstSeen atomic.Bool
		release   sync.Once
	)
	t.Cleanup(func() { release.Do(func() { close(finish) }) }) // before the consumers' stop, on a failure too
	record := func(e string) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	}
	cfgA := cfg
	cfgA.Name = cfg.Name + "-a"
	a := startConsumer(t, cfgA, func(ctx context.Context, partition int, deliveries <-chan amqp.Delivery) {
		for d := range deliveries {
			if partition != 1 || firstSeen.Swap(true) {
				// Later partition-1 deliveries stay unacked: the release
				// hands them back.
				if partition != 1 {
					_ = d.Ack(false)
				}
				continue
			}
			close(running)
			<-finish
			if err := d.Ack(false); err != nil {
				t.Errorf("ack the running message after the release: %v", err)
			}
			record(fmt.Sprintf("a acked %d", decodeTestMessage(t, d.Body).Seq))
		}
		if partition == 1 {
			record(fmt.Sprintf("a handle returned, ctx alive=%v", ctx.Err() == nil))
		}
	})
	<-running
	cfgB := cfg
	cfgB.Name = cfg.Name + "-b"
	cfgB.RebalanceInterval = 100 * time.Millisecond
	var bFirst atomic.Int64
	startConsumer(t, cfgB, ackAll(func(partition int, d amqp.Delivery) {
		if partition == 1 && bFirst.CompareAndSwap(0, int64(decodeTestMessage(t, d.Body).Seq)) {
			record(fmt.Sprintf("b got %d", bFirst.Load()))
		}
	}))
	// a runs no poller (RebalanceInterval 0): it gets the listing by hand
	// until it counts b and its own 2 partitions, over its share of 1, and
	// releases partition 1 (the highest): its deliveries end.
	testenv.Eventually(t, 30*time.Second, func() bool {
		list := listConsumers(t, vhost)
		select {
		case a.rounds <- rebalanceRound{consumers: list, ok: true}:
		default:
		}
		return a.released.Load() > 0
	}, "a did not release partition 1")
	time.Sleep(300 * time.Millisecond) // within handoverWait: b must not start yet
	if bFirst.Load() != 0 {
		t.Fatalf("b got seq %d while a still ran seq 1 within the handover wait", bFirst.Load())
	}
	release.Do(func() { close(finish) })
	testenv.Eventually(t, 10*time.Second, func() bool { return bFirst.Load() != 0 }, "b never got partition 1")
	mu.Lock()
	defer mu.Unlock()
	want := []string{"a acked 1", "a handle returned, ctx alive=true", "b got 2"}
	if !slices.Equal(events, want) {
		t.Fatalf("events %q, want %q", events, want)
	}
}

// TestRebalanceWithoutManagementAPI points the consumer at a management API
// that does not answer: it consumes as before and warns once.
func TestRebalanceWithoutManagementAPI(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, 2)
	cfg.RebalanceInterval = 20 * time.Millisecond
	cfg.ManagementURL = "http://guest:secret@127.0.0.1:1"
	var logs lockedBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	rc := &runningConsumer{Consumer: NewConsumer(cfg, log), cancel: cancel, done: make(chan struct{})}
	var got atomic.Int64
	go func() {
		defer close(rc.done)
		rc.err = rc.Run(ctx, ackAll(func(int, amqp.Delivery) { got.Add(1) }))
	}()
	t.Cleanup(func() { rc.stop(t) })
	testenv.Eventually(t, 10*time.Second, rc.Connected, "consumer not connected")
	p := newPublisher(t, cfg)
	publishN(t, p, 0, 1, 5)
	publishN(t, p, 1, 1, 5)
	testenv.Eventually(t, 10*time.Second, func() bool { return got.Load() == 10 }, "got %d of 10", got.Load())
	time.Sleep(10 * cfg.RebalanceInterval) // several failed rounds
	rc.stop(t)
	out := logs.String()
	if n := strings.Count(out, "management API unreachable"); n != 1 {
		t.Errorf("warned %d times about the management API, want once:\n%s", n, out)
	}
	if strings.Contains(out, "secret") {
		t.Errorf("the log shows the management password:\n%s", out)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

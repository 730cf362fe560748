package rabbitmq

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/docket/docket/internal/docket"
	"github.com/docket/docket/internal/testenv"
)

// TestPublishConsumeOrder publishes 1000 messages from 16 goroutines, each
// with its own sequence spread over the partitions, and checks that the
// consumer sees every message once and each goroutine's messages in order
// within each partition.
func TestPublishConsumeOrder(t *testing.T) {
	t.Parallel()
	const (
		partitions = 4
		goroutines = 16
		total      = 1000
	)
	cfg := testConfig(t, partitions)

	type key struct{ g, partition int }
	var (
		mu       sync.Mutex
		lastSeq  = map[key]int{}
		received = map[string]bool{}
		count    atomic.Int64
	)
	startConsumer(t, cfg, ackAll(func(partition int, d amqp.Delivery) {
		m := decodeTestMessage(t, d.Body)
		mu.Lock()
		defer mu.Unlock()
		k := key{m.G, partition}
		if m.Seq <= lastSeq[k] {
			t.Errorf("partition %d: goroutine %d's seq %d after %d", partition, m.G, m.Seq, lastSeq[k])
		}
		lastSeq[k] = m.Seq
		if received[m.ID] {
			t.Errorf("message %s delivered twice", m.ID)
		}
		received[m.ID] = true
		if d.ContentType != "application/json" || d.DeliveryMode != amqp.Persistent {
			t.Errorf("content type %q, delivery mode %d, want application/json, persistent", d.ContentType, d.DeliveryMode)
		}
		count.Add(1)
	}))
	p := newPublisher(t, cfg)

	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			n := total / goroutines
			if g < total%goroutines {
				n++
			}
			for seq := 1; seq <= n; seq++ {
				m := testMessage{G: g, Seq: seq, ID: strconv.Itoa(g) + "." + strconv.Itoa(seq)}
				// Each goroutine's next publish starts after its previous
				// confirm, as the API's next request for a user would.
				if err := p.Publish(context.Background(), docket.RoutingKey(seq%partitions), m.encode()); err != nil {
					t.Errorf("publish %s: %v", m.ID, err)
					return
				}
			}
		})
	}
	wg.Wait()
	testenv.Eventually(t, 20*time.Second, func() bool { return count.Load() >= total },
		"consumer got %d of %d messages", count.Load(), total)
	mu.Lock()
	defer mu.Unlock()
	if len(received) != total {
		t.Fatalf("received %d distinct messages, want %d", len(received), total)
	}
	for k := range lastSeq {
		if k.partition < 0 || k.partition >= partitions {
			t.Fatalf("handle called with partition %d", k.partition)
		}
	}
}

// TestManyConfirmsInFlight proves that a publish does not hold its channel
// while it waits for the confirm: 2000 concurrent publishes over two
// channels all succeed, with far more than two confirms in flight at once.
func TestManyConfirmsInFlight(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, 4)
	cfg.PublishChannels = 2
	p := newPublisher(t, cfg)

	const n = 2000
	start := time.Now()
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := range n {
		wg.Go(func() {
			if err := p.Publish(context.Background(), docket.RoutingKey(i%cfg.Partitions), testMessage{Seq: i}.encode()); err != nil {
				if failed.Add(1) <= 5 {
					t.Errorf("publish %d: %v", i, err)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	t.Logf("%d concurrent publishes on %d channels: %s (%.0f msgs/s), peak confirms in flight %d",
		n, cfg.PublishChannels, elapsed, n/elapsed.Seconds(), p.peakInFlight.Load())
	if failed.Load() > 0 {
		t.Fatalf("%d of %d publishes failed", failed.Load(), n)
	}
	if peak := p.peakInFlight.Load(); peak <= int64(cfg.PublishChannels) {
		t.Errorf("peak confirms in flight = %d, want many per channel", peak)
	}
	if max := int64(cfg.PublishChannels * cfg.ConfirmWindow); p.peakInFlight.Load() > max {
		t.Errorf("peak confirms in flight = %d, over the window of %d", p.peakInFlight.Load(), max)
	}
	if got := p.inFlight.Load(); got != 0 {
		t.Errorf("confirms in flight after all returned = %d, want 0", got)
	}
	depths, err := Depths(context.Background(), cfg.URL, cfg.Partitions)
	if err != nil {
		t.Fatal(err)
	}
	sum := 0
	for _, d := range depths {
		sum += d
	}
	if sum != n {
		t.Errorf("queues hold %d messages (%v), want %d", sum, depths, n)
	}
}

// TestPublishNotConnected checks that Publish fails fast while the broker
// cannot be reached, and that the publisher connects alone once it can.
func TestPublishNotConnected(t *testing.T) {
	t.Parallel()
	assertNotConnected := func(t *testing.T, p *Publisher) {
		t.Helper()
		if p.Ready() {
			t.Fatal("Ready() = true before any connection")
		}
		start := time.Now()
		err := p.Publish(context.Background(), "0", []byte(`{}`))
		if took := time.Since(start); took > time.Second {
			t.Errorf("Publish took %s, want < 1s", took)
		}
		if !errors.Is(err, ErrNotConnected) {
			t.Fatalf("Publish = %v, want ErrNotConnected", err)
		}
	}

	t.Run("closed port", func(t *testing.T) {
		t.Parallel()
		p := NewPublisher(Config{URL: "amqp://guest:guest@127.0.0.1:1/", ReconnectMin: 10 * time.Millisecond}, testLogger(t))
		defer p.Close()
		assertNotConnected(t, p)
	})

	t.Run("vhost created later", func(t *testing.T) {
		t.Parallel()
		vhost := testenv.Name("docket_test")
		u, _ := url.Parse(testenv.RabbitMQURL())
		u.Path = "/" + vhost
		p := NewPublisher(Config{URL: u.String(), Partitions: 2, ReconnectMin: 10 * time.Millisecond, ReconnectMax: 100 * time.Millisecond}, testLogger(t))
		defer p.Close()
		assertNotConnected(t, p)

		manage(t, http.MethodPut, "/api/vhosts/"+vhost, nil)
		t.Cleanup(func() { _ = tryManage(http.MethodDelete, "/api/vhosts/"+vhost, "", nil) })
		perm := `{"configure":".*","write":".*","read":".*"}`
		if err := tryManage(http.MethodPut, "/api/permissions/"+vhost+"/"+url.PathEscape(u.User.Username()), perm, nil); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 10*time.Second, p.Ready, "publisher not ready after the vhost appeared")
		if err := p.Publish(context.Background(), "1", []byte(`{}`)); err != nil {
			t.Fatalf("Publish after connecting: %v", err)
		}
	})
}

// TestPublishBlocked feeds connection.blocked to a live publisher (a real
// memory alarm would block every test on the shared broker): Publish then
// fails fast with ErrNotConnected until connection.unblocked.
func TestPublishBlocked(t *testing.T) {
	t.Parallel()
	p := newPublisher(t, testConfig(t, 1))
	lc := p.live.Load()
	lc.blocks <- amqp.Blocking{Active: true, Reason: "low on memory (test)"}
	testenv.Eventually(t, 5*time.Second, func() bool { return !p.Ready() }, "Ready() while blocked")
	start := time.Now()
	if err := p.Publish(context.Background(), "0", []byte(`{}`)); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("Publish while blocked = %v, want ErrNotConnected", err)
	}
	if took := time.Since(start); took > time.Second { // far below the 5 s publish timeout it must not wait for
		t.Errorf("Publish while blocked took %s", took)
	}
	lc.blocks <- amqp.Blocking{Active: false}
	testenv.Eventually(t, 5*time.Second, p.Ready, "not Ready() after unblocked")
	if err := p.Publish(context.Background(), "0", []byte(`{}`)); err != nil {
		t.Fatalf("Publish after unblocked = %v", err)
	}
}

// TestPublishTimeout gives publishes 1ms: many time out waiting for the
// window or the confirm. Timeouts are errors, and every abandoned confirm
// still gives its window token back once it resolves.
func TestPublishTimeout(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, 1)
	cfg.PublishChannels, cfg.ConfirmWindow, cfg.PublishTimeout = 1, 8, time.Millisecond
	p := newPublisher(t, cfg)
	var wg sync.WaitGroup
	var ok, timedOut atomic.Int64
	for range 500 {
		wg.Go(func() {
			err := p.Publish(context.Background(), "0", []byte(`{}`))
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, context.DeadlineExceeded):
				timedOut.Add(1)
			default:
				t.Errorf("Publish = %v, want nil or a timeout", err)
			}
		})
	}
	wg.Wait()
	t.Logf("1ms timeout: %d confirmed, %d timed out", ok.Load(), timedOut.Load())
	if timedOut.Load() == 0 {
		t.Error("no publish timed out")
	}
	lc := p.live.Load()
	c := <-lc.pool
	defer func() { lc.pool <- c }()
	testenv.Eventually(t, 5*time.Second, func() bool { return p.inFlight.Load() == 0 && len(c.window) == 0 },
		"%d confirms in flight, %d window tokens held after every confirm resolved", p.inFlight.Load(), len(c.window))
}

// TestPublishUnroutable checks that a message no queue takes is an error,
// although the broker acks it.
func TestPublishUnroutable(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, 2)
	cfg.PublishChannels = 1
	p := newPublisher(t, cfg)

	err := p.Publish(context.Background(), "no-such-partition", []byte(`{}`))
	if !errors.Is(err, errReturned) {
		t.Fatalf("Publish to an unbound key = %v, want a returned error", err)
	}
	t.Logf("unroutable: %v", err)
	for i := range 20 { // the channel keeps working and tells returns apart
		key := docket.RoutingKey(i % 2)
		if i%5 == 0 {
			key = "nowhere"
		}
		err := p.Publish(context.Background(), key, []byte(`{}`))
		if (key == "nowhere") != errors.Is(err, errReturned) || (key != "nowhere" && err != nil) {
			t.Errorf("Publish to %q = %v", key, err)
		}
	}
	lc := p.live.Load()
	c := <-lc.pool
	defer func() { lc.pool <- c }()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.returned) != 0 {
		t.Errorf("%d returns left unclaimed", len(c.returned))
	}
}

// TestPublishContextDone checks that a caller's deadline bounds Publish,
// and that Close afterwards returns promptly.
func TestPublishContextDone(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, 1)
	p := newPublisher(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Publish(ctx, "0", []byte(`{}`)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Publish with a cancelled ctx = %v, want context.Canceled", err)
	}
	start := time.Now()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Close took %s", took)
	}
	if p.Ready() {
		t.Error("Ready() after Close")
	}
	if err := p.Publish(context.Background(), "0", []byte(`{}`)); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("Publish after Close = %v, want ErrNotConnected", err)
	}
}

// BenchmarkPublish publishes from many goroutines at once, as the API's
// handlers do, and reports the confirmed rate.
func BenchmarkPublish(b *testing.B) {
	cfg := testConfig(b, 8)
	p := newPublisher(b, cfg)
	body := testMessage{G: 1, Seq: 1, ID: "00000000-0000-0000-0000-000000000000"}.encode()
	var next atomic.Int64
	b.SetParallelism(64) // many handlers per core, like the HTTP server
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			key := docket.RoutingKey(int(next.Add(1) % int64(cfg.Partitions)))
			if err := p.Publish(context.Background(), key, body); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// TestPublishBatch publishes one batch across the partitions with an
// unroutable key in the middle: that message alone fails (returned), and
// every other one arrives once, in the batch's order within its partition.
func TestPublishBatch(t *testing.T) {
	t.Parallel()
	const partitions, n = 2, 40
	cfg := testConfig(t, partitions)
	var (
		mu   sync.Mutex
		last = map[int]int{}
		got  atomic.Int64
	)
	startConsumer(t, cfg, ackAll(func(partition int, d amqp.Delivery) {
		m := decodeTestMessage(t, d.Body)
		mu.Lock()
		defer mu.Unlock()
		if m.Seq <= last[partition] {
			t.Errorf("partition %d: seq %d after %d", partition, m.Seq, last[partition])
		}
		last[partition] = m.Seq
		got.Add(1)
	}))
	p := newPublisher(t, cfg)
	msgs := make([]Outgoing, n)
	for i := range msgs {
		msgs[i] = Outgoing{RoutingKey: docket.RoutingKey(i % partitions), Body: testMessage{Seq: i + 1}.encode()}
	}
	const bad = n / 2
	msgs[bad].RoutingKey = "no-such-partition"
	errs := p.PublishBatch(context.Background(), msgs)
	for i, err := range errs {
		if i == bad && !errors.Is(err, errReturned) {
			t.Errorf("unroutable message: %v, want it returned", err)
		}
		if i != bad && err != nil {
			t.Errorf("message %d: %v", i, err)
		}
	}
	testenv.Eventually(t, 15*time.Second, func() bool { return got.Load() == n-1 },
		"consumed %d of %d", &got, n-1)
}

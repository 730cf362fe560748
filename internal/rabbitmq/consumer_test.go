package rabbitmq

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/docket/docket/internal/docket"
	"github.com/docket/docket/internal/testenv"
)

// publishN publishes messages seq 1..n to partition.
func publishN(t testing.TB, p *Publisher, partition, g, n int) {
	t.Helper()
	for seq := 1; seq <= n; seq++ {
		m := testMessage{G: g, Seq: seq, ID: strconv.Itoa(g) + "." + strconv.Itoa(seq)}
		if err := p.Publish(context.Background(), docket.RoutingKey(partition), m.encode()); err != nil {
			t.Fatalf("publish %s: %v", m.ID, err)
		}
	}
}

// TestConsumerOrderlyShutdown cancels Run while the handler is in the
// middle of a message: Run waits for the handler, the message is acked, and
// the prefetched, unacked messages go to the next consumer.
func TestConsumerOrderlyShutdown(t *testing.T) {
	t.Parallel()
	const n = 30
	cfg := testConfig(t, 1)
	cfg.Prefetch = 10
	p := newPublisher(t, cfg)
	publishN(t, p, 0, 0, n)

	started := make(chan struct{})
	release := make(chan struct{})
	var acked, left atomic.Int64
	var pctxDone atomic.Bool
	rc := startConsumer(t, cfg, func(ctx context.Context, _ int, deliveries <-chan amqp.Delivery) {
		first := true
		for d := range deliveries {
			if first { // the in-flight message: finish it despite shutdown
				first = false
				close(started)
				<-release
				pctxDone.Store(ctx.Err() != nil)
				if err := d.Ack(false); err != nil {
					t.Errorf("ack the in-flight message: %v", err)
				}
				acked.Add(1)
				continue
			}
			if ctx.Err() == nil {
				t.Errorf("second delivery before shutdown (seq %d)", decodeTestMessage(t, d.Body).Seq)
			}
			left.Add(1) // shutting down: leave it to the next consumer
		}
	})
	<-started
	rc.cancel()
	select {
	case <-rc.done:
		t.Fatal("Run returned while the handler was still working")
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	rc.stop(t)
	if acked.Load() != 1 || !pctxDone.Load() {
		t.Fatalf("acked %d, pctx cancelled %v; want 1 and true", acked.Load(), pctxDone.Load())
	}
	t.Logf("shutdown: 1 acked, %d prefetched deliveries left unacked", left.Load())
	if left.Load() == 0 || left.Load() > int64(cfg.Prefetch) {
		t.Errorf("prefetched deliveries seen after cancel = %d, want 1..%d", left.Load(), cfg.Prefetch)
	}

	// The next consumer gets everything except the acked first message.
	var mu sync.Mutex
	seen := map[int]bool{}
	startConsumer(t, cfg, ackAll(func(_ int, d amqp.Delivery) {
		m := decodeTestMessage(t, d.Body)
		mu.Lock()
		defer mu.Unlock()
		if m.Seq == 1 {
			t.Errorf("acked message redelivered")
		}
		seen[m.Seq] = true
	}))
	testenv.Eventually(t, 10*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == n-1
	}, "next consumer did not get the %d remaining messages", n-1)
}

// TestSingleActiveConsumer runs two consumers on one vhost: only the first
// receives, and the second takes over once the first stops.
func TestSingleActiveConsumer(t *testing.T) {
	t.Parallel()
	const partitions, perPartition = 3, 10
	cfg := testConfig(t, partitions)
	p := newPublisher(t, cfg)

	var mu sync.Mutex
	got := map[string]map[int]int{"a": {}, "b": {}} // consumer → partition → count
	record := func(name string) handleFunc {
		return ackAll(func(partition int, _ amqp.Delivery) {
			mu.Lock()
			defer mu.Unlock()
			got[name][partition]++
		})
	}
	counts := func(name string) (total int) {
		mu.Lock()
		defer mu.Unlock()
		for _, n := range got[name] {
			total += n
		}
		return total
	}
	cfgA, cfgB := cfg, cfg
	cfgA.Name, cfgB.Name = cfg.Name+"-a", cfg.Name+"-b"
	a := startConsumer(t, cfgA, record("a"))
	startConsumer(t, cfgB, record("b"))

	for i := range partitions {
		publishN(t, p, i, 1, perPartition)
	}
	testenv.Eventually(t, 10*time.Second, func() bool { return counts("a") == partitions*perPartition },
		"first consumer got %d of %d", counts("a"), partitions*perPartition)
	if n := counts("b"); n != 0 {
		t.Fatalf("standby consumer received %d messages while the first was active", n)
	}

	a.stop(t)
	for i := range partitions {
		publishN(t, p, i, 2, perPartition)
	}
	testenv.Eventually(t, 10*time.Second, func() bool { return counts("b") == partitions*perPartition },
		"second consumer got %d of %d after the first stopped", counts("b"), partitions*perPartition)
	mu.Lock()
	defer mu.Unlock()
	for i := range partitions {
		if got["b"][i] != perPartition {
			t.Errorf("second consumer got %d from partition %d, want %d", got["b"][i], i, perPartition)
		}
	}
	if got["a"][0]+got["a"][1]+got["a"][2] != partitions*perPartition {
		t.Errorf("first consumer received after it stopped: %v", got["a"])
	}
}

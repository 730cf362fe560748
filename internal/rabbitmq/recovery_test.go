package rabbitmq

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/docket/docket/internal/docket"
	"github.com/docket/docket/internal/testenv"
)

// TestRecoverAfterConnectionsKilled closes the publisher's and the
// consumer's connections from the broker's side (what a broker restart looks
// like to a client) while publishes stream in. Both recover alone, and every
// message whose Publish returned nil is delivered.
func TestRecoverAfterConnectionsKilled(t *testing.T) {
	t.Parallel()
	const (
		partitions = 4
		publishers = 8
	)
	cfg := testConfig(t, partitions)
	vhost := vhostOf(t, cfg.URL)

	var (
		mu          sync.Mutex
		received    = map[string]bool{}
		firstAfter  atomic.Int64 // first delivery on the new connection, unix nanos
		newSessions = "-2"       // consumer tags of the second connection end so
	)
	var active [partitions]atomic.Int32 // handles running per partition
	record := ackAll(func(_ int, d amqp.Delivery) {
		m := decodeTestMessage(t, d.Body)
		if strings.HasSuffix(d.ConsumerTag, newSessions) {
			firstAfter.CompareAndSwap(0, time.Now().UnixNano())
		}
		mu.Lock()
		defer mu.Unlock()
		received[m.ID] = true
	})
	rc := startConsumer(t, cfg, func(ctx context.Context, partition int, deliveries <-chan amqp.Delivery) {
		// The old connection's handles return before new ones start.
		if n := active[partition].Add(1); n != 1 {
			t.Errorf("%d handles of partition %d at once", n, partition)
		}
		defer active[partition].Add(-1)
		record(ctx, partition, deliveries)
	})
	p := newPublisher(t, cfg)
	waitConnections(t, vhost, cfg.Name+"-publisher", cfg.Name+"-consumer")

	var (
		confirmed   sync.Map // ID → struct{}
		nConfirmed  atomic.Int64
		nFailed     atomic.Int64
		nNotConnect atomic.Int64
		stop        = make(chan struct{})
		wg          sync.WaitGroup
	)
	for g := range publishers {
		wg.Go(func() {
			for seq := 1; ; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				m := testMessage{G: g, Seq: seq, ID: strconv.Itoa(g) + "." + strconv.Itoa(seq)}
				err := p.Publish(context.Background(), docket.RoutingKey(seq%partitions), m.encode())
				switch {
				case err == nil:
					confirmed.Store(m.ID, struct{}{})
					nConfirmed.Add(1)
				case errors.Is(err, ErrNotConnected):
					nNotConnect.Add(1)
					time.Sleep(time.Millisecond) // as a client would back off
				default:
					nFailed.Add(1) // unknown outcome: the sweeper's case
				}
			}
		})
	}
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()

	testenv.Eventually(t, 10*time.Second, func() bool { return nConfirmed.Load() >= 500 }, "publishes do not get confirmed")
	before := p.live.Load()
	conns := waitConnections(t, vhost, cfg.Name+"-publisher", cfg.Name+"-consumer")
	killed := time.Now()
	for _, c := range conns {
		killConnection(t, c.Name)
	}
	confirmedAtKill := nConfirmed.Load()

	testenv.Eventually(t, 10*time.Second, func() bool {
		lc := p.live.Load()
		return lc != nil && lc != before && p.Ready()
	}, "publisher did not reconnect")
	publisherRecovery := time.Since(killed)
	testenv.Eventually(t, 10*time.Second, func() bool { return firstAfter.Load() != 0 },
		"consumer did not receive on a new connection")
	consumerRecovery := time.Duration(firstAfter.Load() - killed.UnixNano())
	testenv.Eventually(t, 10*time.Second, func() bool { return nConfirmed.Load() >= confirmedAtKill+500 },
		"publishes are not confirmed again after the reconnect")
	close(stop)
	wg.Wait()
	if !rc.Connected() {
		t.Error("consumer not connected after recovery")
	}

	var missing []string
	testenv.Eventually(t, 15*time.Second, func() bool {
		missing = missing[:0]
		mu.Lock()
		defer mu.Unlock()
		confirmed.Range(func(k, _ any) bool {
			if !received[k.(string)] {
				missing = append(missing, k.(string))
			}
			return true
		})
		return len(missing) == 0
	}, "confirmed messages never delivered: %d, e.g. %v", len(missing), head(missing, 5))
	t.Logf("confirmed %d, unknown outcome %d, not connected %d; publisher ready again %s after the kill, consumer receiving again %s after",
		nConfirmed.Load(), nFailed.Load(), nNotConnect.Load(), publisherRecovery.Round(time.Millisecond), consumerRecovery.Round(time.Millisecond))
}

func head(s []string, n int) []string {
	if len(s) < n {
		return s
	}
	return s[:n]
}

// TestPublisherRecoversFromChannelError deletes the requests exchange: the
// next publish closes its channel (404), the pending confirm fails at once,
// and the publisher reconnects and redeclares the topology by itself.
func TestPublisherRecoversFromChannelError(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, 2)
	vhost := vhostOf(t, cfg.URL)
	p := newPublisher(t, cfg)
	before := p.live.Load()
	manage(t, http.MethodDelete, "/api/exchanges/"+url.PathEscape(vhost)+"/"+RequestsExchange, nil)

	start := time.Now()
	err := p.Publish(context.Background(), "0", []byte(`{}`))
	if err == nil {
		t.Fatal("Publish to a deleted exchange = nil, want an error")
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("Publish on a closing channel took %s, want an error at once", took)
	}
	t.Logf("publish to the deleted exchange: %v", err)
	testenv.Eventually(t, 10*time.Second, func() bool {
		lc := p.live.Load()
		return lc != nil && lc != before && p.Ready()
	}, "publisher did not reconnect")
	if err := p.Publish(context.Background(), "1", []byte(`{}`)); err != nil {
		t.Fatalf("Publish after the redeclare: %v", err)
	}
}

// TestConsumerRecoversFromQueueDeleted deletes a partition queue under the
// consumer: the broker cancels its consumer, and the consumer starts over,
// redeclaring the queue, without two handles of one partition at once.
func TestConsumerRecoversFromQueueDeleted(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, 2)
	vhost := vhostOf(t, cfg.URL)
	var (
		active   [2]atomic.Int32
		received atomic.Int64
		handles  atomic.Int64
	)
	rc := startConsumer(t, cfg, func(_ context.Context, partition int, deliveries <-chan amqp.Delivery) {
		handles.Add(1)
		if n := active[partition].Add(1); n != 1 {
			t.Errorf("%d handles of partition %d at once", n, partition)
		}
		defer active[partition].Add(-1)
		for d := range deliveries {
			received.Add(1)
			_ = d.Ack(false)
		}
	})
	p := newPublisher(t, cfg)

	manage(t, http.MethodDelete, "/api/queues/"+url.PathEscape(vhost)+"/"+PartitionQueue(0), nil)
	testenv.Eventually(t, 10*time.Second, func() bool { return handles.Load() == 4 && rc.Connected() },
		"consumer did not start over (%d handles started)", handles.Load())
	testenv.Eventually(t, 10*time.Second, func() bool {
		return p.Publish(context.Background(), "0", []byte(`{}`)) == nil
	}, "partition 0 not routable again")
	testenv.Eventually(t, 10*time.Second, func() bool { return received.Load() >= 1 },
		"consumer does not receive from the redeclared queue")
}

package rabbitmq

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	amqp "github.com/rabbitmq/amqp091-go"
)

// Consumer consumes every partition queue on its own connection (never the
// publisher's: the broker throttles a publishing connection, and acks must
// not wait behind that).
type Consumer struct {
	cfg       Config
	log       *slog.Logger
	connected atomic.Bool
	// tagPrefix starts every consumer tag of this Consumer:
	// "<Name>-<instance>-p", instance random, so that the management API's
	// listing tells this worker's consumers from the others'.
	tagPrefix string
	// rounds carries the management API's listings from pollConsumers to
	// the running session.
	rounds chan rebalanceRound

	activeGauge   *metrics.Gauge
	releasedTotal *metrics.Counter
	released      atomic.Int64 // this Consumer's part of releasedTotal
}

// NewConsumer returns a consumer; Run starts it. cfg gets WithDefaults and
// is validated by Run. A nil log uses slog.Default.
func NewConsumer(cfg Config, log *slog.Logger) *Consumer {
	if log == nil {
		log = slog.Default()
	}
	cfg = cfg.WithDefaults()
	instance := make([]byte, 4)
	_, _ = rand.Read(instance)
	tagPrefix := cfg.Name + "-" + hex.EncodeToString(instance) + "-p"
	return &Consumer{
		cfg:       cfg,
		log:       log.With("component", "rabbitmq", "role", roleConsumer, "tags", tagPrefix+"*"),
		tagPrefix: tagPrefix,
		rounds:    make(chan rebalanceRound, 1),
		// Created here, not at package init, so that only processes that
		// consume (the worker) serve them.
		activeGauge:   metrics.GetOrCreateGauge(`docket_partitions_active`, nil),
		releasedTotal: metrics.GetOrCreateCounter(`docket_partitions_released_total`),
	}
}

// Connected reports whether every partition is being consumed on a live
// connection. With single active consumer, consuming may mean waiting as
// the standby of another worker.
func (c *Consumer) Connected() bool { return c.connected.Load() }

// Run consumes all partition queues until ctx is cancelled, redialing with
// backoff after any failure and redeclaring the topology. Each partition
// gets its own channel (QoS Prefetch, per channel) and consumer tag
// "<Name>-<instance>-p<i>-<n>" (n counts connections), and handle(pctx,
// partition, deliveries) runs in its own goroutine. pctx is cancelled when
// that channel or the connection dies or ctx is cancelled. handle must
// return once deliveries is closed; it acks with d.Ack(false) or
// d.Reject(false).
//
// deliveries also closes, with pctx alive, when the partition is released to
// another worker (Config.RebalanceInterval): handle should then finish what
// it runs, ack it and return, like at a shutdown. Until it returns, or for
// handoverWait, this worker stays the partition's active consumer; then the
// channel closes (the broker requeues what is unacked) and the partition is
// subscribed again on a fresh channel ("…-<n>r<k>") with a new handle.
//
// After a connection loss Run waits for every handle of the old connection
// before consuming on a new one. When ctx is cancelled Run cancels every
// consumer (deliveries close after the ones already sent; no new ones come),
// waits for every handle to return, closes the channels (the broker requeues
// whatever is unacked) and the connection, and returns nil. Run returns an
// error only for an invalid configuration. Call Run once at a time.
func (c *Consumer) Run(ctx context.Context, handle func(ctx context.Context, partition int, deliveries <-chan amqp.Delivery)) error {
	if err := c.cfg.Validate(); err != nil {
		return err
	}
	if handle == nil {
		return errors.New("rabbitmq: Consumer.Run needs a handle func")
	}
	if c.cfg.RebalanceInterval > 0 {
		pollCtx, stopPolling := context.WithCancel(ctx)
		defer stopPolling()
		go c.pollConsumers(pollCtx)
	}
	url := redactURL(c.cfg.URL)
	delay := c.cfg.ReconnectMin
	sessions := 0
	for {
		start := time.Now()
		conn, err := dial(ctx, c.cfg, roleConsumer)
		if err == nil {
			sessions++
			var started bool
			started, err = c.session(ctx, conn, sessions, start, handle)
			if started {
				delay = c.cfg.ReconnectMin
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		c.log.Warn("rabbitmq consumer: not consuming", "url", url, "reason", err, "redial_in", delay)
		if !sleepCtx(ctx, delay) {
			return nil
		}
		delay = nextBackoff(delay, c.cfg.ReconnectMax)
	}
}

// partitionConsumer is one partition's channel and subscription. The
// session loop owns it; delivered is shared with its relay.
type partitionConsumer struct {
	partition  int
	ch         *amqp.Channel
	tag        string
	ctx        context.Context
	deliveries <-chan amqp.Delivery // relayed from the channel's
	release    chan struct{}        // closed to end deliveries for a release
	releasing  bool
	delivered  atomic.Bool   // got a delivery: it is the active consumer
	done       chan struct{} // closed when handle returned
}

// session consumes on conn until it fails (the reason is returned) or ctx is
// done (then it shuts down in order and returns nil). started reports
// whether every partition got consuming.
func (c *Consumer) session(ctx context.Context, conn *amqp.Connection, n int, start time.Time,
	handle func(context.Context, int, <-chan amqp.Delivery)) (started bool, err error) {
	connClosed := conn.NotifyClose(make(chan *amqp.Error, 1))
	blocks := conn.NotifyBlocked(make(chan amqp.Blocking, 4))
	if err := declareOn(conn, c.cfg); err != nil {
		closeConn(conn)
		return false, err
	}

	sctx, scancel := context.WithCancel(ctx)
	defer scancel()
	var handles sync.WaitGroup
	exited := make(chan int, c.cfg.Partitions) // never blocks a returning handle: one handle per partition at a time
	parts := make([]*partitionConsumer, c.cfg.Partitions)
	abandon := func(reason error) error {
		scancel()
		closeConn(conn) // closes every deliveries channel
		handles.Wait()
		return reason
	}
	startHandle := func(pc *partitionConsumer) {
		handles.Add(1)
		go func() {
			defer handles.Done()
			defer func() { exited <- pc.partition }()
			defer close(pc.done)
			handle(pc.ctx, pc.partition, pc.deliveries)
		}()
	}
	for i := range c.cfg.Partitions {
		pc, err := c.consume(sctx, conn, i, fmt.Sprintf("%s%d-%d", c.tagPrefix, i, n))
		if err != nil {
			return false, abandon(err)
		}
		parts[i] = pc
		startHandle(pc)
	}

	if n > 1 {
		reconnectsTotal[roleConsumer].Inc()
	}
	connected := connectedGauge[roleConsumer]
	c.connected.Store(true)
	connected.Inc()
	var active int // this session's part of docket_partitions_active
	defer func() {
		c.connected.Store(false)
		connected.Dec()
		c.activeGauge.Add(-float64(active))
	}()
	c.log.Info("rabbitmq consumer: consuming", "url", redactURL(c.cfg.URL),
		"partitions", c.cfg.Partitions, "prefetch", c.cfg.Prefetch, "connection", n, "took", time.Since(start))

	resubscribed := make([]int, c.cfg.Partitions)
	for {
		select {
		case <-ctx.Done():
			c.stop(conn, parts, &handles)
			return true, nil
		case e, ok := <-connClosed:
			if !ok {
				return true, abandon(errors.New("connection closed"))
			}
			return true, abandon(fmt.Errorf("connection closed: %w", e))
		case i := <-exited:
			pc := parts[i]
			if !pc.releasing {
				// The broker cancelled the consumer (queue deleted) or the
				// channel closed: start over on a fresh connection.
				return true, abandon(fmt.Errorf("partition %d stopped consuming", i))
			}
			// Released: closing the channel hands the unacked deliveries
			// back and lets the next waiting worker read; subscribing
			// again puts this one at the back of the waiting list.
			_ = pc.ch.Close()
			resubscribed[i]++
			next, err := c.consume(sctx, conn, i, fmt.Sprintf("%s%d-%dr%d", c.tagPrefix, i, n, resubscribed[i]))
			if err != nil {
				return true, abandon(err)
			}
			parts[i] = next
			startHandle(next)
		case r := <-c.rounds:
			now := c.rebalance(r, parts)
			c.activeGauge.Add(float64(now - active))
			active = now
		case b, ok := <-blocks:
			if !ok {
				blocks = nil // closed with the connection; connClosed says why
				continue
			}
			c.log.Warn("rabbitmq consumer: connection blocked by the broker", "active", b.Active, "reason", b.Reason)
		}
	}
}

// rebalance plans a round and starts its releases; it returns the number of
// partitions this consumer stays active on.
func (c *Consumer) rebalance(r rebalanceRound, parts []*partitionConsumer) int {
	subs := make([]subscription, len(parts))
	for i, pc := range parts {
		subs[i] = subscription{tag: pc.tag, delivered: pc.delivered.Load(), releasing: pc.releasing}
	}
	plan := planRebalance(r, subs, c.tagPrefix, releasesPerRound)
	for _, i := range plan.release {
		c.log.Info("rabbitmq consumer: releasing a partition to a waiting worker", "partition", i,
			"active", plan.active, "workers", plan.workers, "fair_share", plan.share)
		c.releasedTotal.Inc()
		c.released.Add(1)
		c.startRelease(parts[i])
	}
	return plan.active - len(plan.release)
}

// startRelease ends pc's deliveries so that its handle finishes what it
// runs and returns; the session then closes the channel and subscribes
// again. If the handle takes longer than handoverWait, the subscription is
// cancelled first, so that the next worker need not wait for it.
func (c *Consumer) startRelease(pc *partitionConsumer) {
	pc.releasing = true
	close(pc.release)
	go func() {
		t := time.NewTimer(handoverWait)
		defer t.Stop()
		select {
		case <-pc.done:
		case <-t.C:
			// noWait=false; an error means the channel is gone already.
			if err := pc.ch.Cancel(pc.tag, false); err != nil {
				c.log.Debug("rabbitmq consumer: cancel a released partition", "tag", pc.tag, "err", err)
			}
		}
	}()
}

// consume opens partition i's channel and subscribes with tag.
func (c *Consumer) consume(sctx context.Context, conn *amqp.Connection, i int, tag string) (*partitionConsumer, error) {
	queue := PartitionQueue(i)
	ch, err := conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("open channel for %q: %w", queue, err)
	}
	// Per channel (global=false): quorum queues refuse global QoS.
	if err := ch.Qos(c.cfg.Prefetch, 0, false); err != nil {
		return nil, fmt.Errorf("set prefetch %d on %q: %w", c.cfg.Prefetch, queue, err)
	}
	closes := ch.NotifyClose(make(chan *amqp.Error, 1))
	in, err := ch.Consume(queue, tag,
		false, // autoAck: the handler acks after its work is committed
		false, // exclusive: single active consumer keeps standbys instead
		false, // noLocal: not supported by RabbitMQ
		false, // noWait
		nil)
	if err != nil {
		return nil, fmt.Errorf("consume %q as %q: %w", queue, tag, err)
	}
	pctx, pcancel := context.WithCancel(sctx)
	go func() {
		defer pcancel()
		select {
		case <-closes: // an error or the close itself: the channel is gone
		case <-pctx.Done():
		}
	}()
	out := make(chan amqp.Delivery)
	pc := &partitionConsumer{partition: i, ch: ch, tag: tag, ctx: pctx, deliveries: out,
		release: make(chan struct{}), done: make(chan struct{})}
	go pc.relay(in, out)
	return pc, nil
}

// relay passes the channel's deliveries on to the handle until they end (a
// cancel or a closed channel) or the partition is released. Deliveries not
// passed on stay unacked: the broker hands them back when the channel
// closes.
func (pc *partitionConsumer) relay(in <-chan amqp.Delivery, out chan<- amqp.Delivery) {
	defer close(out)
	for {
		select {
		case <-pc.release:
			return
		default:
		}
		select {
		case <-pc.release:
			return
		case d, ok := <-in:
			if !ok {
				return
			}
			pc.delivered.Store(true)
			select {
			case out <- d:
			case <-pc.release:
				return
			}
		}
	}
}

// stop is the orderly shutdown: cancel every subscription so each deliveries
// channel closes after what the broker already sent, let every handle finish
// its work and return, then close the channels (the broker requeues what is
// unacked) and the connection.
func (c *Consumer) stop(conn *amqp.Connection, parts []*partitionConsumer, handles *sync.WaitGroup) {
	start := time.Now()
	for _, pc := range parts {
		// noWait=false: after cancel-ok nothing more arrives for this tag.
		if err := pc.ch.Cancel(pc.tag, false); err != nil {
			c.log.Debug("rabbitmq consumer: cancel", "tag", pc.tag, "err", err)
		}
	}
	handles.Wait()
	for _, pc := range parts {
		_ = pc.ch.Close()
	}
	closeConn(conn)
	c.log.Info("rabbitmq consumer: stopped", "took", time.Since(start))
}

package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Consumer consumes every partition queue on its own connection (never the
// publisher's: the broker throttles a publishing connection, and acks must
// not wait behind that).
type Consumer struct {
	cfg       Config
	log       *slog.Logger
	connected atomic.Bool
}

// NewConsumer returns a consumer; Run starts it. cfg gets WithDefaults and
// is validated by Run. A nil log uses slog.Default.
func NewConsumer(cfg Config, log *slog.Logger) *Consumer {
	if log == nil {
		log = slog.Default()
	}
	return &Consumer{
		cfg: cfg.WithDefaults(),
		log: log.With("component", "rabbitmq", "role", roleConsumer),
	}
}

// Connected reports whether every partition is being consumed on a live
// connection. With single active consumer, consuming may mean waiting as
// the standby of another worker.
func (c *Consumer) Connected() bool { return c.connected.Load() }

// Run consumes all partition queues until ctx is cancelled, redialing with
// backoff after any failure and redeclaring the topology. Each partition
// gets its own channel (QoS Prefetch, per channel) and consumer tag
// "<Name>-p<i>-<n>" (n counts connections), and handle(pctx, partition,
// deliveries) runs in its own goroutine. pctx is cancelled when that channel
// or the connection dies or ctx is cancelled. handle must return once
// deliveries is closed; it acks with d.Ack(false) or d.Reject(false).
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

// partitionConsumer is one partition's channel and subscription.
type partitionConsumer struct {
	ch         *amqp.Channel
	tag        string
	ctx        context.Context
	deliveries <-chan amqp.Delivery
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
	exited := make(chan int, c.cfg.Partitions) // never blocks a returning handle
	parts := make([]partitionConsumer, 0, c.cfg.Partitions)
	abandon := func(reason error) error {
		scancel()
		closeConn(conn) // closes every deliveries channel
		handles.Wait()
		return reason
	}
	for i := range c.cfg.Partitions {
		pc, err := c.consume(sctx, conn, i, n)
		if err != nil {
			return false, abandon(err)
		}
		parts = append(parts, pc)
		handles.Add(1)
		go func() {
			defer handles.Done()
			defer func() { exited <- i }()
			handle(pc.ctx, i, pc.deliveries)
		}()
	}

	if n > 1 {
		reconnectsTotal[roleConsumer].Inc()
	}
	connected := connectedGauge[roleConsumer]
	c.connected.Store(true)
	connected.Inc()
	defer func() {
		c.connected.Store(false)
		connected.Dec()
	}()
	c.log.Info("rabbitmq consumer: consuming", "url", redactURL(c.cfg.URL),
		"partitions", c.cfg.Partitions, "prefetch", c.cfg.Prefetch, "connection", n, "took", time.Since(start))

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
			// The broker cancelled the consumer (queue deleted) or the
			// channel closed: start over on a fresh connection.
			return true, abandon(fmt.Errorf("partition %d stopped consuming", i))
		case b, ok := <-blocks:
			if !ok {
				blocks = nil // closed with the connection; connClosed says why
				continue
			}
			c.log.Warn("rabbitmq consumer: connection blocked by the broker", "active", b.Active, "reason", b.Reason)
		}
	}
}

// consume opens partition i's channel and subscribes with tag
// "<Name>-p<i>-<n>".
func (c *Consumer) consume(sctx context.Context, conn *amqp.Connection, i, n int) (partitionConsumer, error) {
	queue := PartitionQueue(i)
	ch, err := conn.Channel()
	if err != nil {
		return partitionConsumer{}, fmt.Errorf("open channel for %q: %w", queue, err)
	}
	// Per channel (global=false): quorum queues refuse global QoS.
	if err := ch.Qos(c.cfg.Prefetch, 0, false); err != nil {
		return partitionConsumer{}, fmt.Errorf("set prefetch %d on %q: %w", c.cfg.Prefetch, queue, err)
	}
	closes := ch.NotifyClose(make(chan *amqp.Error, 1))
	tag := fmt.Sprintf("%s-p%d-%d", c.cfg.Name, i, n)
	deliveries, err := ch.Consume(queue, tag,
		false, // autoAck: the handler acks after its work is committed
		false, // exclusive: single active consumer keeps standbys instead
		false, // noLocal: not supported by RabbitMQ
		false, // noWait
		nil)
	if err != nil {
		return partitionConsumer{}, fmt.Errorf("consume %q as %q: %w", queue, tag, err)
	}
	pctx, pcancel := context.WithCancel(sctx)
	go func() {
		defer pcancel()
		select {
		case <-closes: // an error or the close itself: the channel is gone
		case <-pctx.Done():
		}
	}()
	return partitionConsumer{ch: ch, tag: tag, ctx: pctx, deliveries: deliveries}, nil
}

// stop is the orderly shutdown: cancel every subscription so each deliveries
// channel closes after what the broker already sent, let every handle finish
// its work and return, then close the channels (the broker requeues what is
// unacked) and the connection.
func (c *Consumer) stop(conn *amqp.Connection, parts []partitionConsumer, handles *sync.WaitGroup) {
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

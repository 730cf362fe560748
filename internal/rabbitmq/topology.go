package rabbitmq

import (
	"context"
	"fmt"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/docket/docket/internal/docket"
)

// Names of the broker objects. Tests isolate by vhost, so the names are fixed.
const (
	// RequestsExchange is the direct exchange the API publishes to; the
	// routing key is docket.RoutingKey(partition).
	RequestsExchange = "docket.requests"
	// DeadLetterExchange receives what a partition queue dead-letters (a
	// message over the delivery limit); it fans out to DeadLetterQueue.
	DeadLetterExchange = "docket.requests.dead"
	// DeadLetterQueue keeps dead-lettered requests for inspection.
	DeadLetterQueue = "docket.requests.dead"
)

// PartitionQueue is the name of partition i's queue.
func PartitionQueue(i int) string { return RequestsExchange + "." + docket.RoutingKey(i) }

// partitionQueueArgs are the arguments every partition queue is declared
// with. The broker compares them on every redeclaration, so the API and the
// workers must build them identically (same types too).
func partitionQueueArgs(deliveryLimit int) amqp.Table {
	return amqp.Table{
		// One Raft log per partition: replicated, and the only queue type
		// with a delivery limit.
		amqp.QueueTypeArg: amqp.QueueTypeQuorum,
		// One consumer at a time reads a partition, in order; another
		// worker's consumer waits and takes over when it goes away.
		amqp.SingleActiveConsumerArg: true,
		// Without a limit a quorum queue requeues a rejected message at the
		// back forever; with it a poison message ends up dead-lettered.
		"x-delivery-limit":       int64(deliveryLimit),
		"x-dead-letter-exchange": DeadLetterExchange,
	}
}

// DeclareTopology declares the requests exchange, the partition queues and
// their bindings, and the dead-letter exchange and queue. It is idempotent:
// the API and the worker call it on every (re)connect. It fails when a queue
// exists with other arguments (say another delivery limit); the broker then
// closes ch.
func DeclareTopology(ch *amqp.Channel, partitions, deliveryLimit int) error {
	const (
		durable    = true
		autoDelete = false
		internal   = false
		exclusive  = false
		noWait     = false
	)
	if err := ch.ExchangeDeclare(DeadLetterExchange, amqp.ExchangeFanout, durable, autoDelete, internal, noWait, nil); err != nil {
		return fmt.Errorf("declare exchange %q: %w", DeadLetterExchange, err)
	}
	deadArgs := amqp.Table{amqp.QueueTypeArg: amqp.QueueTypeQuorum}
	if _, err := ch.QueueDeclare(DeadLetterQueue, durable, autoDelete, exclusive, noWait, deadArgs); err != nil {
		return fmt.Errorf("declare queue %q: %w", DeadLetterQueue, err)
	}
	if err := ch.QueueBind(DeadLetterQueue, "", DeadLetterExchange, noWait, nil); err != nil {
		return fmt.Errorf("bind queue %q to %q: %w", DeadLetterQueue, DeadLetterExchange, err)
	}
	if err := ch.ExchangeDeclare(RequestsExchange, amqp.ExchangeDirect, durable, autoDelete, internal, noWait, nil); err != nil {
		return fmt.Errorf("declare exchange %q: %w", RequestsExchange, err)
	}
	args := partitionQueueArgs(deliveryLimit)
	for i := range partitions {
		name := PartitionQueue(i)
		if _, err := ch.QueueDeclare(name, durable, autoDelete, exclusive, noWait, args); err != nil {
			return fmt.Errorf("declare queue %q: %w", name, err)
		}
		if err := ch.QueueBind(name, docket.RoutingKey(i), RequestsExchange, noWait, nil); err != nil {
			return fmt.Errorf("bind queue %q to %q with key %q: %w", name, RequestsExchange, docket.RoutingKey(i), err)
		}
	}
	return nil
}

// Depths returns the number of ready messages in each partition queue (not
// counting delivered, unacknowledged ones), read with passive declares on a
// short-lived connection. A missing queue is an error.
func Depths(ctx context.Context, url string, partitions int) ([]int, error) {
	cfg := Config{URL: url, Partitions: partitions}.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	conn, err := dial(ctx, cfg, "depths")
	if err != nil {
		return nil, err
	}
	// Closing the connection unblocks a declare that waits on a dead broker.
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	defer conn.Close()

	ch, err := conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("open channel: %w", err)
	}
	depths := make([]int, partitions)
	for i := range partitions {
		const durable, autoDelete, exclusive, noWait = true, false, false, false
		q, err := ch.QueueDeclarePassive(PartitionQueue(i), durable, autoDelete, exclusive, noWait, nil)
		if err != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			return nil, fmt.Errorf("inspect queue %q: %w", PartitionQueue(i), err)
		}
		depths[i] = q.Messages
	}
	return depths, nil
}

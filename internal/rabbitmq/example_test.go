package rabbitmq_test

import (
	"context"
	"errors"
	"log/slog"
	"os/signal"
	"syscall"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/docket/docket/internal/docket"
	"github.com/docket/docket/internal/rabbitmq"
)

// The API publishes each accepted request to its user's partition and
// leaves the row for the sweeper when the outcome is not a confirm.
func ExamplePublisher() {
	cfg := rabbitmq.Config{Name: "docket-service"}.WithDefaults()
	if err := cfg.Validate(); err != nil {
		panic(err) // main: print it and exit non-zero
	}
	p := rabbitmq.NewPublisher(cfg, slog.Default()) // connects in the background
	defer p.Close()

	var m docket.Message // from the committed row
	err := p.Publish(context.Background(), docket.RoutingKey(docket.Partition(m.UserID, cfg.Partitions)), m.Encode())
	switch {
	case err == nil: // stored by the broker
	case errors.Is(err, rabbitmq.ErrNotConnected): // broker down or blocked: the sweeper republishes
	default: // nack, return, closed channel or timeout: outcome unknown, the sweeper republishes
	}
}

// The worker consumes every partition until a signal, then stops in order:
// the handlers finish what they hold and ack before Run returns.
func ExampleConsumer() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	c := rabbitmq.NewConsumer(rabbitmq.Config{Name: "docket-worker"}, slog.Default())
	err := c.Run(ctx, func(ctx context.Context, partition int, deliveries <-chan amqp.Delivery) {
		for d := range deliveries {
			m, err := docket.DecodeMessage(d.Body)
			if err != nil {
				_ = d.Reject(false) // dead-lettered
				continue
			}
			_ = m // process in the user's lane, commit, then:
			_ = d.Ack(false)
		}
	})
	if err != nil {
		panic(err) // invalid configuration
	}
}

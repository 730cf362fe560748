package rabbitmq

import (
	"flag"
)

// RegisterFlags defines the broker flags both binaries share on fs, filling
// c. Each flag is also read from the environment variable of its name
// (RABBITMQ_URL for rabbitmq-url) by the binaries' flag parsing.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.URL, "rabbitmq-url", defaultURL, "RabbitMQ URL")
	fs.IntVar(&c.Partitions, "partitions", defaultPartitions, "partition queues; the service and every worker must use the same number")
	fs.IntVar(&c.DeliveryLimit, "delivery-limit", defaultDeliveryLimit, "deliveries of one message before it is dead-lettered (queue argument)")
}

// RegisterPublisherFlags defines the publisher's flags on fs.
func (c *Config) RegisterPublisherFlags(fs *flag.FlagSet) {
	fs.IntVar(&c.PublishChannels, "publish-channels", defaultPublishChannels, "confirm-mode channels in the publisher pool")
	fs.IntVar(&c.ConfirmWindow, "confirm-window", defaultConfirmWindow, "unconfirmed publishes per channel")
	fs.DurationVar(&c.PublishTimeout, "publish-timeout", defaultPublishTimeout, "longest wait for a publisher confirm before answering 202 anyway")
}

// RegisterConsumerFlags defines the consumer's flags on fs.
func (c *Config) RegisterConsumerFlags(fs *flag.FlagSet) {
	fs.IntVar(&c.Prefetch, "prefetch", defaultPrefetch, "unacked deliveries per partition consumer")
	fs.DurationVar(&c.RebalanceInterval, "rebalance-interval", DefaultRebalanceInterval,
		"how often a worker checks the partitions it is active on and releases those beyond its fair share to waiting workers (0: off)")
	fs.StringVar(&c.ManagementURL, "rabbitmq-management-url", "",
		"RabbitMQ management API for rebalancing (default: RABBITMQ_URL's host, user and password on port 15672)")
}

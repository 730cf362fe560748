// Package rabbitmq carries docket's requests through RabbitMQ: the topology
// (a direct exchange, one quorum queue per partition with single active
// consumer and a delivery limit, a dead-letter exchange and queue), a
// Publisher that the API uses to publish with confirms, and a Consumer that
// the worker uses to read every partition.
//
// Both sides own their connections and redial by themselves with backoff,
// redeclaring the topology on every connect (DeclareTopology is idempotent),
// rather than using amqp091-go's opt-in Config.Recovery: an explicit loop
// makes the states (connected, blocked, gone) visible to Ready, Connected
// and the metrics, and the tests kill connections to prove it.
//
// The Publisher keeps one publishing connection with a fixed pool of
// confirm-mode channels. A caller takes a channel only for the basic.publish
// and waits for its confirm after giving the channel back, so hundreds of
// confirms are in flight per channel (bounded by Config.ConfirmWindow).
// Messages are mandatory and carry a unique MessageId, by which a
// basic.return is matched to its publish. While disconnected or blocked,
// Publish fails at once with ErrNotConnected: the API keeps the row for the
// sweeper instead of making the client wait.
//
// The Consumer keeps one consuming connection with a channel per partition
// and calls a handler per partition with its deliveries; the handler acks.
// Ordered shutdown: cancel the consumers, let the handlers finish, close.
// Every worker subscribes to every partition and single active consumer
// lets one of them read each; so that they share the partitions rather than
// the first worker reading them all, each Consumer reads the management
// API's consumer listing every RebalanceInterval and releases the
// partitions beyond its fair share to the waiting workers (rebalance.go):
// the handler finishes what it runs, the channel closes, and the partition
// is subscribed again at the back of the waiting list.
package rabbitmq

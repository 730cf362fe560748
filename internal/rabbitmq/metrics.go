package rabbitmq

import (
	"github.com/VictoriaMetrics/metrics"
)

// Publish outcomes, the values of docket_amqp_publishes_total's label.
const (
	outcomeAck          = "ack"
	outcomeNack         = "nack"
	outcomeReturned     = "returned"
	outcomeClosed       = "closed"
	outcomeTimeout      = "timeout"
	outcomeNotConnected = "not_connected"
)

// publishBuckets are the `le` bounds of docket_amqp_publish_seconds: 0.5ms
// to 5s, roughly ×2 apart (a confirm takes a few ms on a healthy broker).
var publishBuckets = []float64{
	0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5,
}

// The metrics are process-wide and created with GetOrCreate*, so several
// publishers or consumers (tests) add up instead of colliding. The gauges
// count, so with one publisher and one consumer per process they read 0 or 1.
var (
	publishSeconds = metrics.GetOrCreatePrometheusHistogramExt(
		`docket_amqp_publish_seconds`, publishBuckets)
	confirmsInFlight = metrics.GetOrCreateGauge(`docket_amqp_confirms_in_flight`, nil)
	blockedGauge     = metrics.GetOrCreateGauge(`docket_amqp_blocked`, nil)
)

// publishesTotal holds docket_amqp_publishes_total per outcome, looked up
// once: Publish is the hot path.
var publishesTotal = func() map[string]*metrics.Counter {
	m := make(map[string]*metrics.Counter)
	for _, o := range []string{outcomeAck, outcomeNack, outcomeReturned, outcomeClosed, outcomeTimeout, outcomeNotConnected} {
		m[o] = metrics.GetOrCreateCounter(`docket_amqp_publishes_total{outcome="` + o + `"}`)
	}
	return m
}()

// Per role ("publisher", "consumer"), created up front so that they read 0
// rather than being absent until the first reconnect.
var (
	reconnectsTotal = map[string]*metrics.Counter{
		rolePublisher: metrics.GetOrCreateCounter(`docket_amqp_reconnects_total{role="publisher"}`),
		roleConsumer:  metrics.GetOrCreateCounter(`docket_amqp_reconnects_total{role="consumer"}`),
	}
	connectedGauge = map[string]*metrics.Gauge{
		rolePublisher: metrics.GetOrCreateGauge(`docket_amqp_connected{role="publisher"}`, nil),
		roleConsumer:  metrics.GetOrCreateGauge(`docket_amqp_connected{role="consumer"}`, nil),
	}
)

package main

import "github.com/VictoriaMetrics/metrics"

var (
	intakeBuckets       = []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5}
	intakeAccepted      = metrics.NewCounter(`docket_intake_accepted_total`)
	intakeReplayed      = metrics.NewCounter(`docket_intake_replayed_total`)
	intakeUnpublished   = metrics.NewCounter(`docket_intake_unpublished_total`)
	sweepRepublished    = metrics.NewCounter(`docket_sweeper_republished_total`)
	intakeAcceptSeconds = metrics.NewPrometheusHistogramExt(`docket_intake_db_seconds`, intakeBuckets)

	// docket_build_info says which build runs; the overview lists it.
	_ = metrics.NewGauge(`docket_build_info{version="`+version+`"}`, func() float64 { return 1 })
)

// intakeRejected counts requests refused at intake, by reason (an error
// code, or "backlog").
func intakeRejected(reason string) *metrics.Counter {
	return metrics.GetOrCreateCounter(`docket_intake_rejected_total{reason="` + reason + `"}`)
}

// registerMetrics exports the app's gauges. A process runs one app; in
// tests the first app's gauges stay. The capacities beside the gauges of
// internal/auth and internal/rabbitmq let a board show use as a share.
func registerMetrics(a *app) {
	metrics.GetOrCreateGauge(`docket_backlog`, func() float64 { return float64(a.backlog.Load()) })
	metrics.GetOrCreateGauge(`docket_backlog_limit`, func() float64 { return float64(a.cfg.BacklogLimit) })
	metrics.GetOrCreateGauge(`docket_bcrypt_workers`, func() float64 { return float64(a.cfg.Hasher.WithDefaults().Workers) })
	metrics.GetOrCreateGauge(`docket_amqp_confirm_capacity`, func() float64 {
		r := a.cfg.RabbitMQ.WithDefaults()
		return float64(r.PublishChannels * r.ConfirmWindow)
	})
}

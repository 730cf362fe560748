package main

import (
	"github.com/VictoriaMetrics/metrics"

	"github.com/docket/docket/internal/docket"
)

var (
	secondsBuckets = []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5, 10, 20, 60}

	fifoViolations     = metrics.NewCounter(`docket_fifo_violations_total`)
	gapFills           = metrics.NewCounter(`docket_gap_fills_total`)
	duplicates         = metrics.NewCounter(`docket_duplicates_total`)
	retries            = metrics.NewCounter(`docket_retries_total`)
	unknownMessages    = metrics.NewCounter(`docket_unknown_messages_total`)
	spilledDeliveries  = metrics.NewCounter(`docket_spilled_deliveries_total`)
	acksSent           = metrics.NewCounter(`docket_acks_sent_total`)
	endToEndSeconds    = metrics.NewPrometheusHistogramExt(`docket_end_to_end_seconds`, secondsBuckets)
	lanesActive        = metrics.NewGauge(`docket_lanes_active`, nil)
	deliveriesInFlight = metrics.NewGauge(`docket_deliveries_in_flight`, nil)

	// docket_build_info says which build runs; the overview lists it.
	_ = metrics.NewGauge(`docket_build_info{version="`+version+`"}`, func() float64 { return 1 })
)

// processed counts finished requests by type and status.
func processed(t docket.Type, s docket.Status) *metrics.Counter {
	return metrics.GetOrCreateCounter(`docket_processed_total{type="` + string(t) + `",status="` + string(s) + `"}`)
}

// processingSeconds times handler runs by type.
func processingSeconds(t docket.Type) *metrics.PrometheusHistogram {
	return metrics.GetOrCreatePrometheusHistogramExt(`docket_processing_seconds{type="`+string(t)+`"}`, secondsBuckets)
}

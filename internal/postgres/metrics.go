package postgres

import (
	"github.com/VictoriaMetrics/metrics"
	"github.com/jackc/pgx/v5/pgxpool"
)

var (
	batchBuckets = []float64{1, 2, 4, 8, 16, 32, 64, 128, 256}
	dbBuckets    = []float64{.0005, .001, .002, .004, .008, .016, .032, .064, .128, .256, .512, 1, 2, 5}

	intakeWait         = metrics.GetOrCreatePrometheusHistogramExt(`docket_db_intake_wait_seconds`, dbBuckets)
	intakeBatchSeconds = metrics.GetOrCreatePrometheusHistogramExt(`docket_db_batch_seconds{statement="accept"}`, dbBuckets)
	claimBatchSeconds  = metrics.GetOrCreatePrometheusHistogramExt(`docket_db_batch_seconds{statement="claim"}`, dbBuckets)
	finishBatchSeconds = metrics.GetOrCreatePrometheusHistogramExt(`docket_db_batch_seconds{statement="finish"}`, dbBuckets)
	intakeBatchSize    = metrics.GetOrCreatePrometheusHistogramExt(`docket_db_batch_size{statement="accept"}`, batchBuckets)
	finishBatchSize    = metrics.GetOrCreatePrometheusHistogramExt(`docket_db_batch_size{statement="finish"}`, batchBuckets)
)

// registerPoolMetrics exports the pool's state. A process has one pool; a
// second registration (tests) keeps the first pool's gauges.
func registerPoolMetrics(pool *pgxpool.Pool) {
	gauge := func(name string, f func(*pgxpool.Stat) float64) {
		metrics.GetOrCreateGauge(name, func() float64 { return f(pool.Stat()) })
	}
	gauge(`docket_db_pool_conns{state="acquired"}`, func(s *pgxpool.Stat) float64 { return float64(s.AcquiredConns()) })
	gauge(`docket_db_pool_conns{state="idle"}`, func(s *pgxpool.Stat) float64 { return float64(s.IdleConns()) })
	gauge(`docket_db_pool_max_conns`, func(s *pgxpool.Stat) float64 { return float64(s.MaxConns()) })
	gauge(`docket_db_pool_acquire_total`, func(s *pgxpool.Stat) float64 { return float64(s.AcquireCount()) })
	gauge(`docket_db_pool_empty_acquire_total`, func(s *pgxpool.Stat) float64 { return float64(s.EmptyAcquireCount()) })
	gauge(`docket_db_pool_acquire_wait_seconds_total`, func(s *pgxpool.Stat) float64 { return s.AcquireDuration().Seconds() })
}

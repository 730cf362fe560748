package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/peterbourgon/ff/v3"

	"github.com/docket/docket/internal/postgres"
	"github.com/docket/docket/internal/rabbitmq"
)

// config is the worker's configuration.
type config struct {
	MetricsAddr     string
	MaxRetries      int
	LaneDepth       int
	RetryBackoff    time.Duration
	RetryBackoffMax time.Duration
	ShutdownTimeout time.Duration
	LogLevel        slog.Level
	PprofAddr       string

	Postgres postgres.Config
	RabbitMQ rabbitmq.Config
}

// parseConfig reads flags; each can also be set by the environment variable
// of the same name in upper case with underscores.
func parseConfig(args []string) (config, error) {
	var (
		c     config
		level string
	)
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.StringVar(&c.MetricsAddr, "worker-metrics-addr", ":9101", "address of the worker's /metrics, /healthz and /readyz")
	fs.IntVar(&c.LaneDepth, "lane-depth", 8, "deliveries a user's lane holds; later ones are acked and read from the database in turn (0: no limit)")
	fs.IntVar(&c.MaxRetries, "max-retries", 3, "retries of a failing request (in its lane) before it ends failed")
	fs.DurationVar(&c.RetryBackoff, "retry-backoff", 50*time.Millisecond, "wait before the first retry; doubles each retry")
	fs.DurationVar(&c.RetryBackoffMax, "retry-backoff-max", 2*time.Second, "longest wait between retries")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 15*time.Second, "on SIGTERM, how long running requests may take before they are handed back")
	fs.StringVar(&level, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.PprofAddr, "pprof-addr", "", "address of a separate pprof listener (off when empty; keep it on localhost)")

	c.Postgres.RegisterFlags(fs)
	c.RabbitMQ.RegisterFlags(fs)
	c.RabbitMQ.RegisterConsumerFlags(fs)

	if err := ff.Parse(fs, args, ff.WithEnvVars()); err != nil {
		return config{}, err
	}
	if err := c.LogLevel.UnmarshalText([]byte(level)); err != nil {
		return config{}, fmt.Errorf("LOG_LEVEL=%q: want debug, info, warn or error", level)
	}
	c.RabbitMQ.Name = "docket-worker"
	c.RabbitMQ = c.RabbitMQ.WithDefaults()
	c.Postgres = c.Postgres.WithDefaults()
	return c, c.validate()
}

func (c config) validate() error {
	switch {
	case c.LaneDepth < 0:
		return fmt.Errorf("LANE_DEPTH=%d: must be 0 (no limit) or more", c.LaneDepth)
	case c.MaxRetries < 0 || c.MaxRetries > 100:
		return fmt.Errorf("MAX_RETRIES=%d: must be from 0 to 100", c.MaxRetries)
	case c.RetryBackoff <= 0 || c.RetryBackoffMax < c.RetryBackoff || c.RetryBackoffMax > time.Hour:
		return fmt.Errorf("RETRY_BACKOFF=%s, RETRY_BACKOFF_MAX=%s: must be positive, the max at least the first and at most 1h", c.RetryBackoff, c.RetryBackoffMax)
	case c.ShutdownTimeout <= 0:
		return errors.New("SHUTDOWN_TIMEOUT must be positive")
	}
	if err := c.Postgres.Validate(); err != nil {
		return err
	}
	return c.RabbitMQ.Validate()
}

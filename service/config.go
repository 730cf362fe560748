package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/peterbourgon/ff/v3"

	"github.com/docket/docket/internal/auth"
	"github.com/docket/docket/internal/postgres"
	"github.com/docket/docket/internal/rabbitmq"
)

// config is the service's configuration: each part belongs to the package
// it configures; the rest is the HTTP front's own.
type config struct {
	ListenAddr      string
	MaxBodyBytes    int
	BacklogLimit    int
	UserRateLimit   float64
	BacklogInterval time.Duration
	SweepInterval   time.Duration
	SweepAfter      time.Duration
	ShutdownTimeout time.Duration
	ReadTimeout     time.Duration
	WriteTimeout    time.Duration
	IdleTimeout     time.Duration
	LogLevel        slog.Level
	PprofAddr       string

	Postgres postgres.Config
	RabbitMQ rabbitmq.Config
	Hasher   auth.HasherConfig
	Tokens   auth.TokenConfig
}

// parseConfig reads flags, each of which can also be set by the environment
// variable of the same name in upper case with underscores (listen-addr and
// LISTEN_ADDR). A flag wins over the environment.
func parseConfig(args []string) (config, error) {
	var (
		c      config
		secret string
		level  string
	)
	fs := flag.NewFlagSet("service", flag.ContinueOnError)
	fs.StringVar(&c.ListenAddr, "listen-addr", ":3001", "address of the HTTP API")
	fs.IntVar(&c.MaxBodyBytes, "max-body-bytes", 64<<10, "largest request body; larger gets 413")
	fs.IntVar(&c.BacklogLimit, "backlog-limit", 100_000, "accepted but unfinished requests beyond which POST /requests answers 429")
	fs.Float64Var(&c.UserRateLimit, "user-rate-limit", 1000, "requests per second one user may send to POST /requests, in bursts of up to twice that; beyond it 429 (0: no limit)")
	fs.DurationVar(&c.BacklogInterval, "backlog-interval", 500*time.Millisecond, "how often the backlog is counted in the database")
	fs.DurationVar(&c.SweepInterval, "sweep-interval", time.Second, "how often the sweeper looks for requests to publish again")
	fs.DurationVar(&c.SweepAfter, "sweep-after", 5*time.Second, "a user's newest request still unfinished after this long, with no progress, is published again")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 15*time.Second, "longest graceful shutdown on SIGTERM")
	fs.DurationVar(&c.ReadTimeout, "read-timeout", 10*time.Second, "longest time to read a request (slow clients are cut off)")
	fs.DurationVar(&c.WriteTimeout, "write-timeout", 10*time.Second, "longest time to write a response")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", 60*time.Second, "how long an idle keep-alive connection stays open")
	fs.StringVar(&level, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.PprofAddr, "pprof-addr", "", "address of a separate pprof listener (off when empty; keep it on localhost)")

	c.Postgres.RegisterFlags(fs)
	c.RabbitMQ.RegisterFlags(fs)
	c.RabbitMQ.RegisterPublisherFlags(fs)

	fs.StringVar(&secret, "jwt-secret-key", "", "HS256 key for access tokens, at least 32 bytes (required)")
	fs.StringVar(&c.Tokens.Issuer, "jwt-issuer", "docket", "iss claim written and required")
	fs.DurationVar(&c.Tokens.TTL, "token-ttl", time.Hour, "access token lifetime")
	fs.DurationVar(&c.Tokens.Leeway, "token-leeway", 30*time.Second, "allowed clock skew on token times")
	fs.IntVar(&c.Hasher.Cost, "bcrypt-cost", 10, "bcrypt cost of new password hashes")
	fs.IntVar(&c.Hasher.Workers, "bcrypt-workers", 0, "concurrent bcrypt operations (0: one per core)")
	fs.IntVar(&c.Hasher.Queue, "bcrypt-queue", -1, "callers that may wait for a bcrypt slot (-1: 4 per worker)")
	fs.DurationVar(&c.Hasher.Wait, "bcrypt-wait", time.Second, "longest wait for a bcrypt slot before 503 overloaded")

	if err := ff.Parse(fs, args, ff.WithEnvVars()); err != nil {
		return config{}, err
	}
	c.Tokens.Secret = []byte(secret)
	if err := c.LogLevel.UnmarshalText([]byte(level)); err != nil {
		return config{}, fmt.Errorf("LOG_LEVEL=%q: want debug, info, warn or error", level)
	}
	c.RabbitMQ.Name = "docket-service"
	c.RabbitMQ = c.RabbitMQ.WithDefaults()
	c.Postgres = c.Postgres.WithDefaults()
	return c, c.validate()
}

func (c config) validate() error {
	switch {
	case c.MaxBodyBytes < 1024:
		return fmt.Errorf("MAX_BODY_BYTES=%d: must be at least 1024", c.MaxBodyBytes)
	case c.BacklogLimit < 1:
		return fmt.Errorf("BACKLOG_LIMIT=%d: must be positive", c.BacklogLimit)
	case !(c.UserRateLimit >= 0) || math.IsInf(c.UserRateLimit, 0): // !(>=) catches NaN
		return fmt.Errorf("USER_RATE_LIMIT=%v: want requests per second, 0 or more (0: no limit)", c.UserRateLimit)
	case c.BacklogInterval <= 0 || c.SweepInterval <= 0 || c.SweepAfter <= 0:
		return errors.New("BACKLOG_INTERVAL, SWEEP_INTERVAL and SWEEP_AFTER must be positive")
	case c.ShutdownTimeout <= 0 || c.ReadTimeout <= 0 || c.WriteTimeout <= 0 || c.IdleTimeout <= 0:
		return errors.New("SHUTDOWN_TIMEOUT, READ_TIMEOUT, WRITE_TIMEOUT and IDLE_TIMEOUT must be positive")
	}
	// Neither package's error quotes a URL's password (pgx masks it;
	// rabbitmq does not quote the URL).
	if err := c.Postgres.Validate(); err != nil {
		return err
	}
	if err := c.RabbitMQ.Validate(); err != nil {
		return err
	}
	if err := c.Tokens.WithDefaults().Validate(); err != nil {
		return err
	}
	return c.Hasher.WithDefaults().Validate()
}

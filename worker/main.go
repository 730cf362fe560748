// Command worker consumes docket's partition queues and processes each
// user's requests strictly in order, many users at once, writing results to
// PostgreSQL. See the README for configuration.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	cfg, err := parseConfig(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(2)
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, log); err != nil {
		log.Error("worker stopped", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config, log *slog.Logger) error {
	ln, err := net.Listen("tcp", cfg.MetricsAddr)
	if err != nil {
		return fmt.Errorf("listen on WORKER_METRICS_ADDR %s: %w", cfg.MetricsAddr, err)
	}
	w, err := newWorker(ctx, cfg, log, 30*time.Second)
	if err != nil {
		ln.Close()
		return err
	}
	if cfg.PprofAddr != "" {
		servePprof(cfg.PprofAddr, log)
	}
	log.Info("docket worker running", "metrics_addr", ln.Addr().String(), "partitions", cfg.RabbitMQ.Partitions,
		"prefetch", cfg.RabbitMQ.Prefetch, "rebalance_interval", cfg.RabbitMQ.RebalanceInterval, "version", version)
	return w.run(ctx, ln)
}

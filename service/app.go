package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/valyala/fasthttp"

	"github.com/docket/docket/internal/auth"
	"github.com/docket/docket/internal/postgres"
	"github.com/docket/docket/internal/rabbitmq"
)

// app is the running service: HTTP front, database, publisher, sweeper.
// A test starts one on a :0 listener with newApp and serve.
type app struct {
	cfg       config
	log       *slog.Logger
	ctx       context.Context // lives until close; bounds background work
	cancel    context.CancelFunc
	db        *postgres.DB
	intake    *postgres.Intake
	publisher *rabbitmq.Publisher
	hasher    *auth.Hasher
	tokens    *auth.Tokens
	server    *fasthttp.Server
	backlog   backlog
	users     *userLimiter // nil: no per-user limit
	bg        sync.WaitGroup
	pprof     *http.Server
}

// newApp connects to the database (waiting for it up to dbWait), migrates
// it, and starts the publisher, which connects in the background: the
// service takes requests while the broker is down.
func newApp(ctx context.Context, cfg config, log *slog.Logger, dbWait time.Duration) (*app, error) {
	tokens, err := auth.NewTokens(cfg.Tokens)
	if err != nil {
		return nil, err
	}
	hasher, err := auth.NewHasher(cfg.Hasher)
	if err != nil {
		return nil, err
	}
	db, err := postgres.Open(ctx, cfg.Postgres, dbWait, log)
	if err != nil {
		return nil, err
	}
	a := &app{cfg: cfg, log: log, db: db, tokens: tokens, hasher: hasher, users: newUserLimiter(cfg.UserRateLimit)}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	a.publisher = rabbitmq.NewPublisher(cfg.RabbitMQ, log)
	a.intake = postgres.NewIntake(db, a.publishAccepted)
	a.server = &fasthttp.Server{
		Handler:               a.routes(),
		ErrorHandler:          a.serverError,
		Name:                  "docket",
		NoDefaultServerHeader: true,
		NoDefaultDate:         false,
		MaxRequestBodySize:    cfg.MaxBodyBytes,
		ReadTimeout:           cfg.ReadTimeout,
		WriteTimeout:          cfg.WriteTimeout,
		IdleTimeout:           cfg.IdleTimeout,
		ReadBufferSize:        8 << 10,
		CloseOnShutdown:       true,
		Logger:                fasthttpLogger{log},
	}
	a.bg.Go(a.countBacklog)
	a.bg.Go(a.sweep)
	if cfg.PprofAddr != "" {
		a.startPprof()
	}
	registerMetrics(a)
	return a, nil
}

// serve answers HTTP on ln until shutdown.
func (a *app) serve(ln net.Listener) error {
	return a.server.Serve(lingerListener{ln})
}

// shutdown stops taking connections, lets in-flight requests finish (their
// publishes included) within ctx, then stops the background work and closes
// the publisher and the database.
func (a *app) shutdown(ctx context.Context) error {
	err := a.server.ShutdownWithContext(ctx)
	a.cancel()
	a.bg.Wait()
	a.intake.Close()
	err = errors.Join(err, a.publisher.Close())
	if a.pprof != nil {
		err = errors.Join(err, a.pprof.Shutdown(ctx))
	}
	a.db.Close()
	return err
}

// backlog estimates the requests accepted and not yet finished: the last
// count from the database plus the accepts this process made since that
// count began. It errs high only by accepts that commit while a count
// runs, and only until the next count.
type backlog struct {
	last     atomic.Pointer[backlogCount]
	accepted atomic.Int64 // accepts by this process, ever
}

type backlogCount struct {
	counted    int64 // the database's figure
	acceptedAt int64 // accepted's value when that count began
}

func (b *backlog) Load() int64 {
	n := b.accepted.Load()
	if c := b.last.Load(); c != nil {
		n += c.counted - c.acceptedAt
	}
	return n
}

func (b *backlog) Add(n int64) { b.accepted.Add(n) }

// countBacklog keeps the backlog figure that the 429 limit reads, counting
// in the database every BacklogInterval.
func (a *app) countBacklog() {
	t := time.NewTicker(a.cfg.BacklogInterval)
	defer t.Stop()
	for {
		before := a.backlog.accepted.Load()
		if n, err := a.db.Backlog(a.ctx); err == nil {
			a.backlog.last.Store(&backlogCount{counted: n, acceptedAt: before})
		}
		select {
		case <-a.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sweep publishes again, for each user whose newest request has waited
// SweepAfter with no progress, that newest request. That covers a publish
// that failed or went unconfirmed (broker down at accept time) and a lost
// message: the worker fills everything before it from the database. A user
// is republished at most once per SweepAfter.
func (a *app) sweep() {
	t := time.NewTicker(a.cfg.SweepInterval)
	defer t.Stop()
	last := map[uuid.UUID]time.Time{}
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-t.C:
		}
		if !a.publisher.Ready() {
			continue
		}
		stalled, err := a.db.Stalled(a.ctx, a.cfg.SweepAfter, 1000)
		if err != nil {
			a.log.Debug("sweep", "err", err)
			continue
		}
		now := time.Now()
		for u, at := range last {
			if now.Sub(at) > a.cfg.SweepAfter {
				delete(last, u)
			}
		}
		due := stalled[:0]
		for _, m := range stalled {
			if _, recent := last[m.UserID]; recent {
				continue
			}
			last[m.UserID] = now
			due = append(due, m)
		}
		if len(due) > 0 {
			a.publish(a.ctx, due) // one batch, not a confirm wait each
			sweepRepublished.Add(len(due))
		}
		if len(stalled) > 0 {
			a.log.Info("sweeper published stalled requests again", "users", len(stalled))
		}
	}
}

// startPprof serves net/http/pprof on its own listener, never on the API's.
// It leaves out /debug/pprof/cmdline, which would show a -jwt-secret-key
// or -database-url given on the command line.
func (a *app) startPprof() {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	a.pprof = &http.Server{Addr: a.cfg.PprofAddr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := a.pprof.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("pprof listener", "addr", a.cfg.PprofAddr, "err", err)
		}
	}()
}

// run serves until ctx is cancelled, then shuts down gracefully.
func run(ctx context.Context, cfg config, log *slog.Logger) error {
	a, err := newApp(ctx, cfg, log, 30*time.Second)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		a.shutdown(context.Background()) //nolint:errcheck
		return fmt.Errorf("listen on %s: %w", cfg.ListenAddr, err)
	}
	log.Info("docket service listening", "addr", ln.Addr().String(), "partitions", cfg.RabbitMQ.Partitions, "version", version)
	errc := make(chan error, 1)
	go func() { errc <- a.serve(ln) }()
	select {
	case err = <-errc:
	case <-ctx.Done():
		log.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	return errors.Join(err, a.shutdown(sctx))
}

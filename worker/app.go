package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/docket/docket/internal/docket"
	"github.com/docket/docket/internal/postgres"
	"github.com/docket/docket/internal/rabbitmq"
)

// worker consumes the partitions and processes each user's requests in
// order. A test starts one with newWorker and run.
type worker struct {
	cfg      config
	log      *slog.Logger
	db       *postgres.DB
	proc     *postgres.Processing
	consumer *rabbitmq.Consumer
	http     *http.Server

	// work bounds in-flight processing: cancelled ShutdownTimeout after a
	// shutdown begins, so a long request is handed back, not waited on.
	work     context.Context
	stopWork context.CancelFunc
	stopping atomic.Bool
}

func newWorker(ctx context.Context, cfg config, log *slog.Logger, dbWait time.Duration) (*worker, error) {
	db, err := postgres.Open(ctx, cfg.Postgres, dbWait, log)
	if err != nil {
		return nil, err
	}
	w := &worker{cfg: cfg, log: log, db: db}
	w.proc = postgres.NewProcessing(db)
	w.consumer = rabbitmq.NewConsumer(cfg.RabbitMQ, log)
	w.work, w.stopWork = context.WithCancel(context.Background())
	return w, nil
}

// run serves metrics on ln and consumes until ctx is cancelled, then shuts
// down: no new deliveries, in-flight requests get ShutdownTimeout to finish
// (then they are handed back unacked), queued ones are handed back at once.
func (w *worker) run(ctx context.Context, ln net.Listener) error {
	w.http = &http.Server{Handler: w.routes(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := w.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			w.log.Error("metrics listener", "err", err)
		}
	}()
	// The consumer stops only after stopping is set, so that partition
	// handlers can tell a shutdown (finish what runs) from a dead channel
	// (drop it: its ack cannot land).
	consumeCtx, stopConsuming := context.WithCancel(context.Background())
	defer stopConsuming()
	go func() {
		<-ctx.Done()
		w.stopping.Store(true)
		stopConsuming()
		t := time.NewTimer(w.cfg.ShutdownTimeout)
		defer t.Stop()
		select {
		case <-t.C:
			w.log.Warn("shutdown timeout: handing back requests still running")
			w.stopWork()
		case <-w.work.Done():
		}
	}()
	err := w.consumer.Run(consumeCtx, w.handlePartition)
	w.stopWork()
	w.proc.Close()
	hctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err = errors.Join(err, w.http.Shutdown(hctx))
	w.db.Close()
	return err
}

type job struct {
	msg docket.Message
	d   amqp.Delivery
	// early is set on a spilled job, whose delivery was acked when it
	// spilled: its request is read from the database when its turn comes.
	early bool
}

// handlePartition dispatches one partition's deliveries to per-user lanes
// until the deliveries end: the consumer was cancelled (shutdown), the
// partition was released to another worker (rebalancing), or its channel
// died. At a shutdown or a release the requests running finish and are
// acked while the channel stays open; queued ones are handed back unacked.
// On a dead channel in-flight work stops at once, since its ack can no
// longer land and the broker redelivers it elsewhere.
func (w *worker) handlePartition(pctx context.Context, partition int, deliveries <-chan amqp.Delivery) {
	jctx, cancel := context.WithCancel(w.work)
	defer cancel()
	var ch amqp.Acknowledger // the deliveries' channel, known from the first
	go func() {
		<-pctx.Done()
		if !w.stopping.Load() {
			cancel()
		}
	}()
	// Deliveries are settled through the acker, which acks runs of
	// finished ones with one multiple ack.
	acks := newAcker(func(tag uint64, multiple bool) error {
		if ch == nil {
			return nil
		}
		return ch.Ack(tag, multiple)
	})
	l := newLanes(func(j job) {
		if !j.early {
			deliveriesInFlight.Dec()
		}
		if w.stopping.Load() {
			return // not started: handed back unacked
		}
		out := w.process(jctx, j.msg)
		if !j.early {
			w.settle(acks, j, out)
		}
	})
	// A busy user's lane holds at most LaneDepth deliveries. Later ones
	// are acked at once and only the newest is kept: when the lane gets to
	// it, the gap fill reads every request before it from the database, in
	// order. So one user's flood cannot fill the partition's prefetch
	// window and hold back the other users behind it. The database row
	// stays the source of truth: if this worker dies first, the service's
	// sweeper publishes the user's newest request again.
	l.spillOver(w.cfg.LaneDepth,
		func(a, b job) bool { return a.msg.Seq > b.msg.Seq },
		func(j job) job { j.early = true; return j })
	for d := range deliveries {
		if ch == nil {
			ch = d.Acknowledger
		}
		m, err := docket.DecodeMessage(d.Body)
		if err != nil {
			unknownMessages.Inc()
			w.log.Error("undecodable message; dead-lettering it", "partition", partition, "err", err)
			_ = d.Reject(false)
			continue
		}
		acks.delivered(d.DeliveryTag)
		deliveriesInFlight.Inc()
		switch l.offer(m.UserID, job{msg: m, d: d}) {
		case offerSpilled:
			deliveriesInFlight.Dec()
			spilledDeliveries.Inc()
			acks.acked(d.DeliveryTag)
		case offerRefused:
			deliveriesInFlight.Dec()
		}
	}
	dropped := l.stop()
	acks.stop()
	deliveriesInFlight.Add(-float64(len(dropped)))
	w.log.Info("partition consumer ended", "partition", partition, "handed_back", len(dropped))
}

// settle acks or rejects a delivery once processing returns; an abandoned
// one stays unacked, and the broker redelivers it when the channel closes.
func (w *worker) settle(acks *acker, j job, out outcome) {
	switch out {
	case ack:
		acks.acked(j.d.DeliveryTag)
	case reject:
		if err := j.d.Reject(false); err != nil {
			w.log.Debug("reject delivery", "request", j.msg.ID, "err", err)
		}
		acks.rejected(j.d.DeliveryTag)
	}
}

func (w *worker) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		metrics.WritePrometheus(rw, true)
	})
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "application/json")
		fmt.Fprint(rw, `{"status":"ok"}`)
	})
	mux.HandleFunc("GET /readyz", func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "application/json")
		if err := w.db.Ping(r.Context()); err != nil || !w.consumer.Connected() {
			rw.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(rw, `{"error":{"code":"unavailable","message":"The database or the broker is not reachable."}}`)
			return
		}
		fmt.Fprint(rw, `{"status":"ready"}`)
	})
	return mux
}

// servePprof serves net/http/pprof on its own listener.
func servePprof(addr string, log *slog.Logger) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.ListenAndServe(); err != nil {
			log.Error("pprof listener", "addr", addr, "err", err)
		}
	}()
}

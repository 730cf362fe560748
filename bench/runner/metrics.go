package runner

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/docket/docket/bench/attack"
	"github.com/docket/docket/bench/verify"
)

// Phases of a run, each a 0/1 gauge docket_bench_phase{phase="..."}.
var phases = []string{"start", "setup", "attack", "drain", "verify", "report", "done"}

// latencyBuckets are the client latency histogram's upper bounds, seconds.
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// benchMetrics is what the bench serves on /metrics during a run, so
// Prometheus can put the attack beside the server's own figures. It keeps
// its own Set: one run's metrics never clash with another's (tests run
// several in one process).
type benchMetrics struct {
	set      *metrics.Set
	phase    map[string]*metrics.Gauge
	latency  *metrics.PrometheusHistogram
	achieved *metrics.Gauge
	verify   map[verify.Kind]*metrics.Gauge
	// codes caches docket_bench_requests_total{code} by status code
	// (0 for no answer): observe runs once per request.
	codes [600]atomic.Pointer[metrics.Counter]

	mu     sync.Mutex
	attack atomic.Pointer[attack.Attack]
	// for the achieved rate: sent count and time at the last sample
	lastSent int64
	lastAt   time.Time
}

func newBenchMetrics() *benchMetrics {
	m := &benchMetrics{
		set:    metrics.NewSet(),
		phase:  map[string]*metrics.Gauge{},
		verify: map[verify.Kind]*metrics.Gauge{},
	}
	for _, p := range phases {
		m.phase[p] = m.set.NewGauge(fmt.Sprintf(`docket_bench_phase{phase=%q}`, p), nil)
	}
	m.set.NewGauge("docket_bench_target_rate", func() float64 {
		if a := m.attack.Load(); a != nil {
			return a.Snapshot().TargetRate
		}
		return 0
	})
	m.set.NewGauge("docket_bench_in_flight", func() float64 {
		if a := m.attack.Load(); a != nil {
			return float64(a.Snapshot().InFlight)
		}
		return 0
	})
	m.achieved = m.set.NewGauge("docket_bench_achieved_rate", nil)
	m.latency = m.set.NewPrometheusHistogramExt("docket_bench_latency_seconds", latencyBuckets)
	for _, k := range verify.Kinds {
		m.verify[k] = m.set.NewGauge(fmt.Sprintf(`docket_bench_verify_violations{kind=%q}`, k), nil)
	}
	m.setPhase("start")
	return m
}

func (m *benchMetrics) setPhase(name string) {
	for p, g := range m.phase {
		if p == name {
			g.Set(1)
		} else {
			g.Set(0)
		}
	}
}

func (m *benchMetrics) observe(r *attack.Record) {
	m.requests(r.Code).Inc()
	m.latency.Update(r.Latency().Seconds())
}

// requests is the counter of answers with the code.
func (m *benchMetrics) requests(code int) *metrics.Counter {
	if code < 0 || code >= len(m.codes) {
		return m.set.GetOrCreateCounter(`docket_bench_requests_total{code="` + strconv.Itoa(code) + `"}`)
	}
	if c := m.codes[code].Load(); c != nil {
		return c
	}
	c := m.set.GetOrCreateCounter(`docket_bench_requests_total{code="` + strconv.Itoa(code) + `"}`)
	m.codes[code].Store(c)
	return c
}

// watch makes a the attack the gauges read; nil between attacks.
func (m *benchMetrics) watch(a *attack.Attack) {
	m.attack.Store(a)
	m.mu.Lock()
	m.lastSent, m.lastAt = 0, time.Now()
	m.mu.Unlock()
	if a == nil {
		m.achieved.Set(0)
	}
}

// sample updates the achieved rate from the sends since the last sample.
func (m *benchMetrics) sample() float64 {
	a := m.attack.Load()
	if a == nil {
		return 0
	}
	sent := a.Snapshot().Sent
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	var rate float64
	if d := now.Sub(m.lastAt).Seconds(); d > 0 {
		rate = float64(sent-m.lastSent) / d
	}
	m.lastSent, m.lastAt = sent, now
	m.achieved.Set(rate)
	return rate
}

func (m *benchMetrics) setVerify(c verify.Counts) {
	for k, g := range m.verify {
		g.Set(float64(c.Of(k)))
	}
}

// serve serves /metrics on addr until ctx ends. It returns the bound
// address (addr may end in :0).
func (m *benchMetrics) serve(ctx context.Context, addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("listen for /metrics on %s (--metrics-addr, empty disables): %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		m.set.WritePrometheus(w)
		metrics.WriteProcessMetrics(w)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = err // the run goes on without /metrics
		}
	}()
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
	}()
	return ln.Addr().String(), nil
}

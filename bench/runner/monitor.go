package runner

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/docket/docket/bench/api"
	"github.com/docket/docket/bench/chaos"
	"github.com/docket/docket/bench/local"
	"github.com/docket/docket/bench/report"
)

// Monitor intervals.
const (
	healthzEvery = 100 * time.Millisecond
	healthzLimit = 2 * time.Second
	backlogEvery = 500 * time.Millisecond
	memoryEvery  = 500 * time.Millisecond
)

// monitor watches the server while the measured attacks and the drain
// run: GET /healthz's latency, the service's docket_backlog and (when the
// bench started them) each process's resident memory. Each runs in its
// own goroutine, so a slow answer of one never delays another.
type monitor struct {
	stop context.CancelFunc
	wg   sync.WaitGroup

	mu            sync.Mutex
	healthz       []time.Duration
	healthzFailed int
	backlog       []chaos.Sample
	procs         map[string]*procMemory
	order         []string
}

type procMemory struct {
	pid               int
	peak, first, last int64
	samples, starts   int
}

func startMonitor(ctx context.Context, client *api.Client, stack *local.Stack) *monitor {
	ctx, cancel := context.WithCancel(ctx)
	m := &monitor{stop: cancel, procs: map[string]*procMemory{}}
	m.every(ctx, healthzEvery, func() {
		code, took := client.Probe(ctx, "/healthz", healthzLimit)
		if ctx.Err() != nil {
			return
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		if code != http.StatusOK {
			m.healthzFailed++
			return
		}
		m.healthz = append(m.healthz, took)
	})
	m.every(ctx, backlogEvery, func() {
		v, err := client.Gauge(ctx, "docket_backlog")
		if err != nil {
			return // the service is down (a fault) or has no such gauge
		}
		m.mu.Lock()
		m.backlog = append(m.backlog, chaos.Sample{At: time.Now(), Value: v})
		m.mu.Unlock()
	})
	if stack != nil {
		m.every(ctx, memoryEvery, func() {
			for _, p := range stack.Processes() {
				mem, err := local.ReadMemory(p.PID)
				if err != nil {
					continue // it just exited
				}
				m.addMemory(p, mem)
			}
		})
	}
	return m
}

func (m *monitor) every(ctx context.Context, d time.Duration, f func()) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			f()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

func (m *monitor) addMemory(p local.Process, mem local.Memory) {
	m.mu.Lock()
	defer m.mu.Unlock()
	pm := m.procs[p.Name]
	if pm == nil {
		pm = &procMemory{first: mem.RSS}
		m.procs[p.Name] = pm
		m.order = append(m.order, p.Name)
	}
	if pm.pid != p.PID {
		pm.pid = p.PID
		pm.starts++
	}
	pm.peak = max(pm.peak, mem.HWM, mem.RSS)
	pm.last = mem.RSS
	pm.samples++
}

// Stop ends the monitoring and waits for its goroutines.
func (m *monitor) Stop() {
	m.stop()
	m.wg.Wait()
}

// backlogSamples returns the backlog samples so far, in time order.
func (m *monitor) backlogSamples() []chaos.Sample {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]chaos.Sample(nil), m.backlog...)
}

// fill puts the monitor's figures into the report.
func (m *monitor) fill(rep *report.Report) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if n := len(m.healthz) + m.healthzFailed; n > 0 {
		rep.Healthz = &report.Healthz{Probes: n, Failed: m.healthzFailed, Latency: report.Latencies(m.healthz)}
	}
	if len(m.backlog) > 0 {
		b := &report.Backlog{Samples: len(m.backlog), Last: m.backlog[len(m.backlog)-1].Value}
		for _, s := range m.backlog {
			b.Peak = max(b.Peak, s.Value)
		}
		rep.Backlog = b
	}
	mib := func(b int64) float64 { return report.Round(float64(b) / (1 << 20)) }
	for _, name := range m.order {
		pm := m.procs[name]
		rep.Processes = append(rep.Processes, report.Process{
			Name: name, PeakRSSMB: mib(pm.peak), FirstRSSMB: mib(pm.first), LastRSSMB: mib(pm.last),
			Samples: pm.samples, Starts: pm.starts,
		})
	}
}

// Package runner runs one bench scenario from start to report: it finds or
// starts the server, sets up the users outside the clock, runs the
// scenario's attacks (a baseline, steps, or one main attack), waits for the
// backlog to drain, verifies what the API lists against the bench's own
// records, and writes the report and raw results to the run's directory.
//
// The phases, in order: start, setup, attack, drain, verify, report, done.
// Each shows a live progress line and a docket_bench_phase gauge.
package runner

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/docket/docket/bench/api"
	"github.com/docket/docket/bench/attack"
	"github.com/docket/docket/bench/chaos"
	"github.com/docket/docket/bench/local"
	"github.com/docket/docket/bench/progress"
	"github.com/docket/docket/bench/report"
	"github.com/docket/docket/bench/scenario"
	"github.com/docket/docket/bench/verify"
)

// DefaultLocalTarget is where local mode looks for (or starts) the API.
const DefaultLocalTarget = "http://127.0.0.1:3001"

// Config is one bench run.
type Config struct {
	// Scenario is the scenario to run.
	Scenario *scenario.Scenario
	// Target is the API's base URL for remote mode; empty for local mode.
	Target string
	// LocalTarget is local mode's API URL (default DefaultLocalTarget).
	LocalTarget string
	// OutDir holds the result directories (default bench/results).
	OutDir string
	// ServiceBin and WorkerBin are what local mode starts (default
	// bin/service and bin/worker).
	ServiceBin, WorkerBin string
	// MetricsAddr is where the bench serves /metrics; empty disables.
	MetricsAddr string
	// ReadyTimeout bounds the wait for GET /readyz = 200 (default 30s).
	ReadyTimeout time.Duration
	// Version is the bench's version, for the report.
	Version string
	// Log receives progress lines and messages (nil: quiet); TTY says
	// whether it is a terminal (lines redrawn in place).
	Log io.Writer
	TTY bool
}

func (c *Config) setDefaults() {
	if c.LocalTarget == "" {
		c.LocalTarget = DefaultLocalTarget
	}
	if c.OutDir == "" {
		c.OutDir = filepath.Join("bench", "results")
	}
	if c.ServiceBin == "" {
		c.ServiceBin = filepath.Join("bin", "service")
	}
	if c.WorkerBin == "" {
		c.WorkerBin = filepath.Join("bin", "worker")
	}
	if c.ReadyTimeout <= 0 {
		c.ReadyTimeout = 30 * time.Second
	}
	if c.Version == "" {
		c.Version = "dev"
	}
}

type run struct {
	cfg     Config
	sc      *scenario.Scenario
	id      string
	dir     string
	client  *api.Client
	metrics *benchMetrics
	tracker *tracker
	users   map[string][]*api.User
	all     []*api.User
	raw     *rawOutput
	// stack is the processes the bench started (nil unless local-started);
	// pgVersion the PostgreSQL cluster a restart-postgres fault restarts.
	stack     *local.Stack
	pgVersion string

	mu    sync.Mutex
	notes []string
}

func (r *run) note(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

func (r *run) logf(format string, args ...any) {
	if r.cfg.Log != nil {
		fmt.Fprintf(r.cfg.Log, format+"\n", args...)
	}
}

func (r *run) progressOut() io.Writer { return r.cfg.Log }

// Run runs the scenario and returns its report, already written to its
// result directory. An error means the run could not be carried out; a
// run that was carried out and missed a threshold returns a report whose
// Pass is false.
func Run(ctx context.Context, cfg Config) (*report.Report, error) {
	cfg.setDefaults()
	sc := cfg.Scenario
	started := time.Now()
	r := &run{cfg: cfg, sc: sc, id: newRunID(), metrics: newBenchMetrics()}
	r.dir = filepath.Join(cfg.OutDir, started.UTC().Format("20060102-150405")+"-"+sc.Name)
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return nil, fmt.Errorf("create result directory: %w", err)
	}
	runCtx, stopServing := context.WithCancel(ctx)
	defer stopServing()
	if cfg.MetricsAddr != "" {
		addr, err := r.metrics.serve(runCtx, cfg.MetricsAddr)
		if err != nil {
			return nil, err
		}
		r.logf("bench: serving /metrics on http://%s/metrics", addr)
	}

	rep := &report.Report{
		Schema: report.Schema,
		Scenario: report.ScenarioInfo{
			Name: sc.Name, File: sc.File, Description: sc.Description, Target: sc.Target,
			Users: sc.TotalUsers(), Groups: groupsLine(sc), Shape: sc.Load.Shape, Load: describeLoad(sc.Load), Mix: describeMix(sc),
		},
		Run: report.RunInfo{ID: r.id, StartedAt: started.UTC(), Dir: r.dir, Version: cfg.Version},
	}
	stack, err := r.connect(ctx, rep)
	if err != nil {
		return nil, err
	}
	if stack != nil {
		defer func() {
			if err := stack.Stop(); err != nil {
				r.logf("bench: stopping local processes: %v", err)
			}
		}()
	}

	if err := r.execute(ctx, rep); err != nil {
		return nil, err
	}

	r.metrics.setPhase("report")
	rep.Run.FinishedAt = time.Now().UTC()
	rep.Notes = append(rep.Notes, r.notes...)
	if err := rep.Write(r.dir); err != nil {
		return rep, err
	}
	if err := r.raw.write(r.dir, sc.Name); err != nil {
		return rep, err
	}
	r.metrics.setPhase("done")
	return rep, nil
}

func newRunID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// connect finds the API (remote, or local and running) or starts it (local).
func (r *run) connect(ctx context.Context, rep *report.Report) (*local.Stack, error) {
	r.metrics.setPhase("start")
	base, mode := r.cfg.Target, "remote"
	if base == "" {
		base, mode = r.cfg.LocalTarget, "local-running"
	}
	u, err := url.Parse(base)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("target %q is not an http(s)://host:port URL", base)
	}
	r.client = api.New(base)
	rep.Run.TargetURL = r.client.Base()
	var stack *local.Stack
	if !r.client.Health(ctx) {
		if mode == "remote" {
			return nil, fmt.Errorf("nothing answers GET %s/healthz: is the stack up (make up)?", r.client.Base())
		}
		mode = "local-started"
		if len(r.sc.Faults) > 0 {
			if r.pgVersion, err = chaos.Preflight(r.sc.Faults, chaos.MachineEnv()); err != nil {
				return nil, fmt.Errorf("%s: %w", r.sc.File, err)
			}
		}
		r.logf("bench: nothing answers at %s; starting %s and %d × %s (logs in %s)", base, r.cfg.ServiceBin, r.sc.Workers, r.cfg.WorkerBin, r.dir)
		stack, err = local.Start(ctx, local.Config{
			ServiceBin: r.cfg.ServiceBin, WorkerBin: r.cfg.WorkerBin, Workers: r.sc.Workers,
			ListenAddr: u.Host, Dir: r.dir, ReadyTimeout: r.cfg.ReadyTimeout,
			ServiceEnv: scenario.Pairs(r.sc.Env.Service), WorkerEnv: scenario.Pairs(r.sc.Env.Worker),
		})
		if err != nil {
			return nil, err
		}
		r.stack = stack
		rep.Run.Workers = r.sc.Workers
	} else if r.sc.NeedsLocal() {
		return nil, fmt.Errorf("%s has faults or env: they need processes the bench starts itself, but %s already answers (%s mode); stop it, or run another scenario", r.sc.File, r.client.Base(), mode)
	} else if r.sc.Workers > 1 {
		r.note("the scenario asks for %d workers, but the server was already running (%s): the bench started none", r.sc.Workers, mode)
	}
	rep.Run.Mode = mode
	if stack == nil {
		if err := r.waitReady(ctx); err != nil {
			return nil, err
		}
	}
	return stack, nil
}

func (r *run) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(r.cfg.ReadyTimeout)
	for !r.client.Ready(ctx) {
		if time.Now().After(deadline) {
			return fmt.Errorf("GET %s/readyz did not answer 200 within %s: the database or the broker is not reachable from the server", r.client.Base(), r.cfg.ReadyTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return nil
}

// execute runs setup, the attacks, the drain and the verifier, and fills rep.
func (r *run) execute(ctx context.Context, rep *report.Report) error {
	sc := r.sc
	requests := sc.Target == scenario.TargetRequests

	r.metrics.setPhase("setup")
	r.users = newUsers(sc, r.id)
	for _, g := range sc.Users {
		r.all = append(r.all, r.users[g.Name]...)
	}
	setupStart := time.Now()
	if err := r.setupUsers(ctx, r.all, sc.SetupConcurrency, requests); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	rep.Run.SetupMS = float64(time.Since(setupStart).Milliseconds())
	r.tracker = newTracker(r.client, r.all)
	r.raw = &rawOutput{}

	if requests {
		refreshCtx, stopRefresh := context.WithCancel(ctx)
		defer stopRefresh()
		go r.refreshTokens(refreshCtx, r.all, 10*time.Minute)
	}

	var baseline []*attack.Record
	if sc.BaselineWithout != "" {
		groups, share := r.attackGroups(sc.BaselineWithout)
		_, recs, err := r.attack(ctx, "baseline", groups, schedule(sc.Load).Scale(share))
		if err != nil {
			return err
		}
		baseline = recs
		if requests {
			if drained, _, err := r.drain(ctx, "baseline", sc.DrainTimeout); err != nil {
				return err
			} else if !drained {
				r.note("the baseline's backlog did not drain within %s before the main attack", sc.DrainTimeout)
			}
		}
	}

	// The monitor watches the measured attacks and their drain (not the
	// baseline: /healthz under the flood is the figure).
	mon := startMonitor(ctx, r.client, r.stack)
	defer mon.Stop()

	var measured []*attack.Record
	var faults []chaos.Record
	if sc.Load.Shape == scenario.ShapeSteps {
		recs, err := r.steps(ctx, rep)
		if err != nil {
			return err
		}
		measured = recs
	} else {
		groups, _ := r.attackGroups("")
		var faultsDone func() []chaos.Record
		if len(sc.Faults) > 0 {
			faultsDone = r.startFaults(ctx)
		}
		st, recs, err := r.attack(ctx, "main", groups, schedule(sc.Load))
		if faultsDone != nil {
			faults = faultsDone()
		}
		if err != nil {
			return err
		}
		rep.Attacks = append(rep.Attacks, st)
		measured = recs
	}
	rep.Attacker = summarize(rep.Attacks)
	if !rep.Attacker.KeptRate {
		r.note("the attacker fell behind its target rate (%s): read the figures as the load actually sent, not the load asked for", rep.Attacker.LimitedBy)
	}
	rep.HTTP = report.HTTPFigures(r.ofTarget(measured), sc.SuccessCodes)

	var all []*attack.Record
	all = append(all, baseline...)
	all = append(all, measured...)
	r.raw.records = all

	if !requests {
		mon.Stop()
		mon.fill(rep)
	}
	if requests {
		drained, took, err := r.drain(ctx, "final", sc.DrainTimeout)
		if err != nil {
			return err
		}
		mon.Stop()
		mon.fill(rep)
		r.metrics.setPhase("verify")
		listings, err := r.listAll(ctx, r.all)
		if err != nil {
			return fmt.Errorf("verify: %w", err)
		}
		r.raw.listings = listings
		rows := map[string]api.Row{}
		for _, ls := range listings {
			for _, row := range ls {
				rows[row.ID] = row
			}
		}
		if len(faults) > 0 {
			rep.Faults = faultFigures(faults, r.ofTarget(measured), runBacklog(rows, faults[0].Started))
		}
		p := report.ProcessingFigures(measured, rows)
		p.Drained, p.DrainMS = drained, float64(took.Milliseconds())
		rep.Processing = &p
		rep.Verify = verify.Verify(VerifyInput(r.ofTarget(all), listings))
		r.metrics.setVerify(rep.Verify.Counts)
		if len(sc.Users) > 1 {
			rep.Groups = r.groupFigures(measured, baseline, rows)
		}
	} else if len(sc.Users) > 1 {
		rep.Groups = r.groupFigures(measured, baseline, nil)
	}
	report.Check(sc.Thresholds, sc.Load.Shape == scenario.ShapeSteps, rep)
	return nil
}

// attack runs one vegeta attack with a live progress line. Its goroutines
// (vegeta's workers and connections among them) carry the pprof labels
// phase=attack and attack=<label>, so that a CPU profile of the run
// (bench run --cpuprofile) can be narrowed to the attacks.
func (r *run) attack(ctx context.Context, label string, groups []attack.Group, sched attack.Schedule) (st attack.Stats, recs []*attack.Record, err error) {
	pprof.Do(ctx, pprof.Labels("phase", "attack", "attack", label), func(ctx context.Context) {
		st, recs, err = r.attackLabelled(ctx, label, groups, sched)
	})
	return st, recs, err
}

func (r *run) attackLabelled(ctx context.Context, label string, groups []attack.Group, sched attack.Schedule) (attack.Stats, []*attack.Record, error) {
	r.metrics.setPhase("attack")
	a, err := attack.New(attack.Config{
		Base: r.client.Base(), Target: r.sc.Target, Label: label, RunID: r.id,
		Groups: groups, Schedule: sched, MaxInFlight: r.sc.Load.MaxInFlight, Timeout: r.sc.Load.Timeout,
		OnResult: r.raw.add,
		OnRecord: r.metrics.observe,
	})
	if err != nil {
		return attack.Stats{}, nil, err
	}
	r.metrics.watch(a)
	defer r.metrics.watch(nil)
	sampling, stopSampling := context.WithCancel(ctx)
	defer stopSampling()
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-sampling.Done():
				return
			case <-t.C:
				r.metrics.sample()
			}
		}
	}()
	line := progress.Start(r.progressOut(), r.cfg.TTY, 5*time.Second, func() string {
		s := a.Snapshot()
		target, achieved := fmt.Sprintf("target %.0f/s", s.TargetRate), r.metrics.achieved.Get()
		if s.Elapsed >= s.Duration { // over: the means, not the last second
			target = fmt.Sprintf("mean target %.0f/s", sched.MeanRate())
			achieved = float64(s.Sent) / s.Duration.Seconds()
		}
		return fmt.Sprintf("attack %s: %s/%s  %s  sent %d (%.0f/s)  2xx %d  other %d  in flight %d",
			label, min(s.Elapsed, s.Duration).Round(100*time.Millisecond), s.Duration, target, s.Sent, achieved,
			s.Success, s.Answered-s.Success, s.InFlight)
	})
	st, recs, err := a.Run(ctx)
	line.Stop()
	if err != nil {
		return st, recs, err
	}
	r.tracker.add(recs)
	return st, recs, nil
}

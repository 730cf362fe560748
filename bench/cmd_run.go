package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"time"

	"github.com/peterbourgon/ff/v3"

	"github.com/docket/docket/bench/progress"
	"github.com/docket/docket/bench/runner"
	"github.com/docket/docket/bench/scenario"
)

func runCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("run", "--scenario FILE [--target URL] [flags]", stderr)
	var (
		file        = fs.String("scenario", "", "scenario file (YAML), e.g. scenarios/steady.yaml")
		target      = fs.String("target", "", "base URL of a running API (remote mode, e.g. the compose stack); empty: local mode")
		localTarget = fs.String("local-target", runner.DefaultLocalTarget, "local mode: where to find the API, or start it")
		out         = fs.String("out", "bench/results", "directory for result directories (<time>-<scenario>)")
		serviceBin  = fs.String("service-bin", "bin/service", "local mode: the service binary to start")
		workerBin   = fs.String("worker-bin", "bin/worker", "local mode: the worker binary to start")
		metricsAddr = fs.String("metrics-addr", "127.0.0.1:9102", "serve the bench's /metrics here during the run (empty disables)")
		ready       = fs.Duration("ready-timeout", 30*time.Second, "how long to wait for GET /readyz = 200")
		cpuProfile  = fs.String("cpuprofile", "", "write a CPU profile of the bench itself to this file (go tool pprof -tagfocus phase=attack bin/bench FILE shows the attacks)")
	)
	if err := ff.Parse(fs, args, ff.WithEnvVarPrefix("BENCH")); err != nil {
		return err
	}
	if *file == "" {
		fs.Usage()
		return fmt.Errorf("--scenario is required")
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	sc, err := scenario.Read(*file)
	if err != nil {
		return err
	}
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return err
		}
		defer func() {
			if err := stop(); err != nil {
				fmt.Fprintf(stderr, "bench run: %v\n", err)
			}
		}()
	}
	log := stderr
	tty := false
	if f, ok := stderr.(*os.File); ok {
		tty = progress.IsTerminal(f)
	}
	rep, err := runner.Run(ctx, runner.Config{
		Scenario:     sc,
		Target:       *target,
		LocalTarget:  *localTarget,
		OutDir:       *out,
		ServiceBin:   *serviceBin,
		WorkerBin:    *workerBin,
		MetricsAddr:  *metricsAddr,
		ReadyTimeout: *ready,
		Version:      version,
		Log:          log,
		TTY:          tty,
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	if err := rep.WriteText(stdout); err != nil {
		return err
	}
	if !rep.Pass {
		return fmt.Errorf("%w: %d %s missed", errFailed, missed(rep.Thresholds), plural(missed(rep.Thresholds), "threshold", "thresholds"))
	}
	return nil
}

// startCPUProfile profiles the bench's own CPU (every goroutine of this
// process) until stop: what the bench spends per request is taken from
// the server it measures when both share a machine.
func startCPUProfile(path string) (stop func() error, err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile %s: %w", path, err)
	}
	return func() error {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			return fmt.Errorf("--cpuprofile %s: %w", path, err)
		}
		return nil
	}, nil
}

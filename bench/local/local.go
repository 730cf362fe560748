// Package local starts docket's service and workers on this machine for a
// bench run when nothing answers at the target yet, and stops them after:
// SIGTERM first, SIGKILL after a bound. Their output goes to log files in
// the run's result directory.
package local

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Config says what to start.
type Config struct {
	// ServiceBin and WorkerBin are the binaries (make build writes
	// bin/service and bin/worker).
	ServiceBin, WorkerBin string
	// Workers is how many worker processes to start (at least 1).
	Workers int
	// ListenAddr is the service's LISTEN_ADDR (host:port of the target).
	ListenAddr string
	// Dir receives service.log, worker.log, worker-2.log, ...
	Dir string
	// ReadyTimeout bounds the wait for GET /readyz = 200 (default 30s).
	ReadyTimeout time.Duration
	// StopTimeout is how long SIGTERM gets before SIGKILL (default 10s).
	StopTimeout time.Duration
}

// Stack is the running processes.
type Stack struct {
	cfg   Config
	procs []*proc
	// WorkerMetrics are the workers' metrics addresses.
	WorkerMetrics []string
}

type proc struct {
	name string
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
	err  error
}

// FirstWorkerMetricsPort is the first worker's metrics port (API.md's
// default); the next workers take the ports after it, skipping
// BenchMetricsPort, the bench's own /metrics.
const (
	FirstWorkerMetricsPort = 9101
	BenchMetricsPort       = 9102
)

// WorkerMetricsAddr is where worker i (from 0) serves its metrics:
// 127.0.0.1:9101, :9103, :9104, ...
func WorkerMetricsAddr(i int) string {
	port := FirstWorkerMetricsPort + i
	if port >= BenchMetricsPort {
		port++
	}
	return fmt.Sprintf("127.0.0.1:%d", port)
}

// Start starts the service and the workers and waits until the service
// answers GET /readyz with 200. On error, whatever started is stopped.
func Start(ctx context.Context, cfg Config) (*Stack, error) {
	if cfg.Workers < 1 {
		cfg.Workers = 1
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = 30 * time.Second
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = 10 * time.Second
	}
	for _, bin := range []string{cfg.ServiceBin, cfg.WorkerBin} {
		if _, err := os.Stat(bin); err != nil {
			return nil, fmt.Errorf("local mode needs %s (run make build, or pass --target to bench a running server): %w", bin, err)
		}
	}
	env := append(os.Environ(),
		"JWT_SECRET_KEY="+secret(48),
		"LISTEN_ADDR="+cfg.ListenAddr,
	)
	s := &Stack{cfg: cfg}
	if err := s.start("service", cfg.ServiceBin, env, "service.log"); err != nil {
		return nil, err
	}
	for i := range cfg.Workers {
		addr := WorkerMetricsAddr(i)
		logName := "worker.log"
		if i > 0 {
			logName = fmt.Sprintf("worker-%d.log", i+1)
		}
		if err := s.start(fmt.Sprintf("worker %d", i+1), cfg.WorkerBin, append(env, "WORKER_METRICS_ADDR="+addr), logName); err != nil {
			s.Stop()
			return nil, err
		}
		s.WorkerMetrics = append(s.WorkerMetrics, addr)
	}
	if err := s.waitReady(ctx); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Stack) start(name, bin string, env []string, logName string) error {
	log, err := os.Create(filepath.Join(s.cfg.Dir, logName))
	if err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	cmd := exec.Command(bin)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("start %s (%s): %w", name, bin, err)
	}
	p := &proc{name: name, cmd: cmd, log: log, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	s.procs = append(s.procs, p)
	return nil
}

// waitReady polls the service's /readyz and fails fast if a process exits.
func (s *Stack) waitReady(ctx context.Context) error {
	url := "http://" + s.cfg.ListenAddr + "/readyz"
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ReadyTimeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	for {
		for _, p := range s.procs {
			select {
			case <-p.done:
				return fmt.Errorf("%s exited before the service was ready (%v); last lines of %s:\n%s", p.name, p.err, p.log.Name(), tail(p.log.Name(), 15))
			default:
			}
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the service did not answer GET %s with 200 within %s; last lines of service.log:\n%s", url, s.cfg.ReadyTimeout, tail(s.procs[0].log.Name(), 15))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Stop ends every process: SIGTERM, then SIGKILL after StopTimeout. It
// returns the processes that had to be killed or exited with an error.
func (s *Stack) Stop() error {
	for _, p := range s.procs {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	var errs []error
	deadline := time.NewTimer(s.cfg.StopTimeout)
	defer deadline.Stop()
	waiting := true
	for _, p := range s.procs {
		if !waiting {
			break
		}
		select {
		case <-p.done:
		case <-deadline.C: // a fired timer's channel delivers once: stop waiting
			waiting = false
		}
	}
	for _, p := range s.procs {
		select {
		case <-p.done:
			var exit *exec.ExitError
			if p.err != nil && !(errors.As(p.err, &exit) && exit.Exited() && exit.ExitCode() == 0) {
				errs = append(errs, fmt.Errorf("%s: %w", p.name, p.err))
			}
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
			errs = append(errs, fmt.Errorf("%s did not stop within %s of SIGTERM and was killed", p.name, s.cfg.StopTimeout))
		}
		p.log.Close()
	}
	return errors.Join(errs...)
}

// secret returns n random characters (base32, 5 bits each).
func secret(n int) string {
	var b strings.Builder
	for b.Len() < n {
		b.WriteString(rand.Text())
	}
	return b.String()[:n]
}

func tail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log)"
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return "  " + strings.Join(all, "\n  ")
}

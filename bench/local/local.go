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
	"slices"
	"strings"
	"sync"
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
	// ServiceEnv and WorkerEnv are extra NAME=value settings for the
	// service and for every worker (the scenario's env).
	ServiceEnv, WorkerEnv []string
	// Dir receives service.log, worker.log, worker-2.log, ...
	Dir string
	// ReadyTimeout bounds the wait for GET /readyz = 200 (default 30s).
	ReadyTimeout time.Duration
	// StopTimeout is how long SIGTERM gets before SIGKILL (default 10s).
	StopTimeout time.Duration
}

// Stack is the running processes. Its methods are safe for concurrent
// use: a fault injector may kill and restart processes during a run.
type Stack struct {
	cfg Config
	// WorkerMetrics are the workers' metrics addresses.
	WorkerMetrics []string

	mu sync.Mutex
	// slots are the service (slot 0) and the workers; a slot's process is
	// nil while it is killed or stopped.
	slots []*slot
}

// slot is one process the stack keeps running, across restarts.
type slot struct {
	name, bin, logPath string
	env                []string
	cur                *proc
}

type proc struct {
	name string
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
	err  error
}

// Process is a running process of the stack.
type Process struct {
	Name string
	PID  int
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
	s.slots = append(s.slots, &slot{name: "service", bin: cfg.ServiceBin, env: append(slices.Clip(env), cfg.ServiceEnv...), logPath: filepath.Join(cfg.Dir, "service.log")})
	for i := range cfg.Workers {
		addr := WorkerMetricsAddr(i)
		logName := "worker.log"
		if i > 0 {
			logName = fmt.Sprintf("worker-%d.log", i+1)
		}
		wenv := append(append(slices.Clip(env), cfg.WorkerEnv...), "WORKER_METRICS_ADDR="+addr)
		s.slots = append(s.slots, &slot{name: fmt.Sprintf("worker %d", i+1), bin: cfg.WorkerBin, env: wenv, logPath: filepath.Join(cfg.Dir, logName)})
		s.WorkerMetrics = append(s.WorkerMetrics, addr)
	}
	for _, sl := range s.slots {
		if err := s.startSlot(sl, false); err != nil {
			s.Stop()
			return nil, err
		}
	}
	if err := s.waitReady(ctx); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// startSlot starts the slot's process; again appends to its log.
func (s *Stack) startSlot(sl *slot, again bool) error {
	flags := os.O_CREATE | os.O_WRONLY | os.O_TRUNC
	if again {
		flags = os.O_CREATE | os.O_WRONLY | os.O_APPEND
	}
	log, err := os.OpenFile(sl.logPath, flags, 0o644)
	if err != nil {
		return fmt.Errorf("start %s: %w", sl.name, err)
	}
	if again {
		fmt.Fprintf(log, "--- bench: %s started again at %s\n", sl.name, time.Now().UTC().Format(time.RFC3339Nano))
	}
	cmd := exec.Command(sl.bin)
	cmd.Env = sl.env
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("start %s (%s): %w", sl.name, sl.bin, err)
	}
	p := &proc{name: sl.name, cmd: cmd, log: log, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	sl.cur = p
	return nil
}

// waitReady polls the service's /readyz and fails fast if a process exits.
func (s *Stack) waitReady(ctx context.Context) error {
	url := "http://" + s.cfg.ListenAddr + "/readyz"
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ReadyTimeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	for {
		for _, sl := range s.slots {
			p := sl.cur
			select {
			case <-p.done:
				return fmt.Errorf("%s exited before the service was ready (%v); last lines of %s:\n%s", p.name, p.err, p.log.Name(), tail(p.log.Name(), 15))
			default:
			}
		}
		if answersOK(ctx, client, url) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the service did not answer GET %s with 200 within %s; last lines of service.log:\n%s", url, s.cfg.ReadyTimeout, tail(s.slots[0].logPath, 15))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Processes lists the processes running now, service first.
func (s *Stack) Processes() []Process {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Process
	for _, sl := range s.slots {
		if sl.cur == nil {
			continue
		}
		select {
		case <-sl.cur.done:
			continue
		default:
		}
		out = append(out, Process{Name: sl.name, PID: sl.cur.cmd.Process.Pid})
	}
	return out
}

func (s *Stack) worker(i int) (*slot, error) {
	if i < 0 || i >= len(s.slots)-1 {
		return nil, fmt.Errorf("no worker %d: the bench started %d", i, len(s.slots)-1)
	}
	return s.slots[i+1], nil
}

// KillWorker sends SIGKILL to worker i (from 0) and waits for it to die.
func (s *Stack) KillWorker(i int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sl, err := s.worker(i)
	if err != nil {
		return err
	}
	if sl.cur == nil {
		return fmt.Errorf("%s is not running", sl.name)
	}
	_ = sl.cur.cmd.Process.Kill()
	<-sl.cur.done
	sl.cur.log.Close()
	sl.cur = nil
	return nil
}

// StartWorker starts worker i again (its log goes on in the same file).
func (s *Stack) StartWorker(i int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sl, err := s.worker(i)
	if err != nil {
		return err
	}
	if sl.cur != nil {
		return fmt.Errorf("%s is running already", sl.name)
	}
	return s.startSlot(sl, true)
}

// StopWorkers stops every worker (SIGTERM, then SIGKILL after StopTimeout).
func (s *Stack) StopWorkers() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopSlots(s.slots[1:])
}

// StartWorkers starts every stopped worker again.
func (s *Stack) StartWorkers() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, sl := range s.slots[1:] {
		if sl.cur == nil {
			errs = append(errs, s.startSlot(sl, true))
		}
	}
	return errors.Join(errs...)
}

// StopService stops the service (SIGTERM, then SIGKILL after StopTimeout).
func (s *Stack) StopService() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopSlots(s.slots[:1])
}

// StartService starts the service again on the same address and waits,
// up to ReadyTimeout, until it answers GET /healthz (not /readyz: the
// stores may be down on purpose).
func (s *Stack) StartService(ctx context.Context) error {
	s.mu.Lock()
	sl := s.slots[0]
	if sl.cur != nil {
		s.mu.Unlock()
		return errors.New("the service is running already")
	}
	err := s.startSlot(sl, true)
	p := sl.cur
	s.mu.Unlock()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ReadyTimeout)
	defer cancel()
	url := "http://" + s.cfg.ListenAddr + "/healthz"
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-p.done:
			return fmt.Errorf("the service exited after its restart (%v); last lines of service.log:\n%s", p.err, tail(sl.logPath, 15))
		default:
		}
		if answersOK(ctx, client, url) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the restarted service did not answer GET %s within %s", url, s.cfg.ReadyTimeout)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stopSlots sends SIGTERM to the slots' processes, waits up to
// StopTimeout, kills what is left, and empties the slots. It returns the
// processes that had to be killed or exited with an error.
func (s *Stack) stopSlots(slots []*slot) error {
	var procs []*proc
	for _, sl := range slots {
		if sl.cur != nil {
			procs = append(procs, sl.cur)
			sl.cur = nil
		}
	}
	for _, p := range procs {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	var errs []error
	deadline := time.NewTimer(s.cfg.StopTimeout)
	defer deadline.Stop()
	waiting := true
	for _, p := range procs {
		if !waiting {
			break
		}
		select {
		case <-p.done:
		case <-deadline.C: // a fired timer's channel delivers once: stop waiting
			waiting = false
		}
	}
	for _, p := range procs {
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

// Stop ends every process: SIGTERM, then SIGKILL after StopTimeout. It
// returns the processes that had to be killed or exited with an error.
func (s *Stack) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopSlots(s.slots)
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

// answersOK reports whether GET url answers 200 (the body is read and
// dropped, so the connection is reused).
func answersOK(ctx context.Context, client *http.Client, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode == http.StatusOK
}

package local_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docket/docket/bench/local"
)

// The test binary doubles as the service and worker that local.Start runs:
// with BENCH_LOCAL_TEST_ROLE set it plays that part instead of running tests.
func TestMain(m *testing.M) {
	switch os.Getenv("BENCH_LOCAL_TEST_ROLE") {
	case "":
		os.Exit(m.Run())
	case "service":
		fakeService()
	case "crash":
		fmt.Println("cannot connect to the database")
		os.Exit(3)
	case "stubborn":
		signal.Ignore(syscall.SIGTERM)
		if os.Getenv("WORKER_METRICS_ADDR") != "" {
			select {} // a worker that never stops
		}
		srv := &http.Server{Addr: os.Getenv("LISTEN_ADDR"), Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {})}
		_ = srv.ListenAndServe()
	}
}

func fakeService() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM) // before the first line: tests wait for it
	fmt.Printf("JWT_SECRET_KEY has %d characters\n", len(os.Getenv("JWT_SECRET_KEY")))
	fmt.Printf("WORKER_METRICS_ADDR=%s\n", os.Getenv("WORKER_METRICS_ADDR"))
	fmt.Printf("BACKLOG_LIMIT=%s PREFETCH=%s\n", os.Getenv("BACKLOG_LIMIT"), os.Getenv("PREFETCH"))
	if os.Getenv("WORKER_METRICS_ADDR") == "" { // the service
		srv := &http.Server{Addr: os.Getenv("LISTEN_ADDR"), Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {})}
		go func() { _ = srv.ListenAndServe() }()
	}
	<-stop
	fmt.Println("stopping on SIGTERM")
	os.Exit(0)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func config(t *testing.T) local.Config {
	return local.Config{
		ServiceBin: os.Args[0], WorkerBin: os.Args[0], Workers: 2,
		ListenAddr: freeAddr(t), Dir: t.TempDir(), ReadyTimeout: 10 * time.Second, StopTimeout: 2 * time.Second,
	}
}

func TestStartWaitsForReadyAndStopsInOrder(t *testing.T) {
	t.Setenv("BENCH_LOCAL_TEST_ROLE", "service")
	cfg := config(t)
	s, err := local.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + cfg.ListenAddr + "/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("the service is not up after Start: %v", err)
	}
	resp.Body.Close()
	if err := s.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	for name, want := range map[string][]string{
		"service.log":  {"JWT_SECRET_KEY has 48 characters", "stopping on SIGTERM"},
		"worker.log":   {"WORKER_METRICS_ADDR=127.0.0.1:9101", "stopping on SIGTERM"},
		"worker-2.log": {"WORKER_METRICS_ADDR=127.0.0.1:9103"},
	} {
		b, err := os.ReadFile(filepath.Join(cfg.Dir, name))
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			if !strings.Contains(string(b), w) {
				t.Errorf("%s lacks %q:\n%s", name, w, b)
			}
		}
	}
	if s.WorkerMetrics[1] != "127.0.0.1:9103" {
		t.Errorf("worker metrics %v", s.WorkerMetrics)
	}
}

func TestStartReportsAChildThatDies(t *testing.T) {
	t.Setenv("BENCH_LOCAL_TEST_ROLE", "crash")
	_, err := local.Start(context.Background(), config(t))
	if err == nil || !strings.Contains(err.Error(), "exited before the service was ready") || !strings.Contains(err.Error(), "cannot connect to the database") {
		t.Fatalf("err = %v, want the exit and the log's last lines", err)
	}
}

func TestStartNeedsTheBinaries(t *testing.T) {
	cfg := config(t)
	cfg.ServiceBin = filepath.Join(t.TempDir(), "missing")
	_, err := local.Start(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "make build") {
		t.Fatalf("err = %v, want advice to run make build", err)
	}
}

func TestStopKillsWhatIgnoresSIGTERM(t *testing.T) {
	t.Setenv("BENCH_LOCAL_TEST_ROLE", "stubborn")
	cfg := config(t)
	cfg.Workers = 1
	s, err := local.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = s.Stop()
	if err == nil || !strings.Contains(err.Error(), "was killed") {
		t.Fatalf("err = %v, want a kill reported", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stop took %s; the bound is 2s", d)
	}
}

func readLog(t *testing.T, cfg local.Config, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(cfg.Dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// waitForLines waits until the log holds line n times: a fake process
// writes its lines once it handles SIGTERM.
func waitForLines(t *testing.T, cfg local.Config, name, line string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(readLog(t, cfg, name), line) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%s does not hold %q %d times:\n%s", name, line, n, readLog(t, cfg, name))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func pids(s *local.Stack) map[string]int {
	out := map[string]int{}
	for _, p := range s.Processes() {
		out[p.Name] = p.PID
	}
	return out
}

// The faults a scenario injects: a worker killed and replaced, the
// workers stopped and started, the service restarted on its address.
func TestFaultsOnTheStack(t *testing.T) {
	t.Setenv("BENCH_LOCAL_TEST_ROLE", "service")
	cfg := config(t)
	cfg.ServiceEnv = []string{"BACKLOG_LIMIT=2000"}
	cfg.WorkerEnv = []string{"PREFETCH=64"}
	s, err := local.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	before := pids(s)
	if len(before) != 3 {
		t.Fatalf("processes %v", before)
	}
	waitForLines(t, cfg, "worker-2.log", "PREFETCH=64", 1)

	if err := s.KillWorker(1); err != nil {
		t.Fatal(err)
	}
	if _, ok := pids(s)["worker 2"]; ok || len(pids(s)) != 2 {
		t.Errorf("after the kill: %v", pids(s))
	}
	if err := s.KillWorker(1); err == nil {
		t.Error("killed a worker that is not running")
	}
	if err := s.KillWorker(5); err == nil || !strings.Contains(err.Error(), "no worker 5") {
		t.Errorf("kill worker 5: %v", err)
	}
	if err := s.StartWorker(1); err != nil {
		t.Fatal(err)
	}
	if p := pids(s)["worker 2"]; p == 0 || p == before["worker 2"] {
		t.Errorf("worker 2 after its replacement: pid %d, was %d", p, before["worker 2"])
	}
	// The replacement handles SIGTERM once it has written its lines.
	waitForLines(t, cfg, "worker-2.log", "PREFETCH=64", 2)

	if err := s.StopWorkers(); err != nil {
		t.Fatalf("stop workers: %v", err)
	}
	if got := pids(s); len(got) != 1 || got["service"] == 0 {
		t.Errorf("after stopping the workers: %v", got)
	}
	if err := s.StartWorkers(); err != nil {
		t.Fatal(err)
	}
	if len(pids(s)) != 3 {
		t.Errorf("after starting the workers: %v", pids(s))
	}
	waitForLines(t, cfg, "worker.log", "PREFETCH=64", 2)
	waitForLines(t, cfg, "worker-2.log", "PREFETCH=64", 3)

	if err := s.StopService(); err != nil {
		t.Fatalf("stop service: %v", err)
	}
	if _, err := http.Get("http://" + cfg.ListenAddr + "/healthz"); err == nil {
		t.Error("the service answers after StopService")
	}
	if err := s.StartService(context.Background()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + cfg.ListenAddr + "/healthz")
	if err != nil {
		t.Fatalf("the service does not answer after its restart: %v", err)
	}
	resp.Body.Close()
	if err := s.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if got := readLog(t, cfg, "worker-2.log"); strings.Count(got, "PREFETCH=64") != 3 || !strings.Contains(got, "worker 2 started again") {
		t.Errorf("worker-2.log does not tell of three starts with the extra env:\n%s", got)
	}
	if got := readLog(t, cfg, "service.log"); strings.Count(got, "BACKLOG_LIMIT=2000 PREFETCH=\n") != 2 {
		t.Errorf("service.log does not tell of two starts with the extra env:\n%s", got)
	}
}

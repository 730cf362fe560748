// Package harness runs docket's real binaries against the local PostgreSQL
// and RabbitMQ for end-to-end tests: each stack gets its own database and
// vhost, its own ports, and binaries built with the race detector. It also
// installs an audit trigger in the stack's database that records every
// status change of every request, so a test can prove from the database's
// own record that nothing ran twice and nothing started before its
// predecessor finished.
package harness

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/docket/docket/internal/testenv"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// Binaries builds service and worker (with -race) once per test process and
// returns the directory holding them.
func Binaries(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "docket-e2e-bin-")
		if buildErr != nil {
			return
		}
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		for _, name := range []string{"service", "worker"} {
			cmd := exec.Command("go", "build", "-race", "-o", filepath.Join(binDir, name), "./"+name)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", name, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatalf("build binaries: %v", buildErr)
	}
	return binDir
}

// Stack is one isolated docket: a database, a vhost, a service and workers.
type Stack struct {
	t          testing.TB
	DBURL      string
	AMQPURL    string
	Secret     string
	Partitions int
	Env        []string // extra environment for every process
	API        string   // base URL of the service
	DB         *pgxpool.Pool

	mu      sync.Mutex
	service *Proc
	workers []*Proc
}

// NewStack prepares a database and a vhost; start processes with
// StartService and StartWorker.
func NewStack(t testing.TB, partitions int, env ...string) *Stack {
	t.Helper()
	Binaries(t)
	s := &Stack{t: t, DBURL: testenv.Database(t), AMQPURL: testenv.Vhost(t), Secret: randomSecret(), Partitions: partitions, Env: env}
	return s
}

func randomSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *Stack) baseEnv() []string {
	return append([]string{
		"DATABASE_URL=" + s.DBURL,
		"RABBITMQ_URL=" + s.AMQPURL,
		"JWT_SECRET_KEY=" + s.Secret,
		fmt.Sprintf("PARTITIONS=%d", s.Partitions),
		"BCRYPT_COST=4",
		"LOG_LEVEL=info",
	}, s.Env...)
}

// StartService starts the API on a free port and waits until it is ready,
// then installs the audit trigger (the service has migrated the schema).
func (s *Stack) StartService(env ...string) *Proc {
	s.t.Helper()
	addr := freeAddr(s.t)
	p := start(s.t, "service", append(append(s.baseEnv(), "LISTEN_ADDR="+addr), env...))
	s.API = "http://" + addr
	WaitHTTP(s.t, s.API+"/readyz", 60*time.Second)
	s.mu.Lock()
	s.service = p
	s.mu.Unlock()
	if s.DB == nil {
		s.connectDB()
	}
	return p
}

// StartWorker starts a worker with its metrics on a free port and waits
// until its metrics answer.
func (s *Stack) StartWorker(env ...string) *Proc {
	s.t.Helper()
	addr := freeAddr(s.t)
	p := start(s.t, "worker", append(append(s.baseEnv(), "WORKER_METRICS_ADDR="+addr), env...))
	p.MetricsURL = "http://" + addr + "/metrics"
	WaitHTTP(s.t, "http://"+addr+"/healthz", 60*time.Second)
	s.mu.Lock()
	s.workers = append(s.workers, p)
	s.mu.Unlock()
	return p
}

// Workers returns the workers started so far.
func (s *Stack) Workers() []*Proc {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Proc(nil), s.workers...)
}

const auditSQL = `
CREATE TABLE IF NOT EXISTS audit (
	n        bigserial PRIMARY KEY,
	id       uuid NOT NULL,
	user_id  uuid NOT NULL,
	seq      bigint NOT NULL,
	status   text NOT NULL,
	attempts integer NOT NULL,
	at       timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE OR REPLACE FUNCTION audit_request() RETURNS trigger AS $$
BEGIN
	INSERT INTO audit (id, user_id, seq, status, attempts) VALUES (NEW.id, NEW.user_id, NEW.seq, NEW.status, NEW.attempts);
	RETURN NEW;
END $$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS audit_request ON requests;
CREATE TRIGGER audit_request AFTER UPDATE ON requests FOR EACH ROW EXECUTE FUNCTION audit_request();`

func (s *Stack) connectDB() {
	s.t.Helper()
	pool, err := pgxpool.New(context.Background(), s.DBURL)
	if err != nil {
		s.t.Fatalf("connect %s: %v", s.DBURL, err)
	}
	s.t.Cleanup(pool.Close)
	if _, err := pool.Exec(context.Background(), auditSQL); err != nil {
		s.t.Fatalf("install audit trigger: %v", err)
	}
	s.DB = pool
}

// Proc is a running binary.
type Proc struct {
	Name       string
	Cmd        *exec.Cmd
	MetricsURL string
	log        *bytes.Buffer
	logMu      *sync.Mutex
	done       chan struct{}
	t          testing.TB
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func start(t testing.TB, name string, env []string) *Proc {
	t.Helper()
	p := &Proc{Name: name, log: &bytes.Buffer{}, logMu: &sync.Mutex{}, done: make(chan struct{}), t: t}
	p.Cmd = exec.Command(filepath.Join(binDir, name))
	p.Cmd.Env = append(os.Environ(), env...)
	w := lockedWriter{mu: p.logMu, w: p.log}
	p.Cmd.Stdout, p.Cmd.Stderr = w, w
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		_ = p.Cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("--- %s (pid %d) log, last 60 lines:\n%s", name, p.Cmd.Process.Pid, p.Tail(60))
		}
	})
	return p
}

// Tail returns the last n lines of the process's output.
func (p *Proc) Tail(n int) string {
	p.logMu.Lock()
	defer p.logMu.Unlock()
	lines := strings.Split(strings.TrimRight(p.log.String(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Log returns the process's whole output.
func (p *Proc) Log() string {
	p.logMu.Lock()
	defer p.logMu.Unlock()
	return p.log.String()
}

// Kill sends SIGKILL and waits for the process to end.
func (p *Proc) Kill() {
	_ = p.Cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Terminate sends SIGTERM and waits up to timeout for a clean exit; it
// returns how long the exit took and the exit code.
func (p *Proc) Terminate(timeout time.Duration) (time.Duration, int) {
	p.t.Helper()
	start := time.Now()
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.t.Fatalf("%s did not exit within %s of SIGTERM", p.Name, timeout)
	}
	return time.Since(start), p.Cmd.ProcessState.ExitCode()
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// WaitHTTP polls url until it answers 200.
func WaitHTTP(t testing.TB, url string, timeout time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: time.Second}
	testenv.Eventually(t, timeout, func() bool {
		resp, err := client.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, "%s did not answer 200", url)
}

// Client is an API client for one user.
type Client struct {
	API   string
	Token string
	HTTP  *http.Client
}

var httpClient = &http.Client{
	Timeout:   30 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256},
}

// NewUser registers and logs in a user, retrying while password hashing
// is overloaded (503), as a client should. It is safe to call from several
// goroutines; it fails the test with Errorf and returns nil on error.
func (s *Stack) NewUser(name string) *Client {
	body := fmt.Sprintf(`{"username":%q,"password":"correct horse battery"}`, name)
	var out struct {
		AccessToken string `json:"access_token"`
	}
	for _, step := range []struct {
		path string
		want int
		dst  any
	}{{"/auth/register", 201, nil}, {"/auth/login", 200, &out}} {
		deadline := time.Now().Add(time.Minute)
		for {
			code, resp, err := Do(httpClient, "POST", s.API+step.path, "", []byte(body), nil)
			if code == http.StatusServiceUnavailable && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			if err != nil || code != step.want {
				s.t.Errorf("%s %s: %d %s %v", step.path, name, code, resp, err)
				return nil
			}
			if step.dst != nil {
				if err := json.Unmarshal(resp, step.dst); err != nil {
					s.t.Errorf("%s: %v", step.path, err)
					return nil
				}
			}
			break
		}
	}
	return &Client{API: s.API, Token: out.AccessToken, HTTP: httpClient}
}

// Accepted is a 202 answer.
type Accepted struct {
	ID     string `json:"id"`
	Seq    int64  `json:"seq"`
	Status string `json:"status"`
}

// Submit posts a request; it returns the status and, for 202, the answer.
func (c *Client) Submit(body string) (int, Accepted, error) {
	code, resp, err := Do(c.HTTP, "POST", c.API+"/requests", c.Token, []byte(body), nil)
	var a Accepted
	if err == nil && code == http.StatusAccepted {
		err = json.Unmarshal(resp, &a)
	}
	return code, a, err
}

// Do sends one request and reads the whole answer.
func Do(client *http.Client, method, url, token string, body []byte, header map[string]string) (int, []byte, error) {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

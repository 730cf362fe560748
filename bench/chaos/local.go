package chaos

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/docket/docket/bench/local"
	"github.com/docket/docket/bench/scenario"
)

// Local injects faults for real: into the processes of a bench-started
// stack, and into this machine's RabbitMQ and PostgreSQL through their
// control commands (the commands e2e/disruptive uses).
type Local struct {
	Stack *local.Stack
	// PGVersion is the PostgreSQL cluster's version (/etc/postgresql/<v>).
	PGVersion string
	// StartTimeout bounds the wait for RabbitMQ to start again (default 2m).
	StartTimeout time.Duration
}

var _ Injector = (*Local)(nil)

// Begin takes the fault's process or server down.
func (l *Local) Begin(ctx context.Context, f scenario.Fault) error {
	switch f.Action {
	case scenario.ActionKillWorker:
		return l.Stack.KillWorker(*f.Worker)
	case scenario.ActionStopWorkers:
		return l.Stack.StopWorkers()
	case scenario.ActionRestartService:
		return l.Stack.StopService()
	case scenario.ActionRestartRabbitMQ:
		return command(ctx, "rabbitmqctl", "-q", "shutdown")
	case scenario.ActionRestartPostgres:
		return command(ctx, "pg_ctlcluster", "--skip-systemctl-redirect", l.PGVersion, "main", "stop", "-m", "fast")
	}
	return fmt.Errorf("unknown fault action %q", f.Action)
}

// End starts the fault's process or server again.
func (l *Local) End(ctx context.Context, f scenario.Fault) error {
	switch f.Action {
	case scenario.ActionKillWorker:
		if f.Duration == 0 {
			return nil // no replacement
		}
		return l.Stack.StartWorker(*f.Worker)
	case scenario.ActionStopWorkers:
		return l.Stack.StartWorkers()
	case scenario.ActionRestartService:
		return l.Stack.StartService(ctx)
	case scenario.ActionRestartRabbitMQ:
		if err := command(ctx, "rabbitmq-server", "-detached"); err != nil {
			return err
		}
		// await_startup fails at once while the node's VM is not up yet.
		timeout := l.StartTimeout
		if timeout <= 0 {
			timeout = 2 * time.Minute
		}
		deadline := time.Now().Add(timeout)
		for {
			err := command(ctx, "rabbitmqctl", "-q", "await_startup")
			if err == nil {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("rabbitmq did not start within %s: %w", timeout, err)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(500 * time.Millisecond):
			}
		}
	case scenario.ActionRestartPostgres:
		return command(ctx, "pg_ctlcluster", "--skip-systemctl-redirect", l.PGVersion, "main", "start")
	}
	return fmt.Errorf("unknown fault action %q", f.Action)
}

// command runs a control command in its own process group (a Ctrl-C at
// the bench's terminal must not reach a broker it starts) and returns its
// output with the error.
func command(ctx context.Context, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Env is what Preflight needs to know of the machine.
type Env struct {
	// EUID is the bench's effective user id (os.Geteuid()).
	EUID int
	// RabbitMQURL and DatabaseURL are the URLs the bench-started processes
	// use (empty: their localhost defaults).
	RabbitMQURL, DatabaseURL string
	// LookPath finds a command (exec.LookPath).
	LookPath func(string) (string, error)
	// PGVersions are the clusters' versions under /etc/postgresql.
	PGVersions []string
}

// MachineEnv reads Env from this machine and the bench's environment.
func MachineEnv() Env {
	e := Env{EUID: os.Geteuid(), RabbitMQURL: os.Getenv("RABBITMQ_URL"), DatabaseURL: os.Getenv("DATABASE_URL"), LookPath: exec.LookPath}
	if entries, err := os.ReadDir("/etc/postgresql"); err == nil {
		for _, en := range entries {
			if en.IsDir() {
				e.PGVersions = append(e.PGVersions, en.Name())
			}
		}
	}
	return e
}

// Preflight checks, before anything starts, that the faults can be
// injected here: the server restarts need root, the server on this
// machine, and its control commands. It returns the PostgreSQL version to
// use (empty if no fault needs it).
func Preflight(faults []scenario.Fault, env Env) (pgVersion string, err error) {
	need := map[string]bool{}
	for _, f := range faults {
		need[f.Action] = true
	}
	check := func(action, what, rawURL string, cmds ...string) error {
		if !need[action] {
			return nil
		}
		if env.EUID != 0 {
			return fmt.Errorf("fault %s restarts this machine's %s: run the bench as root (it runs %s)", action, what, strings.Join(cmds, ", "))
		}
		if rawURL != "" && !localURL(rawURL) {
			return fmt.Errorf("fault %s restarts this machine's %s, but the processes use one elsewhere (%s)", action, what, redact(rawURL))
		}
		for _, c := range cmds {
			if _, err := env.LookPath(c); err != nil {
				return fmt.Errorf("fault %s needs %s on PATH: %w", action, c, err)
			}
		}
		return nil
	}
	if err := check(scenario.ActionRestartRabbitMQ, "RabbitMQ", env.RabbitMQURL, "rabbitmqctl", "rabbitmq-server"); err != nil {
		return "", err
	}
	if err := check(scenario.ActionRestartPostgres, "PostgreSQL", env.DatabaseURL, "pg_ctlcluster"); err != nil {
		return "", err
	}
	if need[scenario.ActionRestartPostgres] {
		switch len(env.PGVersions) {
		case 0:
			return "", errors.New("fault restart-postgres: no PostgreSQL cluster under /etc/postgresql")
		case 1:
		default:
			slices.Sort(env.PGVersions)
			return "", fmt.Errorf("fault restart-postgres: several PostgreSQL versions under /etc/postgresql (%s): which one docket uses is not clear", strings.Join(env.PGVersions, ", "))
		}
		return env.PGVersions[0], nil
	}
	return "", nil
}

func localURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	switch u.Hostname() {
	case "", "localhost", "127.0.0.1", "::1":
		return true
	}
	return false
}

// redact drops a URL's password before it is shown.
func redact(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	return "(unparsable URL)"
}

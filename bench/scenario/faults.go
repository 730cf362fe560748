package scenario

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Fault actions (scenarios/README.md, section faults).
const (
	// ActionKillWorker sends SIGKILL to one worker and starts a
	// replacement after Duration (never, if Duration is 0).
	ActionKillWorker = "kill-worker"
	// ActionStopWorkers stops every worker (SIGTERM) for Duration while
	// the load goes on, then starts them again.
	ActionStopWorkers = "stop-workers"
	// ActionRestartService stops the service (SIGTERM), waits Duration,
	// and starts it again on the same address.
	ActionRestartService = "restart-service"
	// ActionRestartRabbitMQ shuts the local RabbitMQ node down, waits
	// Duration, and starts it again (needs root and a local server).
	ActionRestartRabbitMQ = "restart-rabbitmq"
	// ActionRestartPostgres stops the local PostgreSQL cluster (fast
	// mode), waits Duration, and starts it again (needs root).
	ActionRestartPostgres = "restart-postgres"
)

// Actions lists every fault action.
var Actions = []string{ActionKillWorker, ActionStopWorkers, ActionRestartService, ActionRestartRabbitMQ, ActionRestartPostgres}

// Fault is one fault injected during the main attack.
type Fault struct {
	// At is when the fault starts, from the start of the attack.
	At time.Duration `yaml:"at"`
	// Action is what is done: one of Actions.
	Action string `yaml:"action"`
	// Duration is how long the fault lasts: how long the workers stay
	// stopped, the server stays down, or (kill-worker) until a
	// replacement starts (0: none).
	Duration time.Duration `yaml:"duration"`
	// Worker (kill-worker only) is the worker to kill, from 0.
	Worker *int `yaml:"worker"`
}

// End is when the fault ends, from the start of the attack.
func (f Fault) End() time.Duration { return f.At + f.Duration }

// String names the fault in a line: "kill-worker 1 at 20s for 5s".
func (f Fault) String() string {
	s := f.Action
	if f.Worker != nil {
		s += fmt.Sprintf(" %d", *f.Worker)
	}
	return fmt.Sprintf("%s at %s for %s", s, f.At, f.Duration)
}

// Env is extra environment for the processes local mode starts, on top of
// the bench's own environment: e.g. BACKLOG_LIMIT for the service.
type Env struct {
	Service map[string]string `yaml:"service"`
	Worker  map[string]string `yaml:"worker"`
}

// Empty reports whether no extra environment is set.
func (e Env) Empty() bool { return len(e.Service) == 0 && len(e.Worker) == 0 }

// Pairs returns a map as NAME=value strings, sorted by name.
func Pairs(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

// NeedsLocal reports whether the scenario can only run against processes
// the bench starts itself (faults or extra environment).
func (s *Scenario) NeedsLocal() bool { return len(s.Faults) > 0 || !s.Env.Empty() }

var envNameRE = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`)

// reservedEnv are set by the bench for each process and cannot be overridden.
var reservedEnv = map[string][]string{
	"service": {"JWT_SECRET_KEY", "LISTEN_ADDR"},
	"worker":  {"WORKER_METRICS_ADDR"},
}

func (e Env) validate(file string) error {
	for _, part := range []struct {
		name string
		vars map[string]string
	}{{"service", e.Service}, {"worker", e.Worker}} {
		for k := range part.vars {
			field := "env." + part.name + "." + k
			if !envNameRE.MatchString(k) {
				return &FieldError{File: file, Field: field, Problem: "must be an environment variable name in capitals (A-Z, 0-9, _)"}
			}
			if slices.Contains(reservedEnv[part.name], k) {
				return &FieldError{File: file, Field: field, Problem: fmt.Sprintf("is set by the bench itself (%s)", strings.Join(reservedEnv[part.name], ", "))}
			}
		}
	}
	return nil
}

// validateFaults checks the fault list against the rest of the scenario.
// The faults must fall inside the attack, one after another, so that each
// fault's recovery is measured under load and on its own.
func (s *Scenario) validateFaults() error {
	bad := func(field, format string, args ...any) error {
		return &FieldError{File: s.File, Field: field, Problem: fmt.Sprintf(format, args...)}
	}
	if len(s.Faults) == 0 {
		return nil
	}
	switch {
	case s.Target != TargetRequests:
		return bad("faults", "apply to target requests only (there is nothing to verify with target login)")
	case s.Load.Shape == ShapeSteps:
		return bad("faults", "do not combine with shape steps (one attack per step)")
	case s.BaselineWithout != "":
		return bad("faults", "do not combine with baseline_without")
	}
	attack := s.Load.Duration
	var prevEnd time.Duration
	for i, f := range s.Faults {
		p := fmt.Sprintf("faults[%d]", i)
		if f.Action == "" {
			return bad(p+".action", "is required: one of %s", strings.Join(Actions, ", "))
		}
		if !slices.Contains(Actions, f.Action) {
			return bad(p+".action", "must be one of %s, got %q", strings.Join(Actions, ", "), f.Action)
		}
		if f.At <= 0 {
			return bad(p+".at", "is required: a positive duration from the start of the attack, got %s", f.At)
		}
		if f.At >= attack {
			return bad(p+".at", "%s is not within the attack (load.duration %s)", f.At, attack)
		}
		if f.Duration < 0 {
			return bad(p+".duration", "must not be negative, got %s", f.Duration)
		}
		if f.Action == ActionStopWorkers && f.Duration <= 0 {
			return bad(p+".duration", "is required for stop-workers: how long the workers stay stopped")
		}
		if f.End() >= attack {
			return bad(p+".duration", "the fault must end within the attack: at + duration = %s, load.duration %s", f.End(), attack)
		}
		if f.At < prevEnd {
			return bad(p+".at", "%s is before the previous fault ends (%s): faults run one after another", f.At, prevEnd)
		}
		prevEnd = f.End()
		if f.Worker != nil && f.Action != ActionKillWorker {
			return bad(p+".worker", "applies to action kill-worker only")
		}
		if f.Action == ActionKillWorker {
			if w := *f.Worker; w < 0 || w >= s.Workers {
				return bad(p+".worker", "must be from 0 to %d (workers: %d), got %d", s.Workers-1, s.Workers, w)
			}
			if f.Duration == 0 && s.Workers == 1 {
				return bad(p+".duration", "kills the only worker and starts no replacement (duration 0): nothing would process the backlog; set workers or a duration")
			}
		}
	}
	return nil
}

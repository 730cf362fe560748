package scenario_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docket/docket/bench/scenario"
)

// Every shipped scenario parses, and the list is all there.
func TestShippedScenariosParse(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("../../scenarios/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]*scenario.Scenario{}
	for _, f := range files {
		sc, err := scenario.Read(f)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if sc.Name != sc.Stem() {
			t.Errorf("%s: name %q differs from the file name", f, sc.Name)
		}
		if sc.Description == "" {
			t.Errorf("%s: no description", f)
		}
		seen[sc.Name] = sc
	}
	for _, want := range []string{"smoke", "steady", "ramp", "spike", "soak", "login-storm", "fifo", "noisy-neighbour"} {
		if seen[want] == nil {
			t.Errorf("scenarios/%s.yaml is missing", want)
		}
	}
	for _, want := range []string{"chaos-kill-worker", "chaos-restart-rabbitmq", "chaos-restart-postgres", "chaos-restart-service", "chaos-stop-workers"} {
		sc := seen[want]
		switch {
		case sc == nil:
			t.Errorf("scenarios/%s.yaml is missing", want)
		case len(sc.Faults) != 1 || sc.Faults[0].Action != strings.TrimPrefix(want, "chaos-"):
			t.Errorf("%s: faults %+v", want, sc.Faults)
		case sc.Load.Duration > 90*time.Second || *sc.Thresholds.MaxLost != 0 || *sc.Thresholds.MaxViolations != 0 || sc.Thresholds.MaxRecovery == nil:
			t.Errorf("%s: runs %s; want at most 90s, max_lost and max_violations 0, and max_recovery", want, sc.Load.Duration)
		}
	}
	if sc := seen["chaos-kill-worker"]; sc != nil && sc.Workers < 3 {
		t.Errorf("chaos-kill-worker has %d workers; it kills one of several", sc.Workers)
	}
	for _, want := range []string{"overload-backlog", "overload-login-storm", "overload-sleep"} {
		if sc := seen[want]; sc == nil {
			t.Errorf("scenarios/%s.yaml is missing", want)
		} else if sc.Thresholds.HealthzP99 == nil {
			t.Errorf("%s does not bound /healthz's latency", want)
		}
	}
	if sc := seen["overload-login-storm"]; sc != nil && (!sc.MixedTargets() || sc.BaselineWithout == "") {
		t.Error("overload-login-storm needs a login group beside a request group, and a baseline without the storm")
	}
	if sc := seen["overload-backlog"]; sc != nil && sc.Env.Service["BACKLOG_LIMIT"] == "" {
		t.Error("overload-backlog must set a small BACKLOG_LIMIT")
	}
	if sc := seen["smoke"]; sc != nil && sc.Load.Duration > 20*time.Second {
		t.Errorf("smoke runs %s; CI wants at most 20s", sc.Load.Duration)
	}
	if sc := seen["login-storm"]; sc != nil && sc.Target != scenario.TargetLogin {
		t.Errorf("login-storm's target is %q", sc.Target)
	}
	if sc := seen["ramp"]; sc != nil && sc.Load.Shape != scenario.ShapeSteps {
		t.Errorf("ramp's shape is %q", sc.Load.Shape)
	}
	if sc := seen["noisy-neighbour"]; sc != nil && (sc.BaselineWithout == "" || sc.Thresholds.MaxNeighbourSlowdown == nil) {
		t.Error("noisy-neighbour must run a baseline and bound the slowdown")
	}
	if sc := seen["fifo"]; sc != nil {
		modes := map[string]bool{}
		for _, g := range sc.Users {
			modes[g.Mode] = true
		}
		if !modes[scenario.ModeOpen] || len(sc.Mix) < 3 {
			t.Error("fifo needs open-loop users and a mix of types")
		}
	}
}

func parse(t *testing.T, yaml string) (*scenario.Scenario, error) {
	t.Helper()
	return scenario.Parse("scenarios/x.yaml", strings.NewReader(yaml))
}

const minimal = `
name: x
users:
  - group: all
    count: 2
load:
  shape: constant
  rate: 10
  duration: 5s
`

func TestDefaults(t *testing.T) {
	t.Parallel()
	sc, err := parse(t, minimal)
	if err != nil {
		t.Fatal(err)
	}
	g := sc.Users[0]
	switch {
	case sc.Target != scenario.TargetRequests:
		t.Errorf("target %q", sc.Target)
	case g.Mode != scenario.ModeOpen || g.Share != 1:
		t.Errorf("group %+v", g)
	case len(g.Mix) != 1 || g.Mix[0].Type != "echo" || *g.Mix[0].Bytes != scenario.DefaultEchoBytes:
		t.Errorf("mix %+v", g.Mix)
	case sc.Load.MaxInFlight != scenario.DefaultMaxInFlight || sc.Load.Timeout != scenario.DefaultTimeout:
		t.Errorf("load %+v", sc.Load)
	case sc.Workers != 1 || sc.SetupConcurrency != scenario.DefaultSetupConcurrency || sc.DrainTimeout != scenario.DefaultDrainTimeout:
		t.Errorf("scenario %+v", sc)
	case *sc.Thresholds.MaxLost != 0 || *sc.Thresholds.MaxViolations != 0:
		t.Error("lost and violations must default to 0")
	case len(sc.SuccessCodes) != 1 || sc.SuccessCodes[0] != 202:
		t.Errorf("success codes %v", sc.SuccessCodes)
	}
	if got := string(g.Mix[0].Payload()); got != `{"type":"echo","payload":"xxxxxxxxxxxxxxxx"}` {
		t.Errorf("payload %s", got)
	}
}

func TestPayloads(t *testing.T) {
	t.Parallel()
	sc, err := parse(t, strings.Replace(minimal, "load:", `mix:
  - {type: sleep, ms: 5}
  - {type: cpu, iterations: 1000, weight: 2}
  - {type: fail, times: 1}
load:`, 1))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`{"type":"sleep","payload":{"ms":5}}`,
		`{"type":"cpu","payload":{"iterations":1000}}`,
		`{"type":"fail","payload":{"times":1}}`,
	}
	for i, m := range sc.Users[0].Mix {
		if got := string(m.Payload()); got != want[i] {
			t.Errorf("mix[%d] payload %s, want %s", i, got, want[i])
		}
	}
}

// A bad file is refused with the file, the field and the problem.
func TestErrorsNameFileFieldAndProblem(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, yaml, field, problem string
	}{
		{"unknown top field", minimal + "colour: red\n", "colour", "unknown field"},
		{"unknown nested field", strings.Replace(minimal, "rate: 10", "rate: 10\n  rat: 3", 1), "load.rat", "unknown field; the fields here are shape, rate"},
		{"unknown group field", strings.Replace(minimal, "count: 2", "count: 2\n    size: 3", 1), "users[0].size", "unknown field"},
		{"field given twice", strings.Replace(minimal, "rate: 10", "rate: 10\n  rate: 20", 1), "load.rate", "given twice"},
		{"wrong kind", strings.Replace(minimal, "rate: 10", "rate: fast", 1), "load.rate", `want a number, got "fast"`},
		{"bad duration", strings.Replace(minimal, "duration: 5s", "duration: 5 minutes", 1), "load.duration", "want a duration"},
		{"number for a duration", strings.Replace(minimal, "duration: 5s", "duration: 5", 1), "load.duration", "want a duration"},
		{"missing name", strings.Replace(minimal, "name: x", "description: y", 1), "name", "is required"},
		{"bad name", strings.Replace(minimal, "name: x", "name: Steady Run", 1), "name", "lowercase"},
		{"bad target", minimal + "target: graphql\n", "target", `must be requests or login, got "graphql"`},
		{"no users", "name: x\nload: {shape: constant, rate: 1, duration: 1s}\n", "users", "is required"},
		{"zero count", strings.Replace(minimal, "count: 2", "count: 0", 1), "users[0].count", "at least 1"},
		{"bad mode", strings.Replace(minimal, "count: 2", "count: 2\n    mode: bursty", 1), "users[0].mode", `must be open or sequential, got "bursty"`},
		{"burst of a sequential group", strings.Replace(minimal, "count: 2", "count: 2\n    mode: sequential\n    burst: 3", 1), "users[0].burst", "applies to mode open only"},
		{"bad shape", strings.Replace(minimal, "shape: constant", "shape: ramp", 1), "load.shape", `must be one of constant, linear, steps, spike, got "ramp"`},
		{"field of another shape", strings.Replace(minimal, "rate: 10", "rate: 10\n  peak: 50", 1), "load.peak", "does not apply to shape constant"},
		{"negative rate", strings.Replace(minimal, "rate: 10", "rate: -5", 1), "load.rate", "must be above 0, got -5"},
		{"missing duration", strings.Replace(minimal, "duration: 5s", "", 1), "load.duration", "is required for shape constant"},
		{"unknown type", strings.Replace(minimal, "load:", "mix:\n  - type: email\nload:", 1), "mix[0].type", `must be one of echo, sleep, cpu, fail, got "email"`},
		{"param of another type", strings.Replace(minimal, "load:", "mix:\n  - type: echo\n    ms: 5\nload:", 1), "mix[0].ms", "does not apply to type echo"},
		{"param out of range", strings.Replace(minimal, "load:", "mix:\n  - type: sleep\n    ms: 20000\nload:", 1), "mix[0].ms", "must be from 0 to 10000, got 20000"},
		{"param missing", strings.Replace(minimal, "load:", "mix:\n  - type: cpu\nload:", 1), "mix[0].iterations", "is required for type cpu"},
		{"bad group mix", strings.Replace(minimal, "count: 2", "count: 2\n    mix: [{type: fail, times: 11}]", 1), "users[0].mix[0].times", "must be from 0 to 10"},
		{"ratio over 1", minimal + "thresholds: {success_ratio: 1.5}\n", "thresholds.success_ratio", "must be from 0 to 1"},
		{"unknown threshold", minimal + "thresholds: {p95: 1s}\n", "thresholds.p95", "unknown field"},
		{"baseline of no group", minimal + "baseline_without: flood\n", "baseline_without", `names no group of users: "flood"`},
		{"slowdown without baseline", minimal + "thresholds: {max_neighbour_slowdown: 3}\n", "thresholds.max_neighbour_slowdown", "needs baseline_without"},
		{"capacity without steps", minimal + "thresholds: {min_capacity: 100}\n", "thresholds.min_capacity", "applies to shape steps only"},
		{"e2e for logins", minimal + "target: login\nthresholds: {e2e_p99: 1s}\n", "thresholds.e2e_p99", "does not apply to target login"},
		{"spike past the end", strings.Replace(minimal, "shape: constant\n  rate: 10\n  duration: 5s", "shape: spike\n  rate: 10\n  peak: 100\n  spike_at: 4s\n  spike_duration: 2s\n  duration: 5s", 1), "load.spike_duration", "must end within duration"},
		{"steps backwards", strings.Replace(minimal, "shape: constant\n  rate: 10\n  duration: 5s", "shape: steps\n  from: 100\n  to: 50\n  step: 10\n  step_duration: 1s", 1), "load.to", "must be at least from"},
		{"too many workers", minimal + "workers: 40\n", "workers", "from 1 to 16"},
		{"bad status code", minimal + "success_codes: [202, 42]\n", "success_codes[1]", "must be an HTTP status code"},
		{"list for a mapping", strings.Replace(minimal, "load:\n  shape: constant\n  rate: 10\n  duration: 5s", "load: [1, 2]", 1), "load", "want a mapping of fields, got a list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := parse(t, tt.yaml)
			if err == nil {
				t.Fatal("accepted")
			}
			var fe *scenario.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %T %v is not a *FieldError", err, err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "scenarios/x.yaml") || fe.Field != tt.field || !strings.Contains(msg, tt.problem) {
				t.Errorf("error %q: want file scenarios/x.yaml, field %q, problem %q", msg, tt.field, tt.problem)
			}
		})
	}
}

func TestErrorsCarryTheLine(t *testing.T) {
	t.Parallel()
	_, err := parse(t, minimal+"colour: red\n")
	if err == nil || !strings.HasPrefix(err.Error(), "scenarios/x.yaml:10: colour: unknown field") {
		t.Fatalf("error %v: want the line of the field", err)
	}
}

func TestNotYAML(t *testing.T) {
	t.Parallel()
	for name, text := range map[string]string{"empty": "", "broken": "name: [x\n", "two documents": minimal + "---\nname: y\n"} {
		_, err := parse(t, text)
		if err == nil || !strings.HasPrefix(err.Error(), "scenarios/x.yaml") {
			t.Errorf("%s: error %v, want one naming the file", name, err)
		}
	}
}

const chaos = `
name: x
workers: 3
users:
  - group: all
    count: 2
load:
  shape: constant
  rate: 10
  duration: 60s
faults:
  - at: 10s
    action: kill-worker
    worker: 2
    duration: 5s
  - {at: 20s, action: restart-rabbitmq, duration: 3s}
  - {at: 30s, action: stop-workers, duration: 10s}
env:
  service:
    BACKLOG_LIMIT: 2000
    LOG_LEVEL: warn
  worker: {PREFETCH: "64"}
thresholds:
  max_recovery: 20s
  max_rss_mb: 500
  healthz_p99: 100ms
`

func TestFaultsAndEnv(t *testing.T) {
	t.Parallel()
	sc, err := parse(t, chaos)
	if err != nil {
		t.Fatal(err)
	}
	if len(sc.Faults) != 3 || *sc.Faults[0].Worker != 2 || sc.Faults[1].Worker != nil || sc.Faults[2].Duration != 10*time.Second {
		t.Errorf("faults %+v", sc.Faults)
	}
	if got := sc.Faults[0].String(); got != "kill-worker 2 at 10s for 5s" {
		t.Errorf("fault line %q", got)
	}
	if got := strings.Join(scenario.Pairs(sc.Env.Service), " "); got != "BACKLOG_LIMIT=2000 LOG_LEVEL=warn" {
		t.Errorf("service env %q", got)
	}
	if sc.Env.Worker["PREFETCH"] != "64" || !sc.NeedsLocal() {
		t.Errorf("worker env %v", sc.Env.Worker)
	}
	if *sc.Thresholds.MaxRecovery != 20*time.Second || *sc.Thresholds.MaxRSSMB != 500 || *sc.Thresholds.HealthzP99 != 100*time.Millisecond {
		t.Errorf("thresholds %+v", sc.Thresholds)
	}
	// kill-worker's worker defaults to the first
	sc, err = parse(t, strings.Replace(chaos, "    worker: 2\n", "", 1))
	if err != nil || *sc.Faults[0].Worker != 0 {
		t.Fatalf("default worker: %v", err)
	}
	if sc, err := parse(t, minimal); err != nil || sc.NeedsLocal() {
		t.Errorf("a scenario without faults or env needs local mode: %v", err)
	}
}

func TestGroupTarget(t *testing.T) {
	t.Parallel()
	sc, err := parse(t, strings.Replace(minimal, "    count: 2\n", "    count: 2\n  - group: storm\n    count: 5\n    target: login\n", 1))
	if err != nil {
		t.Fatal(err)
	}
	if sc.Users[0].Target != scenario.TargetRequests || sc.Users[1].Target != scenario.TargetLogin || len(sc.Users[1].Mix) != 0 || !sc.MixedTargets() {
		t.Errorf("groups %+v", sc.Users)
	}
}

func TestFaultAndEnvErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, yaml, field, problem string
	}{
		{"unknown action", strings.Replace(chaos, "action: restart-rabbitmq", "action: reboot", 1), "faults[1].action", `must be one of kill-worker, stop-workers, restart-service, restart-rabbitmq, restart-postgres, got "reboot"`},
		{"no action", strings.Replace(chaos, "action: restart-rabbitmq, ", "", 1), "faults[1].action", "is required"},
		{"unknown fault field", strings.Replace(chaos, "duration: 3s}", "duration: 3s, signal: 9}", 1), "faults[1].signal", "unknown field; the fields here are at, action, duration, worker"},
		{"no at", strings.Replace(chaos, "{at: 20s, ", "{", 1), "faults[1].at", "is required"},
		{"at past the attack", strings.Replace(chaos, "at: 30s", "at: 90s", 1), "faults[2].at", "is not within the attack (load.duration 1m0s)"},
		{"ends past the attack", strings.Replace(chaos, "duration: 10s}", "duration: 40s}", 1), "faults[2].duration", "must end within the attack"},
		{"overlapping", strings.Replace(chaos, "duration: 3s}", "duration: 15s}", 1), "faults[2].at", "before the previous fault ends (35s)"},
		{"stop-workers for no time", strings.Replace(chaos, "duration: 10s}", "duration: 0s}", 1), "faults[2].duration", "is required for stop-workers"},
		{"worker out of range", strings.Replace(chaos, "worker: 2", "worker: 3", 1), "faults[0].worker", "must be from 0 to 2 (workers: 3), got 3"},
		{"worker of another action", strings.Replace(chaos, "duration: 3s}", "duration: 3s, worker: 1}", 1), "faults[1].worker", "applies to action kill-worker only"},
		{"kill the only worker for good", strings.Replace(strings.Replace(chaos, "workers: 3", "workers: 1", 1), "    worker: 2\n    duration: 5s", "    duration: 0s", 1), "faults[0].duration", "kills the only worker"},
		{"faults for logins", strings.Replace(chaos, "thresholds:\n  max_recovery: 20s\n  max_rss_mb: 500", "target: login\nthresholds:\n  max_rss_mb: 500", 1), "faults", "apply to target requests only"},
		{"faults with a baseline", strings.Replace(chaos, "    count: 2\n", "    count: 2\n  - group: flood\n    count: 1\n", 1) + "baseline_without: flood\n", "faults", "do not combine with baseline_without"},
		{"faults not a list", strings.Replace(chaos, "faults:\n", "faults: kill\nx:\n", 1), "faults", "want a list"},
		{"bad env name", strings.Replace(chaos, "LOG_LEVEL: warn", "log-level: warn", 1), "env.service.log-level", "must be an environment variable name"},
		{"reserved env", strings.Replace(chaos, "LOG_LEVEL: warn", "LISTEN_ADDR: :4000", 1), "env.service.LISTEN_ADDR", "is set by the bench itself"},
		{"reserved worker env", strings.Replace(chaos, `PREFETCH: "64"`, "WORKER_METRICS_ADDR: \"x\"", 1), "env.worker.WORKER_METRICS_ADDR", "is set by the bench itself"},
		{"env given twice", strings.Replace(chaos, "LOG_LEVEL: warn", "LOG_LEVEL: warn\n    LOG_LEVEL: info", 1), "env.service.LOG_LEVEL", "given twice"},
		{"env value a list", strings.Replace(chaos, "LOG_LEVEL: warn", "LOG_LEVEL: [warn]", 1), "env.service.LOG_LEVEL", "want a value"},
		{"unknown env part", strings.Replace(chaos, "  worker: {", "  workers: {", 1), "env.workers", "unknown field; the fields here are service, worker"},
		{"recovery without faults", minimal + "thresholds: {max_recovery: 10s}\n", "thresholds.max_recovery", "needs faults"},
		{"rss of nothing", strings.Replace(chaos, "max_rss_mb: 500", "max_rss_mb: 0", 1), "thresholds.max_rss_mb", "must be above 0"},
		{"bad group target", strings.Replace(minimal, "count: 2", "count: 2\n    target: ping", 1), "users[0].target", `must be requests or login, got "ping"`},
		{"requests group of a login scenario", strings.Replace(minimal, "count: 2", "count: 2\n    target: requests", 1) + "target: login\n", "users[0].target", "needs the scenario's target requests"},
		{"only login groups", strings.Replace(minimal, "count: 2", "count: 2\n    target: login", 1), "users", "every group has target login"},
		{"mix of a login group", strings.Replace(minimal, "count: 2", "count: 2\n    target: login\n    mix: [{type: echo}]\n  - group: b\n    count: 1", 1), "users[0].mix", "does not apply to target login"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := parse(t, tt.yaml)
			if err == nil {
				t.Fatal("accepted")
			}
			var fe *scenario.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %T %v is not a *FieldError", err, err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "scenarios/x.yaml:") || fe.Field != tt.field || !strings.Contains(msg, tt.problem) {
				t.Errorf("error %q: want file scenarios/x.yaml with a line, field %q, problem %q", msg, tt.field, tt.problem)
			}
		})
	}
}

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

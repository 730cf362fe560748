package runner_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/docket/docket/bench/internal/fakedocket"
	"github.com/docket/docket/bench/report"
	"github.com/docket/docket/bench/runner"
	"github.com/docket/docket/bench/scenario"
	"github.com/docket/docket/bench/verify"
)

// scenarioOf parses a scenario written in the test.
func scenarioOf(t *testing.T, yaml string) *scenario.Scenario {
	t.Helper()
	sc, err := scenario.Parse("test.yaml", strings.NewReader(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func runAgainst(t *testing.T, srv *fakedocket.Server, sc *scenario.Scenario) *report.Report {
	t.Helper()
	var log strings.Builder
	rep, err := runner.Run(context.Background(), runner.Config{
		Scenario:    sc,
		Target:      srv.URL,
		OutDir:      t.TempDir(),
		MetricsAddr: "127.0.0.1:0",
		Log:         &log,
	})
	if err != nil {
		t.Fatalf("run: %v\nlog:\n%s", err, log.String())
	}
	var text strings.Builder
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	t.Logf("report:\n%s", text.String())
	return rep
}

const small = `
name: small
users:
  - group: seq
    count: 3
    mode: sequential
  - group: open
    count: 3
mix:
  - type: echo
    weight: 3
  - type: sleep
    ms: 1
load:
  shape: constant
  rate: 100
  duration: 2s
drain_timeout: 3s
thresholds:
  http_p99: 2s
  e2e_p99: 5s
  success_ratio: 0.99
`

// The whole run against a fake API that keeps the contract: it passes and
// leaves every result file.
func TestRunPassesAgainstACorrectServer(t *testing.T) {
	srv := fakedocket.Start(fakedocket.Faults{OverloadLogins: 3})
	defer srv.Close()
	rep := runAgainst(t, srv, scenarioOf(t, small))
	if !rep.Pass {
		t.Fatalf("run failed: %+v", rep.Thresholds)
	}
	if rep.Verify == nil || !rep.Verify.OK() || rep.Verify.Accepted < 100 {
		t.Fatalf("verify: %+v", rep.Verify)
	}
	if rep.Verify.Predecessors == 0 {
		t.Error("the happens-before check had no pair to check")
	}
	if p := rep.Processing; p == nil || !p.Drained || p.Finished != rep.Verify.Accepted || p.EndToEnd.Count == 0 {
		t.Fatalf("processing: %+v", rep.Processing)
	}
	if rep.Attacker.TargetRate != 100 || rep.Attacker.AchievedRate == 0 || rep.Run.Mode != "remote" {
		t.Errorf("attacker %+v mode %s", rep.Attacker, rep.Run.Mode)
	}
	if len(rep.Groups) != 2 {
		t.Errorf("groups: %+v", rep.Groups)
	}
	for _, f := range []string{"report.json", "report.txt", runner.PlotFile, runner.ResultsFile, runner.RecordsFile, runner.ListingFile} {
		if fi, err := os.Stat(filepath.Join(rep.Run.Dir, f)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	// results.bin is vegeta's own format, in send order per attack.
	f, err := os.Open(filepath.Join(rep.Run.Dir, runner.ResultsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := vegeta.NewDecoder(f)
	var prev vegeta.Result
	n := 0
	for {
		var res vegeta.Result
		if err := dec.Decode(&res); err != nil {
			break
		}
		if n > 0 && (res.Timestamp.Before(prev.Timestamp) || res.Seq != prev.Seq+1) {
			t.Fatalf("result %d out of order: %v/%d after %v/%d", n, res.Timestamp, res.Seq, prev.Timestamp, prev.Seq)
		}
		prev = res
		n++
	}
	if n != rep.HTTP.Requests {
		t.Errorf("%s holds %d results, want %d", runner.ResultsFile, n, rep.HTTP.Requests)
	}
	back, err := report.Read(rep.Run.Dir)
	if err != nil || back.Verify.Accepted != rep.Verify.Accepted {
		t.Fatalf("read back: %v", err)
	}
	// The saved records and listing verify the same way again.
	records, listings, err := runner.ReadSaved(rep.Run.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if again := verify.Verify(runner.VerifyInput(records, listings)); !again.OK() || again.Accepted != rep.Verify.Accepted {
		t.Fatalf("re-verified: %+v", again)
	}
}

// A server that breaks the contract fails the run, and the report says how.
func TestRunFailsAgainstABrokenServer(t *testing.T) {
	tests := []struct {
		name   string
		faults fakedocket.Faults
		kind   verify.Kind
	}{
		{"never finishes seq 3", fakedocket.Faults{NeverFinishSeq: 3}, verify.Lost},
		{"skips seq 3", fakedocket.Faults{SkipSeq: 3}, verify.Gap},
		{"finishes seq 2 before seq 1", fakedocket.Faults{FinishOutOfOrder: true}, verify.Order},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakedocket.Start(tt.faults)
			defer srv.Close()
			rep := runAgainst(t, srv, scenarioOf(t, small))
			if rep.Pass {
				t.Fatal("the run passed")
			}
			if rep.Verify.Counts.Of(tt.kind) == 0 || len(rep.Verify.Examples[tt.kind]) == 0 {
				t.Fatalf("no %s found: %+v", tt.kind, rep.Verify)
			}
		})
	}
}

func TestRunStepsFindsCapacity(t *testing.T) {
	srv := fakedocket.Start(fakedocket.Faults{})
	defer srv.Close()
	sc := scenarioOf(t, `
name: steps
users:
  - group: users
    count: 4
load:
  shape: steps
  from: 20
  to: 60
  step: 20
  step_duration: 1s
  step_drain: 3s
thresholds:
  success_ratio: 0.99
  min_capacity: 40
`)
	rep := runAgainst(t, srv, sc)
	if len(rep.Steps) != 3 || rep.Capacity == nil || rep.Capacity.Rate != 60 || rep.Capacity.Bound != "at_least" {
		t.Fatalf("steps %+v capacity %+v", rep.Steps, rep.Capacity)
	}
	if !rep.Pass {
		t.Errorf("thresholds %+v", rep.Thresholds)
	}

	// A threshold the first step breaks: capacity 0, and min_capacity fails.
	slow := fakedocket.Start(fakedocket.Faults{Delay: 20 * 1e6})
	defer slow.Close()
	sc.Thresholds.HTTPP99 = ptr(scenario.DefaultStepDrain / 3000) // 10ms
	rep = runAgainst(t, slow, sc)
	if len(rep.Steps) != 1 || rep.Steps[0].Held || rep.Capacity.Rate != 0 || rep.Capacity.Bound != "limit" || rep.Pass {
		t.Fatalf("steps %+v capacity %+v pass %v", rep.Steps, rep.Capacity, rep.Pass)
	}
}

func TestRunBaselineWithout(t *testing.T) {
	srv := fakedocket.Start(fakedocket.Faults{})
	defer srv.Close()
	rep := runAgainst(t, srv, scenarioOf(t, `
name: nn
users:
  - group: light
    count: 3
    mode: sequential
  - group: flood
    count: 1
    share: 2
    mix:
      - type: sleep
        ms: 1
load:
  shape: constant
  rate: 90
  duration: 1s
baseline_without: flood
thresholds:
  max_neighbour_slowdown: 1000
`))
	if len(rep.Attacks) != 1 || len(rep.Groups) != 2 {
		t.Fatalf("attacks %+v groups %+v", rep.Attacks, rep.Groups)
	}
	light := rep.Groups[0]
	if light.Baseline == nil || light.Baseline.Requests < 15 || light.Slowdown <= 0 {
		t.Fatalf("light: %+v baseline %+v", light, light.Baseline)
	}
	if rep.Groups[1].Baseline != nil {
		t.Error("the flood group has a baseline")
	}
	// Baseline requests are verified too.
	if rep.Verify.Accepted < rep.HTTP.Requests+light.Baseline.Requests-1 {
		t.Errorf("verified %d accepted, want the baseline's too", rep.Verify.Accepted)
	}
}

func TestRunLoginTarget(t *testing.T) {
	srv := fakedocket.Start(fakedocket.Faults{})
	defer srv.Close()
	rep := runAgainst(t, srv, scenarioOf(t, `
name: logins
target: login
users:
  - group: users
    count: 3
load:
  shape: constant
  rate: 30
  duration: 1s
success_codes: [200, 503]
thresholds:
  success_ratio: 0.99
`))
	if rep.Verify != nil || rep.Processing != nil || !rep.Pass || rep.HTTP.StatusCodes["200"] < 15 {
		t.Fatalf("report: %+v", rep)
	}
}

func TestRunRemoteNeedsAnAnsweringTarget(t *testing.T) {
	_, err := runner.Run(context.Background(), runner.Config{
		Scenario: scenarioOf(t, small), Target: "http://127.0.0.1:1", OutDir: t.TempDir(),
	})
	if err == nil || !strings.Contains(err.Error(), "healthz") {
		t.Fatalf("err = %v, want one naming /healthz", err)
	}
}

func ptr[T any](v T) *T { return &v }

// A login group storms beside a request group: the HTTP figures and the
// verifier are the requests'; the storm has its own line with its codes;
// /healthz and the backlog are watched throughout.
func TestRunMixedTargets(t *testing.T) {
	srv := fakedocket.Start(fakedocket.Faults{})
	defer srv.Close()
	rep := runAgainst(t, srv, scenarioOf(t, `
name: storm
users:
  - group: requests
    count: 3
  - group: storm
    count: 3
    target: login
    share: 2
load:
  shape: constant
  rate: 60
  duration: 1s
thresholds:
  success_ratio: 0.99
  healthz_p99: 1s
`))
	if !rep.Pass || rep.Verify == nil || rep.Verify.Accepted != rep.HTTP.StatusCodes["202"] || rep.HTTP.StatusCodes["200"] != 0 {
		t.Fatalf("report: %+v", rep)
	}
	if len(rep.Groups) != 2 || rep.Groups[1].StatusCodes["200"] < 30 || rep.Groups[0].StatusCodes["202"] < 15 {
		t.Errorf("groups %+v", rep.Groups)
	}
	if rep.Healthz == nil || rep.Healthz.Probes < 5 || rep.Backlog == nil || rep.Backlog.Samples < 2 || rep.Backlog.Last != 0 {
		t.Errorf("healthz %+v backlog %+v", rep.Healthz, rep.Backlog)
	}
	if len(rep.Processes) != 0 || len(rep.Faults) != 0 {
		t.Errorf("remote mode has processes %v or faults %v", rep.Processes, rep.Faults)
	}
}

// Faults and env need the processes the bench starts: against a server
// that already answers, the run refuses before anything is sent.
func TestRunFaultsNeedLocalProcesses(t *testing.T) {
	srv := fakedocket.Start(fakedocket.Faults{})
	defer srv.Close()
	sc := scenarioOf(t, strings.Replace(small, "drain_timeout: 3s", "drain_timeout: 3s\nfaults: [{at: 1s, action: stop-workers, duration: 500ms}]", 1))
	_, err := runner.Run(context.Background(), runner.Config{Scenario: sc, Target: srv.URL, OutDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "test.yaml has faults or env: they need processes the bench starts itself") {
		t.Fatalf("err = %v", err)
	}
	posts := 0
	srv.Posts.Range(func(_, _ any) bool { posts++; return true })
	if posts != 0 {
		t.Errorf("%d users sent requests before the refusal", posts)
	}
}

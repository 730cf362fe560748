package report_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docket/docket/bench/api"
	"github.com/docket/docket/bench/attack"
	"github.com/docket/docket/bench/report"
	"github.com/docket/docket/bench/scenario"
	"github.com/docket/docket/bench/verify"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var t0 = time.Date(2026, 11, 29, 7, 0, 0, 0, time.UTC)

// fixture is a report with every section filled.
func fixture() *report.Report {
	return &report.Report{
		Schema: report.Schema,
		Scenario: report.ScenarioInfo{
			Name: "steady", File: "scenarios/steady.yaml", Description: "60 s at 1000 req/s from 200 users",
			Target: "requests", Users: 200, Groups: "users: 200 open (share 1, burst 1)", Shape: "constant", Load: "constant 1000/s for 1m0s, at most 5000 in flight, timeout 30s",
			Mix: "echo x1 (64 B)",
		},
		Run: report.RunInfo{
			ID: "0a1b2c3d", StartedAt: t0, FinishedAt: t0.Add(90 * time.Second), TargetURL: "http://127.0.0.1:3001",
			Mode: "local-started", Workers: 1, Dir: "bench/results/20261129-070000-steady", Version: "v1.2.3", SetupMS: 14250,
		},
		Attacker: report.Attacker{TargetRate: 1000, AchievedRate: 999.8, KeptRate: true, PeakInFlight: 37, MaxInFlight: 5000, CPUCores: 0.41},
		Attacks: []attack.Stats{{
			Label: "main", Schedule: "1000/s for 1m0s", Expected: 60000, Sent: 59990, SentOnTime: 59990,
			TargetRate: 1000, AchievedRate: 999.8, KeptRate: true, PeakInFlight: 37, MaxInFlight: 5000,
		}},
		HTTP: report.HTTP{
			Requests:     59990,
			Latency:      report.Latency{Count: 59990, Mean: 2.1, P50: 1.4, P90: 3.2, P99: 12.5, P999: 48, Max: 230},
			StatusCodes:  map[string]int{"202": 59980, "429": 7, "0": 3},
			Errors:       map[string]int{"Post \"http://127.0.0.1:3001/requests\": context deadline exceeded": 3},
			SuccessCodes: []int{202},
			SuccessRatio: 0.99983, OKPerSec: 999.6, DurationMS: 60010,
		},
		Processing: &report.Processing{
			Accepted: 59980, Finished: 59980, Done: 59980, ProcessedPerSec: 998.7,
			EndToEnd: report.Latency{Count: 59980, P50: 8, P99: 25.5, Max: 812}, Drained: true, DrainMS: 1200,
		},
		Verify: &verify.Report{
			Accepted: 59980, Finished: 59980, Done: 59980, Listed: 59982, Ambiguous: 3, UnknownExtra: 2, Predecessors: 59000,
			Counts: verify.Counts{}, Examples: map[verify.Kind][]string{},
		},
		Thresholds: []report.Threshold{
			{Name: "http_p99", Op: "<=", Limit: 250, Actual: 12.5, Unit: "ms", Pass: true},
			{Name: "e2e_p99", Op: "<=", Limit: 2000, Actual: 25.5, Unit: "ms", Pass: true},
			{Name: "success_ratio", Op: ">=", Limit: 0.999, Actual: 0.99983, Unit: "ratio", Pass: true},
			{Name: "throughput", Op: ">=", Limit: 950, Actual: 999.6, Unit: "per_sec", Pass: true},
			{Name: "max_violations", Op: "<=", Limit: 0, Actual: 0, Unit: "count", Pass: true},
			{Name: "max_lost", Op: "<=", Limit: 0, Actual: 0, Unit: "count", Pass: true},
		},
		Pass: true,
	}
}

// failing is a ramp report that found problems.
func failing() *report.Report {
	r := fixture()
	r.Scenario.Name, r.Scenario.Shape = "ramp", "steps"
	r.Attacker = report.Attacker{TargetRate: 1250, AchievedRate: 1190, PeakInFlight: 5000, MaxInFlight: 5000, LimitedBy: "in_flight_ceiling"}
	r.Steps = []report.Step{
		{Rate: 1000, AchievedRate: 999, KeptRate: true, Requests: 15000, SuccessRatio: 1, OKPerSec: 999, HTTPP99: 9, E2EP99: 30, Drained: true, Held: true},
		{Rate: 1500, AchievedRate: 1381, LimitedBy: "in_flight_ceiling", Requests: 20715, SuccessRatio: 0.97, OKPerSec: 1340, HTTPP99: 2900, E2EP99: 4100, Drained: false,
			Breaches: []string{"http_p99 2.90s > 250ms", "the backlog did not drain within step_drain"}},
	}
	r.Capacity = &report.Capacity{Rate: 1000, Bound: "limit", Note: "1500/s broke: http_p99 2.90s > 250ms"}
	r.Processing.Drained = false
	r.Processing.Finished = 59970
	r.Verify.Counts = verify.Counts{Lost: 10, Order: 1}
	r.Verify.Examples = map[verify.Kind][]string{
		verify.Lost:  {"user bench-0a1b2c3d-7: id 5f0e... (seq 31) is still queued after the drain"},
		verify.Order: {"user bench-0a1b2c3d-9: seq 12 finished at 07:00:31.000100, not after seq 11 at 07:00:31.000200"},
	}
	r.Groups = []report.Group{
		{Name: "light", Users: 50, Mode: "sequential", Requests: 6000, HTTPP99: 4, E2EP50: 6, E2EP99: 40, E2EMax: 90, StatusCodes: map[string]int{"202": 6000},
			Baseline: &report.Group{Name: "light", Users: 50, Mode: "sequential", Requests: 6000, HTTPP99: 3, E2EP50: 5, E2EP99: 20, E2EMax: 45}, Slowdown: 2},
		{Name: "flood", Users: 1, Mode: "open", Requests: 12000, HTTPP99: 5, E2EP50: 9000, E2EP99: 31000, E2EMax: 33000, StatusCodes: map[string]int{"202": 11990, "429": 10}},
	}
	w := 1
	first, recovered := 850.0, 4500.0
	r.Faults = []report.Fault{
		{Action: "kill-worker", Worker: &w, AtMS: 20000, DurationMS: 5000, StartedAt: t0.Add(20 * time.Second), EndedAt: t0.Add(25 * time.Second),
			DownMS: 5010, FirstAcceptMS: &first, BacklogBefore: 120, BacklogPeak: 2400, BacklogNormal: 280, RecoveredMS: &recovered},
		{Action: "restart-rabbitmq", AtMS: 40000, DurationMS: 5000, StartedAt: t0.Add(40 * time.Second), EndedAt: t0.Add(51 * time.Second),
			DownMS: 11000, Failed: 12, BacklogBefore: 100, BacklogPeak: 9000, BacklogNormal: 250, Error: "end: rabbitmq did not start within 2m0s"},
	}
	r.Healthz = &report.Healthz{Probes: 900, Failed: 2, Latency: report.Latency{Count: 898, Mean: 0.9, P50: 0.6, P90: 1.2, P99: 4.5, P999: 30, Max: 41}}
	r.Backlog = &report.Backlog{Samples: 180, Peak: 9000, Last: 0}
	r.Processes = []report.Process{
		{Name: "service", PeakRSSMB: 61.2, FirstRSSMB: 30.1, LastRSSMB: 48.7, Samples: 180, Starts: 1},
		{Name: "worker 1", PeakRSSMB: 40.5, FirstRSSMB: 22, LastRSSMB: 35.25, Samples: 170, Starts: 2},
	}
	r.Thresholds[4] = report.Threshold{Name: "max_violations", Op: "<=", Limit: 0, Actual: 1, Unit: "count"}
	r.Thresholds[5] = report.Threshold{Name: "max_lost", Op: "<=", Limit: 0, Actual: 10, Unit: "count"}
	r.Pass = false
	r.Notes = []string{"the attacker fell behind its target rate (in_flight_ceiling): read the figures as the load actually sent, not the load asked for"}
	return r
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./bench/report -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test ./bench/report -update rewrites it):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestTextGolden(t *testing.T) {
	for name, r := range map[string]*report.Report{"report.golden.txt": fixture(), "report-failing.golden.txt": failing()} {
		var b bytes.Buffer
		if err := r.WriteText(&b); err != nil {
			t.Fatal(err)
		}
		golden(t, name, b.Bytes())
	}
}

// report.json's schema is stable: the golden file is its documented shape.
func TestJSONGolden(t *testing.T) {
	b, err := json.MarshalIndent(failing(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "report.golden.json", append(b, '\n'))
}

func TestWriteAndRead(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r := failing()
	if err := r.Write(dir); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, filepath.Join(dir, "report.json")} {
		back, err := report.Read(p)
		if err != nil {
			t.Fatal(err)
		}
		if back.Verify.Counts != r.Verify.Counts || back.Capacity.Rate != 1000 || len(back.Groups) != 2 {
			t.Errorf("read back %+v", back)
		}
	}
	if txt, err := os.ReadFile(filepath.Join(dir, "report.txt")); err != nil || !strings.Contains(string(txt), "RESULT FAIL") {
		t.Errorf("report.txt: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), []byte(`{"schema":"other/v9"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := report.Read(dir); err == nil || !strings.Contains(err.Error(), "other/v9") {
		t.Errorf("a report of another schema: err = %v", err)
	}
}

func TestLatencies(t *testing.T) {
	t.Parallel()
	var ds []time.Duration
	for i := 1000; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	l := report.Latencies(ds)
	want := report.Latency{Count: 1000, Mean: 500.5, P50: 500, P90: 900, P99: 990, P999: 999, Max: 1000}
	if l != want {
		t.Errorf("got %+v, want %+v", l, want)
	}
	if l := report.Latencies([]time.Duration{7 * time.Millisecond}); l.P50 != 7 || l.P999 != 7 || l.Max != 7 {
		t.Errorf("one sample: %+v", l)
	}
	if l := report.Latencies(nil); l != (report.Latency{}) {
		t.Errorf("no samples: %+v", l)
	}
}

// The same error of many requests is one kind, whatever request it was.
func TestErrorsCountedByKind(t *testing.T) {
	t.Parallel()
	var records []*attack.Record
	for n := range 15 {
		records = append(records, &attack.Record{Code: 0, Sent: t0, Received: t0,
			Error: fmt.Sprintf(`Post "http://127.0.0.1:3001/requests#%d": connect: connection refused`, n+1)})
	}
	h := report.HTTPFigures(records, []int{202})
	if len(h.Errors) != 1 || h.Errors[`Post "http://127.0.0.1:3001/requests": connect: connection refused`] != 15 {
		t.Errorf("errors %v", h.Errors)
	}
}

func TestFigures(t *testing.T) {
	t.Parallel()
	rec := func(code int, sent, took int, id string) *attack.Record {
		s := t0.Add(time.Duration(sent) * time.Millisecond)
		return &attack.Record{Code: code, Sent: s, Received: s.Add(time.Duration(took) * time.Millisecond), ID: id, Group: "g"}
	}
	records := []*attack.Record{rec(202, 0, 10, "a"), rec(202, 500, 20, "b"), rec(429, 900, 5, ""), rec(0, 990, 10, "")}
	records[3].Error = "timeout"
	h := report.HTTPFigures(records, []int{202})
	if h.Requests != 4 || h.SuccessRatio != 0.5 || h.StatusCodes["202"] != 2 || h.StatusCodes["0"] != 1 || h.Errors["timeout"] != 1 {
		t.Errorf("http %+v", h)
	}
	if math.Abs(h.OKPerSec-2) > 1e-9 || h.DurationMS != 1000 {
		t.Errorf("2 accepted over 1s: ok/s %v duration %v", h.OKPerSec, h.DurationMS)
	}
	at := func(ms int) *time.Time { v := t0.Add(time.Duration(ms) * time.Millisecond); return &v }
	rows := map[string]api.Row{
		"a": {ID: "a", Status: "done", AcceptedAt: t0, ProcessedAt: at(100)},
		"b": {ID: "b", Status: "failed", AcceptedAt: *at(500), ProcessedAt: at(1000)},
	}
	p := report.ProcessingFigures(records, rows)
	if p.Accepted != 2 || p.Finished != 2 || p.Done != 1 || p.Failed != 1 || p.EndToEnd.Max != 500 || p.EndToEnd.P50 != 100 {
		t.Errorf("processing %+v", p)
	}
	if math.Abs(p.ProcessedPerSec-2) > 1e-9 {
		t.Errorf("2 finished between the first accept and the last finish (1s): %v/s", p.ProcessedPerSec)
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	d := func(s string) *time.Duration { v, _ := time.ParseDuration(s); return &v }
	f := func(v float64) *float64 { return &v }
	zero := 0
	th := scenario.Thresholds{HTTPP99: d("250ms"), E2EP99: d("1s"), SuccessRatio: f(0.999), Throughput: f(900),
		ProcessedThroughput: f(900), MaxViolations: &zero, MaxLost: &zero}

	r := fixture()
	report.Check(th, false, r)
	if !r.Pass || len(r.Thresholds) != 7 {
		t.Fatalf("want 7 thresholds, all passed: %+v", r.Thresholds)
	}
	r = fixture()
	th.HTTPP99 = d("10ms") // the fixture's p99 is 12.5ms
	report.Check(th, false, r)
	failed := map[string]bool{}
	for _, c := range r.Thresholds {
		if !c.Pass {
			failed[c.Name] = true
		}
	}
	if r.Pass || !failed["http_p99"] || len(failed) != 1 {
		t.Errorf("failed %v", failed)
	}

	// No verifier result (a run cut short) fails the verifier thresholds.
	r = fixture()
	r.Verify = nil
	report.Check(scenario.Thresholds{MaxLost: &zero}, false, r)
	if r.Pass {
		t.Error("passed without a verifier result")
	}

	// In a steps run, latency thresholds judge the steps, not the run.
	r = failing()
	report.Check(scenario.Thresholds{HTTPP99: d("1ms"), MinCapacity: f(1000)}, true, r)
	if !r.Pass || len(r.Thresholds) != 1 {
		t.Errorf("steps: %+v", r.Thresholds)
	}
}

func TestCheckFaultsAndHealth(t *testing.T) {
	t.Parallel()
	d := func(s string) *time.Duration { v, _ := time.ParseDuration(s); return &v }
	f := func(v float64) *float64 { return &v }
	actual := func(r *report.Report, name string) (float64, bool) {
		for _, th := range r.Thresholds {
			if th.Name == name {
				return th.Actual, th.Pass
			}
		}
		t.Fatalf("no threshold %s in %+v", name, r.Thresholds)
		return 0, false
	}
	th := scenario.Thresholds{MaxRecovery: d("10s"), MaxRSSMB: f(100), HealthzP99: d("5ms")}

	r := failing() // one fault recovered in 4.5s, one never (and its restart failed)
	report.Check(th, false, r)
	if v, ok := actual(r, "max_recovery"); ok || v < 1e17 {
		t.Errorf("max_recovery %v pass %v: a fault that never recovered must fail", v, ok)
	}
	if v, ok := actual(r, "max_rss_mb"); !ok || v != 61.2 {
		t.Errorf("max_rss_mb %v pass %v", v, ok)
	}
	if v, ok := actual(r, "healthz_p99"); !ok || v != 4.5 {
		t.Errorf("healthz_p99 %v pass %v", v, ok)
	}

	r = failing()
	r.Faults = r.Faults[:1]
	report.Check(th, false, r)
	if v, ok := actual(r, "max_recovery"); !ok || v != 4500 {
		t.Errorf("max_recovery %v pass %v", v, ok)
	}

	// Not measured: fails.
	r = fixture()
	report.Check(th, false, r)
	for _, name := range []string{"max_recovery", "max_rss_mb", "healthz_p99"} {
		if _, ok := actual(r, name); ok {
			t.Errorf("%s passed without a measurement", name)
		}
	}
}

func TestStepBreaches(t *testing.T) {
	t.Parallel()
	d := func(s string) *time.Duration { v, _ := time.ParseDuration(s); return &v }
	f := func(v float64) *float64 { return &v }
	th := scenario.Thresholds{HTTPP99: d("250ms"), E2EP99: d("2s"), SuccessRatio: f(0.99), Throughput: f(100)}
	ok := report.Step{Rate: 100, HTTPP99: 5, E2EP99: 50, SuccessRatio: 1, OKPerSec: 100, Drained: true}
	if b := report.StepBreaches(th, ok); len(b) != 0 {
		t.Errorf("a good step broke %v", b)
	}
	bad := report.Step{Rate: 100, HTTPP99: 300, E2EP99: 50, SuccessRatio: 0.5, OKPerSec: 50, Drained: false}
	b := strings.Join(report.StepBreaches(th, bad), "; ")
	for _, want := range []string{"http_p99 300ms > 250ms", "did not drain", "success_ratio 0.5000 < 0.9900", "throughput 50.0/s < 100.0/s"} {
		if !strings.Contains(b, want) {
			t.Errorf("breaches %q lack %q", b, want)
		}
	}
}

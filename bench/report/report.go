// Package report holds the bench's report: its JSON schema (report.json,
// documented field by field in bench/README.md), the figures computed from
// the records and listings of a run, the threshold checks, the text table
// printed at the end of a run, and the comparison of two reports.
//
// Times in the schema are milliseconds (fields ending _ms), rates are per
// second (_per_sec, _rate), ratios are 0..1. Fields are only ever added to a
// schema version; a change of meaning gets a new Schema string.
package report

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/docket/docket/bench/attack"
	"github.com/docket/docket/bench/verify"
)

// Schema names this version of report.json.
const Schema = "docket-bench-report/v1"

// Report is one run's report.
type Report struct {
	Schema   string       `json:"schema"`
	Scenario ScenarioInfo `json:"scenario"`
	Run      RunInfo      `json:"run"`
	// Attacker says whether the bench sent the load it meant to, over all
	// measured attacks (baseline excluded).
	Attacker Attacker `json:"attacker"`
	// Attacks has one entry per vegeta attack (main, baseline, step-N).
	Attacks []attack.Stats `json:"attacks"`
	// HTTP holds the client-side figures of the measured attacks.
	HTTP HTTP `json:"http"`
	// Processing holds the server-side figures (requests target only).
	Processing *Processing `json:"processing,omitempty"`
	// Verify is the verifier's finding (requests target only).
	Verify *verify.Report `json:"verify,omitempty"`
	// Steps has one entry per step of a steps scenario.
	Steps []Step `json:"steps,omitempty"`
	// Capacity is the highest step rate that held (steps only).
	Capacity *Capacity `json:"capacity,omitempty"`
	// Groups has per-group figures, with the baseline run's beside them
	// when the scenario has baseline_without.
	Groups []Group `json:"groups,omitempty"`
	// Faults has one entry per fault injected (scenario faults).
	Faults []Fault `json:"faults,omitempty"`
	// Healthz is GET /healthz's latency, probed every 100 ms while the
	// measured attacks and the drain ran.
	Healthz *Healthz `json:"healthz,omitempty"`
	// Backlog sums up the service's docket_backlog, sampled every 500 ms
	// over the same time.
	Backlog *Backlog `json:"backlog,omitempty"`
	// Processes has the resident memory of each process the bench started
	// (local-started mode), sampled every 500 ms.
	Processes  []Process   `json:"processes,omitempty"`
	Thresholds []Threshold `json:"thresholds"`
	// Pass is true when every threshold passed.
	Pass  bool     `json:"pass"`
	Notes []string `json:"notes,omitempty"`
}

// ScenarioInfo describes the scenario that ran.
type ScenarioInfo struct {
	Name        string `json:"name"`
	File        string `json:"file"`
	Description string `json:"description"`
	Target      string `json:"target"`
	Users       int    `json:"users"`
	Groups      string `json:"groups"`
	Shape       string `json:"shape"`
	Load        string `json:"load"`
	Mix         string `json:"mix,omitempty"`
}

// RunInfo describes the run.
type RunInfo struct {
	ID         string    `json:"id"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	TargetURL  string    `json:"target_url"`
	// Mode is local-started (the bench started service and workers),
	// local-running (it found them running) or remote.
	Mode    string  `json:"mode"`
	Workers int     `json:"workers,omitempty"`
	Dir     string  `json:"dir"`
	Version string  `json:"bench_version"`
	SetupMS float64 `json:"setup_ms"`
}

// Attacker sums up the attacker's pacing.
type Attacker struct {
	TargetRate   float64 `json:"target_rate"`
	AchievedRate float64 `json:"achieved_rate"`
	KeptRate     bool    `json:"kept_rate"`
	PeakInFlight int     `json:"peak_in_flight"`
	MaxInFlight  int     `json:"max_in_flight"`
	// LimitedBy is empty when the rate was kept, else in_flight_ceiling,
	// sequential_users or attacker (the bench itself could not send faster:
	// not a server limit).
	LimitedBy string `json:"limited_by,omitempty"`
	// CPUCores is the CPU the bench used while attacking, in cores.
	CPUCores float64 `json:"bench_cpu_cores"`
}

// Latency is a latency distribution, in milliseconds. Percentiles are exact
// (nearest rank over every sample).
type Latency struct {
	Count int     `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
}

// HTTP holds client-side figures.
type HTTP struct {
	Requests int `json:"requests"`
	// Latency is from send to the end of the answer, all status codes.
	Latency Latency `json:"latency"`
	// StatusCodes counts answers by code; "0" is no answer (see Errors).
	StatusCodes map[string]int `json:"status_codes"`
	// Errors counts transport errors (timeouts, resets) by message, up to 10.
	Errors map[string]int `json:"errors,omitempty"`
	// SuccessCodes are the codes that count as success.
	SuccessCodes []int   `json:"success_codes"`
	SuccessRatio float64 `json:"success_ratio"`
	// OKPerSec is 2xx answers per second of attack: accepted/s for the
	// requests target, logins/s for login.
	OKPerSec   float64 `json:"ok_per_sec"`
	DurationMS float64 `json:"duration_ms"`
}

// Processing holds figures from the server's listing, on the server's
// clock: end-to-end is processed_at − accepted_at of each accepted request.
type Processing struct {
	Accepted int `json:"accepted"`
	Finished int `json:"finished"`
	Done     int `json:"done"`
	Failed   int `json:"failed"`
	// ProcessedPerSec is finished requests per second between the first
	// accept and the last finish.
	ProcessedPerSec float64 `json:"processed_per_sec"`
	EndToEnd        Latency `json:"e2e"`
	Drained         bool    `json:"drained"`
	DrainMS         float64 `json:"drain_ms"`
}

// Step is one step of a steps scenario.
type Step struct {
	Rate         float64  `json:"rate"`
	AchievedRate float64  `json:"achieved_rate"`
	KeptRate     bool     `json:"kept_rate"`
	LimitedBy    string   `json:"limited_by,omitempty"`
	Requests     int      `json:"requests"`
	SuccessRatio float64  `json:"success_ratio"`
	OKPerSec     float64  `json:"ok_per_sec"`
	HTTPP99      float64  `json:"http_p99_ms"`
	E2EP99       float64  `json:"e2e_p99_ms"`
	Drained      bool     `json:"drained"`
	Held         bool     `json:"held"`
	Breaches     []string `json:"breaches,omitempty"`
}

// Capacity is what a steps scenario found.
type Capacity struct {
	// Rate is the highest step rate that held; 0 if none did.
	Rate float64 `json:"rate"`
	// Bound says how to read Rate: "limit" (the next step broke a
	// threshold), "at_least" (no step broke: raise load.to) or
	// "attacker_limited" (the bench could not send the next step's rate:
	// the server's limit is at least Rate).
	Bound string `json:"bound"`
	Note  string `json:"note"`
}

// Group holds one group's figures.
type Group struct {
	Name     string  `json:"name"`
	Users    int     `json:"users"`
	Mode     string  `json:"mode"`
	Requests int     `json:"requests"`
	HTTPP99  float64 `json:"http_p99_ms"`
	E2EP50   float64 `json:"e2e_p50_ms"`
	E2EP99   float64 `json:"e2e_p99_ms"`
	E2EMax   float64 `json:"e2e_max_ms"`
	// StatusCodes counts the group's answers by code ("0": no answer).
	StatusCodes map[string]int `json:"status_codes,omitempty"`
	// Baseline holds the same figures from the run without the flood group;
	// nil when the group did not run in the baseline or there was none.
	Baseline *Group `json:"baseline,omitempty"`
	// Slowdown is E2EP99 over the baseline's E2EP99.
	Slowdown float64 `json:"slowdown,omitempty"`
}

// Fault is one injected fault and how the system recovered from it.
type Fault struct {
	// Action is the scenario's action; Worker the worker killed (from 0).
	Action string `json:"action"`
	Worker *int   `json:"worker,omitempty"`
	// AtMS and DurationMS are the scenario's at and duration.
	AtMS       float64 `json:"at_ms"`
	DurationMS float64 `json:"duration_ms"`
	// StartedAt is when the fault began, EndedAt when it was undone (the
	// process or server started again); DownMS is the time between.
	StartedAt time.Time `json:"started_at"`
	EndedAt   time.Time `json:"ended_at"`
	DownMS    float64   `json:"down_ms"`
	// FirstAcceptMS is the time from the fault's end to the first 202
	// received after it; null if none came.
	FirstAcceptMS *float64 `json:"first_202_after_ms"`
	// Failed counts the requests sent from the fault's start to that first
	// 202 that got no 202 (refused, or no answer).
	Failed int `json:"failed"`
	// BacklogBefore is the highest docket_backlog in the 5 s before the
	// fault; BacklogPeak the highest from its start to its recovery;
	// BacklogNormal = before x 1.5 + 100, the level that counts as recovered.
	BacklogBefore float64 `json:"backlog_before"`
	BacklogPeak   float64 `json:"backlog_peak"`
	BacklogNormal float64 `json:"backlog_normal"`
	// RecoveredMS is the time from the fault's end until the backlog was
	// back at or under BacklogNormal; null if it never was.
	RecoveredMS *float64 `json:"recovered_ms"`
	// Error says what went wrong injecting or undoing the fault.
	Error string `json:"error,omitempty"`
}

// Healthz is GET /healthz's latency under the load.
type Healthz struct {
	// Probes is how many were sent; Failed got no 200 within 2 s.
	Probes  int     `json:"probes"`
	Failed  int     `json:"failed"`
	Latency Latency `json:"latency"`
}

// Backlog sums up the service's docket_backlog samples.
type Backlog struct {
	Samples int     `json:"samples"`
	Peak    float64 `json:"peak"`
	Last    float64 `json:"last"`
}

// Process is one bench-started process's resident memory, in MiB, over
// all its incarnations (a restarted process keeps its name).
type Process struct {
	Name string `json:"name"`
	// PeakRSSMB is the highest VmHWM read; FirstRSSMB and LastRSSMB are
	// VmRSS at the first and last sample; Samples counts the readings.
	PeakRSSMB  float64 `json:"peak_rss_mb"`
	FirstRSSMB float64 `json:"first_rss_mb"`
	LastRSSMB  float64 `json:"last_rss_mb"`
	Samples    int     `json:"samples"`
	// Starts is how many times the process was started (restarts + 1).
	Starts int `json:"starts"`
}

// Threshold is one pass mark and how the run did.
type Threshold struct {
	Name string `json:"name"`
	// Op is <= or >=: actual must be Op limit.
	Op     string  `json:"op"`
	Limit  float64 `json:"limit"`
	Actual float64 `json:"actual"`
	// Unit is ms, ratio, per_sec or count.
	Unit string `json:"unit"`
	Pass bool   `json:"pass"`
}

// Write stores the report as report.json and report.txt in dir.
func (r *Report) Write(dir string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	f, err := os.Create(filepath.Join(dir, "report.txt"))
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if err := r.WriteText(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Read loads a report from report.json, or from a result directory that
// holds one.
func Read(path string) (*Report, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = filepath.Join(path, "report.json")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read report: %w", err)
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("read report %s: %w", path, err)
	}
	if r.Schema != Schema {
		return nil, fmt.Errorf("read report %s: schema %q, want %q", path, r.Schema, Schema)
	}
	return &r, nil
}

package report

import (
	"fmt"
	"time"

	"github.com/docket/docket/bench/scenario"
)

// Check evaluates the scenario's thresholds against the report, stores
// them in r.Thresholds and sets r.Pass. In a steps scenario the latency,
// success and throughput thresholds judge each step (see StepBreaches), not
// the whole run.
func Check(th scenario.Thresholds, steps bool, r *Report) {
	var out []Threshold
	le := func(name string, limit, actual float64, unit string) {
		out = append(out, Threshold{Name: name, Op: "<=", Limit: limit, Actual: Round(actual), Unit: unit, Pass: actual <= limit})
	}
	ge := func(name string, limit, actual float64, unit string) {
		out = append(out, Threshold{Name: name, Op: ">=", Limit: limit, Actual: Round(actual), Unit: unit, Pass: actual >= limit})
	}
	if !steps {
		if th.HTTPP99 != nil {
			le("http_p99", ms(*th.HTTPP99), r.HTTP.Latency.P99, "ms")
		}
		if th.E2EP99 != nil {
			actual := inf
			if r.Processing != nil && r.Processing.EndToEnd.Count > 0 {
				actual = r.Processing.EndToEnd.P99
			}
			le("e2e_p99", ms(*th.E2EP99), actual, "ms")
		}
		if th.SuccessRatio != nil {
			ge("success_ratio", *th.SuccessRatio, r.HTTP.SuccessRatio, "ratio")
		}
		if th.Throughput != nil {
			ge("throughput", *th.Throughput, r.HTTP.OKPerSec, "per_sec")
		}
	}
	if th.ProcessedThroughput != nil {
		actual := 0.0
		if r.Processing != nil {
			actual = r.Processing.ProcessedPerSec
		}
		ge("processed_throughput", *th.ProcessedThroughput, actual, "per_sec")
	}
	if th.MaxViolations != nil {
		actual := inf
		if r.Verify != nil {
			actual = float64(r.Verify.Counts.Violations())
		}
		le("max_violations", float64(*th.MaxViolations), actual, "count")
	}
	if th.MaxLost != nil {
		actual := inf
		if r.Verify != nil {
			actual = float64(r.Verify.Counts.Lost)
		}
		le("max_lost", float64(*th.MaxLost), actual, "count")
	}
	if th.MaxNeighbourSlowdown != nil {
		worst := 0.0
		for _, g := range r.Groups {
			if g.Baseline != nil {
				worst = max(worst, g.Slowdown)
			}
		}
		le("max_neighbour_slowdown", *th.MaxNeighbourSlowdown, worst, "ratio")
	}
	if th.MaxRecovery != nil {
		worst := 0.0
		for _, f := range r.Faults {
			if f.RecoveredMS == nil || f.Error != "" {
				worst = inf
				break
			}
			worst = max(worst, *f.RecoveredMS)
		}
		if len(r.Faults) == 0 {
			worst = inf // the faults did not run
		}
		le("max_recovery", ms(*th.MaxRecovery), worst, "ms")
	}
	if th.MaxRSSMB != nil {
		peak := inf
		if len(r.Processes) > 0 {
			peak = 0
			for _, p := range r.Processes {
				peak = max(peak, p.PeakRSSMB)
			}
		}
		le("max_rss_mb", *th.MaxRSSMB, peak, "mb")
	}
	if th.HealthzP99 != nil {
		actual := inf
		if r.Healthz != nil && r.Healthz.Latency.Count > 0 {
			actual = r.Healthz.Latency.P99
		}
		le("healthz_p99", ms(*th.HealthzP99), actual, "ms")
	}
	if th.MinCapacity != nil {
		actual := 0.0
		if r.Capacity != nil {
			actual = r.Capacity.Rate
		}
		ge("min_capacity", *th.MinCapacity, actual, "per_sec")
	}
	r.Thresholds = out
	r.Pass = true
	for _, t := range out {
		r.Pass = r.Pass && t.Pass
	}
}

// inf stands for a figure that could not be measured: it fails any upper
// bound. JSON cannot hold +Inf, so it is a large finite number.
const inf = 1e18

// StepBreaches returns the thresholds a step broke, as sentences.
func StepBreaches(th scenario.Thresholds, s Step) []string {
	var out []string
	if th.HTTPP99 != nil && s.HTTPP99 > ms(*th.HTTPP99) {
		out = append(out, fmt.Sprintf("http_p99 %s > %s", fmtMS(s.HTTPP99), *th.HTTPP99))
	}
	// A backlog that outlives the step means processing fell behind
	// intake, whatever the thresholds say.
	if !s.Drained {
		out = append(out, "the backlog did not drain within step_drain")
	} else if th.E2EP99 != nil && s.E2EP99 > ms(*th.E2EP99) {
		out = append(out, fmt.Sprintf("e2e_p99 %s > %s", fmtMS(s.E2EP99), *th.E2EP99))
	}
	if th.SuccessRatio != nil && s.SuccessRatio < *th.SuccessRatio {
		out = append(out, fmt.Sprintf("success_ratio %.4f < %.4f", s.SuccessRatio, *th.SuccessRatio))
	}
	if th.Throughput != nil && s.OKPerSec < *th.Throughput {
		out = append(out, fmt.Sprintf("throughput %.1f/s < %.1f/s", s.OKPerSec, *th.Throughput))
	}
	return out
}

// fmtMS prints milliseconds as a short duration: 850µs, 12.3ms, 1.52s.
func fmtMS(v float64) string {
	switch {
	case v >= inf:
		return "n/a"
	case v < 1:
		return fmt.Sprintf("%.0fµs", v*1000)
	case v < 10:
		return fmt.Sprintf("%.2fms", v)
	case v < 100:
		return fmt.Sprintf("%.1fms", v)
	case v < 1000:
		return fmt.Sprintf("%.0fms", v)
	}
	return (time.Duration(v * float64(time.Millisecond))).Round(10 * time.Millisecond).String()
}

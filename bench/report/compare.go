package report

import (
	"fmt"
	"io"
	"math"
	"text/tabwriter"
)

// Change is one figure of two reports side by side.
type Change struct {
	Figure string  `json:"figure"`
	Unit   string  `json:"unit"`
	A      float64 `json:"a"`
	B      float64 `json:"b"`
	// Percent is (B-A)/A in percent; NaN when A is 0.
	Percent float64 `json:"percent"`
	// Verdict is better, worse, ~ (within Noise) or "" (no direction).
	Verdict string `json:"verdict"`
}

// Noise is the relative change below which Compare calls a figure
// unchanged ("~"): run-to-run spread on a shared two-core box.
const Noise = 0.05

type figure struct {
	name   string
	unit   string
	better int // +1: higher is better, -1: lower is better, 0: neither
	get    func(*Report) (float64, bool)
}

func always(f func(*Report) float64) func(*Report) (float64, bool) {
	return func(r *Report) (float64, bool) { return f(r), true }
}

func processing(f func(*Processing) float64) func(*Report) (float64, bool) {
	return func(r *Report) (float64, bool) {
		if r.Processing == nil {
			return 0, false
		}
		return f(r.Processing), true
	}
}

var figures = []figure{
	{"target rate", "per_sec", 0, always(func(r *Report) float64 { return r.Attacker.TargetRate })},
	{"achieved rate", "per_sec", +1, always(func(r *Report) float64 { return r.Attacker.AchievedRate })},
	{"peak in flight", "count", -1, always(func(r *Report) float64 { return float64(r.Attacker.PeakInFlight) })},
	{"bench cpu", "cores", 0, always(func(r *Report) float64 { return r.Attacker.CPUCores })},
	{"requests", "count", 0, always(func(r *Report) float64 { return float64(r.HTTP.Requests) })},
	{"http p50", "ms", -1, always(func(r *Report) float64 { return r.HTTP.Latency.P50 })},
	{"http p90", "ms", -1, always(func(r *Report) float64 { return r.HTTP.Latency.P90 })},
	{"http p99", "ms", -1, always(func(r *Report) float64 { return r.HTTP.Latency.P99 })},
	{"http p99.9", "ms", -1, always(func(r *Report) float64 { return r.HTTP.Latency.P999 })},
	{"http max", "ms", -1, always(func(r *Report) float64 { return r.HTTP.Latency.Max })},
	{"success ratio", "ratio", +1, always(func(r *Report) float64 { return r.HTTP.SuccessRatio })},
	{"2xx/s", "per_sec", +1, always(func(r *Report) float64 { return r.HTTP.OKPerSec })},
	{"processed/s", "per_sec", +1, processing(func(p *Processing) float64 { return p.ProcessedPerSec })},
	{"e2e p50", "ms", -1, processing(func(p *Processing) float64 { return p.EndToEnd.P50 })},
	{"e2e p99", "ms", -1, processing(func(p *Processing) float64 { return p.EndToEnd.P99 })},
	{"e2e max", "ms", -1, processing(func(p *Processing) float64 { return p.EndToEnd.Max })},
	{"drain", "ms", -1, processing(func(p *Processing) float64 { return p.DrainMS })},
	{"lost", "count", -1, func(r *Report) (float64, bool) {
		if r.Verify == nil {
			return 0, false
		}
		return float64(r.Verify.Counts.Lost), true
	}},
	{"violations", "count", -1, func(r *Report) (float64, bool) {
		if r.Verify == nil {
			return 0, false
		}
		return float64(r.Verify.Counts.Violations()), true
	}},
	{"capacity", "per_sec", +1, func(r *Report) (float64, bool) {
		if r.Capacity == nil {
			return 0, false
		}
		return r.Capacity.Rate, true
	}},
	{"neighbour slowdown", "ratio", -1, func(r *Report) (float64, bool) {
		worst, ok := 0.0, false
		for _, g := range r.Groups {
			if g.Baseline != nil {
				worst, ok = max(worst, g.Slowdown), true
			}
		}
		return worst, ok
	}},
	{"healthz p99", "ms", -1, func(r *Report) (float64, bool) {
		if r.Healthz == nil || r.Healthz.Latency.Count == 0 {
			return 0, false
		}
		return r.Healthz.Latency.P99, true
	}},
	{"peak rss", "mb", -1, func(r *Report) (float64, bool) {
		peak := 0.0
		for _, p := range r.Processes {
			peak = max(peak, p.PeakRSSMB)
		}
		return peak, len(r.Processes) > 0
	}},
	{"worst recovery", "ms", -1, func(r *Report) (float64, bool) {
		worst := 0.0
		for _, f := range r.Faults {
			if f.RecoveredMS == nil {
				return 0, false
			}
			worst = max(worst, *f.RecoveredMS)
		}
		return worst, len(r.Faults) > 0
	}},
}

// Compare lists every figure both reports have, A beside B.
func Compare(a, b *Report) []Change {
	var out []Change
	for _, f := range figures {
		va, okA := f.get(a)
		vb, okB := f.get(b)
		if !okA || !okB {
			continue
		}
		c := Change{Figure: f.name, Unit: f.unit, A: va, B: vb, Percent: math.NaN()}
		if va != 0 {
			c.Percent = 100 * (vb - va) / math.Abs(va)
		}
		switch {
		case f.better == 0:
		case va == vb || (va != 0 && math.Abs(vb-va)/math.Abs(va) < Noise):
			c.Verdict = "~"
		case (vb > va) == (f.better > 0):
			c.Verdict = "better"
		default:
			c.Verdict = "worse"
		}
		out = append(out, c)
	}
	return out
}

// WriteComparison prints Compare(a, b) as a table.
func WriteComparison(w io.Writer, a, b *Report) error {
	ew := &errWriter{w: w}
	fmt.Fprintf(ew, "A: %s %s (%s)\n", a.Scenario.Name, a.Run.ID, a.Run.Dir)
	fmt.Fprintf(ew, "B: %s %s (%s)\n", b.Scenario.Name, b.Run.ID, b.Run.Dir)
	if a.Scenario.Name != b.Scenario.Name {
		fmt.Fprintf(ew, "note: the runs are of different scenarios\n")
	}
	fmt.Fprintln(ew)
	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "figure\tA\tB\tchange\t\t")
	for _, c := range Compare(a, b) {
		change := "n/a"
		if !math.IsNaN(c.Percent) {
			change = fmt.Sprintf("%+.1f%%", c.Percent)
		} else if c.A == c.B {
			change = "0"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", c.Figure, fmtValue(c.A, c.Unit), fmtValue(c.B, c.Unit), change, c.Verdict)
	}
	tw.Flush()
	verdict := func(r *Report) string {
		if r.Pass {
			return "PASS"
		}
		return "FAIL"
	}
	fmt.Fprintf(ew, "\nresult: A %s, B %s\n", verdict(a), verdict(b))
	return ew.err
}

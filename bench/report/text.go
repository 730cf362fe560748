package report

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/docket/docket/bench/verify"
)

// WriteText writes the report as the table the bench prints at the end of
// a run (and stores as report.txt).
func (r *Report) WriteText(w io.Writer) error {
	ew := &errWriter{w: w}
	r.writeText(ew)
	return ew.err
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func (r *Report) writeText(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	s := r.Scenario
	p("docket bench: %s (%s)", s.Name, s.File)
	if s.Description != "" {
		p("  %s", s.Description)
	}
	p("  run %s against %s (%s), %s", r.Run.ID, r.Run.TargetURL, r.Run.Mode, r.Run.StartedAt.UTC().Format("2006-01-02 15:04:05Z"))
	p("  %d users (set up in %s, outside the clock), target %s", s.Users, fmtMS(r.Run.SetupMS), s.Target)
	if s.Groups != "" {
		p("  groups %s", s.Groups)
	}
	p("  load %s", s.Load)
	if s.Mix != "" {
		p("  mix %s", s.Mix)
	}

	p("")
	a := r.Attacker
	p("ATTACKER (did the bench send the load it meant to?)")
	kept := "kept its rate"
	if !a.KeptRate {
		kept = "FELL BEHIND: " + limitedBySentence(a.LimitedBy)
	}
	p("  target %.1f/s, achieved %.1f/s: %s", a.TargetRate, a.AchievedRate, kept)
	p("  peak in flight %d of a ceiling of %d (vegeta workers grow to the peak); the bench used %.2f cores", a.PeakInFlight, a.MaxInFlight, a.CPUCores)

	p("")
	h := r.HTTP
	what := "POST /requests"
	if s.Target == "login" {
		what = "POST /auth/login"
	}
	p("HTTP (%s, measured at the client)", what)
	kv := func(key, format string, args ...any) { p("  %-13s %s", key, fmt.Sprintf(format, args...)) }
	kv("requests", "%d in %s", h.Requests, fmtMS(h.DurationMS))
	kv("latency", "p50 %s  p90 %s  p99 %s  p99.9 %s  max %s",
		fmtMS(h.Latency.P50), fmtMS(h.Latency.P90), fmtMS(h.Latency.P99), fmtMS(h.Latency.P999), fmtMS(h.Latency.Max))
	kv("success", "%.2f%% answered %s; 2xx %.1f/s", 100*h.SuccessRatio, joinCodes(h.SuccessCodes), h.OKPerSec)
	kv("status codes", "%s", statusCodes(h.StatusCodes))
	for _, e := range sortedKeys(h.Errors) {
		kv("error", "%d x %s", h.Errors[e], e)
	}

	if pr := r.Processing; pr != nil {
		p("")
		p("PROCESSING (server clock: end-to-end = processed_at - accepted_at)")
		drain := fmt.Sprintf("drained in %s", fmtMS(pr.DrainMS))
		if !pr.Drained {
			drain = fmt.Sprintf("NOT DRAINED after %s", fmtMS(pr.DrainMS))
		}
		kv("finished", "%d of %d accepted (done %d, failed %d), %s", pr.Finished, pr.Accepted, pr.Done, pr.Failed, drain)
		kv("throughput", "accepted %.1f/s, processed %.1f/s", h.OKPerSec, pr.ProcessedPerSec)
		kv("end-to-end", "p50 %s  p99 %s  max %s", fmtMS(pr.EndToEnd.P50), fmtMS(pr.EndToEnd.P99), fmtMS(pr.EndToEnd.Max))
	}

	if v := r.Verify; v != nil {
		p("")
		p("VERIFY (GET /requests of every user against the bench's own records)")
		var parts []string
		for _, k := range verify.Kinds {
			parts = append(parts, fmt.Sprintf("%s %d", k, v.Counts.Of(k)))
		}
		p("  %s", strings.Join(parts, "  "))
		p("  %d accepted, %d listed, %d without a definite answer, %d listed without a 202", v.Accepted, v.Listed, v.Ambiguous, v.UnknownExtra)
		p("  %d had an earlier request of their user answered (happens-before checked), %d overlapped one still in flight", v.Predecessors, v.Overlapped)
		for _, k := range verify.Kinds {
			for _, ex := range v.Examples[k] {
				p("  %s: %s", k, ex)
			}
		}
	}

	if len(r.Steps) > 0 {
		p("")
		p("STEPS")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  rate\tachieved\trequests\tsuccess\thttp p99\te2e p99\theld\t")
		for _, st := range r.Steps {
			held := "yes"
			if !st.Held {
				held = "NO: " + strings.Join(st.Breaches, "; ")
			}
			achieved := fmt.Sprintf("%.1f/s", st.AchievedRate)
			if !st.KeptRate {
				achieved += " (" + st.LimitedBy + ")"
			}
			e2e := fmtMS(st.E2EP99)
			if !st.Drained {
				e2e = "not drained"
			}
			fmt.Fprintf(tw, "  %.0f/s\t%s\t%d\t%.2f%%\t%s\t%s\t%s\t\n", st.Rate, achieved, st.Requests, 100*st.SuccessRatio, fmtMS(st.HTTPP99), e2e, held)
		}
		tw.Flush()
	}
	if c := r.Capacity; c != nil {
		p("  capacity: %.0f/s (%s). %s", c.Rate, c.Bound, c.Note)
	}

	if len(r.Groups) > 0 {
		p("")
		p("GROUPS")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  group\tusers\tmode\trequests\thttp p99\te2e p50\te2e p99\te2e max\tcodes\t")
		for _, g := range r.Groups {
			fmt.Fprintf(tw, "  %s\t%d\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t\n", g.Name, g.Users, g.Mode, g.Requests, fmtMS(g.HTTPP99), fmtMS(g.E2EP50), fmtMS(g.E2EP99), fmtMS(g.E2EMax), statusCodes(g.StatusCodes))
			if b := g.Baseline; b != nil {
				fmt.Fprintf(tw, "    without the flood\t\t\t%d\t%s\t%s\t%s\t%s\t\n", b.Requests, fmtMS(b.HTTPP99), fmtMS(b.E2EP50), fmtMS(b.E2EP99), fmtMS(b.E2EMax))
				fmt.Fprintf(tw, "    slowdown (e2e p99)\t\t\t\t\t\t%.2fx\t\t\n", g.Slowdown)
			}
		}
		tw.Flush()
	}

	r.writeFaults(w)
	r.writeHealth(w)

	p("")
	p("THRESHOLDS")
	if len(r.Thresholds) == 0 {
		p("  none")
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, t := range r.Thresholds {
		mark := "pass"
		if !t.Pass {
			mark = "FAIL"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s %s\t\n", mark, t.Name, fmtValue(t.Actual, t.Unit), t.Op, fmtValue(t.Limit, t.Unit))
	}
	tw.Flush()
	for _, n := range r.Notes {
		p("  note: %s", n)
	}
	p("")
	verdict := "PASS"
	if !r.Pass {
		verdict = "FAIL"
	}
	p("RESULT %s  (%s)", verdict, r.Run.Dir)
}

func limitedBySentence(by string) string {
	switch by {
	case "in_flight_ceiling":
		return "the server answered too slowly: max_in_flight was reached"
	case "sequential_users":
		return "every sequential user had a request in flight (users x latency limits the rate)"
	case "attacker":
		return "the bench itself could not send faster; this is NOT a server limit"
	}
	return by
}

func fmtValue(v float64, unit string) string {
	switch unit {
	case "ms":
		return fmtMS(v)
	case "ratio":
		return strconv.FormatFloat(v, 'f', -1, 64)
	case "per_sec":
		return fmt.Sprintf("%.1f/s", v)
	case "cores":
		return fmt.Sprintf("%.2f cores", v)
	case "mb":
		if v >= inf {
			return "n/a"
		}
		return fmt.Sprintf("%.1f MiB", v)
	case "count":
		if v >= inf {
			return "n/a"
		}
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

func statusCodes(m map[string]int) string {
	keys := sortedKeys(m)
	slices.SortFunc(keys, func(a, b string) int {
		x, _ := strconv.Atoi(a)
		y, _ := strconv.Atoi(b)
		return x - y
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		name := k
		if k == "0" {
			name = "no answer"
		}
		parts[i] = fmt.Sprintf("%s: %d", name, m[k])
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func joinCodes(codes []int) string {
	parts := make([]string, len(codes))
	for i, c := range codes {
		parts[i] = strconv.Itoa(c)
	}
	return strings.Join(parts, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// writeFaults writes the FAULTS section: each fault and its recovery.
func (r *Report) writeFaults(w io.Writer) {
	if len(r.Faults) == 0 {
		return
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "FAULTS (recovery: from the fault's end; backlog normal = before x 1.5 + 100)")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  fault\tat\tdown for\tfailed\tfirst 202 after\tbacklog before\tpeak\tback to normal after\t")
	for _, f := range r.Faults {
		name := f.Action
		if f.Worker != nil {
			name += fmt.Sprintf(" %d (worker %d)", *f.Worker, *f.Worker+1) // processes count from 1
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%s\t%.0f\t%.0f\t%s\t\n", name, fmtMS(f.AtMS), fmtMS(f.DownMS), f.Failed,
			fmtOptMS(f.FirstAcceptMS), f.BacklogBefore, f.BacklogPeak, fmtOptMS(f.RecoveredMS))
	}
	tw.Flush()
	for _, f := range r.Faults {
		if f.Error != "" {
			fmt.Fprintf(w, "  error: %s: %s\n", f.Action, f.Error)
		}
	}
}

// writeHealth writes the HEALTH section: /healthz under load, the
// backlog, and each process's memory.
func (r *Report) writeHealth(w io.Writer) {
	if r.Healthz == nil && r.Backlog == nil && len(r.Processes) == 0 {
		return
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "HEALTH (during the attack and the drain)")
	if h := r.Healthz; h != nil {
		l := h.Latency
		fmt.Fprintf(w, "  %-13s %d probes, %d failed; p50 %s  p99 %s  max %s\n", "/healthz", h.Probes, h.Failed, fmtMS(l.P50), fmtMS(l.P99), fmtMS(l.Max))
	}
	if b := r.Backlog; b != nil {
		fmt.Fprintf(w, "  %-13s peak %.0f, last %.0f (%d samples of docket_backlog)\n", "backlog", b.Peak, b.Last, b.Samples)
	}
	if len(r.Processes) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  memory\tpeak RSS\tfirst\tlast\tstarts\t")
		for _, p := range r.Processes {
			fmt.Fprintf(tw, "  %s\t%.1f MiB\t%.1f MiB\t%.1f MiB\t%d\t\n", p.Name, p.PeakRSSMB, p.FirstRSSMB, p.LastRSSMB, p.Starts)
		}
		tw.Flush()
	}
}

func fmtOptMS(v *float64) string {
	if v == nil {
		return "never"
	}
	return fmtMS(*v)
}

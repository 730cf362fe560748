package runner

import (
	"context"
	"fmt"
	"strings"

	"github.com/docket/docket/bench/api"
	"github.com/docket/docket/bench/attack"
	"github.com/docket/docket/bench/report"
	"github.com/docket/docket/bench/scenario"
	"github.com/docket/docket/bench/verify"
)

// steps raises the rate step by step until a step breaks a threshold, and
// records the highest rate that held as the capacity.
func (r *run) steps(ctx context.Context, rep *report.Report) ([]*attack.Record, error) {
	sc := r.sc
	l := sc.Load
	groups, _ := r.attackGroups("")
	var all []*attack.Record
	capacity := &report.Capacity{Bound: "at_least"}
	for i, rate := 0, l.From; rate <= l.To+1e-9; i, rate = i+1, rate+l.Step {
		label := fmt.Sprintf("step-%d", i+1)
		st, recs, err := r.attack(ctx, label, groups, attack.Constant(rate, l.StepDuration))
		if err != nil {
			return nil, err
		}
		rep.Attacks = append(rep.Attacks, st)
		all = append(all, recs...)
		drained := true
		if sc.Target == scenario.TargetRequests {
			drained, _, err = r.drain(ctx, label, l.StepDrain)
			if err != nil {
				return nil, err
			}
		}
		step := r.stepFigures(st, recs, drained)
		step.Breaches = report.StepBreaches(sc.Thresholds, step)
		if !st.KeptRate && st.LimitedBy != attack.LimitedByAttacker {
			step.Breaches = append(step.Breaches, "the rate was not kept: "+st.LimitedBy)
		}
		step.Held = len(step.Breaches) == 0 && st.KeptRate
		rep.Steps = append(rep.Steps, step)
		r.logf("bench: %s at %.0f/s: %s", label, rate, stepVerdict(step))
		if step.Held {
			capacity.Rate = rate
			continue
		}
		if st.LimitedBy == attack.LimitedByAttacker && len(step.Breaches) == 0 {
			capacity.Bound = "attacker_limited"
			capacity.Note = fmt.Sprintf("the bench could not send %.0f/s (it sent %.1f/s); the server held every rate the bench could send", rate, st.AchievedRate)
		} else {
			capacity.Bound = "limit"
			capacity.Note = fmt.Sprintf("%.0f/s broke: %s", rate, strings.Join(step.Breaches, "; "))
		}
		break
	}
	if capacity.Bound == "at_least" {
		capacity.Note = fmt.Sprintf("every step up to %.0f/s held; raise load.to to find the limit", l.To)
	}
	rep.Capacity = capacity
	return all, nil
}

func stepVerdict(s report.Step) string {
	if s.Held {
		return "held"
	}
	if len(s.Breaches) == 0 {
		return "the attacker fell behind (" + s.LimitedBy + ")"
	}
	return "broke: " + strings.Join(s.Breaches, "; ")
}

func (r *run) stepFigures(st attack.Stats, recs []*attack.Record, drained bool) report.Step {
	h := report.HTTPFigures(recs, r.sc.SuccessCodes)
	r.tracker.mu.Lock()
	p := report.ProcessingFigures(recs, r.tracker.rows)
	r.tracker.mu.Unlock()
	return report.Step{
		Rate: st.TargetRate, AchievedRate: report.Round(st.AchievedRate), KeptRate: st.KeptRate, LimitedBy: st.LimitedBy,
		Requests: h.Requests, SuccessRatio: report.Round(h.SuccessRatio), OKPerSec: report.Round(h.OKPerSec), HTTPP99: h.Latency.P99,
		E2EP99: p.EndToEnd.P99, Drained: drained,
	}
}

func (r *run) groupFigures(measured, baseline []*attack.Record, rows map[string]api.Row) []report.Group {
	var out []report.Group
	for _, g := range r.sc.Users {
		fig := report.GroupFigures(g.Name, g.Count, g.Mode, measured, rows)
		if r.sc.BaselineWithout != "" && g.Name != r.sc.BaselineWithout {
			b := report.GroupFigures(g.Name, g.Count, g.Mode, baseline, rows)
			fig.Baseline = &b
			if b.E2EP99 > 0 {
				fig.Slowdown = report.Round(fig.E2EP99 / b.E2EP99)
			}
		}
		out = append(out, fig)
	}
	return out
}

// summarize sums up the measured attacks' pacing.
func summarize(stats []attack.Stats) report.Attacker {
	a := report.Attacker{KeptRate: true}
	var expected, sent, secs, cpu, wall float64
	for _, s := range stats {
		expected += s.Expected
		sent += float64(s.SentOnTime)
		secs += s.Duration.Seconds()
		cpu += s.CPUCores * s.Wall.Seconds()
		wall += s.Wall.Seconds()
		a.PeakInFlight = max(a.PeakInFlight, s.PeakInFlight)
		a.MaxInFlight = s.MaxInFlight
		if !s.KeptRate && a.KeptRate {
			a.KeptRate, a.LimitedBy = false, s.LimitedBy
		}
	}
	if secs > 0 {
		a.TargetRate = report.Round(expected / secs)
		a.AchievedRate = report.Round(sent / secs)
	}
	if wall > 0 {
		a.CPUCores = report.Round(cpu / wall)
	}
	return a
}

// VerifyInput turns the bench's records and the API's listings into the
// verifier's plain input.
func VerifyInput(records []*attack.Record, listings map[string][]api.Row) verify.Input {
	in := verify.Input{Records: make([]verify.Record, 0, len(records)), Listings: map[string][]verify.Row{}}
	for _, r := range records {
		in.Records = append(in.Records, verify.Record{User: r.User, Sent: r.Sent, Received: r.Received, Code: r.Code, ID: r.ID, Seq: r.Seq})
	}
	for user, rows := range listings {
		out := make([]verify.Row, len(rows))
		for i, row := range rows {
			out[i] = verify.Row{ID: row.ID, Seq: row.Seq, Status: row.Status, AcceptedAt: row.AcceptedAt}
			if row.ProcessedAt != nil {
				out[i].ProcessedAt = *row.ProcessedAt
			}
		}
		in.Listings[user] = out
	}
	return in
}

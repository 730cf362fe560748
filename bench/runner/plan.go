package runner

import (
	"fmt"
	"strings"

	"github.com/docket/docket/bench/attack"
	"github.com/docket/docket/bench/scenario"
)

// attackGroups turns the scenario's groups into the attack's, leaving out
// the group named exclude (for a baseline run), and returns the share of
// the load the kept groups carry.
func (r *run) attackGroups(exclude string) ([]attack.Group, float64) {
	var out []attack.Group
	var kept, total float64
	for _, g := range r.sc.Users {
		total += g.Share
		if g.Name == exclude {
			continue
		}
		kept += g.Share
		out = append(out, attack.Group{
			Name:   g.Name,
			Target: g.Target,
			Mode:   g.Mode,
			Share:  g.Share,
			Burst:  g.Burst,
			Users:  r.users[g.Name],
			Mix:    bodies(g.Mix),
		})
	}
	return out, kept / total
}

// ofTarget keeps the records of the groups with the scenario's own target:
// in a scenario where a login group storms beside request groups, the
// HTTP figures and the verifier are about the requests (the login group
// has its own line under GROUPS).
func (r *run) ofTarget(records []*attack.Record) []*attack.Record {
	if !r.sc.MixedTargets() {
		return records
	}
	keep := map[string]bool{}
	for _, g := range r.sc.Users {
		keep[g.Name] = g.Target == r.sc.Target
	}
	out := make([]*attack.Record, 0, len(records))
	for _, rec := range records {
		if keep[rec.Group] {
			out = append(out, rec)
		}
	}
	return out
}

func bodies(mix []scenario.Mix) []attack.Body {
	out := make([]attack.Body, len(mix))
	for i, m := range mix {
		out[i] = attack.Body{Type: m.Type, Weight: m.Weight, JSON: m.Payload()}
	}
	return out
}

// schedule is the load of a non-steps scenario.
func schedule(l scenario.Load) attack.Schedule {
	switch l.Shape {
	case scenario.ShapeLinear:
		return attack.Linear(l.From, l.To, l.Duration)
	case scenario.ShapeSpike:
		return attack.Spike(l.Rate, l.Peak, l.SpikeAt, l.SpikeDuration, l.Duration)
	default:
		return attack.Constant(l.Rate, l.Duration)
	}
}

// describeLoad says the load in a line.
func describeLoad(l scenario.Load) string {
	s := ""
	if l.Shape == scenario.ShapeSteps {
		s = fmt.Sprintf("steps %g→%g/s by %g, %s each (drain ≤ %s between)", l.From, l.To, l.Step, l.StepDuration, l.StepDrain)
	} else {
		s = l.Shape + " " + schedule(l).String()
	}
	return fmt.Sprintf("%s, at most %d in flight, timeout %s", s, l.MaxInFlight, l.Timeout)
}

// describeMix says the mixes in a line: "echo x9 (16 B), sleep x1 (5 ms)".
func describeMix(sc *scenario.Scenario) string {
	one := func(mix []scenario.Mix) string {
		parts := make([]string, len(mix))
		for i, m := range mix {
			var param string
			switch m.Type {
			case scenario.TypeEcho:
				param = fmt.Sprintf("%d B", *m.Bytes)
			case scenario.TypeSleep:
				param = fmt.Sprintf("%d ms", *m.MS)
			case scenario.TypeCPU:
				param = fmt.Sprintf("%d iterations", *m.Iterations)
			case scenario.TypeFail:
				param = fmt.Sprintf("fails %d times", *m.Times)
			}
			parts[i] = fmt.Sprintf("%s x%d (%s)", m.Type, m.Weight, param)
		}
		return strings.Join(parts, ", ")
	}
	if sc.Target == scenario.TargetLogin {
		return ""
	}
	base := one(sc.Mix)
	var own []string
	for _, g := range sc.Users {
		if g.Target == scenario.TargetLogin {
			own = append(own, fmt.Sprintf("group %s: logins", g.Name))
		} else if m := one(g.Mix); m != base {
			own = append(own, fmt.Sprintf("group %s: %s", g.Name, m))
		}
	}
	switch {
	case len(own) == 0:
		return base
	case len(own) < len(sc.Users):
		own = append([]string{"default: " + base}, own...)
	}
	return strings.Join(own, "; ")
}

func groupsLine(sc *scenario.Scenario) string {
	parts := make([]string, len(sc.Users))
	for i, g := range sc.Users {
		parts[i] = fmt.Sprintf("%s: %d %s (share %g, burst %d)", g.Name, g.Count, g.Mode, g.Share, g.Burst)
		if g.Target != sc.Target {
			parts[i] = fmt.Sprintf("%s: %d %s sending %s (share %g, burst %d)", g.Name, g.Count, g.Mode, g.Target, g.Share, g.Burst)
		}
	}
	return strings.Join(parts, "; ")
}

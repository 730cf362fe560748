package scenario

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// maxGroupUsers bounds a group's count: every user is registered and logged
// in before the attack, and the total must not wrap around.
const maxGroupUsers = 1_000_000

// validate checks every field; the first problem found is returned as a
// *FieldError.
func (s *Scenario) validate() error {
	bad := func(field, format string, args ...any) error {
		return &FieldError{File: s.File, Field: field, Problem: fmt.Sprintf(format, args...)}
	}
	if s.Name == "" {
		return bad("name", "is required")
	}
	if !nameRE.MatchString(s.Name) {
		return bad("name", "must be lowercase letters, digits and '-' (it names result directories), got %q", s.Name)
	}
	if s.Target != TargetRequests && s.Target != TargetLogin {
		return bad("target", "must be %s or %s, got %q", TargetRequests, TargetLogin, s.Target)
	}
	if s.Target == TargetLogin && len(s.Mix) > 0 {
		return bad("mix", "does not apply to target login")
	}
	if err := validateMix(s.File, "mix", s.Mix); err != nil {
		return err
	}
	if len(s.Users) == 0 {
		return bad("users", "is required: at least one group of users")
	}
	groups := map[string]bool{}
	for i, g := range s.Users {
		p := fmt.Sprintf("users[%d]", i)
		switch {
		case g.Name == "":
			return bad(p+".group", "is required (a name for the group)")
		case groups[g.Name]:
			return bad(p+".group", "%q names two groups", g.Name)
		case g.Count < 1:
			return bad(p+".count", "must be at least 1, got %d", g.Count)
		case g.Count > maxGroupUsers:
			return bad(p+".count", "must be at most %d, got %d", maxGroupUsers, g.Count)
		case g.Share <= 0:
			return bad(p+".share", "must be above 0, got %v", g.Share)
		case g.Mode != ModeOpen && g.Mode != ModeSequential:
			return bad(p+".mode", "must be %s or %s, got %q", ModeOpen, ModeSequential, g.Mode)
		case g.Burst < 1 || g.Burst > 1000:
			return bad(p+".burst", "must be from 1 to 1000, got %d", g.Burst)
		case g.Burst > 1 && g.Mode == ModeSequential:
			return bad(p+".burst", "applies to mode open only (a sequential user has one request in flight)")
		}
		groups[g.Name] = true
		if g.Target != TargetRequests && g.Target != TargetLogin {
			return bad(p+".target", "must be %s or %s, got %q", TargetRequests, TargetLogin, g.Target)
		}
		if g.Target != s.Target && s.Target == TargetLogin {
			return bad(p+".target", "a group of target requests needs the scenario's target requests (set target on the login groups instead)")
		}
		if g.Target == TargetLogin && len(g.Mix) > 0 {
			return bad(p+".mix", "does not apply to target login")
		}
		if err := validateMix(s.File, p+".mix", g.Mix); err != nil {
			return err
		}
	}
	if s.Workers < 1 || s.Workers > 16 {
		return bad("workers", "must be from 1 to 16, got %d", s.Workers)
	}
	if s.SetupConcurrency < 1 {
		return bad("setup_concurrency", "must be at least 1, got %d", s.SetupConcurrency)
	}
	if s.DrainTimeout < 0 {
		return bad("drain_timeout", "must be positive, got %s", s.DrainTimeout)
	}
	if s.BaselineWithout != "" {
		if !groups[s.BaselineWithout] {
			return bad("baseline_without", "names no group of users: %q", s.BaselineWithout)
		}
		if len(s.Users) < 2 {
			return bad("baseline_without", "needs another group to run without %q", s.BaselineWithout)
		}
		if s.Load.Shape == ShapeSteps {
			return bad("baseline_without", "does not combine with shape steps")
		}
	}
	for i, c := range s.SuccessCodes {
		if c < 100 || c > 599 {
			return bad(fmt.Sprintf("success_codes[%d]", i), "must be an HTTP status code, got %d", c)
		}
	}
	if s.Target == TargetRequests && len(s.requestGroups()) == 0 {
		return bad("users", "every group has target login: set the scenario's target to login instead")
	}
	if err := s.Load.validate(s.File); err != nil {
		return err
	}
	if err := s.validateFaults(); err != nil {
		return err
	}
	if err := s.Env.validate(s.File); err != nil {
		return err
	}
	return s.Thresholds.validate(s)
}

func validateMix(file, path string, mix []Mix) error {
	bad := func(field, format string, args ...any) error {
		return &FieldError{File: file, Field: field, Problem: fmt.Sprintf(format, args...)}
	}
	for i, m := range mix {
		p := fmt.Sprintf("%s[%d]", path, i)
		params := map[string]*int{"bytes": m.Bytes, "ms": m.MS, "iterations": m.Iterations, "times": m.Times}
		var own string
		var lo, hi int
		switch m.Type {
		case TypeEcho:
			own, lo, hi = "bytes", 0, maxEchoBytes
		case TypeSleep:
			own, lo, hi = "ms", 0, maxSleepMS
		case TypeCPU:
			own, lo, hi = "iterations", 1, maxIterations
		case TypeFail:
			own, lo, hi = "times", 0, maxFailTimes
		case "":
			return bad(p+".type", "is required: one of echo, sleep, cpu, fail")
		default:
			return bad(p+".type", "must be one of echo, sleep, cpu, fail, got %q", m.Type)
		}
		if m.Weight < 1 {
			return bad(p+".weight", "must be at least 1, got %d", m.Weight)
		}
		for _, name := range []string{"bytes", "ms", "iterations", "times"} {
			if name != own && params[name] != nil {
				return bad(p+"."+name, "does not apply to type %s (it takes %s)", m.Type, own)
			}
		}
		v := params[own]
		if v == nil {
			return bad(p+"."+own, "is required for type %s", m.Type)
		}
		if *v < lo || *v > hi {
			return bad(p+"."+own, "must be from %d to %d, got %d", lo, hi, *v)
		}
	}
	return nil
}

func (l *Load) validate(file string) error {
	bad := func(field, format string, args ...any) error {
		return &FieldError{File: file, Field: "load." + field, Problem: fmt.Sprintf(format, args...)}
	}
	uses := map[string][]string{
		ShapeConstant: {"rate", "duration"},
		ShapeLinear:   {"from", "to", "duration"},
		ShapeSteps:    {"from", "to", "step", "step_duration", "step_drain"},
		ShapeSpike:    {"rate", "duration", "peak", "spike_at", "spike_duration"},
	}
	own, ok := uses[l.Shape]
	if !ok {
		if l.Shape == "" {
			return bad("shape", "is required: one of constant, linear, steps, spike")
		}
		return bad("shape", "must be one of constant, linear, steps, spike, got %q", l.Shape)
	}
	set := map[string]bool{
		"rate": l.Rate != 0, "duration": l.Duration != 0, "from": l.From != 0, "to": l.To != 0,
		"step": l.Step != 0, "step_duration": l.StepDuration != 0, "peak": l.Peak != 0,
		"spike_at": l.SpikeAt != 0, "spike_duration": l.SpikeDuration != 0,
		"step_drain": l.StepDrain != 0 && l.Shape != ShapeSteps,
	}
	for _, name := range []string{"rate", "duration", "from", "to", "step", "step_duration", "step_drain", "peak", "spike_at", "spike_duration"} {
		if set[name] && !slices.Contains(own, name) {
			return bad(name, "does not apply to shape %s (it takes %s)", l.Shape, strings.Join(own, ", "))
		}
	}
	positive := func(name string, v float64) error {
		if v <= 0 {
			return bad(name, "is required for shape %s and must be above 0, got %v", l.Shape, v)
		}
		return nil
	}
	positiveDur := func(name string, v time.Duration) error {
		if v <= 0 {
			return bad(name, "is required for shape %s and must be a positive duration, got %s", l.Shape, v)
		}
		return nil
	}
	var errs []error
	switch l.Shape {
	case ShapeConstant:
		errs = append(errs, positive("rate", l.Rate), positiveDur("duration", l.Duration))
	case ShapeLinear:
		errs = append(errs, positive("from", l.From), positive("to", l.To), positiveDur("duration", l.Duration))
	case ShapeSteps:
		errs = append(errs, positive("from", l.From), positive("to", l.To), positive("step", l.Step),
			positiveDur("step_duration", l.StepDuration), positiveDur("step_drain", l.StepDrain))
		if l.To < l.From {
			errs = append(errs, bad("to", "must be at least from (%v), got %v", l.From, l.To))
		}
		if l.Step > 0 && (l.To-l.From)/l.Step > 100 {
			errs = append(errs, bad("step", "makes more than 100 steps from %v to %v; take a bigger step", l.From, l.To))
		}
	case ShapeSpike:
		errs = append(errs, positive("rate", l.Rate), positiveDur("duration", l.Duration),
			positive("peak", l.Peak), positiveDur("spike_duration", l.SpikeDuration))
		if l.SpikeAt < 0 {
			errs = append(errs, bad("spike_at", "must not be negative, got %s", l.SpikeAt))
		}
		// Compared without the sum, which wraps for durations near the
		// largest one (2562047h).
		if l.SpikeAt > l.Duration || l.SpikeDuration > l.Duration-l.SpikeAt {
			errs = append(errs, bad("spike_duration", "spike_at + spike_duration (%s) must end within duration (%s)", l.SpikeAt+l.SpikeDuration, l.Duration))
		}
	}
	for _, err := range errs { // the first problem, with its field
		if err != nil {
			return err
		}
	}
	if l.MaxInFlight < 1 {
		return bad("max_in_flight", "must be at least 1, got %d", l.MaxInFlight)
	}
	if l.Timeout <= 0 {
		return bad("timeout", "must be a positive duration, got %s", l.Timeout)
	}
	return nil
}

func (t *Thresholds) validate(s *Scenario) error {
	bad := func(field, format string, args ...any) error {
		return &FieldError{File: s.File, Field: "thresholds." + field, Problem: fmt.Sprintf(format, args...)}
	}
	if t.HTTPP99 != nil && *t.HTTPP99 <= 0 {
		return bad("http_p99", "must be a positive duration, got %s", *t.HTTPP99)
	}
	if t.E2EP99 != nil {
		if s.Target == TargetLogin {
			return bad("e2e_p99", "does not apply to target login (nothing is processed)")
		}
		if *t.E2EP99 <= 0 {
			return bad("e2e_p99", "must be a positive duration, got %s", *t.E2EP99)
		}
	}
	if t.SuccessRatio != nil && (*t.SuccessRatio < 0 || *t.SuccessRatio > 1) {
		return bad("success_ratio", "must be from 0 to 1, got %v", *t.SuccessRatio)
	}
	if t.Throughput != nil && *t.Throughput < 0 {
		return bad("throughput", "must not be negative, got %v", *t.Throughput)
	}
	if t.ProcessedThroughput != nil {
		if s.Target == TargetLogin {
			return bad("processed_throughput", "does not apply to target login")
		}
		if *t.ProcessedThroughput < 0 {
			return bad("processed_throughput", "must not be negative, got %v", *t.ProcessedThroughput)
		}
	}
	if s.Target == TargetLogin {
		if t.MaxViolations != nil {
			return bad("max_violations", "does not apply to target login (nothing to verify)")
		}
		if t.MaxLost != nil {
			return bad("max_lost", "does not apply to target login (nothing to verify)")
		}
	}
	if t.MaxViolations != nil && *t.MaxViolations < 0 {
		return bad("max_violations", "must not be negative, got %d", *t.MaxViolations)
	}
	if t.MaxLost != nil && *t.MaxLost < 0 {
		return bad("max_lost", "must not be negative, got %d", *t.MaxLost)
	}
	if t.MaxNeighbourSlowdown != nil {
		if s.BaselineWithout == "" {
			return bad("max_neighbour_slowdown", "needs baseline_without (the run to compare with)")
		}
		if *t.MaxNeighbourSlowdown < 1 {
			return bad("max_neighbour_slowdown", "must be at least 1 (a ratio of p99s), got %v", *t.MaxNeighbourSlowdown)
		}
	}
	if t.MaxRecovery != nil {
		if len(s.Faults) == 0 {
			return bad("max_recovery", "needs faults (there is nothing to recover from)")
		}
		if *t.MaxRecovery <= 0 {
			return bad("max_recovery", "must be a positive duration, got %s", *t.MaxRecovery)
		}
	}
	if t.MaxRSSMB != nil && *t.MaxRSSMB <= 0 {
		return bad("max_rss_mb", "must be above 0, got %v", *t.MaxRSSMB)
	}
	if t.HealthzP99 != nil && *t.HealthzP99 <= 0 {
		return bad("healthz_p99", "must be a positive duration, got %s", *t.HealthzP99)
	}
	if t.MinCapacity != nil {
		if s.Load.Shape != ShapeSteps {
			return bad("min_capacity", "applies to shape steps only")
		}
		if *t.MinCapacity <= 0 {
			return bad("min_capacity", "must be above 0, got %v", *t.MinCapacity)
		}
	}
	return nil
}

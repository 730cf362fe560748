package scenario_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/docket/docket/bench/scenario"
)

// aliasBomb is a small file whose aliases expand to 400 groups of 400 mix
// entries each.
func aliasBomb() string {
	return "name: x\nmix: &m [" + strings.Repeat("{type: echo}, ", 399) + "{type: echo}]\n" +
		"users: [&g {group: a, count: 1, mix: *m}" + strings.Repeat(", *g", 399) + "]\n" +
		"load: {shape: constant, rate: 1, duration: 1s}\n"
}

// Files FuzzParseScenario found or was seeded with, refused with the field.
func TestHostileScenarios(t *testing.T) {
	t.Parallel()
	spike := func(at, length, total string) string {
		return strings.Replace(minimal, "shape: constant\n  rate: 10\n  duration: 5s",
			"shape: spike\n  rate: 10\n  peak: 100\n  spike_at: "+at+"\n  spike_duration: "+length+"\n  duration: "+total, 1)
	}
	for _, tt := range []struct{ name, yaml, field, problem string }{
		{"NaN share", strings.Replace(minimal, "count: 2", "count: 2\n    share: !!float nan", 1), "users[0].share", `want a number, got "nan"`},
		{"infinite rate", strings.Replace(minimal, "rate: 10", "rate: !!float +inf", 1), "load.rate", `want a number, got "+inf"`},
		{"NaN success ratio", minimal + "thresholds: {success_ratio: !!float NaN}\n", "thresholds.success_ratio", "want a number"},
		{"spike sum wraps around", spike("2562047h", "2562047h", "1s"), "load.spike_duration", "must end within duration"},
		{"spike starting after the end", spike("10s", "1s", "5s"), "load.spike_duration", "must end within duration"},
		{"count beyond a million", strings.Replace(minimal, "count: 2", "count: 9223372036854775807", 1), "users[0].count", "at most 1000000"},
		{"aliases expanding to 800,000 values", aliasBomb(), "", "expands to more than 20000 values"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := parse(t, tt.yaml)
			if err == nil {
				t.Fatal("accepted")
			}
			var fe *scenario.FieldError
			if !errors.As(err, &fe) || !strings.HasPrefix(err.Error(), "scenarios/x.yaml") ||
				(tt.field != "" && fe.Field != tt.field) || !strings.Contains(err.Error(), tt.problem) {
				t.Errorf("error %q: want file scenarios/x.yaml, field %q, problem %q", err, tt.field, tt.problem)
			}
		})
	}
	// A spike that ends exactly at the end still holds.
	if _, err := parse(t, spike("4s", "1s", "5s")); err != nil {
		t.Errorf("spike ending at the end: %v", err)
	}
}

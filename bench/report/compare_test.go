package report_test

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/docket/docket/bench/report"
)

func TestCompare(t *testing.T) {
	t.Parallel()
	a, b := fixture(), fixture()
	b.HTTP.Latency.P99 = 25             // twice as slow: worse
	b.HTTP.Latency.P50 = 1.41           // within noise
	b.Processing.ProcessedPerSec = 1200 // faster: better
	b.Verify.Counts.Lost = 2            // from 0: worse, no percentage
	changes := map[string]report.Change{}
	for _, c := range report.Compare(a, b) {
		changes[c.Figure] = c
	}
	check := func(fig, verdict string, pct float64) {
		t.Helper()
		c, ok := changes[fig]
		if !ok {
			t.Fatalf("no figure %q", fig)
		}
		if c.Verdict != verdict {
			t.Errorf("%s: verdict %q, want %q", fig, c.Verdict, verdict)
		}
		if math.IsNaN(pct) != math.IsNaN(c.Percent) || (!math.IsNaN(pct) && math.Abs(c.Percent-pct) > 0.01) {
			t.Errorf("%s: %v%%, want %v%%", fig, c.Percent, pct)
		}
	}
	check("http p99", "worse", 100)
	check("http p50", "~", 0.714)
	check("processed/s", "better", 20.16)
	check("lost", "worse", math.NaN())
	check("violations", "~", math.NaN())
	check("target rate", "", 0)
	if _, ok := changes["capacity"]; ok {
		t.Error("capacity listed though neither run has one")
	}
}

func TestWriteComparison(t *testing.T) {
	t.Parallel()
	a, b := fixture(), failing()
	var out bytes.Buffer
	if err := report.WriteComparison(&out, a, b); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{"A: steady 0a1b2c3d", "B: ramp 0a1b2c3d", "different scenarios", "http p99", "lost", "result: A PASS, B FAIL"} {
		if !strings.Contains(s, want) {
			t.Errorf("comparison lacks %q:\n%s", want, s)
		}
	}
	golden(t, "compare.golden.txt", out.Bytes())
}

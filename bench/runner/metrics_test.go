package runner

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/docket/docket/bench/attack"
	"github.com/docket/docket/bench/verify"
)

func TestBenchMetrics(t *testing.T) {
	t.Parallel()
	m := newBenchMetrics()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, err := m.serve(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m.setPhase("attack")
	now := time.Now()
	m.observe(&attack.Record{Code: 202, Sent: now, Received: now.Add(3 * time.Millisecond)})
	m.observe(&attack.Record{Code: 429, Sent: now, Received: now.Add(time.Millisecond)})
	m.setVerify(verify.Counts{Lost: 2, Order: 1})

	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	body := string(b)
	for _, want := range []string{
		`docket_bench_phase{phase="attack"} 1`,
		`docket_bench_phase{phase="setup"} 0`,
		`docket_bench_requests_total{code="202"} 1`,
		`docket_bench_requests_total{code="429"} 1`,
		`docket_bench_latency_seconds_bucket{le="0.005"} 2`,
		`docket_bench_latency_seconds_bucket{le="0.001"} 1`,
		`docket_bench_latency_seconds_count 2`,
		`docket_bench_target_rate 0`,
		`docket_bench_achieved_rate 0`,
		`docket_bench_in_flight 0`,
		`docket_bench_verify_violations{kind="lost"} 2`,
		`docket_bench_verify_violations{kind="order"} 1`,
		`docket_bench_verify_violations{kind="happens_before"} 0`,
		`process_resident_memory_bytes`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", body)
	}
}

// BenchmarkObserve is the bench's metrics work per answered request.
func BenchmarkObserve(b *testing.B) {
	m := newBenchMetrics()
	now := time.Now()
	rec := &attack.Record{Code: 202, Sent: now, Received: now.Add(3 * time.Millisecond)}
	b.ReportAllocs()
	for b.Loop() {
		m.observe(rec)
	}
}

package attack

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/docket/docket/bench/api"
)

// acceptedBody is a 202 as docket's service writes it.
const acceptedBody = `{"id":"0193f1a2-7c4e-7b8a-9d2e-3f4a5b6c7d8e","seq":123456,"status":"queued"}`

// benchAttack is an attack of 200 open users with JWT-sized tokens, as
// scenarios/steady.yaml runs it.
func benchAttack(b *testing.B, base string, sched Schedule) *Attack {
	b.Helper()
	users := make([]*api.User, 200)
	for i := range users {
		users[i] = &api.User{Name: fmt.Sprintf("bench-1a2b3c4d-%d", i), Password: "password-123"}
		// A token of the length the service issues (HS256 JWT).
		users[i].SetToken(fmt.Sprintf("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJiZW5jaC0xYTJiM2M0ZC0%03dIiwiZXhwIjoxNzk0MzE2MDAwLCJpYXQiOjE3OTQzMTI0MDB9.c2lnbmF0dXJlLW9mLXRoZS10b2tlbi1pcy1oZXJl", i), time.Now().Add(time.Hour))
	}
	a, err := New(Config{
		Base: base, Target: TargetRequests, Label: "main", RunID: "1a2b3c4d",
		Groups: []Group{{Name: "users", Mode: ModeOpen, Share: 1, Users: users,
			Mix: []Body{{Type: "echo", Weight: 1, JSON: []byte(`{"type":"echo","payload":"0123456789012345678901234567890123456789012345678901234567890123"}`)}}}},
		Schedule: sched, MaxInFlight: 5000, Timeout: 30 * time.Second,
	})
	if err != nil {
		b.Fatal(err)
	}
	return a
}

// BenchmarkHit is the bench's own work per request around vegeta's: the
// targeter, vegeta's copy of the target into an *http.Request (its size
// is the targeter's doing), and turning the result into a record.
func BenchmarkHit(b *testing.B) {
	a := benchAttack(b, "http://127.0.0.1:3001", Constant(1000, time.Minute))
	body := []byte(acceptedBody)
	b.ReportAllocs()
	for b.Loop() {
		var tgt vegeta.Target
		if err := a.targeter(&tgt); err != nil {
			b.Fatal(err)
		}
		if _, err := tgt.Request(); err != nil {
			b.Fatal(err)
		}
		now := time.Now()
		res := &vegeta.Result{Attack: "main", Code: 202, Timestamp: now, Latency: time.Millisecond,
			Method: tgt.Method, URL: tgt.URL, Body: body, BytesIn: uint64(len(body))}
		if rec := a.collect(res); rec == nil || rec.ID == "" {
			b.Fatalf("collect: %+v", rec)
		}
	}
}

// loopbackServer answers every request like docket's POST /requests.
func loopbackServer(b *testing.B) *httptest.Server {
	b.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, acceptedBody)
	}))
	b.Cleanup(srv.Close)
	return srv
}

// loopbackSchedule sends b.N hits at 1000/s: hit k goes out at k/rate, and
// half an interval more sends exactly b.N.
func loopbackSchedule(b *testing.B) Schedule {
	const rate = 1000
	return Constant(rate, (time.Duration(b.N)*time.Second+time.Second/2)/rate)
}

// BenchmarkVegetaLoopback is BenchmarkAttackLoopback's floor: vegeta alone,
// with Run's options, sending the same request over and over and counting
// the answers. The bench's own overhead is the difference.
func BenchmarkVegetaLoopback(b *testing.B) {
	srv := loopbackServer(b)
	a := benchAttack(b, srv.URL, loopbackSchedule(b))
	tgt := vegeta.Target{Method: http.MethodPost, URL: srv.URL + "/requests", Body: a.cfg.Groups[0].Mix[0].JSON,
		Header: http.Header{"Content-Type": {"application/json"}, "X-Request-Id": {"1a2b3c4d-1"},
			"Authorization": {"Bearer " + a.cfg.Groups[0].Users[0].Token()}}}
	atk := vegeta.NewAttacker(
		vegeta.Workers(64), vegeta.MaxWorkers(5000), vegeta.Connections(5000), vegeta.Timeout(30*time.Second),
		vegeta.MaxBody(64<<10), vegeta.KeepAlive(true), vegeta.HTTP2(false), vegeta.Redirects(vegeta.NoFollow),
	)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU()
	n := 0
	for res := range atk.Attack(vegeta.NewStaticTargeter(tgt), a.cfg.Schedule, a.cfg.Schedule.Duration(), "main") {
		if res.Code == http.StatusAccepted {
			n++
		}
	}
	used := processCPU() - cpu
	b.StopTimer()
	if n < b.N*9/10 {
		b.Fatalf("%d answers of %d", n, b.N)
	}
	b.ReportMetric(float64(used.Microseconds())/float64(n), "cpu-µs/req")
}

// BenchmarkAttackLoopback runs a whole attack against a trivial in-process
// server at 1000/s: the CPU per request is the bench's and the server's
// together, like ceiling's http step. Run it with -benchtime=3000x or so.
func BenchmarkAttackLoopback(b *testing.B) {
	srv := loopbackServer(b)
	a := benchAttack(b, srv.URL, loopbackSchedule(b))
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU()
	st, recs, err := a.Run(context.Background())
	used := processCPU() - cpu
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	// A busy machine may fall a few hits behind; the CPU is per answer.
	if len(recs) < b.N*9/10 {
		b.Fatalf("stats %+v, %d records", st, len(recs))
	}
	b.ReportMetric(float64(used.Microseconds())/float64(len(recs)), "cpu-µs/req")
}

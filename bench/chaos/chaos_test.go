package chaos_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/docket/docket/bench/attack"
	"github.com/docket/docket/bench/chaos"
	"github.com/docket/docket/bench/scenario"
)

var t0 = time.Date(2026, 11, 29, 11, 0, 0, 0, time.UTC)

// fakeClock jumps to whatever time it is asked to sleep until; the
// injector's steps take the time the test says.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }
func (c *fakeClock) SleepUntil(ctx context.Context, t time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if t.After(c.now) {
		c.now = t
	}
	return nil
}

type fakeInjector struct {
	clock     *fakeClock
	took      map[string]time.Duration // "begin kill-worker": how long the step takes
	fail      map[string]error
	log       []string
	cancelOn  string
	cancelRun context.CancelFunc
}

func (f *fakeInjector) step(what string, fault scenario.Fault) error {
	key := what + " " + fault.Action
	f.log = append(f.log, fmt.Sprintf("%s at %s", key, f.clock.now.Sub(t0)))
	f.clock.now = f.clock.now.Add(f.took[key])
	if key == f.cancelOn {
		f.cancelRun()
	}
	return f.fail[key]
}

func (f *fakeInjector) Begin(_ context.Context, fault scenario.Fault) error {
	return f.step("begin", fault)
}

func (f *fakeInjector) End(ctx context.Context, fault scenario.Fault) error {
	if ctx.Err() != nil {
		return errors.New("End got a cancelled context")
	}
	return f.step("end", fault)
}

func worker(i int) *int { return &i }

func TestRunFollowsTheSchedule(t *testing.T) {
	t.Parallel()
	faults := []scenario.Fault{
		{At: 10 * time.Second, Action: scenario.ActionKillWorker, Duration: 5 * time.Second, Worker: worker(1)},
		{At: 20 * time.Second, Action: scenario.ActionRestartRabbitMQ, Duration: 2 * time.Second},
		// starts on time although the broker took long to come back
		{At: 40 * time.Second, Action: scenario.ActionStopWorkers, Duration: 10 * time.Second},
	}
	clock := &fakeClock{now: t0}
	inj := &fakeInjector{clock: clock, took: map[string]time.Duration{
		"begin restart-rabbitmq": 4 * time.Second, // the shutdown outlasts the planned downtime
		"end restart-rabbitmq":   6 * time.Second,
	}}
	recs := chaos.Run(context.Background(), t0, faults, inj, clock, nil)
	want := []string{
		"begin kill-worker at 10s", "end kill-worker at 15s",
		"begin restart-rabbitmq at 20s", "end restart-rabbitmq at 24s",
		"begin stop-workers at 40s", "end stop-workers at 50s",
	}
	if got := strings.Join(inj.log, "; "); got != strings.Join(want, "; ") {
		t.Fatalf("steps:\n got %s\nwant %s", got, strings.Join(want, "; "))
	}
	if len(recs) != 3 {
		t.Fatalf("%d records", len(recs))
	}
	r := recs[1]
	if r.Started.Sub(t0) != 20*time.Second || r.Down.Sub(t0) != 24*time.Second || r.Ended.Sub(t0) != 30*time.Second || r.DownFor() != 10*time.Second || r.Err != nil {
		t.Errorf("rabbitmq record %+v", r)
	}
}

func TestRunReportsFailuresAndStillEnds(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{now: t0}
	inj := &fakeInjector{clock: clock, fail: map[string]error{"begin restart-postgres": errors.New("pg_ctlcluster: exit 1")}}
	recs := chaos.Run(context.Background(), t0, []scenario.Fault{{At: time.Second, Action: scenario.ActionRestartPostgres, Duration: time.Second}}, inj, clock, nil)
	if len(recs) != 1 || recs[0].Err == nil || !strings.Contains(recs[0].Err.Error(), "begin: pg_ctlcluster: exit 1") {
		t.Fatalf("records %+v", recs)
	}
	if len(inj.log) != 2 {
		t.Errorf("a fault whose beginning failed must still be ended: %v", inj.log)
	}
}

// An interrupted run ends the fault under way at once and starts no more.
func TestRunUndoesTheFaultWhenInterrupted(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clock := &fakeClock{now: t0}
	inj := &fakeInjector{clock: clock, cancelOn: "begin restart-rabbitmq", cancelRun: cancel}
	recs := chaos.Run(ctx, t0, []scenario.Fault{
		{At: time.Second, Action: scenario.ActionRestartRabbitMQ, Duration: 30 * time.Second},
		{At: 40 * time.Second, Action: scenario.ActionStopWorkers, Duration: time.Second},
	}, inj, clock, nil)
	if got := strings.Join(inj.log, "; "); got != "begin restart-rabbitmq at 1s; end restart-rabbitmq at 1s" {
		t.Fatalf("steps %s", got)
	}
	if len(recs) != 1 || recs[0].Err != nil {
		t.Errorf("records %+v", recs)
	}
}

func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

func rec(sent, received float64, code int) *attack.Record {
	return &attack.Record{Sent: at(sent), Received: at(received), Code: code}
}

func dur(d time.Duration) *time.Duration { return &d }

func TestRecover(t *testing.T) {
	t.Parallel()
	fault := chaos.Record{Started: at(20), Down: at(20.5), Ended: at(30)}
	records := []*attack.Record{
		rec(19, 19.01, 202),
		rec(21, 21.1, 0), // no answer while the service is down
		rec(25, 25.1, 503),
		rec(29.9, 30.05, 0),
		rec(30.2, 30.4, 503), // not ready yet
		rec(30.5, 30.75, 202),
		rec(30.6, 30.65, 0), // sent before the first 202 after: counted
		rec(31, 31.01, 0),   // after it: not counted
		rec(31, 31.2, 202),
	}
	backlog := []chaos.Sample{
		{At: at(10), Value: 900}, // outside the window before the fault
		{At: at(16), Value: 300},
		{At: at(19.5), Value: 200},
		{At: at(25), Value: 4000},
		{At: at(30.5), Value: 2000},
		{At: at(33), Value: 600}, // 300 × 1.5 + 100 = 550: not yet
		{At: at(34.5), Value: 500},
		{At: at(40), Value: 9000}, // after the recovery: not the peak of this fault
	}
	got := chaos.Recover(fault, records, backlog)
	want := chaos.Recovery{
		FirstAcceptAfter: dur(750 * time.Millisecond),
		Failed:           5,
		BacklogBefore:    300, BacklogPeak: 4000,
		BacklogRecovered: dur(4500 * time.Millisecond),
		Sampled:          true,
	}
	if fmt.Sprint(deref(got)) != fmt.Sprint(deref(want)) {
		t.Errorf("got  %v\nwant %v", deref(got), deref(want))
	}
}

func TestRecoverNever(t *testing.T) {
	t.Parallel()
	fault := chaos.Record{Started: at(20), Down: at(20), Ended: at(30)}
	got := chaos.Recover(fault, []*attack.Record{rec(19, 19.5, 202), rec(31, 31.5, 0)}, []chaos.Sample{{At: at(31), Value: 1000}})
	if got.FirstAcceptAfter != nil || got.BacklogRecovered != nil || got.Failed != 1 || got.BacklogPeak != 1000 || !got.Sampled {
		t.Errorf("got %v", deref(got))
	}
	if got := chaos.Recover(fault, nil, nil); got.Sampled || got.BacklogRecovered != nil {
		t.Errorf("without samples: %v", deref(got))
	}
}

func deref(r chaos.Recovery) string {
	show := func(d *time.Duration) string {
		if d == nil {
			return "never"
		}
		return d.String()
	}
	return fmt.Sprintf("first202 %s failed %d before %v peak %v recovered %s sampled %v",
		show(r.FirstAcceptAfter), r.Failed, r.BacklogBefore, r.BacklogPeak, show(r.BacklogRecovered), r.Sampled)
}

func TestPreflight(t *testing.T) {
	t.Parallel()
	found := func(string) (string, error) { return "/usr/sbin/x", nil }
	missing := func(name string) (string, error) { return "", fmt.Errorf("exec: %q: not found", name) }
	restart := func(action string) []scenario.Fault { return []scenario.Fault{{At: time.Second, Action: action}} }
	tests := []struct {
		name    string
		faults  []scenario.Fault
		env     chaos.Env
		want    string // error text; "" for none
		version string
	}{
		{"workers need nothing", restart(scenario.ActionStopWorkers), chaos.Env{EUID: 1000}, "", ""},
		{"rabbitmq as root", restart(scenario.ActionRestartRabbitMQ), chaos.Env{LookPath: found}, "", ""},
		{"rabbitmq not root", restart(scenario.ActionRestartRabbitMQ), chaos.Env{EUID: 1000, LookPath: found}, "run the bench as root", ""},
		{"rabbitmq elsewhere", restart(scenario.ActionRestartRabbitMQ), chaos.Env{RabbitMQURL: "amqp://u:secret@mq.example:5672/", LookPath: found}, "use one elsewhere (amqp://u:xxxxx@mq.example:5672/)", ""},
		{"rabbitmqctl missing", restart(scenario.ActionRestartRabbitMQ), chaos.Env{LookPath: missing}, "needs rabbitmqctl on PATH", ""},
		{"postgres", restart(scenario.ActionRestartPostgres), chaos.Env{LookPath: found, DatabaseURL: "postgres://postgres@127.0.0.1:5432/docket", PGVersions: []string{"15"}}, "", "15"},
		{"postgres without cluster", restart(scenario.ActionRestartPostgres), chaos.Env{LookPath: found}, "no PostgreSQL cluster", ""},
		{"postgres ambiguous", restart(scenario.ActionRestartPostgres), chaos.Env{LookPath: found, PGVersions: []string{"16", "15"}}, "several PostgreSQL versions under /etc/postgresql (15, 16)", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, err := chaos.Preflight(tt.faults, tt.env)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want %q", err, tt.want)
			case v != tt.version:
				t.Errorf("version %q, want %q", v, tt.version)
			}
		})
	}
}

func TestBacklogSeries(t *testing.T) {
	t.Parallel()
	spans := []chaos.Span{
		{Accepted: at(0.5), Finished: at(1.5)},
		{Accepted: at(1), Finished: at(4)},
		{Accepted: at(1.2)}, // never finished
		{Accepted: at(2.5), Finished: at(2.6)},
		{Accepted: at(3), Finished: at(3)}, // finished at once
	}
	got := chaos.BacklogSeries(spans, at(0), at(4), time.Second)
	want := []float64{0, 2, 2, 2, 1}
	if len(got) != len(want) {
		t.Fatalf("samples %v", got)
	}
	for i, s := range got {
		if s.Value != want[i] || !s.At.Equal(at(float64(i))) {
			t.Errorf("sample %d: %v at %s, want %v at %ds", i, s.Value, s.At.Sub(t0), want[i], i)
		}
	}
	if chaos.BacklogSeries(spans, at(4), at(0), time.Second) != nil {
		t.Error("a series that ends before it starts")
	}
}

package boardcheck

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docket/docket/e2e/harness"
)

// rabbitPrometheusAddr is where RabbitMQ's rabbitmq_prometheus plugin
// answers (TEST_RABBITMQ_PROMETHEUS_ADDR overrides it).
func rabbitPrometheusAddr() string {
	if a := os.Getenv("TEST_RABBITMQ_PROMETHEUS_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:15692"
}

// What the panels' Grafana variables stand for in the live test. $vhost is
// the stack's own vhost, set per run.
var liveVariables = map[string]string{
	"__rate_interval": "1m",
	"__interval":      "15s",
	"__range":         "10m",
}

// benchScenario is a short mixed load: every request type, failures that
// retry and one that gives up, sequential users (so happens-before is
// checked) and open ones.
const benchScenario = `name: boardcheck
description: a short mixed load that puts a value on every panel
users:
  - group: sequential
    count: 8
    mode: sequential
  - group: open
    count: 12
    mode: open
mix:
  - type: echo
    weight: 80
    bytes: 64
  - type: sleep
    weight: 8
    ms: 2
  - type: cpu
    weight: 5
    iterations: 1000
  - type: fail
    weight: 5
    times: 1
  - type: fail
    weight: 2
    times: 10
load:
  shape: constant
  rate: 100
  duration: 8s
  max_in_flight: 1000
  timeout: 10s
drain_timeout: 60s
thresholds:
  max_violations: 0
  max_lost: 0
`

// TestBoardsAgainstALiveStack runs the service and two workers, a
// Prometheus of its own with the project's rules and jobs, and a bench run
// with a few error answers beside it; then every board's panel queries,
// annotations and variables and every recording rule must evaluate without
// error to at least one series with a number. A board that shows nothing
// for docket under load fails here.
func TestBoardsAgainstALiveStack(t *testing.T) {
	rabbit := rabbitPrometheusAddr()
	if err := get("http://" + rabbit + "/metrics"); err != nil {
		t.Fatalf("RabbitMQ's rabbitmq_prometheus plugin does not answer at %s (rabbitmq-plugins enable rabbitmq_prometheus; .ci/run does it): %v", rabbit, err)
	}
	tool(t, "prometheus")
	benchBin := buildBench(t)

	s := harness.NewStack(t, 4)
	s.StartService()
	w1, w2 := s.StartWorker(), s.StartWorker()
	vhost := vhostOf(t, s.AMQPURL)
	benchAddr := freeAddr(t)

	config := liveConfig(t, map[string][]string{
		"docket-service":  {hostOf(t, s.API)},
		"docket-worker":   {hostOf(t, w1.MetricsURL), hostOf(t, w2.MetricsURL)},
		"docket-bench":    {benchAddr},
		"rabbitmq":        {rabbit},
		"rabbitmq-queues": {rabbit},
	})
	prom := startPrometheus(t, config)
	start := time.Now()
	prom.waitScraped(t, start, "docket-service", "docket-worker", "rabbitmq", "rabbitmq-queues")

	driveErrors(t, s)
	runBench(t, benchBin, s.API, benchAddr)
	loadEnd := time.Now()
	prom.waitScraped(t, loadEnd, "docket-service", "docket-worker", "rabbitmq", "rabbitmq-queues")
	prom.waitEvaluated(t, time.Now())
	evalAt := time.Now()

	// The bench serves its metrics only while it runs: its board is read
	// at the last scrape that found it up, its annotations over the run.
	runFrom, runTo := upWindow(t, prom, "docket-bench", start, evalAt)
	t.Logf("stack up from %s; bench scraped from %s to %s; evaluating at %s",
		start.Format(time.TimeOnly), runFrom.Format(time.TimeOnly), runTo.Format(time.TimeOnly), evalAt.Format(time.TimeOnly))

	vars := map[string]string{"vhost": vhost}
	for k, v := range liveVariables {
		vars[k] = v
	}
	all := boards(t)
	for _, name := range sortedNames(all) {
		d := all[name]
		at := evalAt
		if name == "bench" {
			at = runTo
		}
		t.Run(name, func(t *testing.T) {
			for _, q := range d.queries() {
				checkInstant(t, prom, d.file+": "+q.where, q.expr, vars, at)
			}
			for _, q := range d.annotationQueries() {
				checkRange(t, prom, d.file+": "+q.where, q.expr, vars, runFrom, runTo)
			}
			for _, v := range d.Templating.List {
				checkVariable(t, prom, d.file, v, vars)
			}
		})
	}

	t.Run("rules", func(t *testing.T) {
		for _, g := range prom.ruleGroups(t) {
			for _, r := range g.Rules {
				if r.Health != "ok" {
					t.Errorf("rule %s (group %s): health %q: %s", r.Name, g.Name, r.Health, r.LastError)
				}
			}
		}
		for _, r := range rules(t) {
			if !r.recording {
				continue
			}
			at := evalAt
			if strings.Contains(r.expr, "docket_bench_") {
				at = runTo
			}
			checkInstant(t, prom, "recording rule "+r.name, r.name, nil, at)
		}
	})

	t.Run("ordering held", func(t *testing.T) {
		alerts, err := prom.rangeQuery(`ALERTS{alertname=~"DocketFIFOViolation|DocketBenchVerifyViolations"}`, start, evalAt)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range alerts {
			t.Errorf("alert fired during the run: %s", a)
		}
	})

	t.Run("documented metrics", func(t *testing.T) {
		checkDocumentedMetricsServed(t, prom)
	})

	if t.Failed() {
		for _, tg := range prom.targets(t) {
			t.Logf("target %s %s: %s, last scrape %s %s", tg.ScrapePool, tg.ScrapeURL, tg.Health, tg.LastScrape.Format(time.TimeOnly), tg.LastError)
		}
	}
}

// checkInstant evaluates a query as a panel shows it at a time: it must not
// fail, and must return a series with a number (not only NaN).
func checkInstant(t *testing.T, prom *promServer, where, expr string, vars map[string]string, at time.Time) {
	t.Helper()
	q, err := expand(expr, vars)
	if err != nil {
		t.Errorf("%s: %v", where, err)
		return
	}
	res, err := prom.instant(q, at)
	switch {
	case err != nil:
		t.Errorf("%s: %s\n\t%v", where, q, err)
	case len(res) == 0:
		t.Errorf("%s: no series: %s", where, q)
	case !slices.ContainsFunc(res, func(s series) bool { return len(s.numbers()) > 0 }):
		t.Errorf("%s: only NaN (%d series): %s", where, len(res), q)
	default:
		t.Logf("%s: %d series", where, len(res))
	}
}

// checkRange evaluates a query over a time range, as an annotation is.
func checkRange(t *testing.T, prom *promServer, where, expr string, vars map[string]string, from, to time.Time) {
	t.Helper()
	q, err := expand(expr, vars)
	if err != nil {
		t.Errorf("%s: %v", where, err)
		return
	}
	res, err := prom.rangeQuery(q, from, to)
	switch {
	case err != nil:
		t.Errorf("%s: %s\n\t%v", where, q, err)
	case len(res) == 0:
		t.Errorf("%s: no series between %s and %s: %s", where, from.Format(time.TimeOnly), to.Format(time.TimeOnly), q)
	default:
		t.Logf("%s: %d series", where, len(res))
	}
}

// checkVariable runs a label_values variable and wants the value the live
// test gives it among the answers.
func checkVariable(t *testing.T, prom *promServer, file string, v variable, vars map[string]string) {
	t.Helper()
	if v.Type != "query" {
		return
	}
	selector, label, err := labelValuesQuery(v.query())
	if err != nil {
		t.Errorf("%s: variable %s: %v", file, v.Name, err)
		return
	}
	values, err := prom.labelValues(label, selector)
	if err != nil {
		t.Errorf("%s: variable %s: %v", file, v.Name, err)
		return
	}
	if !slices.Contains(values, vars[v.Name]) {
		t.Errorf("%s: variable %s offers %q, not the stack's %q", file, v.Name, values, vars[v.Name])
	}
}

// checkDocumentedMetricsServed holds docs/metrics.md to what the stack's
// processes serve: every docket_* name listed is served, and every one
// served is listed.
func checkDocumentedMetricsServed(t *testing.T, prom *promServer) {
	t.Helper()
	served, err := prom.labelValues("__name__", `{job=~"docket-.*"}`)
	if err != nil {
		t.Fatal(err)
	}
	doc := documentedMetrics(t)
	base := map[string]bool{}
	for _, name := range served {
		if !strings.HasPrefix(name, "docket_") {
			continue
		}
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if strings.HasSuffix(name, suffix) && doc[strings.TrimSuffix(name, suffix)] {
				name = strings.TrimSuffix(name, suffix)
			}
		}
		base[name] = true
		if !doc[name] {
			t.Errorf("%s is served but not listed in docs/metrics.md", name)
		}
	}
	for name := range doc {
		if strings.HasPrefix(name, "docket_") && !strings.Contains(name, ":") && !base[name] {
			t.Errorf("docs/metrics.md lists %s, which no docket process served during the run", name)
		}
	}
}

// upWindow returns the first and last times a job's targets were scraped up
// between from and to.
func upWindow(t *testing.T, prom *promServer, job string, from, to time.Time) (time.Time, time.Time) {
	t.Helper()
	res, err := prom.rangeQuery(`up{job="`+job+`"} == 1`, from, to)
	if err != nil {
		t.Fatal(err)
	}
	var first, last time.Time
	for _, s := range res {
		for _, pair := range s.Values {
			ts, _ := pair[0].(float64)
			at := time.UnixMilli(int64(ts * 1000))
			if first.IsZero() || at.Before(first) {
				first = at
			}
			if at.After(last) {
				last = at
			}
		}
	}
	if last.IsZero() {
		t.Fatalf("job %s was never scraped up between %s and %s: the bench's /metrics did not answer during its run", job, from.Format(time.TimeOnly), to.Format(time.TimeOnly))
	}
	return first, last
}

// driveErrors sends requests that fail in documented ways, so that the
// error panels have something to show beside the bench's load.
func driveErrors(t *testing.T, s *harness.Stack) {
	t.Helper()
	c := s.NewUser("boardcheck")
	if c == nil {
		t.FailNow()
	}
	client := &http.Client{Timeout: 10 * time.Second}
	for _, r := range []struct {
		method, path, token, body string
		want                      int
	}{
		{"GET", "/no/such/path", "", "", http.StatusNotFound},
		{"POST", "/requests", "", `{"type":"echo","payload":{"s":"x"}}`, http.StatusUnauthorized},
		{"POST", "/requests", c.Token, `{"type":"nope"}`, http.StatusBadRequest},
		{"POST", "/auth/login", "", `{"username":"boardcheck","password":"wrong password here"}`, http.StatusUnauthorized},
	} {
		code, body, err := harness.Do(client, r.method, s.API+r.path, r.token, []byte(r.body), nil)
		if err != nil || code != r.want {
			t.Fatalf("%s %s: %d %s %v; want %d", r.method, r.path, code, body, err, r.want)
		}
	}
}

// buildBench builds the bench binary (bench/) into a temporary directory.
func buildBench(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "bench")
	cmd := exec.Command("go", "build", "-o", bin, "./bench")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./bench: %v\n%s", err, out)
	}
	return bin
}

// runBench runs benchScenario against the API with the bench's /metrics on
// metricsAddr; the run must pass (the verifier finds nothing).
func runBench(t *testing.T, bin, api, metricsAddr string) {
	t.Helper()
	dir := t.TempDir()
	scenario := filepath.Join(dir, "boardcheck.yaml")
	if err := os.WriteFile(scenario, []byte(benchScenario), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "run",
		"--scenario", scenario,
		"--target", api,
		"--metrics-addr", metricsAddr,
		"--out", filepath.Join(dir, "results"),
	)
	cmd.Dir = dir
	// Flags only: BENCH_* variables of the caller's environment stay out.
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "BENCH_") })
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bench run: %v\n%s", err, out)
	}
	t.Logf("bench run:\n%s", tail(string(out), 30))
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func get(u string) error {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(u)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return nil
}

func hostOf(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		t.Fatalf("no host in %q: %v", raw, err)
	}
	return u.Host
}

// vhostOf returns the vhost an AMQP URL points into.
func vhostOf(t *testing.T, amqpURL string) string {
	t.Helper()
	u, err := url.Parse(amqpURL)
	if err != nil {
		t.Fatalf("parse %s: %v", amqpURL, err)
	}
	if v := strings.TrimPrefix(u.Path, "/"); v != "" {
		return v
	}
	return "/"
}

package boardcheck

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/docket/docket/internal/testenv"
)

// The live Prometheus scrapes and evaluates every second, so that a short
// load leaves enough samples for rates over a minute.
const liveInterval = "1s"

// liveConfig writes a Prometheus configuration for the live test: the
// project's prometheus.yml with every job kept as it is (name,
// metrics_path, params, relabelling) and only its targets replaced by
// targets[job]; the rule files are the project's. A job of prometheus.yml
// without targets here, or a target for a job it does not have, fails the
// test: the two must name the same jobs, so that the boards' job="..."
// selectors mean the same thing in both.
func liveConfig(t *testing.T, targets map[string][]string) string {
	t.Helper()
	src := repoPath("prometheus", "prometheus.yml")
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("prometheus.yml: %v", err)
	}
	cfg["global"] = map[string]any{
		"scrape_interval":     liveInterval,
		"scrape_timeout":      liveInterval,
		"evaluation_interval": liveInterval,
	}
	var ruleFiles []any
	for _, f := range cfg["rule_files"].([]any) {
		ruleFiles = append(ruleFiles, filepath.Join(filepath.Dir(src), f.(string)))
	}
	cfg["rule_files"] = ruleFiles

	seen := map[string]bool{}
	for _, sc := range cfg["scrape_configs"].([]any) {
		job := sc.(map[string]any)
		name := job["job_name"].(string)
		ts, ok := targets[name]
		if !ok {
			t.Fatalf("prometheus.yml job %s: the live test has no target for it; add one in live_test.go", name)
		}
		seen[name] = true
		for k := range job {
			if strings.HasSuffix(k, "_sd_configs") || k == "static_configs" || k == "scrape_interval" || k == "scrape_timeout" {
				delete(job, k)
			}
		}
		job["static_configs"] = []any{map[string]any{"targets": ts}}
	}
	for name := range targets {
		if !seen[name] {
			t.Fatalf("the live test scrapes job %s, which prometheus.yml does not have", name)
		}
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "prometheus.yml")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	checkSameJobs(t, src, path)
	return path
}

// scrapeJob is what a job of a configuration scrapes, targets aside.
type scrapeJob struct {
	JobName     string              `yaml:"job_name"`
	MetricsPath string              `yaml:"metrics_path"`
	Scheme      string              `yaml:"scheme"`
	Params      map[string][]string `yaml:"params"`
	Relabel     []map[string]any    `yaml:"relabel_configs"`
	MetricRel   []map[string]any    `yaml:"metric_relabel_configs"`
}

// promConfig is the part of a configuration that says what is scraped and
// which rules run.
type promConfig struct {
	RuleFiles     []string    `yaml:"rule_files"`
	ScrapeConfigs []scrapeJob `yaml:"scrape_configs"`
}

func readPromConfig(t *testing.T, path string) promConfig {
	t.Helper()
	var c promConfig
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return c
}

// checkSameJobs fails unless two configurations scrape the same jobs in
// the same way, targets aside.
func checkSameJobs(t *testing.T, want, got string) {
	t.Helper()
	w, g := readPromConfig(t, want), readPromConfig(t, got)
	if fmt.Sprintf("%+v", w.ScrapeConfigs) != fmt.Sprintf("%+v", g.ScrapeConfigs) {
		t.Fatalf("%s scrapes other jobs than %s:\n got %+v\nwant %+v", got, want, g.ScrapeConfigs, w.ScrapeConfigs)
	}
}

// promServer is a Prometheus process of the test's own: its own port, its
// own storage in a temporary directory.
type promServer struct {
	URL string
	cmd *exec.Cmd
	log *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startPrometheus(t *testing.T, config string) *promServer {
	t.Helper()
	bin := tool(t, "prometheus")
	addr := freeAddr(t)
	p := &promServer{URL: "http://" + addr, log: &syncBuffer{}}
	p.cmd = exec.Command(bin,
		"--config.file="+config,
		"--storage.tsdb.path="+t.TempDir(),
		"--web.listen-address="+addr,
		"--storage.tsdb.retention.time=1h",
		"--log.level=warn",
	)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	done := make(chan struct{})
	go func() {
		_ = p.cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("--- prometheus log:\n%s", p.log.String())
		}
	})
	testenv.Eventually(t, 30*time.Second, func() bool {
		select {
		case <-done:
			t.Fatalf("prometheus exited: %s", p.log.String())
		default:
		}
		resp, err := http.Get(p.URL + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, "prometheus at %s is not ready", p.URL)
	return p
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// api GETs a Prometheus API path and decodes its data into v.
func (p *promServer) api(path string, params url.Values, v any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+path+"?"+params.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var env struct {
		Status    string          `json:"status"`
		ErrorType string          `json:"errorType"`
		Error     string          `json:"error"`
		Data      json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return fmt.Errorf("%s: HTTP %d: %s", path, resp.StatusCode, body)
	}
	if env.Status != "success" {
		return fmt.Errorf("%s: %s: %s", path, env.ErrorType, env.Error)
	}
	return json.Unmarshal(env.Data, v)
}

// series is one series of a query's answer: its labels and its values
// (one for an instant query).
type series struct {
	Metric map[string]string `json:"metric"`
	Value  []any             `json:"value"`
	Values [][]any           `json:"values"`
}

func (s series) String() string {
	var labels []string
	for k, v := range s.Metric {
		labels = append(labels, k+"="+strconv.Quote(v))
	}
	slices.Sort(labels)
	return "{" + strings.Join(labels, ", ") + "}"
}

// numbers returns the series' values that are numbers (not NaN).
func (s series) numbers() []float64 {
	var out []float64
	pairs := s.Values
	if s.Value != nil {
		pairs = append(pairs, s.Value)
	}
	for _, pair := range pairs {
		if len(pair) != 2 {
			continue
		}
		str, _ := pair[1].(string)
		f, err := strconv.ParseFloat(str, 64)
		if err == nil && !math.IsNaN(f) {
			out = append(out, f)
		}
	}
	return out
}

func unix(at time.Time) string {
	return strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64)
}

// instant evaluates expr at a time.
func (p *promServer) instant(expr string, at time.Time) ([]series, error) {
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := p.api("/api/v1/query", url.Values{"query": {expr}, "time": {unix(at)}}, &data); err != nil {
		return nil, err
	}
	switch data.ResultType {
	case "vector":
		var out []series
		return out, json.Unmarshal(data.Result, &out)
	case "scalar":
		var v []any
		if err := json.Unmarshal(data.Result, &v); err != nil {
			return nil, err
		}
		return []series{{Metric: map[string]string{}, Value: v}}, nil
	default:
		return nil, fmt.Errorf("result type %s: a panel wants a vector", data.ResultType)
	}
}

// rangeQuery evaluates expr over [from, to] at one-second steps, as
// Grafana does for a panel or an annotation over that time range.
func (p *promServer) rangeQuery(expr string, from, to time.Time) ([]series, error) {
	var data struct {
		ResultType string   `json:"resultType"`
		Result     []series `json:"result"`
	}
	err := p.api("/api/v1/query_range", url.Values{
		"query": {expr}, "start": {unix(from)}, "end": {unix(to)}, "step": {"1"},
	}, &data)
	return data.Result, err
}

// labelValues returns the values of label on series matching selector.
func (p *promServer) labelValues(label, selector string) ([]string, error) {
	var values []string
	err := p.api("/api/v1/label/"+label+"/values", url.Values{"match[]": {selector}}, &values)
	return values, err
}

// ruleGroup is a group as /api/v1/rules reports it.
type ruleGroup struct {
	Name           string    `json:"name"`
	File           string    `json:"file"`
	LastEvaluation time.Time `json:"lastEvaluation"`
	Rules          []struct {
		Name      string `json:"name"`
		Type      string `json:"type"`
		Health    string `json:"health"`
		LastError string `json:"lastError"`
		State     string `json:"state"`
	} `json:"rules"`
}

func (p *promServer) ruleGroups(t *testing.T) []ruleGroup {
	t.Helper()
	var data struct {
		Groups []ruleGroup `json:"groups"`
	}
	if err := p.api("/api/v1/rules", nil, &data); err != nil {
		t.Fatalf("rules: %v", err)
	}
	return data.Groups
}

// scrapeTarget is an active target as /api/v1/targets reports it.
type scrapeTarget struct {
	ScrapePool string    `json:"scrapePool"`
	ScrapeURL  string    `json:"scrapeUrl"`
	Health     string    `json:"health"`
	LastError  string    `json:"lastError"`
	LastScrape time.Time `json:"lastScrape"`
}

func (p *promServer) targets(t *testing.T) []scrapeTarget {
	t.Helper()
	var data struct {
		ActiveTargets []scrapeTarget `json:"activeTargets"`
	}
	if err := p.api("/api/v1/targets", url.Values{"state": {"active"}}, &data); err != nil {
		t.Fatalf("targets: %v", err)
	}
	return data.ActiveTargets
}

// waitScraped waits until every target of the jobs was scraped healthy
// after the time given.
func (p *promServer) waitScraped(t *testing.T, after time.Time, jobs ...string) {
	t.Helper()
	var last []scrapeTarget
	testenv.Eventually(t, 30*time.Second, func() bool {
		last = p.targets(t)
		for _, job := range jobs {
			n := 0
			for _, tg := range last {
				if tg.ScrapePool != job {
					continue
				}
				n++
				if tg.Health != "up" || !tg.LastScrape.After(after) {
					return false
				}
			}
			if n == 0 {
				return false
			}
		}
		return true
	}, "jobs %q not all scraped healthy after %s: %+v", jobs, after.Format(time.RFC3339Nano), &last)
}

// waitEvaluated waits until every rule group was evaluated after the time
// given.
func (p *promServer) waitEvaluated(t *testing.T, after time.Time) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, func() bool {
		groups := p.ruleGroups(t)
		for _, g := range groups {
			if !g.LastEvaluation.After(after) {
				return false
			}
		}
		return len(groups) > 0
	}, "rule groups not all evaluated after %s", after.Format(time.RFC3339Nano))
}

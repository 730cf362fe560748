package boardcheck

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// Grafana's JSON model of version 10 and 11.
const schemaVersion = 39

var promDatasource = datasource{Type: "prometheus", UID: "prometheus"}

// panelTypes are the panel types the boards use; each ships with Grafana.
var panelTypes = []string{"row", "timeseries", "stat", "state-timeline"}

func TestBoardsAreWellFormed(t *testing.T) {
	t.Parallel()
	seenUID := map[string]string{}
	all := boards(t)
	for _, name := range sortedNames(all) {
		d := all[name]
		t.Run(name, func(t *testing.T) {
			if d.UID == "" || d.Title == "" {
				t.Errorf("%s: uid %q, title %q: both are needed", d.file, d.UID, d.Title)
			}
			if other, dup := seenUID[d.UID]; dup {
				t.Errorf("%s: uid %q is also %s's", d.file, d.UID, other)
			}
			seenUID[d.UID] = d.file
			if d.SchemaVersion != schemaVersion {
				t.Errorf("%s: schemaVersion %d, want %d (Grafana 10/11)", d.file, d.SchemaVersion, schemaVersion)
			}
			if !slices.Contains(d.Tags, "docket") {
				t.Errorf("%s: no tag docket (the boards link to each other by it)", d.file)
			}
			checkPanels(t, d)
			checkVariables(t, d)
		})
	}
}

func checkPanels(t *testing.T, d *dashboard) {
	t.Helper()
	ids := map[int]string{}
	var placed []panel
	for _, p := range d.allPanels() {
		where := fmt.Sprintf("%s: panel %d %q", d.file, p.ID, p.Title)
		if p.Title == "" {
			t.Errorf("%s: no title", where)
		}
		if p.ID <= 0 {
			t.Errorf("%s: id must be positive", where)
		} else if other, dup := ids[p.ID]; dup {
			t.Errorf("%s: id %d is also panel %q's", where, p.ID, other)
		}
		ids[p.ID] = p.Title
		if !slices.Contains(panelTypes, p.Type) {
			t.Errorf("%s: type %q, want one of %q", where, p.Type, panelTypes)
		}
		g := p.GridPos
		switch {
		case g == nil || g.H == nil || g.W == nil || g.X == nil || g.Y == nil:
			t.Errorf("%s: gridPos needs h, w, x and y", where)
		case *g.H < 1 || *g.W < 1 || *g.X < 0 || *g.Y < 0 || *g.X+*g.W > 24:
			t.Errorf("%s: gridPos %d×%d at (%d,%d) is off the 24-column grid", where, *g.W, *g.H, *g.X, *g.Y)
		default:
			for _, o := range placed {
				if overlap(*g, *o.GridPos) {
					t.Errorf("%s: overlaps panel %q", where, o.Title)
				}
			}
			placed = append(placed, p)
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || *p.Datasource != promDatasource {
			t.Errorf("%s: datasource %+v, want %+v", where, p.Datasource, promDatasource)
		}
		if p.FieldConfig.Defaults.Unit == "" {
			t.Errorf("%s: no fieldConfig.defaults.unit", where)
		}
		if len(p.Targets) == 0 {
			t.Errorf("%s: no targets", where)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("%s: target %q has no expr", where, tg.RefID)
			}
			if tg.RefID == "" || refs[tg.RefID] {
				t.Errorf("%s: target refId %q is empty or repeated", where, tg.RefID)
			}
			refs[tg.RefID] = true
			if tg.Datasource != nil && *tg.Datasource != promDatasource {
				t.Errorf("%s: target %s datasource %+v, want %+v", where, tg.RefID, *tg.Datasource, promDatasource)
			}
		}
		if strings.Contains(p.Title, "must stay 0") {
			checkZeroIsGreen(t, where, p)
		}
	}
}

func overlap(a, b gridPos) bool {
	return *a.X < *b.X+*b.W && *b.X < *a.X+*a.W && *a.Y < *b.Y+*b.H && *b.Y < *a.Y+*a.H
}

// checkZeroIsGreen holds a "must stay 0" stat to green at 0 and red from 1.
func checkZeroIsGreen(t *testing.T, where string, p panel) {
	t.Helper()
	th := p.FieldConfig.Defaults.Thresholds
	if p.Type != "stat" || th == nil || th.Mode != "absolute" || len(th.Steps) != 2 ||
		th.Steps[0].Color != "green" || th.Steps[0].Value != nil ||
		th.Steps[1].Color != "red" || th.Steps[1].Value == nil || *th.Steps[1].Value != 1 {
		t.Errorf("%s: a \"must stay 0\" panel is a stat with absolute thresholds green from the start, red from 1", where)
	}
}

func checkVariables(t *testing.T, d *dashboard) {
	t.Helper()
	defined := slices.Clone(grafanaGlobals)
	for _, v := range d.Templating.List {
		defined = append(defined, v.Name)
		if v.Type != "query" {
			continue
		}
		if v.Datasource == nil || *v.Datasource != promDatasource {
			t.Errorf("%s: variable %s datasource %+v, want %+v", d.file, v.Name, v.Datasource, promDatasource)
		}
		if _, _, err := labelValuesQuery(v.query()); err != nil {
			t.Errorf("%s: variable %s: %v", d.file, v.Name, err)
		}
	}
	for _, q := range append(d.queries(), d.annotationQueries()...) {
		for _, name := range variablesIn(q.expr) {
			if !slices.Contains(defined, name) {
				t.Errorf("%s: %s uses $%s, which the board does not define", d.file, q.where, name)
			}
		}
	}
}

// labelValuesQuery splits Grafana's label_values(selector, label).
func labelValuesQuery(q string) (selector, label string, err error) {
	m := regexp.MustCompile(`^label_values\((.+),\s*(\w+)\)$`).FindStringSubmatch(strings.TrimSpace(q))
	if m == nil {
		return "", "", fmt.Errorf("query %q: want label_values(selector, label)", q)
	}
	return m[1], m[2], nil
}

// The overview answers "is order kept?" at a glance, and the bench board
// marks the run.
func TestBoardsShowOrderingAndTheRun(t *testing.T) {
	t.Parallel()
	all := boards(t)
	hasStat := func(d *dashboard, metric string) bool {
		for _, q := range d.queries() {
			if q.panel.Type == "stat" && strings.Contains(q.panel.Title, "must stay 0") && strings.Contains(q.expr, metric) {
				return true
			}
		}
		return false
	}
	if !hasStat(all["overview"], "docket_fifo_violations_total") {
		t.Errorf("overview: no \"must stay 0\" stat of docket_fifo_violations_total")
	}
	if !hasStat(all["bench"], "docket_bench_verify_violations") {
		t.Errorf("bench: no \"must stay 0\" stat of docket_bench_verify_violations")
	}
	marked := false
	for _, a := range all["bench"].annotationQueries() {
		marked = marked || strings.Contains(a.expr, "docket_bench_phase")
	}
	if !marked {
		t.Errorf("bench: no annotation on docket_bench_phase marks the run")
	}
}

// Every job a board or rule selects is a job of prometheus.yml, so that
// job="..." means the same in the compose stack and in the live test.
func TestQueriesSelectJobsOfPrometheusYML(t *testing.T) {
	t.Parallel()
	jobs := prometheusJobs(t)
	var exprs []query
	all := boards(t)
	for _, name := range sortedNames(all) {
		for _, q := range append(all[name].queries(), all[name].annotationQueries()...) {
			q.where = all[name].file + ": " + q.where
			exprs = append(exprs, q)
		}
		for _, v := range all[name].Templating.List {
			exprs = append(exprs, query{where: all[name].file + ": variable " + v.Name, expr: v.query()})
		}
	}
	for _, r := range rules(t) {
		exprs = append(exprs, query{where: "rule " + r.name, expr: r.expr})
	}
	matcher := regexp.MustCompile(`\bjob\s*(=~|=|!=|!~)\s*"([^"]*)"`)
	for _, q := range exprs {
		for _, m := range matcher.FindAllStringSubmatch(q.expr, -1) {
			op, value := m[1], m[2]
			switch op {
			case "=":
				if !slices.Contains(jobs, value) {
					t.Errorf("%s selects job=%q: prometheus.yml has no such job (jobs: %q)", q.where, value, jobs)
				}
			case "=~":
				re, err := regexp.Compile("^(?:" + value + ")$")
				if err != nil {
					t.Errorf("%s: job=~%q: %v", q.where, value, err)
					continue
				}
				if !slices.ContainsFunc(jobs, re.MatchString) {
					t.Errorf("%s selects job=~%q: it matches no job of prometheus.yml (%q)", q.where, value, jobs)
				}
			}
		}
	}
}

// prometheusJobs returns the job names of prometheus/prometheus.yml.
func prometheusJobs(t *testing.T) []string {
	t.Helper()
	var cfg struct {
		ScrapeConfigs []struct {
			JobName string `yaml:"job_name"`
		} `yaml:"scrape_configs"`
	}
	b, err := os.ReadFile(repoPath("prometheus", "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("prometheus.yml: %v", err)
	}
	var jobs []string
	for _, c := range cfg.ScrapeConfigs {
		jobs = append(jobs, c.JobName)
	}
	return jobs
}

// Every docket_* and rabbitmq_* metric a board or rule reads is listed in
// docs/metrics.md, and every recording rule a board reads exists.
func TestQueriedMetricsAreDocumented(t *testing.T) {
	t.Parallel()
	doc := documentedMetrics(t)
	recorded := map[string]bool{}
	var exprs []query
	for _, r := range rules(t) {
		if r.recording {
			recorded[r.name] = true
		}
		exprs = append(exprs, query{where: "rule " + r.name, expr: r.expr})
	}
	all := boards(t)
	for _, name := range sortedNames(all) {
		for _, q := range append(all[name].queries(), all[name].annotationQueries()...) {
			q.where = all[name].file + ": " + q.where
			exprs = append(exprs, q)
		}
	}
	for _, q := range exprs {
		for _, m := range metricNames(q.expr) {
			if !doc[m] {
				t.Errorf("%s reads %s, which docs/metrics.md does not list", q.where, m)
			}
		}
		for _, r := range recordedNames(q.expr) {
			if !recorded[r] {
				t.Errorf("%s reads %s, which no rule in prometheus/rules records", q.where, r)
			}
		}
	}
}

func TestVariableSyntax(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, want string
		names    []string
	}{
		{`rate(x[$__rate_interval])`, `rate(x[1m])`, []string{"__rate_interval"}},
		{`x{vhost="${vhost}"}`, `x{vhost="/"}`, []string{"vhost"}},
		{`x{vhost="${vhost:regex}", q="[[vhost]]"}`, `x{vhost="/", q="/"}`, []string{"vhost"}},
		{`max_over_time(x[$__range])`, `max_over_time(x[10m])`, []string{"__range"}},
	} {
		if got := variablesIn(tc.in); !slices.Equal(got, tc.names) {
			t.Errorf("variablesIn(%q) = %q, want %q", tc.in, got, tc.names)
		}
		got, err := expand(tc.in, map[string]string{"__rate_interval": "1m", "vhost": "/", "__range": "10m"})
		if err != nil || got != tc.want {
			t.Errorf("expand(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if _, err := expand(`x{a="$nope"}`, nil); err == nil {
		t.Errorf("expand with an unknown variable: no error")
	}
}

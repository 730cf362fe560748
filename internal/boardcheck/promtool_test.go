package boardcheck

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"go.yaml.in/yaml/v3"
)

// promtool runs promtool in prometheus/ (rule_files and the tests' paths
// are relative to it) and fails the test with its output on an error.
func promtool(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command(tool(t, "promtool"), args...)
	cmd.Dir = repoPath("prometheus")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %q in prometheus/: %v\n%s", args, err, out)
	}
	t.Logf("promtool %q:\n%s", args, out)
}

func glob(t *testing.T, pattern string) []string {
	t.Helper()
	files, err := filepath.Glob(repoPath("prometheus", pattern))
	if err != nil || len(files) == 0 {
		t.Fatalf("no prometheus/%s: %v", pattern, err)
	}
	for i, f := range files {
		files[i], _ = filepath.Rel(repoPath("prometheus"), f)
	}
	return files
}

// prometheus.yml (compose) and local.yml (this machine) are valid, rule
// files included (check config reads them).
func TestPromtoolCheckConfig(t *testing.T) {
	t.Parallel()
	promtool(t, "check", "config", "prometheus.yml", "local.yml")
}

// local.yml is prometheus.yml with other targets: same jobs, same rules.
func TestLocalConfigMatchesPrometheusYML(t *testing.T) {
	t.Parallel()
	want, got := repoPath("prometheus", "prometheus.yml"), repoPath("prometheus", "local.yml")
	checkSameJobs(t, want, got)
	if w, g := readPromConfig(t, want).RuleFiles, readPromConfig(t, got).RuleFiles; !slices.Equal(w, g) {
		t.Errorf("local.yml reads rules %q, prometheus.yml %q", g, w)
	}
}

func TestPromtoolCheckRules(t *testing.T) {
	t.Parallel()
	promtool(t, append([]string{"check", "rules"}, glob(t, "rules/*.yml")...)...)
}

// The rule unit tests of prometheus/tests: every alert fires on what it
// names and stays quiet beside it; the recording rules compute what they say.
func TestPromtoolTestRules(t *testing.T) {
	t.Parallel()
	promtool(t, append([]string{"test", "rules"}, glob(t, "tests/*.yml")...)...)
}

// Every alert has a unit test in which it fires, and every recording rule
// is evaluated by one.
func TestEveryRuleIsUnitTested(t *testing.T) {
	t.Parallel()
	fires := map[string]bool{}
	var exprs []string
	for _, f := range glob(t, "tests/*.yml") {
		var tf struct {
			Tests []struct {
				AlertRuleTest []struct {
					Alertname string           `yaml:"alertname"`
					ExpAlerts []map[string]any `yaml:"exp_alerts"`
				} `yaml:"alert_rule_test"`
				PromQLExprTest []struct {
					Expr string `yaml:"expr"`
				} `yaml:"promql_expr_test"`
			} `yaml:"tests"`
		}
		b, err := os.ReadFile(repoPath("prometheus", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(b, &tf); err != nil {
			t.Fatalf("prometheus/%s: %v", f, err)
		}
		for _, tc := range tf.Tests {
			for _, a := range tc.AlertRuleTest {
				if len(a.ExpAlerts) > 0 {
					fires[a.Alertname] = true
				}
			}
			for _, e := range tc.PromQLExprTest {
				exprs = append(exprs, e.Expr)
			}
		}
	}
	for _, r := range rules(t) {
		switch {
		case !r.recording && !fires[r.name]:
			t.Errorf("alert %s: no test in prometheus/tests in which it fires", r.name)
		case r.recording && !slices.ContainsFunc(exprs, func(e string) bool { return slices.Contains(recordedNames(e), r.name) }):
			t.Errorf("recording rule %s: no promql_expr_test in prometheus/tests reads it", r.name)
		}
	}
}

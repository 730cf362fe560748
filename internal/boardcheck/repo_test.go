package boardcheck

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// root is the repository's top directory, two levels above this package.
var root = func() string {
	dir, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		panic(err)
	}
	return dir
}()

func repoPath(parts ...string) string { return filepath.Join(append([]string{root}, parts...)...) }

// The boards that must exist; overview is Grafana's home board.
var requiredBoards = []string{"overview", "bench", "rabbitmq"}

// tool returns the path of a Prometheus binary, failing the test with how
// to install it when it is missing.
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed: apt-get install prometheus (Debian's package has prometheus and promtool; .ci/run installs it): %v", name, err)
	}
	return p
}

// ---- boards

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type dashboard struct {
	file          string
	UID           string `json:"uid"`
	Title         string `json:"title"`
	SchemaVersion int    `json:"schemaVersion"`
	Tags          []string
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []variable `json:"list"`
	} `json:"templating"`
	Annotations struct {
		List []annotation `json:"list"`
	} `json:"annotations"`
}

type panel struct {
	ID          int         `json:"id"`
	Type        string      `json:"type"`
	Title       string      `json:"title"`
	Datasource  *datasource `json:"datasource"`
	GridPos     *gridPos    `json:"gridPos"`
	FieldConfig struct {
		Defaults struct {
			Unit       string `json:"unit"`
			Thresholds *struct {
				Mode  string `json:"mode"`
				Steps []struct {
					Color string   `json:"color"`
					Value *float64 `json:"value"`
				} `json:"steps"`
			} `json:"thresholds"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
	Targets []target `json:"targets"`
	Panels  []panel  `json:"panels"` // a collapsed row's panels
}

type gridPos struct {
	H, W, X, Y *int
}

type target struct {
	RefID      string      `json:"refId"`
	Expr       string      `json:"expr"`
	Datasource *datasource `json:"datasource"`
	Instant    bool        `json:"instant"`
}

type variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Datasource *datasource     `json:"datasource"`
	Definition string          `json:"definition"`
	Query      json.RawMessage `json:"query"`
}

type annotation struct {
	Name       string      `json:"name"`
	BuiltIn    int         `json:"builtIn"`
	Datasource *datasource `json:"datasource"`
	Expr       string      `json:"expr"`
	Enable     bool        `json:"enable"`
}

// allPanels returns the board's panels with the panels of collapsed rows.
func (d *dashboard) allPanels() []panel {
	var out []panel
	for _, p := range d.Panels {
		out = append(out, p)
		out = append(out, p.Panels...)
	}
	return out
}

// query is one PromQL expression of a board, named for messages.
type query struct {
	where string // "panel \"Title\" target A"
	expr  string
	panel panel
}

// queries returns every panel target's expression.
func (d *dashboard) queries() []query {
	var qs []query
	for _, p := range d.allPanels() {
		for _, tg := range p.Targets {
			qs = append(qs, query{where: fmt.Sprintf("panel %q target %s", p.Title, tg.RefID), expr: tg.Expr, panel: p})
		}
	}
	return qs
}

// annotationQueries returns the Prometheus annotation queries.
func (d *dashboard) annotationQueries() []query {
	var qs []query
	for _, a := range d.Annotations.List {
		if a.BuiltIn == 0 && a.Datasource != nil && a.Datasource.Type == "prometheus" {
			qs = append(qs, query{where: fmt.Sprintf("annotation %q", a.Name), expr: a.Expr})
		}
	}
	return qs
}

// variableQuery returns a query variable's query text.
func (v variable) query() string {
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s
	}
	var o struct {
		Query string `json:"query"`
	}
	_ = json.Unmarshal(v.Query, &o)
	return o.Query
}

// boards reads every board in grafana/dashboards, keyed by file name
// without .json.
func boards(t *testing.T) map[string]*dashboard {
	t.Helper()
	files, err := filepath.Glob(repoPath("grafana", "dashboards", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no board in grafana/dashboards: %v", err)
	}
	out := map[string]*dashboard{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		d := &dashboard{file: "grafana/dashboards/" + filepath.Base(f)}
		if err := json.Unmarshal(b, d); err != nil {
			t.Fatalf("%s: %v", d.file, err)
		}
		out[strings.TrimSuffix(filepath.Base(f), ".json")] = d
	}
	for _, name := range requiredBoards {
		if out[name] == nil {
			t.Fatalf("grafana/dashboards/%s.json is missing", name)
		}
	}
	return out
}

// sortedNames returns m's keys in order, so that tests run in a stable order.
func sortedNames[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// ---- template variables

// varRef matches Grafana's variable syntaxes: $name, ${name}, ${name:fmt}
// and [[name]].
var varRef = regexp.MustCompile(`\$(\w+)|\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]`)

// grafanaGlobals are the built-in variables the boards may use.
var grafanaGlobals = []string{"__rate_interval", "__interval", "__range"}

// variablesIn returns the names of the variables expr refers to.
func variablesIn(expr string) []string {
	var names []string
	for _, m := range varRef.FindAllStringSubmatch(expr, -1) {
		for _, g := range m[1:] {
			if g != "" && !slices.Contains(names, g) {
				names = append(names, g)
			}
		}
	}
	return names
}

// expand substitutes every variable of expr from values; a variable with
// no value is an error.
func expand(expr string, values map[string]string) (string, error) {
	var missing []string
	out := varRef.ReplaceAllStringFunc(expr, func(ref string) string {
		name := variablesIn(ref)[0]
		v, ok := values[name]
		if !ok {
			missing = append(missing, name)
			return ref
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("no value for $%s", strings.Join(missing, ", $"))
	}
	return out, nil
}

// ---- rules

type ruleFile struct {
	file   string
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Record string `yaml:"record"`
			Alert  string `yaml:"alert"`
			Expr   string `yaml:"expr"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

type rule struct {
	group, name, expr string
	recording         bool
}

// rules reads every rule of prometheus/rules.
func rules(t *testing.T) []rule {
	t.Helper()
	files, err := filepath.Glob(repoPath("prometheus", "rules", "*.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no rule file in prometheus/rules: %v", err)
	}
	var out []rule
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rf := ruleFile{file: f}
		if err := yaml.Unmarshal(b, &rf); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, g := range rf.Groups {
			for _, r := range g.Rules {
				if r.Record != "" {
					out = append(out, rule{group: g.Name, name: r.Record, expr: r.Expr, recording: true})
				} else {
					out = append(out, rule{group: g.Name, name: r.Alert, expr: r.Expr})
				}
			}
		}
	}
	return out
}

// ---- metric names

// identifier matches PromQL identifiers, recording rule names included.
var identifier = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)

// metricNames returns the docket_* and rabbitmq_* metric names an
// expression reads, histogram suffixes removed. Recording rule names (with
// a colon) are not metric names.
func metricNames(expr string) []string {
	var names []string
	for _, id := range identifier.FindAllString(expr, -1) {
		if strings.Contains(id, ":") || !(strings.HasPrefix(id, "docket_") || strings.HasPrefix(id, "rabbitmq_")) {
			continue
		}
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			id = strings.TrimSuffix(id, suffix)
		}
		if !slices.Contains(names, id) {
			names = append(names, id)
		}
	}
	return names
}

// recordedNames returns the recording rule names an expression reads.
func recordedNames(expr string) []string {
	var names []string
	for _, id := range identifier.FindAllString(expr, -1) {
		if strings.Contains(id, ":") && !slices.Contains(names, id) {
			names = append(names, id)
		}
	}
	return names
}

// documentedMetrics reads the metric names docs/metrics.md lists: the
// first backquoted word of each table row.
func documentedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(repoPath("docs", "metrics.md"))
	if err != nil {
		t.Fatalf("docs/metrics.md: %v", err)
	}
	row := regexp.MustCompile("^\\| `([a-z_:][a-z0-9_:]*)")
	out := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if m := row.FindStringSubmatch(line); m != nil {
			out[m[1]] = true
		}
	}
	if len(out) == 0 {
		t.Fatalf("docs/metrics.md lists no metric (rows of the form | `name` | type | labels | meaning |)")
	}
	return out
}

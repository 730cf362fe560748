package deploycheck

import (
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// Ports served by processes the compose file does not configure.
const (
	benchMetricsPort    = 9102  // bench --metrics-addr default; bench runs on the host
	rabbitPrometheus    = 15692 // rabbitmq_prometheus plugin
	prometheusPort      = 9090
	hostFromContainers  = "host.docker.internal"
	grafanaProvisioning = "/etc/grafana/provisioning"
)

func itoa(n int) string { return strconv.Itoa(n) }

// prometheusConfig is the part of prometheus.yml that names targets.
type prometheusConfig struct {
	RuleFiles     []string       `yaml:"rule_files"`
	ScrapeConfigs []scrapeConfig `yaml:"scrape_configs"`
}

type scrapeConfig struct {
	JobName       string              `yaml:"job_name"`
	MetricsPath   string              `yaml:"metrics_path"`
	Params        map[string][]string `yaml:"params"`
	StaticConfigs []struct {
		Targets []string `yaml:"targets"`
	} `yaml:"static_configs"`
	DNSSDConfigs []struct {
		Names []string `yaml:"names"`
		Type  string   `yaml:"type"`
		Port  int      `yaml:"port"`
	} `yaml:"dns_sd_configs"`
}

func (c scrapeConfig) staticTargets() []string {
	var ts []string
	for _, s := range c.StaticConfigs {
		ts = append(ts, s.Targets...)
	}
	return ts
}

// decode reads the fields this package checks; other fields are left to the
// files' owners (the checks compare values, so a misspelt field still fails).
func decode(t *testing.T, rel string, v any) {
	t.Helper()
	if err := yaml.Unmarshal(readFile(t, rel), v); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
}

func TestPrometheusScrapesTheStack(t *testing.T) {
	t.Parallel()
	p := stack(t)
	var cfg prometheusConfig
	decode(t, "prometheus/prometheus.yml", &cfg)

	jobs := map[string]scrapeConfig{}
	for _, c := range cfg.ScrapeConfigs {
		if _, dup := jobs[c.JobName]; dup {
			t.Errorf("prometheus.yml: job %s twice", c.JobName)
		}
		jobs[c.JobName] = c
	}
	job := func(name string) scrapeConfig {
		t.Helper()
		c, ok := jobs[name]
		if !ok {
			t.Fatalf("prometheus.yml has no job %s", name)
		}
		return c
	}

	servicePort := addrPort(t, "service LISTEN_ADDR", env(t, service(t, p, "service"), "LISTEN_ADDR"))
	workerPort := addrPort(t, "worker WORKER_METRICS_ADDR", env(t, service(t, p, "worker"), "WORKER_METRICS_ADDR"))

	want := map[string][]string{
		"docket-service":  {"service:" + itoa(servicePort)},
		"docket-bench":    {hostFromContainers + ":" + itoa(benchMetricsPort)},
		"rabbitmq":        {"rabbitmq:" + itoa(rabbitPrometheus)},
		"rabbitmq-queues": {"rabbitmq:" + itoa(rabbitPrometheus)},
	}
	for name, targets := range want {
		if got := job(name).staticTargets(); !slices.Equal(got, targets) {
			t.Errorf("prometheus.yml job %s scrapes %q, want %q", name, got, targets)
		}
	}

	w := job("docket-worker")
	if len(w.DNSSDConfigs) != 1 || !slices.Equal(w.DNSSDConfigs[0].Names, []string{"worker"}) ||
		w.DNSSDConfigs[0].Type != "A" || w.DNSSDConfigs[0].Port != workerPort {
		t.Errorf("prometheus.yml job docket-worker: %+v, want dns_sd_configs names [worker] type A port %d (every replica)", w.DNSSDConfigs, workerPort)
	}

	q := job("rabbitmq-queues")
	if q.MetricsPath != "/metrics/detailed" {
		t.Errorf("job rabbitmq-queues metrics_path %q, want /metrics/detailed", q.MetricsPath)
	}
	for _, family := range []string{"queue_coarse_metrics", "queue_consumer_count"} {
		if !slices.Contains(q.Params["family"], family) {
			t.Errorf("job rabbitmq-queues does not ask for family %s", family)
		}
	}

	// Every host a job names is a service of the stack (or the host, for bench).
	for _, c := range cfg.ScrapeConfigs {
		for _, target := range c.staticTargets() {
			host, _, err := hostPort(target)
			if err != nil {
				t.Errorf("job %s: %v", c.JobName, err)
				continue
			}
			if host != hostFromContainers && !slices.Contains(p.ServiceNames(), host) {
				t.Errorf("job %s scrapes %s: no compose service %q", c.JobName, target, host)
			}
		}
		for _, sd := range c.DNSSDConfigs {
			for _, n := range sd.Names {
				if !slices.Contains(p.ServiceNames(), n) {
					t.Errorf("job %s resolves %s: no compose service of that name", c.JobName, n)
				}
			}
		}
	}

	if !slices.Equal(cfg.RuleFiles, []string{"rules/*.yml"}) {
		t.Errorf("prometheus.yml rule_files %q, want [rules/*.yml]", cfg.RuleFiles)
	}

	prom := service(t, p, "prometheus")
	if !slices.Contains(prom.ExtraHosts[hostFromContainers], "host-gateway") {
		t.Errorf("prometheus cannot reach bench on the host: extra_hosts lacks %s:host-gateway", hostFromContainers)
	}
	dir := bindMount(prom, "prometheus")
	if dir == "" {
		t.Fatalf("prometheus does not mount the repository's prometheus/")
	}
	if !slices.Contains(prom.Command, "--config.file="+path.Join(dir, "prometheus.yml")) {
		t.Errorf("prometheus command %q does not read %s/prometheus.yml from the mounted prometheus/", prom.Command, dir)
	}
	if _, _, ok := published(prom, prometheusPort); !ok {
		t.Errorf("prometheus does not publish %d", prometheusPort)
	}
}

type grafanaDatasources struct {
	Datasources []struct {
		Name string `yaml:"name"`
		Type string `yaml:"type"`
		URL  string `yaml:"url"`
	} `yaml:"datasources"`
}

type grafanaProviders struct {
	Providers []struct {
		Name    string `yaml:"name"`
		Type    string `yaml:"type"`
		Options struct {
			Path string `yaml:"path"`
		} `yaml:"options"`
	} `yaml:"providers"`
}

func yamlFiles(t *testing.T, rel string) []string {
	t.Helper()
	var files []string
	for _, ext := range []string{"*.yml", "*.yaml"} {
		m, _ := filepath.Glob(filepath.Join(repoPath(rel), ext))
		files = append(files, m...)
	}
	if len(files) == 0 {
		t.Fatalf("%s holds no provisioning file", rel)
	}
	for i, f := range files {
		files[i], _ = filepath.Rel(root, f)
	}
	return files
}

func TestGrafanaProvisioningMatchesMounts(t *testing.T) {
	t.Parallel()
	p := stack(t)
	g := service(t, p, "grafana")

	if got := bindMount(g, "grafana/provisioning"); got != grafanaProvisioning {
		t.Errorf("grafana mounts grafana/provisioning at %q, want %s", got, grafanaProvisioning)
	}
	boards := bindMount(g, "grafana/dashboards")
	if boards == "" {
		t.Fatalf("grafana does not mount grafana/dashboards")
	}

	for _, f := range yamlFiles(t, "grafana/provisioning/datasources") {
		var ds grafanaDatasources
		decode(t, f, &ds)
		for _, d := range ds.Datasources {
			u, err := url.Parse(d.URL)
			if err != nil {
				t.Errorf("%s: datasource %s url: %v", f, d.Name, err)
				continue
			}
			if d.Type == "prometheus" && u.Host != "prometheus:"+itoa(prometheusPort) {
				t.Errorf("%s: datasource %s points at %s, want the stack's prometheus:%d", f, d.Name, u.Host, prometheusPort)
			}
		}
	}

	for _, f := range yamlFiles(t, "grafana/provisioning/dashboards") {
		var pr grafanaProviders
		decode(t, f, &pr)
		for _, provider := range pr.Providers {
			if provider.Type == "file" && provider.Options.Path != boards {
				t.Errorf("%s: provider %s reads %q, but grafana/dashboards is mounted at %q", f, provider.Name, provider.Options.Path, boards)
			}
		}
	}

	home := env(t, g, "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
	rel, err := filepath.Rel(boards, home)
	if err != nil || strings.HasPrefix(rel, "..") {
		t.Fatalf("grafana's home dashboard %s is outside the mounted boards %s", home, boards)
	}
	if _, err := os.Stat(repoPath("grafana", "dashboards", rel)); err != nil {
		t.Errorf("grafana/dashboards/%s, the home board, does not exist: %v", rel, err)
	}
}

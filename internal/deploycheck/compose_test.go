package deploycheck

import (
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/dotenv"
	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v3"
)

// The stack's services, by the names the other files use as host names.
var stackServices = []string{"postgres", "rabbitmq", "service", "worker", "prometheus", "grafana"}

func TestComposeLoads(t *testing.T) {
	t.Parallel()
	p := stack(t)
	if got := p.ServiceNames(); !sameSet(got, stackServices) {
		t.Errorf("services %q, want %q", got, stackServices)
	}
}

func TestComposeRequiresJWTSecret(t *testing.T) {
	t.Parallel()
	_, err := loadCompose(nil)
	if err == nil || !strings.Contains(err.Error(), "JWT_SECRET_KEY") {
		t.Fatalf("docker compose without JWT_SECRET_KEY in .env: err = %v, want one naming JWT_SECRET_KEY", err)
	}
}

func TestComposeLoadsWithEnvExample(t *testing.T) {
	t.Parallel()
	envs, err := dotenv.Read(repoPath(".env.example"))
	if err != nil {
		t.Fatalf(".env.example: %v", err)
	}
	if _, err := loadCompose(envs); err != nil {
		t.Fatalf("docker-compose.yaml with .env.example as .env: %v", err)
	}
	// The placeholder must never work: the service refuses keys under 32 bytes.
	if k := envs["JWT_SECRET_KEY"]; len(k) >= 32 {
		t.Errorf(".env.example's JWT_SECRET_KEY is %d bytes: a placeholder under 32 bytes cannot start a service by accident", len(k))
	}
	ignored := string(readFile(t, ".gitignore"))
	if !slices.Contains(strings.Fields(ignored), "/.env") && !slices.Contains(strings.Fields(ignored), ".env") {
		t.Errorf(".gitignore does not ignore .env")
	}
}

// Every ${VAR} the compose file reads is documented in .env.example.
func TestEnvExampleListsEverySetting(t *testing.T) {
	t.Parallel()
	example := string(readFile(t, ".env.example"))
	compose := string(readFile(t, "docker-compose.yaml"))
	for _, m := range regexp.MustCompile(`\$\{([A-Z_][A-Z0-9_]*)`).FindAllStringSubmatch(compose, -1) {
		name := m[1]
		if !regexp.MustCompile(`(?m)^#?` + name + `=`).MatchString(example) {
			t.Errorf("docker-compose.yaml reads ${%s}; .env.example does not list it", name)
		}
	}
}

func TestComposeHealthchecks(t *testing.T) {
	t.Parallel()
	p := stack(t)
	for _, name := range stackServices {
		s := service(t, p, name)
		hc := s.HealthCheck
		if hc == nil || hc.Disable || len(hc.Test) < 2 || (hc.Test[0] != "CMD" && hc.Test[0] != "CMD-SHELL") {
			t.Errorf("service %s has no healthcheck", name)
			continue
		}
		if hc.Interval == nil || hc.Timeout == nil || hc.Retries == nil || hc.StartPeriod == nil {
			t.Errorf("service %s: healthcheck without interval, timeout, retries and start_period", name)
		}
		if hc.StartInterval != nil {
			t.Errorf("service %s: healthcheck start_interval makes docker compose refuse Docker Engines before 25", name)
		}
	}
	if hc := service(t, p, "postgres").HealthCheck; hc != nil && !slices.Contains(hc.Test, "pg_isready") {
		t.Errorf("postgres healthcheck %q does not use pg_isready", hc.Test)
	}
	// service and worker probe their own readiness at the port they listen on.
	for name, addrVar := range map[string]string{"service": "LISTEN_ADDR", "worker": "WORKER_METRICS_ADDR"} {
		s := service(t, p, name)
		port := addrPort(t, name+" "+addrVar, env(t, s, addrVar))
		want := []string{"CMD", "healthcheck", "http://127.0.0.1:" + itoa(port) + "/readyz"}
		if s.HealthCheck != nil && !slices.Equal(s.HealthCheck.Test, want) {
			t.Errorf("service %s healthcheck %q, want %q", name, s.HealthCheck.Test, want)
		}
	}
}

func TestComposeStartOrder(t *testing.T) {
	t.Parallel()
	p := stack(t)
	for _, name := range []string{"service", "worker"} {
		s := service(t, p, name)
		for _, dep := range []string{"postgres", "rabbitmq"} {
			if d, ok := s.DependsOn[dep]; !ok || d.Condition != types.ServiceConditionHealthy {
				t.Errorf("service %s does not wait for %s to be healthy (depends_on condition: service_healthy)", name, dep)
			}
		}
	}
}

func TestComposeRestartPolicies(t *testing.T) {
	t.Parallel()
	p := stack(t)
	for _, name := range stackServices {
		s := service(t, p, name)
		switch s.Restart {
		case types.RestartPolicyUnlessStopped, types.RestartPolicyAlways, types.RestartPolicyOnFailure:
		default:
			t.Errorf("service %s: restart %q, want unless-stopped, always or on-failure", name, s.Restart)
		}
	}
}

func TestComposeWorkerReplicas(t *testing.T) {
	t.Parallel()
	w := service(t, stack(t), "worker")
	if got := w.GetScale(); got != 2 {
		t.Errorf("worker replicas %d, want 2", got)
	}
	if w.ContainerName != "" {
		t.Errorf("worker has container_name %q: replicas need generated names", w.ContainerName)
	}
	for _, port := range w.Ports {
		if port.Published != "" {
			t.Errorf("worker publishes host port %s: its replicas would collide", port.Published)
		}
	}
}

func TestComposeImage(t *testing.T) {
	t.Parallel()
	p := stack(t)
	svc, wrk := service(t, p, "service"), service(t, p, "worker")
	if svc.Image == "" || svc.Image != wrk.Image {
		t.Errorf("service and worker run images %q and %q, want one", svc.Image, wrk.Image)
	}
	for _, s := range []types.ServiceConfig{svc, wrk} {
		if s.Build == nil || s.Build.Context != root {
			t.Errorf("service %s does not build the repository's Dockerfile", s.Name)
		}
		if s.Deploy == nil || s.Deploy.Resources.Limits == nil || s.Deploy.Resources.Limits.MemoryBytes == 0 {
			t.Errorf("service %s has no memory limit", s.Name)
		}
	}
}

// The host ports that make test and make bench reach, as on a development
// machine: PostgreSQL, RabbitMQ and its management API on 127.0.0.1 only (the
// stack's PostgreSQL trusts its clients), the API, Prometheus and Grafana.
func TestComposePorts(t *testing.T) {
	t.Parallel()
	p := stack(t)
	tests := []struct {
		service      string
		port         int
		loopbackOnly bool
	}{
		{"postgres", 5432, true},
		{"rabbitmq", 5672, true},
		{"rabbitmq", 15672, true},
		{"service", 3001, false},
		{"prometheus", 9090, false},
		{"grafana", 3000, false},
	}
	for _, tt := range tests {
		hostIP, hostPort, ok := published(service(t, p, tt.service), tt.port)
		switch {
		case !ok:
			t.Errorf("service %s does not publish port %d", tt.service, tt.port)
		case hostPort != itoa(tt.port):
			t.Errorf("service %s publishes port %d as host port %s, want %d by default", tt.service, tt.port, hostPort, tt.port)
		case tt.loopbackOnly && hostIP != "127.0.0.1":
			t.Errorf("service %s publishes port %d on %q, want 127.0.0.1 only", tt.service, tt.port, hostIP)
		case !tt.loopbackOnly && hostIP != "127.0.0.1":
			t.Errorf("service %s publishes port %d on %q by default, want 127.0.0.1 (PUBLISH_ADDR widens it)", tt.service, tt.port, hostIP)
		}
	}
}

func TestComposeURLsNameTheStack(t *testing.T) {
	t.Parallel()
	p := stack(t)
	pg, mq := service(t, p, "postgres"), service(t, p, "rabbitmq")
	for _, name := range []string{"service", "worker"} {
		s := service(t, p, name)

		db, err := url.Parse(env(t, s, "DATABASE_URL"))
		if err != nil {
			t.Fatalf("service %s DATABASE_URL: %v", name, err)
		}
		if db.Host != "postgres:5432" || db.Path != "/"+env(t, pg, "POSTGRES_DB") || db.User.Username() != env(t, pg, "POSTGRES_USER") {
			t.Errorf("service %s DATABASE_URL %s does not name the stack's postgres (postgres:5432, its POSTGRES_DB and POSTGRES_USER)", name, db.Redacted())
		}

		amqp, err := url.Parse(env(t, s, "RABBITMQ_URL"))
		if err != nil {
			t.Fatalf("service %s RABBITMQ_URL: %v", name, err)
		}
		pass, _ := amqp.User.Password()
		if amqp.Host != "rabbitmq:5672" || amqp.User.Username() != env(t, mq, "RABBITMQ_DEFAULT_USER") || pass != env(t, mq, "RABBITMQ_DEFAULT_PASS") {
			t.Errorf("service %s RABBITMQ_URL %s does not name the stack's rabbitmq (rabbitmq:5672 and its default user)", name, amqp.Redacted())
		}
	}
	if a, b := env(t, service(t, p, "service"), "PARTITIONS"), env(t, service(t, p, "worker"), "PARTITIONS"); a != b {
		t.Errorf("PARTITIONS: service %s, worker %s: they must agree", a, b)
	}
}

// Bind mounts read files of the repository: each source exists inside it.
func TestComposeMountsExist(t *testing.T) {
	t.Parallel()
	p := stack(t)
	for _, name := range stackServices {
		for _, v := range service(t, p, name).Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			rel, err := filepath.Rel(root, v.Source)
			if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
				t.Errorf("service %s mounts %s, outside the repository", name, v.Source)
				continue
			}
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("service %s mounts %s, which is not in the repository: %v", name, rel, err)
			}
			if !v.ReadOnly {
				t.Errorf("service %s mounts %s writable; the repository's files are mounted :ro", name, rel)
			}
		}
	}
	plugins := string(readFile(t, "rabbitmq/enabled_plugins"))
	for _, plugin := range []string{"rabbitmq_management", "rabbitmq_prometheus"} {
		if !strings.Contains(plugins, plugin) {
			t.Errorf("rabbitmq/enabled_plugins does not enable %s", plugin)
		}
	}
	if bindMount(service(t, p, "rabbitmq"), "rabbitmq/enabled_plugins") != "/etc/rabbitmq/enabled_plugins" {
		t.Errorf("rabbitmq does not mount rabbitmq/enabled_plugins at /etc/rabbitmq/enabled_plugins")
	}
}

// rawCompose is the part of docker-compose.yaml read before interpolation.
type rawCompose struct {
	Services map[string]struct {
		Environment map[string]string `yaml:"environment"`
	} `yaml:"services"`
}

// No secret is written in the compose file: secret-like variables and the
// passwords inside URLs come from .env, and the JWT key has no default.
func TestComposeHasNoSecretLiterals(t *testing.T) {
	t.Parallel()
	var raw rawCompose
	if err := yaml.Unmarshal(readFile(t, "docker-compose.yaml"), &raw); err != nil {
		t.Fatalf("docker-compose.yaml: %v (environment is written as a mapping)", err)
	}
	secretName := regexp.MustCompile(`SECRET|PASSWORD|PASS$|TOKEN|_KEY$`)
	fromEnv := regexp.MustCompile(`^\$\{[A-Z_][A-Z0-9_]*(:?[-?][^}]*)?\}$`)
	interpolation := regexp.MustCompile(`\$\{[^}]*\}`)
	userinfo := regexp.MustCompile(`://([^/]*)@`)
	for name, s := range raw.Services {
		for k, v := range s.Environment {
			if secretName.MatchString(k) && !fromEnv.MatchString(v) {
				t.Errorf("service %s: %s is written in the compose file; take it from .env as ${%s...}", name, k, k)
			}
			// user:password@ with every ${...} taken out must leave no password.
			if m := userinfo.FindStringSubmatch(v); m != nil && strings.Contains(m[1], ":") &&
				!strings.HasSuffix(interpolation.ReplaceAllString(m[1], ""), ":") {
				t.Errorf("service %s: %s has a password written in the compose file; take it from .env", name, k)
			}
		}
	}
	jwt := raw.Services["service"].Environment["JWT_SECRET_KEY"]
	if !strings.HasPrefix(jwt, "${JWT_SECRET_KEY:?") {
		t.Errorf("service's JWT_SECRET_KEY is %q, want ${JWT_SECRET_KEY:?message}: required from .env, no default", jwt)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

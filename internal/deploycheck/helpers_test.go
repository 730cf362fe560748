package deploycheck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// testSecret stands in for .env's JWT_SECRET_KEY while the compose file is read.
const testSecret = "deploycheck-secret-of-at-least-32-bytes"

// root is the repository's top directory, two levels above this package.
var root = func() string {
	dir, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		panic(err)
	}
	return dir
}()

func repoPath(parts ...string) string { return filepath.Join(append([]string{root}, parts...)...) }

// loadCompose reads docker-compose.yaml as docker compose does, with env as
// the only environment (neither the developer's .env nor the test's own
// environment leaks in), bind-mount paths resolved against the repository.
func loadCompose(env map[string]string) (*types.Project, error) {
	var list []string
	for k, v := range env {
		list = append(list, k+"="+v)
	}
	opts, err := cli.NewProjectOptions([]string{repoPath("docker-compose.yaml")},
		cli.WithWorkingDirectory(root),
		cli.WithEnv(list),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		return nil, err
	}
	return cli.ProjectFromOptions(context.Background(), opts)
}

// stack is the compose project as `docker compose up` sees it with only the
// JWT secret in .env: every other setting at its default.
func stack(t *testing.T) *types.Project {
	t.Helper()
	p, err := loadCompose(map[string]string{"JWT_SECRET_KEY": testSecret})
	if err != nil {
		t.Fatalf("docker-compose.yaml does not load: %v", err)
	}
	return p
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, err := p.GetService(name)
	if err != nil {
		t.Fatalf("docker-compose.yaml: %v", err)
	}
	return s
}

// env returns a service's environment variable, failing when it is unset.
func env(t *testing.T, s types.ServiceConfig, name string) string {
	t.Helper()
	v, ok := s.Environment[name]
	if !ok || v == nil {
		t.Fatalf("service %s: %s is not set", s.Name, name)
	}
	return *v
}

// addrPort returns the port of a listen address such as ":3001".
func addrPort(t *testing.T, what, addr string) int {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%s=%q: %v", what, addr, err)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatalf("%s=%q: port %q is not a number", what, addr, port)
	}
	return n
}

// hostPort splits "host:port" into its host and numeric port.
func hostPort(target string) (string, int, error) {
	host, port, err := net.SplitHostPort(target)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		return "", 0, fmt.Errorf("target %q: port is not a number", target)
	}
	return host, n, nil
}

// bindMount returns the container path at which a service mounts the
// repository path rel, or "" when it does not.
func bindMount(s types.ServiceConfig, rel string) string {
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeBind && v.Source == repoPath(rel) {
			return v.Target
		}
	}
	return ""
}

// published reports whether a service publishes container port target on the
// host, and at which host address and port.
func published(s types.ServiceConfig, target int) (hostIP, hostPort string, ok bool) {
	for _, p := range s.Ports {
		if int(p.Target) == target && p.Published != "" {
			return p.HostIP, p.Published, true
		}
	}
	return "", "", false
}

// shellWords splits a shell command line into words, honouring single and
// double quotes (enough for a go build line; no expansions are done).
func shellWords(line string) ([]string, error) {
	var (
		words []string
		cur   strings.Builder
		quote rune
		in    bool
	)
	for _, r := range line {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '"' || r == '\'':
			quote, in = r, true
		case r == ' ' || r == '\t' || r == '\n':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if quote != 0 {
		return nil, errors.New("unterminated quote")
	}
	if in {
		words = append(words, cur.String())
	}
	return words, nil
}

// goRuntimeEnv are variables every Go binary reads without a flag.
var goRuntimeEnv = []string{"GOMEMLIMIT", "GOMAXPROCS", "GOGC", "GODEBUG", "GOTRACEBACK"}

func isGoRuntimeEnv(name string) bool { return slices.Contains(goRuntimeEnv, name) }

func readFile(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(repoPath(rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

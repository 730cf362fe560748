package deploycheck

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// versionMark stands for the version in both build commands while they are compared.
const versionMark = "@VERSION@"

// goBuild is a go build command line: leading VAR=value words, then the
// command, its flags, and (in the Dockerfile) -o DIR PACKAGES.
type goBuild struct {
	env  []string // CGO_ENABLED=0 ...
	args []string // go build -trimpath ... (without -o and packages)
	out  string   // -o's value
	pkgs []string // ./service ./worker ...
}

// split separates words into a goBuild; words after -o are the output and packages.
func split(words []string) (goBuild, error) {
	var b goBuild
	i := 0
	for ; i < len(words) && regexp.MustCompile(`^[A-Z_][A-Z0-9_]*=`).MatchString(words[i]); i++ {
		b.env = append(b.env, words[i])
	}
	rest := words[i:]
	if len(rest) < 2 || rest[0] != "go" || rest[1] != "build" {
		return b, fmt.Errorf("not a go build command: %q", strings.Join(words, " "))
	}
	o := slices.Index(rest, "-o")
	if o < 0 || o+1 >= len(rest) {
		return b, fmt.Errorf("go build without -o: %q", strings.Join(words, " "))
	}
	b.args, b.out, b.pkgs = rest[:o], rest[o+1], rest[o+2:]
	return b, nil
}

// dockerfileBuild returns the Dockerfile's go build command, with the build
// argument VERSION replaced by versionMark.
func dockerfileBuild(t *testing.T) goBuild {
	t.Helper()
	text := strings.ReplaceAll(string(readFile(t, "Dockerfile")), "\\\n", " ")
	var found []string
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "RUN ") && strings.Contains(line, " go build ") {
			found = append(found, line)
		}
	}
	if len(found) != 1 {
		t.Fatalf("Dockerfile: want one RUN with go build, found %d: %q", len(found), found)
	}
	words, err := shellWords(found[0])
	if err != nil {
		t.Fatalf("Dockerfile: %q: %v", found[0], err)
	}
	words = words[1:] // RUN
	for len(words) > 0 && strings.HasPrefix(words[0], "--") {
		words = words[1:] // --mount=...
	}
	for i, w := range words {
		w = strings.ReplaceAll(w, "${VERSION}", versionMark)
		words[i] = strings.ReplaceAll(w, "$VERSION", versionMark)
	}
	b, err := split(words)
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	return b
}

// makeBuilds returns the go build commands that `make build` runs (make -n),
// with VERSION replaced by versionMark.
func makeBuilds(t *testing.T) []goBuild {
	t.Helper()
	cmd := exec.Command("make", "-n", "--no-print-directory", "-C", root, "build", "GO=go", "VERSION="+versionMark)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("make -n build: %v", err)
	}
	var builds []goBuild
	for line := range strings.Lines(string(out)) {
		i := strings.Index(line, "CGO_ENABLED=")
		if i < 0 || !strings.Contains(line, " go build ") {
			continue
		}
		line = strings.TrimSuffix(strings.TrimSpace(line[i:]), "; fi")
		words, err := shellWords(line)
		if err != nil {
			t.Fatalf("make -n build: %q: %v", line, err)
		}
		b, err := split(words)
		if err != nil {
			t.Fatalf("make -n build: %v", err)
		}
		builds = append(builds, b)
	}
	if len(builds) == 0 {
		t.Fatalf("make -n build runs no go build:\n%s", out)
	}
	return builds
}

func TestDockerfileBuildsLikeMakefile(t *testing.T) {
	t.Parallel()
	docker := dockerfileBuild(t)
	for _, m := range makeBuilds(t) {
		if !slices.Equal(m.env, docker.env) || !slices.Equal(m.args, docker.args) {
			t.Errorf("the Dockerfile's build command differs from the Makefile's GOBUILD:\n  Dockerfile: %q %q\n  Makefile:   %q %q",
				docker.env, docker.args, m.env, m.args)
		}
		for _, pkg := range m.pkgs {
			if !slices.Contains(docker.pkgs, pkg) {
				t.Errorf("make build builds %s, the Dockerfile does not", pkg)
			}
		}
	}
	for _, want := range []string{"-trimpath", "-ldflags"} {
		if !slices.Contains(docker.args, want) {
			t.Errorf("the build command lacks %s: %q", want, docker.args)
		}
	}
	if !slices.Contains(docker.env, "CGO_ENABLED=0") {
		t.Errorf("the build command is not static (CGO_ENABLED=0): %q", docker.env)
	}
	if i := slices.Index(docker.args, "-ldflags"); i >= 0 && i+1 < len(docker.args) &&
		!strings.Contains(docker.args[i+1], "-X main.version="+versionMark) {
		t.Errorf("-ldflags %q does not stamp main.version with the VERSION build argument", docker.args[i+1])
	}
}

// built is what the Dockerfile's build command made, once per test run.
var built struct {
	once    sync.Once
	dir     string
	stamp   string
	bins    []string // binary names, as in the image's /usr/local/bin
	pending []string // packages the Dockerfile names that have no main package yet
	err     error
}

// buildImageBinaries runs the Dockerfile's go build, word for word but for the
// output directory and the version, into a temporary directory; packages whose
// directory holds no Go files yet are left out and listed as pending.
func buildImageBinaries(t *testing.T) (dir string, bins []string) {
	t.Helper()
	b := dockerfileBuild(t)
	built.once.Do(func() {
		built.dir, built.err = os.MkdirTemp("", "deploycheck-bin-")
		if built.err != nil {
			return
		}
		built.stamp = fmt.Sprintf("deploycheck-%d", time.Now().UnixNano())
		var pkgs []string
		for _, pkg := range b.pkgs {
			if goFiles, _ := filepath.Glob(filepath.Join(root, pkg, "*.go")); len(goFiles) == 0 {
				built.pending = append(built.pending, pkg)
				continue
			}
			pkgs = append(pkgs, pkg)
			built.bins = append(built.bins, filepath.Base(pkg))
		}
		args := slices.Clone(b.args[1:])
		for i := range args {
			args[i] = strings.ReplaceAll(args[i], versionMark, built.stamp)
		}
		args = append(append(args, "-o", built.dir+string(filepath.Separator)), pkgs...)
		cmd := exec.Command("go", args...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), b.env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			built.err = fmt.Errorf("%s %s: %v\n%s", strings.Join(b.env, " "), cmd, err, out)
		}
	})
	if built.err != nil {
		t.Fatalf("the Dockerfile's build command fails: %v", built.err)
	}
	return built.dir, built.bins
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

func TestImageBinaries(t *testing.T) {
	t.Parallel()
	dir, bins := buildImageBinaries(t)
	for _, pkg := range built.pending {
		t.Errorf("the Dockerfile builds %s, which has no Go files: the image build fails", pkg)
	}
	// The binaries the stack runs carry the version they were built as.
	for _, name := range []string{"service", "worker", "healthcheck"} {
		t.Run(name, func(t *testing.T) {
			if !slices.Contains(bins, name) {
				t.Fatalf("the Dockerfile does not build %s (it builds %q)", name, bins)
			}
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(b, []byte(built.stamp)) {
				t.Errorf("%s does not carry the version given with -X main.version (is there a var version in its package main?)", name)
			}
		})
	}
}

// binaryFlag is one flag from a binary's -h.
type binaryFlag struct {
	name, usage string
}

// envName is the environment variable ff reads for a flag.
func (f binaryFlag) envName() string {
	return strings.ToUpper(strings.NewReplacer("-", "_", ".", "_", "/", "_").Replace(f.name))
}

func (f binaryFlag) required() bool { return strings.Contains(f.usage, "(required)") }

// flagsOf runs a built binary with -h and reads its flags from the usage text.
func flagsOf(t *testing.T, name string) []binaryFlag {
	t.Helper()
	dir, _ := buildImageBinaries(t)
	cmd := exec.Command(filepath.Join(dir, name), "-h")
	cmd.Env = []string{}           // -h must not depend on the environment
	out, _ := cmd.CombinedOutput() // -h exits non-zero
	var flags []binaryFlag
	flagLine := regexp.MustCompile(`^  -([a-z0-9][a-z0-9.-]*)`)
	for line := range strings.Lines(string(out)) {
		if m := flagLine.FindStringSubmatch(line); m != nil {
			flags = append(flags, binaryFlag{name: m[1]})
		} else if len(flags) > 0 {
			flags[len(flags)-1].usage += strings.TrimSpace(line) + " "
		}
	}
	if len(flags) == 0 {
		t.Fatalf("%s -h lists no flags:\n%s", name, out)
	}
	return flags
}

func TestComposeEnvironmentIsKnownToTheBinaries(t *testing.T) {
	t.Parallel()
	p := stack(t)
	for _, name := range []string{"service", "worker"} {
		t.Run(name, func(t *testing.T) {
			s := service(t, p, name)
			known := map[string]binaryFlag{}
			for _, f := range flagsOf(t, name) {
				known[f.envName()] = f
			}
			for k := range s.Environment {
				if _, ok := known[k]; !ok && !isGoRuntimeEnv(k) {
					t.Errorf("service %s sets %s, which %s does not read (a typo?)", name, k, name)
				}
			}
			for k, f := range known {
				if f.required() {
					if v := s.Environment[k]; v == nil || *v == "" {
						t.Errorf("service %s does not set %s, which %s requires", name, k, name)
					}
				}
			}
			if len(s.Command) == 0 || s.Command[0] != name {
				t.Errorf("service %s runs %q, want the %s binary", name, s.Command, name)
			}
		})
	}
}

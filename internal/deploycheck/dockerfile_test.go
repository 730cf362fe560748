package deploycheck

import (
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

// stage is one FROM ... section of the Dockerfile.
type stage struct {
	from  string
	lines []string // the instructions after FROM, continuation lines joined
}

func dockerfileStages(t *testing.T) []stage {
	t.Helper()
	text := strings.ReplaceAll(string(readFile(t, "Dockerfile")), "\\\n", " ")
	var stages []stage
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(strings.ToUpper(line), "FROM "):
			stages = append(stages, stage{from: line})
		case len(stages) > 0:
			stages[len(stages)-1].lines = append(stages[len(stages)-1].lines, line)
		}
	}
	if len(stages) < 2 {
		t.Fatalf("Dockerfile has %d stages, want a build stage and a final one", len(stages))
	}
	return stages
}

// The final image holds the build's binaries and runs as a non-root user.
func TestDockerfileFinalImage(t *testing.T) {
	t.Parallel()
	stages := dockerfileStages(t)
	final := stages[len(stages)-1]
	user := ""
	copied := false
	out := dockerfileBuild(t).out
	for _, l := range final.lines {
		f := strings.Fields(l)
		switch strings.ToUpper(f[0]) {
		case "USER":
			user = f[1]
		case "COPY":
			if len(f) == 4 && strings.HasPrefix(f[1], "--from=") && f[2] == out && f[3] == "/usr/local/bin/" {
				copied = true
			}
		}
	}
	if user == "" || strings.HasPrefix(user, "root") || strings.HasPrefix(user, "0") {
		t.Errorf("the final image runs as %q, want a non-root USER", user)
	}
	if !copied {
		t.Errorf("the final image does not COPY the build's %s into /usr/local/bin/ (compose runs the binaries by name)", out)
	}
	if !strings.Contains(final.from, "distroless/static") && !strings.Contains(final.from, "scratch") {
		t.Logf("final image %q: not distroless static; the binaries are static, so it could be", final.from)
	}
}

// The build context (.dockerignore) keeps every file the image's build reads.
func TestDockerignoreKeepsTheBuildInputs(t *testing.T) {
	t.Parallel()
	var patterns []string
	for line := range strings.Lines(string(readFile(t, ".dockerignore"))) {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			patterns = append(patterns, line)
		}
	}
	b := dockerfileBuild(t)
	args := append([]string{"list", "-deps", "-f",
		`{{if .Module}}{{if .Module.Main}}{{.Dir}}|{{join .GoFiles ","}}|{{join .EmbedFiles ","}}{{end}}{{end}}`}, b.pkgs...)
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	listing, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list the image's packages: %v", err)
	}
	needed := []string{"go.mod", "go.sum"}
	for line := range strings.Lines(string(listing)) {
		parts := strings.Split(strings.TrimSpace(line), "|")
		if len(parts) != 3 {
			continue
		}
		dir, err := filepath.Rel(root, parts[0])
		if err != nil {
			t.Fatal(err)
		}
		for _, files := range parts[1:] {
			for _, f := range strings.Split(files, ",") {
				if f != "" {
					needed = append(needed, filepath.ToSlash(filepath.Join(dir, f)))
				}
			}
		}
	}
	for _, f := range needed {
		if p := dockerignored(patterns, f); p != "" {
			t.Errorf(".dockerignore's %q leaves %s out of the build context", p, f)
		}
	}
}

// dockerignored returns the pattern that keeps rel out of the build context,
// or "": a pattern matches the path or one of its parent directories, and
// "**/" matches any number of leading directories. Later "!" lines re-include.
func dockerignored(patterns []string, rel string) string {
	matched := ""
	for _, p := range patterns {
		negate := strings.HasPrefix(p, "!")
		clean := path.Clean(strings.TrimPrefix(strings.TrimPrefix(p, "!"), "/"))
		if matchesPathOrParent(clean, rel) {
			if negate {
				matched = ""
			} else {
				matched = p
			}
		}
	}
	return matched
}

func matchesPathOrParent(pattern, rel string) bool {
	parts := strings.Split(rel, "/")
	for n := 1; n <= len(parts); n++ {
		prefix := parts[:n]
		if rest, ok := strings.CutPrefix(pattern, "**/"); ok {
			for i := range prefix {
				if m, _ := path.Match(rest, strings.Join(prefix[i:], "/")); m {
					return true
				}
			}
		} else if m, _ := path.Match(pattern, strings.Join(prefix, "/")); m {
			return true
		}
	}
	return false
}

func TestDockerignored(t *testing.T) {
	t.Parallel()
	patterns := []string{"bin/", "/docs/", "**/*_test.go", "*.out", "internal/x", "!internal/x/keep.go"}
	tests := []struct {
		path string
		want string
	}{
		{"bin/service", "bin/"},
		{"docs/API.md", "/docs/"},
		{"service/main.go", ""},
		{"service/main_test.go", "**/*_test.go"},
		{"main_test.go", "**/*_test.go"},
		{"cover.out", "*.out"},
		{"service/cover.out", ""},
		{"internal/x/a.go", "internal/x"},
		{"internal/x/keep.go", ""},
	}
	for _, tt := range tests {
		if got := dockerignored(patterns, tt.path); got != tt.want {
			t.Errorf("dockerignored(%q) = %q, want %q", tt.path, got, tt.want)
		}
	}
}

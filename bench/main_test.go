package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docket/docket/bench/internal/fakedocket"
)

const tiny = `name: tiny
description: a second of load
users:
  - group: users
    count: 2
    mode: sequential
load:
  shape: constant
  rate: 40
  duration: 1s
drain_timeout: 3s
thresholds:
  success_ratio: 0.99
`

func bench(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func writeScenario(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tiny.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func onlyDir(t *testing.T, parent string) string {
	t.Helper()
	entries, err := os.ReadDir(parent)
	if err != nil || len(entries) != 1 {
		t.Fatalf("want one result directory in %s: %v %v", parent, entries, err)
	}
	return filepath.Join(parent, entries[0].Name())
}

// run, verify and compare end to end against a fake API: the exit status
// is 0 for a clean run and 1 for a run whose verifier found something.
func TestRunVerifyCompare(t *testing.T) {
	sc := writeScenario(t, tiny)

	good := fakedocket.Start(fakedocket.Faults{})
	defer good.Close()
	outA := t.TempDir()
	code, stdout, stderr := bench(t, "run", "--scenario", sc, "--target", good.URL, "--out", outA, "--metrics-addr", "")
	if code != 0 || !strings.Contains(stdout, "RESULT PASS") {
		t.Fatalf("good server: exit %d\n%s\n%s", code, stdout, stderr)
	}
	dirA := onlyDir(t, outA)
	if !strings.HasSuffix(dirA, "-tiny") {
		t.Errorf("result directory %s: want <time>-tiny", dirA)
	}

	bad := fakedocket.Start(fakedocket.Faults{SkipSeq: 2})
	defer bad.Close()
	outB := t.TempDir()
	code, stdout, stderr = bench(t, "run", "--scenario", sc, "--target", bad.URL, "--out", outB, "--metrics-addr", "")
	if code != 1 || !strings.Contains(stdout, "RESULT FAIL") || !strings.Contains(stdout, "gap: user") {
		t.Fatalf("broken server: exit %d\n%s\n%s", code, stdout, stderr)
	}
	dirB := onlyDir(t, outB)

	if code, out, _ := bench(t, "verify", dirA); code != 0 || !strings.Contains(out, "gap             0") {
		t.Errorf("verify good: exit %d\n%s", code, out)
	}
	if code, out, _ := bench(t, "verify", dirB); code != 1 || !strings.Contains(out, "seq 2 is missing") {
		t.Errorf("verify bad: exit %d\n%s", code, out)
	}
	code, out, errOut := bench(t, "compare", dirA, filepath.Join(dirB, "report.json"))
	if code != 0 || !strings.Contains(out, "http p99") || !strings.Contains(out, "result: A PASS, B FAIL") {
		t.Errorf("compare: exit %d\n%s\n%s", code, out, errOut)
	}
}

// --cpuprofile writes a pprof CPU profile (gzipped protobuf) of the run.
func TestRunCPUProfile(t *testing.T) {
	sc := writeScenario(t, tiny)
	srv := fakedocket.Start(fakedocket.Faults{})
	defer srv.Close()
	prof := filepath.Join(t.TempDir(), "cpu.pprof")
	code, stdout, stderr := bench(t, "run", "--scenario", sc, "--target", srv.URL, "--out", t.TempDir(), "--metrics-addr", "", "--cpuprofile", prof)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	b, err := os.ReadFile(prof)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Errorf("%s: %d bytes, not a gzipped profile", prof, len(b))
	}
}

func TestCheckShippedScenarios(t *testing.T) {
	files, _ := filepath.Glob("../scenarios/*.yaml")
	if len(files) < 8 {
		t.Fatalf("found %d scenario files", len(files))
	}
	if code, out, errOut := bench(t, append([]string{"check"}, files...)...); code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	bad := writeScenario(t, strings.Replace(tiny, "rate: 40", "rate: lots", 1))
	if code, _, errOut := bench(t, "check", bad); code != 2 || !strings.Contains(errOut, "load.rate: want a number") {
		t.Errorf("bad scenario: exit %d\n%s", code, errOut)
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"help"}, {"launch"}} {
		code, _, errOut := bench(t, args...)
		if code != 2 || !strings.Contains(errOut, "usage: bench <command>") {
			t.Errorf("%v: exit %d\n%s", args, code, errOut)
		}
	}
	if code, _, errOut := bench(t, "run"); code != 2 || !strings.Contains(errOut, "--scenario is required") {
		t.Errorf("run without a scenario: exit %d\n%s", code, errOut)
	}
	if code, _, errOut := bench(t, "compare", "x"); code != 2 || !strings.Contains(errOut, "want two runs") {
		t.Errorf("compare with one run: exit %d\n%s", code, errOut)
	}
}

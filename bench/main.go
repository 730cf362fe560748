// Command bench is docket's load harness: it runs a scenario against the
// API with vegeta, waits for the backlog to drain, verifies ordering and
// delivery from the outside, and reports. main is a map of subcommands over
// the engine in bench/runner, bench/attack, bench/verify and bench/report.
//
//	bench run --scenario scenarios/steady.yaml [--target URL]
//	bench compare RUN_A RUN_B
//	bench verify RUN_DIR
//	bench check scenarios/*.yaml
//
// Exit status: 0 when the run passed, 1 when a threshold was missed or the
// verifier found anything, 2 when the bench could not do what was asked.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"syscall"
)

var version = "dev"

// errFailed means the bench ran and the server missed a mark.
var errFailed = errors.New("failed")

type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var commands = map[string]command{
	"run":     {"run a scenario and report", runCmd},
	"compare": {"show the change between two runs, figure by figure", compareCmd},
	"verify":  {"re-run the verifier on a saved run's records and listing", verifyCmd},
	"check":   {"check scenario files without running them", checkCmd},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		return 2
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "bench: unknown command %q\n", args[0])
		usage(stderr)
		return 2
	}
	err := cmd.run(ctx, args[1:], stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errFailed):
		return 1
	case errors.Is(err, flag.ErrHelp):
		return 2
	}
	fmt.Fprintf(stderr, "bench %s: %v\n", args[0], err)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "usage: bench <command> [flags]\n\ncommands:\n")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, commands[n].summary)
	}
	fmt.Fprintf(w, "\n'bench <command> -h' shows a command's flags. Exit status: 0 pass, 1 a threshold missed or the verifier found something, 2 error.\n")
}

func newFlagSet(name, args string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("bench "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: bench %s %s\n", name, args)
		fs.PrintDefaults()
	}
	return fs
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

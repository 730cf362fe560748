package main

import (
	"context"
	"fmt"
	"io"

	"github.com/docket/docket/bench/runner"
	"github.com/docket/docket/bench/scenario"
	"github.com/docket/docket/bench/verify"
)

func verifyCmd(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("verify", "RUN_DIR   (re-runs the verifier on records.jsonl and listing.jsonl)", stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return fmt.Errorf("want one result directory, got %d", fs.NArg())
	}
	records, listings, err := runner.ReadSaved(fs.Arg(0))
	if err != nil {
		return err
	}
	r := verify.Verify(runner.VerifyInput(records, listings))
	fmt.Fprintf(stdout, "%d records, %d accepted, %d listed, %d finished\n", len(records), r.Accepted, r.Listed, r.Finished)
	for _, k := range verify.Kinds {
		fmt.Fprintf(stdout, "%-15s %d\n", k, r.Counts.Of(k))
		for _, ex := range r.Examples[k] {
			fmt.Fprintf(stdout, "  %s\n", ex)
		}
	}
	if !r.OK() {
		return fmt.Errorf("%w: the verifier found anomalies", errFailed)
	}
	return nil
}

func checkCmd(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("check", "FILE...   (scenario files)", stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return fmt.Errorf("no scenario files given")
	}
	bad := 0
	for _, f := range fs.Args() {
		sc, err := scenario.Read(f)
		if err != nil {
			fmt.Fprintln(stderr, err)
			bad++
			continue
		}
		fmt.Fprintf(stdout, "%s: ok (%s, %d users, %s)\n", f, sc.Name, sc.TotalUsers(), sc.Load.Shape)
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d scenario files are invalid", bad, fs.NArg())
	}
	return nil
}

package main

import (
	"context"
	"fmt"
	"io"

	"github.com/docket/docket/bench/report"
)

func compareCmd(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("compare", "A B   (result directories or report.json files)", stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return fmt.Errorf("want two runs, got %d", fs.NArg())
	}
	a, err := report.Read(fs.Arg(0))
	if err != nil {
		return err
	}
	b, err := report.Read(fs.Arg(1))
	if err != nil {
		return err
	}
	return report.WriteComparison(stdout, a, b)
}

func missed(ts []report.Threshold) int {
	n := 0
	for _, t := range ts {
		if !t.Pass {
			n++
		}
	}
	return n
}

package main

import (
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/docket/docket/internal/docket"
)

// FuzzListArgs feeds GET /requests's query parser arbitrary query strings
// (seeds in testdata/fuzz/FuzzListArgs): it never panics, what it accepts is
// in range with the documented defaults, and a refusal is invalid_request
// with one of two fixed sentences that repeat nothing of the query.
func FuzzListArgs(f *testing.F) {
	f.Add("after_seq=100&limit=5")
	refusals := map[string]bool{
		"after_seq must be an integer from 0 to 4611686018427387904.": true,
		"limit must be an integer from 1 to 1000.":                    true,
	}
	f.Fuzz(func(t *testing.T, query string) {
		var args fasthttp.Args
		args.Parse(query)
		after, limit, err := listArgs(&args)
		if err != nil {
			if docket.ErrorCode(err) != docket.CodeInvalidRequest || !refusals[docket.ErrorMessage(err)] {
				t.Fatalf("query %q: refusal %v, want invalid_request with a fixed sentence", query, err)
			}
			return
		}
		switch {
		case after < 0 || after > 1<<62:
			t.Fatalf("query %q: after_seq %d out of range", query, after)
		case limit < 1 || limit > 1000:
			t.Fatalf("query %q: limit %d out of range", query, limit)
		case !args.Has("after_seq") && after != 0:
			t.Fatalf("query %q: after_seq %d without one given, want 0", query, after)
		case !args.Has("limit") && limit != 100:
			t.Fatalf("query %q: limit %d without one given, want 100", query, limit)
		}
	})
}

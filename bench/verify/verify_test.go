package verify_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/docket/docket/bench/verify"
)

var t0 = time.Date(2026, 11, 29, 7, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// history builds a clean recorded history: each user sends n requests one
// after another (each sent 10 ms after the previous answer), the server
// numbers them 1..n, accepts each 2 ms after the send and finishes them in
// order.
func history(users []string, n int) verify.Input {
	in := verify.Input{Listings: map[string][]verify.Row{}}
	for _, u := range users {
		for i := 1; i <= n; i++ {
			id := fmt.Sprintf("%s-%d", u, i)
			sent := at(10 * i)
			in.Records = append(in.Records, verify.Record{
				User: u, Sent: sent, Received: sent.Add(2 * time.Millisecond), Code: 202, ID: id, Seq: int64(i),
			})
			in.Listings[u] = append(in.Listings[u], verify.Row{
				ID: id, Seq: int64(i), Status: "done", AcceptedAt: sent.Add(time.Millisecond), ProcessedAt: at(10*i + 5),
			})
		}
	}
	return in
}

// overlapping is a clean history of open-loop requests: all of a user's
// requests are in flight at once, so no pair is ordered by happens-before.
func overlapping(user string, n int) verify.Input {
	in := verify.Input{Listings: map[string][]verify.Row{}}
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("%s-%d", user, i)
		// Sent in one order, answered in the reverse: the server may number
		// them any way while they overlap.
		in.Records = append(in.Records, verify.Record{
			User: user, Sent: at(i), Received: at(100 - i), Code: 202, ID: id, Seq: int64(n + 1 - i),
		})
		in.Listings[user] = append(in.Listings[user], verify.Row{
			ID: id, Seq: int64(n + 1 - i), Status: "done", AcceptedAt: at(50), ProcessedAt: at(200 + n - i),
		})
	}
	return in
}

func TestCleanHistoriesPass(t *testing.T) {
	t.Parallel()
	for name, in := range map[string]verify.Input{
		"sequential":  history([]string{"a", "b", "c"}, 50),
		"overlapping": overlapping("a", 20),
		"empty":       {},
		"failed requests count as finished": func() verify.Input {
			in := history([]string{"a"}, 3)
			in.Listings["a"][1].Status = "failed"
			return in
		}(),
		"unanswered request the server kept": func() verify.Input {
			in := history([]string{"a"}, 3)
			// The 3rd request timed out at the client but was committed.
			in.Records[2].Code, in.Records[2].ID, in.Records[2].Seq = 0, "", 0
			return in
		}(),
		"rejected requests are not lost": func() verify.Input {
			in := history([]string{"a"}, 3)
			in.Records = append(in.Records,
				verify.Record{User: "a", Sent: at(500), Received: at(501), Code: 429},
				verify.Record{User: "a", Sent: at(600), Received: at(601), Code: 503})
			return in
		}(),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := verify.Verify(in)
			if !r.OK() {
				t.Fatalf("clean history failed: counts %+v, examples %v", r.Counts, r.Examples)
			}
		})
	}
}

func TestCleanHistoryFigures(t *testing.T) {
	t.Parallel()
	in := history([]string{"a", "b"}, 10)
	in.Listings["b"][9].Status = "failed"
	r := verify.Verify(in)
	if r.Accepted != 20 || r.Finished != 20 || r.Done != 19 || r.Failed != 1 || r.Listed != 20 {
		t.Errorf("figures: %+v", r)
	}
	// Every request but each user's first had a predecessor; none overlapped.
	if r.Predecessors != 18 || r.Overlapped != 0 {
		t.Errorf("happens_before_checked = %d, overlapped = %d; want 18 and 0", r.Predecessors, r.Overlapped)
	}
	if o := verify.Verify(overlapping("a", 20)); o.Overlapped != 19 || o.Predecessors != 0 {
		t.Errorf("all in flight at once: overlapped = %d, checked = %d; want 19 and 0", o.Overlapped, o.Predecessors)
	}
}

// Each anomaly, injected into a clean history, must be caught: counted
// under its kind and shown by a concrete example.
func TestAnomaliesAreCaught(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		inject  func(in *verify.Input)
		kind    verify.Kind
		count   int
		example string // a piece of the first example
	}{
		{
			name:   "lost: accepted, never listed",
			inject: func(in *verify.Input) { in.Listings["a"] = in.Listings["a"][:9] },
			kind:   verify.Lost, count: 1, example: "id a-10 (seq 10) was accepted but is not listed",
		},
		{
			name: "lost: still queued after the drain",
			inject: func(in *verify.Input) {
				in.Listings["b"][4].Status, in.Listings["b"][4].ProcessedAt = "queued", time.Time{}
			},
			kind: verify.Lost, count: 1, example: "id b-5 (seq 5) is still queued after the drain",
		},
		{
			name:   "lost: a 202 without an id",
			inject: func(in *verify.Input) { in.Records[3].ID = "" },
			kind:   verify.Lost, count: 1, example: "carried no id",
		},
		{
			name: "duplicate: the same id listed twice",
			inject: func(in *verify.Input) {
				dup := in.Listings["a"][2]
				dup.Seq = 11
				in.Listings["a"] = append(in.Listings["a"], dup)
			},
			kind: verify.Duplicate, count: 1, example: "id a-3 listed twice: user a seq 3 and user a seq 11",
		},
		{
			name: "duplicate: a request applied twice under a new id",
			inject: func(in *verify.Input) {
				in.Listings["a"] = append(in.Listings["a"], verify.Row{ID: "ghost", Seq: 11, Status: "done", ProcessedAt: at(999)})
			},
			kind: verify.Duplicate, count: 1, example: "1 listed requests were never answered 202, but only 0",
		},
		{
			name: "duplicate: two rows at one seq",
			inject: func(in *verify.Input) {
				in.Listings["b"][5].Seq = 5
			},
			kind: verify.Duplicate, count: 1, example: "user b: seq 5 listed twice (ids b-5 and b-6)",
		},
		{
			name: "duplicate: one seq given to two accepted requests",
			inject: func(in *verify.Input) {
				in.Records[4].Seq = 4 // user a's 5th request also got seq 4 in its 202
			},
			kind: verify.Duplicate, count: 1, example: "seq 4 given to two accepted requests, a-4 and a-5",
		},
		{
			name: "duplicate: one id answered 202 twice",
			inject: func(in *verify.Input) {
				in.Records = append(in.Records, in.Records[0])
			},
			kind: verify.Duplicate, count: 1, example: "id a-1 answered 202 twice",
		},
		{
			name: "gap: a seq is skipped",
			inject: func(in *verify.Input) {
				for i := 6; i < 10; i++ { // user a's seqs 7..10 become 8..11
					in.Listings["a"][i].Seq++
					in.Records[i].Seq++
				}
			},
			kind: verify.Gap, count: 1, example: "user a: seq 7 is missing (the listing goes from 6 to 8)",
		},
		{
			name: "gap: several seqs skipped",
			inject: func(in *verify.Input) {
				in.Listings["b"][9].Seq = 14
				in.Records[19].Seq = 14
			},
			kind: verify.Gap, count: 4, example: "user b: seqs 10 to 13 are missing",
		},
		{
			name: "gap: listed at another seq than the 202 said",
			inject: func(in *verify.Input) {
				in.Records[9].Seq = 12
			},
			kind: verify.Gap, count: 1, example: "id a-10 got seq 12 in its 202 but is listed at seq 10",
		},
		{
			name: "happens_before: a later request got a smaller seq",
			inject: func(in *verify.Input) {
				// a-3 and a-4 swap seqs although a-3's 202 came before a-4 was sent.
				in.Records[2].Seq, in.Records[3].Seq = 4, 3
				in.Listings["a"][2].ID, in.Listings["a"][3].ID = "a-4", "a-3"
			},
			kind: verify.HappensBefore, count: 1, example: "id a-3 got seq 4",
		},
		{
			name: "order: finished out of seq order",
			inject: func(in *verify.Input) {
				in.Listings["b"][6].ProcessedAt = in.Listings["b"][5].ProcessedAt.Add(-time.Microsecond)
			},
			kind: verify.Order, count: 1, example: "user b: seq 7 finished at",
		},
		{
			name: "order: two finished at the same instant",
			inject: func(in *verify.Input) {
				in.Listings["a"][1].ProcessedAt = in.Listings["a"][0].ProcessedAt
			},
			kind: verify.Order, count: 1, example: "user a: seq 2 finished at",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := history([]string{"a", "b"}, 10)
			tt.inject(&in)
			r := verify.Verify(in)
			if got := r.Counts.Of(tt.kind); got != tt.count {
				t.Fatalf("%s = %d, want %d; counts %+v, examples %v", tt.kind, got, tt.count, r.Counts, r.Examples)
			}
			if r.OK() {
				t.Fatal("OK() is true for a history with an anomaly")
			}
			ex := r.Examples[tt.kind]
			if len(ex) == 0 {
				t.Fatalf("no example of %s", tt.kind)
			}
			if !strings.Contains(ex[0], tt.example) {
				t.Errorf("example %q does not contain %q", ex[0], tt.example)
			}
			for _, k := range verify.Kinds {
				if k != tt.kind && r.Counts.Of(k) != 0 && tt.kind != verify.Duplicate && tt.kind != verify.Gap {
					t.Errorf("also found %d %s: %v", r.Counts.Of(k), k, r.Examples[k])
				}
			}
		})
	}
}

// Overlapping requests (no happens-before between them) may get any seqs;
// once one's 202 is in before the next is sent, the order is binding.
func TestHappensBeforeOnlyBindsOrderedPairs(t *testing.T) {
	t.Parallel()
	in := overlapping("a", 5)
	// A 6th request sent after all five answers, yet numbered below them.
	in.Records = append(in.Records, verify.Record{User: "a", Sent: at(150), Received: at(160), Code: 202, ID: "late", Seq: 6})
	in.Listings["a"] = append(in.Listings["a"], verify.Row{ID: "late", Seq: 6, Status: "done", ProcessedAt: at(900)})
	if r := verify.Verify(in); !r.OK() || r.Predecessors != 1 {
		t.Fatalf("clean: counts %+v, checked %d, examples %v", r.Counts, r.Predecessors, r.Examples)
	}
	in.Records[5].Seq = 3
	in.Records[2].Seq = 6
	r := verify.Verify(in)
	if r.Counts.HappensBefore != 1 {
		t.Fatalf("happens_before = %d, want 1: %v", r.Counts.HappensBefore, r.Examples)
	}
}

func TestExamplesAreBounded(t *testing.T) {
	t.Parallel()
	in := history([]string{"a"}, 40)
	in.Listings["a"] = nil // all 40 lost
	r := verify.Verify(in)
	if r.Counts.Lost != 40 {
		t.Fatalf("lost = %d, want 40", r.Counts.Lost)
	}
	if len(r.Examples[verify.Lost]) != verify.MaxExamples {
		t.Errorf("%d examples, want %d", len(r.Examples[verify.Lost]), verify.MaxExamples)
	}
}

func TestUnknownExtraExplainedByAmbiguousAnswers(t *testing.T) {
	t.Parallel()
	in := history([]string{"a"}, 5)
	// Two requests timed out (code 0) and one got a 500: up to three rows
	// may exist that the bench never saw a 202 for.
	in.Records = append(in.Records,
		verify.Record{User: "a", Sent: at(900), Received: at(930), Code: 0},
		verify.Record{User: "a", Sent: at(901), Received: at(931), Code: 0},
		verify.Record{User: "a", Sent: at(902), Received: at(932), Code: 500})
	for i := 6; i <= 8; i++ {
		in.Listings["a"] = append(in.Listings["a"], verify.Row{ID: fmt.Sprint("x", i), Seq: int64(i), Status: "done", ProcessedAt: at(1000 + i)})
	}
	r := verify.Verify(in)
	if !r.OK() || r.UnknownExtra != 3 || r.Ambiguous != 3 {
		t.Fatalf("counts %+v extra %d ambiguous %d examples %v", r.Counts, r.UnknownExtra, r.Ambiguous, r.Examples)
	}
	in.Listings["a"] = append(in.Listings["a"], verify.Row{ID: "x9", Seq: 9, Status: "done", ProcessedAt: at(1009)})
	if r := verify.Verify(in); r.Counts.Duplicate != 1 {
		t.Fatalf("a 4th unexplained row: duplicate = %d, want 1", r.Counts.Duplicate)
	}
}

// Package verify checks what docket did with the bench's requests against
// API.md's promises, from plain data: the bench's own records of what it
// sent and what each answer said, and each user's listing as GET /requests
// returned it after the drain. It does no I/O, so its tests feed it recorded
// histories with every kind of anomaly and check that each is caught.
//
// The checks, per user:
//   - lost: a request answered 202 is not listed, or not finished (done or
//     failed) once the drain is over;
//   - duplicate: an id listed twice, a seq listed twice, one id answered
//     202 twice, one seq given to two accepted requests, or more listed
//     requests than the bench sent and could not tell the fate of;
//   - gap: the listing's seqs are not exactly 1..n, or a request is listed
//     at another seq than its 202 said;
//   - happens_before: request A's 202 arrived before request B was sent,
//     yet seq A is not below seq B;
//   - order: processed_at does not strictly rise with seq.
package verify

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// Record is what the client knows of one request it sent.
type Record struct {
	User string
	// Sent is no later than the moment the request left the client, and
	// Received no earlier than the moment its answer arrived: the
	// happens-before check stays sound with cautious times.
	Sent     time.Time
	Received time.Time
	// Code is the HTTP status; 0 when no answer came (timeout, reset).
	Code int
	// ID and Seq are from the 202 body.
	ID  string
	Seq int64
}

// Row is one request as the API listed it.
type Row struct {
	ID          string
	Seq         int64
	Status      string
	AcceptedAt  time.Time
	ProcessedAt time.Time // zero until finished
}

func (r Row) finished() bool { return r.Status == "done" || r.Status == "failed" }

// Input is everything the verifier looks at.
type Input struct {
	Records []Record
	// Listings holds, per user, every row GET /requests listed.
	Listings map[string][]Row
}

// Kind is a kind of anomaly.
type Kind string

// The kinds of anomaly.
const (
	Lost          Kind = "lost"
	Duplicate     Kind = "duplicate"
	Gap           Kind = "gap"
	HappensBefore Kind = "happens_before"
	Order         Kind = "order"
)

// Kinds lists every kind, in report order.
var Kinds = []Kind{Lost, Duplicate, Gap, HappensBefore, Order}

// MaxExamples is how many examples of each kind a Report keeps.
const MaxExamples = 5

// Counts are the anomalies found, by kind.
type Counts struct {
	Lost          int `json:"lost"`
	Duplicate     int `json:"duplicate"`
	Gap           int `json:"gap"`
	HappensBefore int `json:"happens_before"`
	Order         int `json:"order"`
}

// Violations counts every anomaly but lost requests.
func (c Counts) Violations() int { return c.Duplicate + c.Gap + c.HappensBefore + c.Order }

// Of returns the count of one kind.
func (c Counts) Of(k Kind) int {
	switch k {
	case Lost:
		return c.Lost
	case Duplicate:
		return c.Duplicate
	case Gap:
		return c.Gap
	case HappensBefore:
		return c.HappensBefore
	case Order:
		return c.Order
	}
	return 0
}

func (c *Counts) add(k Kind, n int) {
	switch k {
	case Lost:
		c.Lost += n
	case Duplicate:
		c.Duplicate += n
	case Gap:
		c.Gap += n
	case HappensBefore:
		c.HappensBefore += n
	case Order:
		c.Order += n
	}
}

// Report is the verifier's finding.
type Report struct {
	// Accepted counts the records answered 202.
	Accepted int `json:"accepted"`
	// Finished counts accepted requests listed as done or failed.
	Finished int `json:"finished"`
	Done     int `json:"done"`
	Failed   int `json:"failed"`
	// Listed counts the rows of all listings.
	Listed int `json:"listed"`
	// Ambiguous counts requests whose fate the answer did not tell: no
	// answer at all, or a 5xx other than 503 (503 promises nothing was
	// written), or a 202 without a readable id. Each may or may not be
	// listed.
	Ambiguous int `json:"ambiguous"`
	// UnknownExtra counts listed requests the bench holds no 202 for. Up
	// to Ambiguous of them are explained; the rest are duplicates.
	UnknownExtra int `json:"unknown_extra"`
	// Predecessors counts accepted requests that had at least one request
	// of the same user answered before they were sent: how much the
	// happens-before check had to bite on.
	Predecessors int `json:"happens_before_checked"`
	// Overlapped counts accepted requests sent while another accepted
	// request of the same user was still waiting for its answer: how much
	// the run exercised overlapping requests, whose order only the server
	// decides.
	Overlapped int `json:"overlapped"`
	// Counts are the anomalies by kind.
	Counts Counts `json:"counts"`
	// Examples holds up to MaxExamples concrete cases of each kind found.
	Examples map[Kind][]string `json:"examples"`
}

// OK reports whether nothing was found.
func (r *Report) OK() bool { return r.Counts.Lost == 0 && r.Counts.Violations() == 0 }

func (r *Report) found(k Kind, n int, format string, args ...any) {
	r.Counts.add(k, n)
	if len(r.Examples[k]) < MaxExamples {
		r.Examples[k] = append(r.Examples[k], fmt.Sprintf(format, args...))
	}
}

// Verify runs every check.
func Verify(in Input) *Report {
	r := &Report{Examples: map[Kind][]string{}}
	byUser := map[string][]Record{}
	for _, rec := range in.Records {
		byUser[rec.User] = append(byUser[rec.User], rec)
	}
	users := make([]string, 0, len(byUser)+len(in.Listings))
	for u := range byUser {
		users = append(users, u)
	}
	for u := range in.Listings {
		if _, ok := byUser[u]; !ok {
			users = append(users, u)
		}
	}
	slices.Sort(users)

	listedAt := map[string]string{} // id -> "user u seq n", over all users
	for _, u := range users {
		rows := in.Listings[u]
		r.Listed += len(rows)
		for _, row := range rows {
			where := fmt.Sprintf("user %s seq %d", u, row.Seq)
			if first, ok := listedAt[row.ID]; ok {
				r.found(Duplicate, 1, "id %s listed twice: %s and %s", row.ID, first, where)
				continue
			}
			listedAt[row.ID] = where
		}
	}
	for _, u := range users {
		r.checkUser(u, byUser[u], in.Listings[u])
	}
	return r
}

func ambiguous(code int) bool { return code == 0 || (code >= 500 && code != 503) }

func (r *Report) checkUser(user string, records []Record, rows []Row) {
	rows = slices.Clone(rows)
	slices.SortStableFunc(rows, func(a, b Row) int { return cmp.Compare(a.Seq, b.Seq) })
	rowByID := map[string]Row{}
	for _, row := range rows {
		if _, ok := rowByID[row.ID]; !ok {
			rowByID[row.ID] = row
		}
	}

	var accepted []Record
	ambiguousN := 0
	acceptedIDs := map[string]Record{}
	idBySeq := map[int64]string{}
	for _, rec := range records {
		if ambiguous(rec.Code) {
			ambiguousN++
		}
		if rec.Code != 202 {
			continue
		}
		r.Accepted++
		if rec.ID == "" {
			ambiguousN++ // it exists on the server, under an id the bench never learnt
			r.found(Lost, 1, "user %s: a 202 (sent %s) carried no id, so it cannot be found", user, stamp(rec.Sent))
			continue
		}
		if first, ok := acceptedIDs[rec.ID]; ok {
			r.found(Duplicate, 1, "user %s: id %s answered 202 twice (seq %d and seq %d)", user, rec.ID, first.Seq, rec.Seq)
			continue
		}
		acceptedIDs[rec.ID] = rec
		if other, ok := idBySeq[rec.Seq]; ok {
			r.found(Duplicate, 1, "user %s: seq %d given to two accepted requests, %s and %s", user, rec.Seq, other, rec.ID)
		} else {
			idBySeq[rec.Seq] = rec.ID
		}
		accepted = append(accepted, rec)
		row, ok := rowByID[rec.ID]
		switch {
		case !ok:
			r.found(Lost, 1, "user %s: id %s (seq %d) was accepted but is not listed", user, rec.ID, rec.Seq)
			continue
		case !row.finished():
			r.found(Lost, 1, "user %s: id %s (seq %d) is still %s after the drain", user, rec.ID, rec.Seq, row.Status)
		default:
			r.Finished++
			if row.Status == "done" {
				r.Done++
			} else {
				r.Failed++
			}
		}
		if row.Seq != rec.Seq {
			r.found(Gap, 1, "user %s: id %s got seq %d in its 202 but is listed at seq %d", user, rec.ID, rec.Seq, row.Seq)
		}
	}
	r.Ambiguous += ambiguousN

	extra := 0
	var extraExample string
	for _, row := range rows {
		if _, ok := acceptedIDs[row.ID]; !ok {
			extra++
			if extraExample == "" {
				extraExample = fmt.Sprintf("id %s seq %d", row.ID, row.Seq)
			}
		}
	}
	r.UnknownExtra += extra
	if extra > ambiguousN {
		r.found(Duplicate, extra-ambiguousN, "user %s: %d listed requests were never answered 202, but only %d requests went without a definite answer (e.g. %s)", user, extra, ambiguousN, extraExample)
	}

	r.checkSeqs(user, rows)
	r.checkHappensBefore(user, accepted)
	r.checkOrder(user, rows)
}

// checkSeqs wants the listing's seqs to be exactly 1..n.
func (r *Report) checkSeqs(user string, rows []Row) {
	want := int64(1)
	for i, row := range rows {
		if i > 0 && row.Seq == rows[i-1].Seq {
			r.found(Duplicate, 1, "user %s: seq %d listed twice (ids %s and %s)", user, row.Seq, rows[i-1].ID, row.ID)
			continue
		}
		if row.Seq < 1 {
			r.found(Gap, 1, "user %s: id %s is listed at seq %d; seqs start at 1", user, row.ID, row.Seq)
			continue
		}
		if row.Seq > want {
			missing := row.Seq - want
			if missing == 1 {
				r.found(Gap, 1, "user %s: seq %d is missing (the listing goes from %d to %d)", user, want, want-1, row.Seq)
			} else {
				r.found(Gap, int(missing), "user %s: seqs %d to %d are missing (the listing goes from %d to %d)", user, want, row.Seq-1, want-1, row.Seq)
			}
		}
		want = row.Seq + 1
	}
}

// checkHappensBefore: if A's 202 arrived before B was sent, seq A < seq B.
// A sweep over the requests in send order keeps the highest seq among those
// answered before the current send, so each B is checked against every A
// in O(n log n).
func (r *Report) checkHappensBefore(user string, accepted []Record) {
	bySent := slices.Clone(accepted)
	slices.SortFunc(bySent, func(a, b Record) int { return a.Sent.Compare(b.Sent) })
	byReceived := slices.Clone(accepted)
	slices.SortFunc(byReceived, func(a, b Record) int { return a.Received.Compare(b.Received) })
	var top *Record // highest seq answered so far
	i := 0
	for sentBefore, b := range bySent {
		for i < len(byReceived) && byReceived[i].Received.Before(b.Sent) {
			if top == nil || byReceived[i].Seq > top.Seq {
				top = &byReceived[i]
			}
			i++
		}
		if sentBefore > i { // some request sent earlier has no answer yet
			r.Overlapped++
		}
		if top == nil {
			continue
		}
		r.Predecessors++
		if top.Seq >= b.Seq && top.ID != b.ID {
			r.found(HappensBefore, 1, "user %s: id %s got seq %d and its 202 arrived at %s, before id %s was sent at %s, yet that one got seq %d",
				user, top.ID, top.Seq, stamp(top.Received), b.ID, stamp(b.Sent), b.Seq)
		}
	}
}

// checkOrder: for one user, processed_at strictly rises with seq.
func (r *Report) checkOrder(user string, rows []Row) {
	var prev *Row
	for i := range rows {
		row := &rows[i]
		if !row.finished() || row.ProcessedAt.IsZero() {
			continue
		}
		if prev != nil && prev.Seq != row.Seq && !row.ProcessedAt.After(prev.ProcessedAt) {
			r.found(Order, 1, "user %s: seq %d finished at %s, not after seq %d at %s",
				user, row.Seq, stamp(row.ProcessedAt), prev.Seq, stamp(prev.ProcessedAt))
		}
		prev = row
	}
}

func stamp(t time.Time) string { return t.UTC().Format("15:04:05.000000") }

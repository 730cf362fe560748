package harness

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Report is what the database and its audit trail say about a run.
type Report struct {
	Requests     int // rows
	Unfinished   int // not done or failed
	AppliedTwice int // requests finished more than once
	StartedEarly int // requests started before their predecessor finished
	OrderBroken  int // processed_at not rising with seq
	SeqGaps      int // users whose seqs are not 1..n
	Missing      int // accepted ids the database does not have
}

func (r Report) String() string {
	return fmt.Sprintf("requests=%d unfinished=%d applied_twice=%d started_early=%d order_broken=%d seq_gaps=%d missing=%d",
		r.Requests, r.Unfinished, r.AppliedTwice, r.StartedEarly, r.OrderBroken, r.SeqGaps, r.Missing)
}

// Clean reports whether nothing is wrong.
func (r Report) Clean() bool {
	return r.Unfinished == 0 && r.AppliedTwice == 0 && r.StartedEarly == 0 && r.OrderBroken == 0 && r.SeqGaps == 0 && r.Missing == 0
}

// Verify checks the stack's database against the accepted ids.
func (s *Stack) Verify(accepted []string) Report {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var r Report
	queries := []struct {
		dst *int
		sql string
	}{
		{&r.Requests, `SELECT count(*) FROM requests`},
		{&r.Unfinished, `SELECT count(*) FROM requests WHERE status NOT IN ('done', 'failed')`},
		{&r.AppliedTwice, `SELECT count(*) FROM (SELECT id FROM audit WHERE status IN ('done', 'failed') GROUP BY id HAVING count(*) > 1) x`},
		{&r.StartedEarly, `WITH fin AS (SELECT user_id, seq, min(at) AS at FROM audit WHERE status IN ('done', 'failed') GROUP BY 1, 2),
			st AS (SELECT user_id, seq, min(at) AS at FROM audit WHERE status = 'processing' GROUP BY 1, 2)
			SELECT count(*) FROM st LEFT JOIN fin ON fin.user_id = st.user_id AND fin.seq = st.seq - 1
			WHERE st.seq > 1 AND (fin.at IS NULL OR st.at < fin.at)`},
		{&r.OrderBroken, `SELECT count(*) FROM (SELECT processed_at, lag(processed_at) OVER (PARTITION BY user_id ORDER BY seq) AS prev
			FROM requests WHERE processed_at IS NOT NULL) x WHERE processed_at <= prev`},
		{&r.SeqGaps, `SELECT count(*) FROM (SELECT user_id FROM requests GROUP BY user_id HAVING min(seq) <> 1 OR max(seq) <> count(*)) x`},
		{&r.Missing, `SELECT count(*) FROM unnest($1::uuid[]) AS a(id) WHERE NOT EXISTS (SELECT 1 FROM requests r WHERE r.id = a.id)`},
	}
	for _, q := range queries {
		var args []any
		if strings.Contains(q.sql, "$1") {
			args = append(args, accepted)
		}
		if err := s.DB.QueryRow(ctx, q.sql, args...).Scan(q.dst); err != nil {
			s.t.Fatalf("verify: %v\n%s", err, q.sql)
		}
	}
	return r
}

// WaitFinished waits until every request row is done or failed.
func (s *Stack) WaitFinished(timeout time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	var left int
	for time.Now().Before(deadline) {
		err := s.DB.QueryRow(context.Background(), `SELECT count(*) FROM requests WHERE status NOT IN ('done', 'failed')`).Scan(&left)
		if err == nil && left == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("after %s, %d requests are still unfinished", timeout, left)
}

// Metric sums the samples of name (any labels) on a /metrics page.
func Metric(url, name string) (float64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest != "" && rest[0] != ' ' && rest[0] != '{' {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("parse %q: %w", line, err)
		}
		sum += v
	}
	return sum, sc.Err()
}

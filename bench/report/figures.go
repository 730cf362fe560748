package report

import (
	"math"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/docket/docket/bench/api"
	"github.com/docket/docket/bench/attack"
)

// ms converts a duration to float milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Latencies returns the exact distribution of ds.
func Latencies(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	rank := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(s)))) - 1
		return ms(s[max(0, min(i, len(s)-1))])
	}
	return Latency{
		Count: len(s),
		Mean:  ms(sum / time.Duration(len(s))),
		P50:   rank(0.50),
		P90:   rank(0.90),
		P99:   rank(0.99),
		P999:  rank(0.999),
		Max:   ms(s[len(s)-1]),
	}
}

// HTTPFigures computes the client-side figures of records.
func HTTPFigures(records []*attack.Record, successCodes []int) HTTP {
	h := HTTP{Requests: len(records), StatusCodes: map[string]int{}, SuccessCodes: successCodes}
	if len(records) == 0 {
		return h
	}
	lat := make([]time.Duration, 0, len(records))
	first, last := records[0].Sent, records[0].Received
	success, ok := 0, 0
	for _, r := range records {
		lat = append(lat, r.Latency())
		h.StatusCodes[strconv.Itoa(r.Code)]++
		if slices.Contains(successCodes, r.Code) {
			success++
		}
		if r.Code >= 200 && r.Code < 300 {
			ok++
		}
		if r.Code == 0 && r.Error != "" {
			if h.Errors == nil {
				h.Errors = map[string]int{}
			}
			msg := requestNumber.ReplaceAllString(r.Error, "")
			if _, ok := h.Errors[msg]; ok || len(h.Errors) < 10 {
				h.Errors[msg]++
			}
		}
		if r.Sent.Before(first) {
			first = r.Sent
		}
		if r.Received.After(last) {
			last = r.Received
		}
	}
	h.Latency = Latencies(lat)
	h.SuccessRatio = float64(success) / float64(len(records))
	dur := last.Sub(first)
	h.DurationMS = ms(dur)
	if dur > 0 {
		h.OKPerSec = float64(ok) / dur.Seconds()
	}
	return h
}

// requestNumber is the fragment each target's URL carries (/requests#17):
// without it, the same error of many requests counts as one kind.
var requestNumber = regexp.MustCompile(`#[0-9]+`)

// ProcessingFigures computes server-side figures for the accepted records,
// from the rows listed after the drain (keyed by id).
func ProcessingFigures(records []*attack.Record, rows map[string]api.Row) Processing {
	var p Processing
	var e2e []time.Duration
	var firstAccept, lastFinish time.Time
	for _, r := range records {
		if r.Code != 202 || r.ID == "" {
			continue
		}
		p.Accepted++
		row, ok := rows[r.ID]
		if !ok || !row.Finished() || row.ProcessedAt == nil {
			continue
		}
		p.Finished++
		if row.Status == "done" {
			p.Done++
		} else {
			p.Failed++
		}
		e2e = append(e2e, max(0, row.ProcessedAt.Sub(row.AcceptedAt)))
		if firstAccept.IsZero() || row.AcceptedAt.Before(firstAccept) {
			firstAccept = row.AcceptedAt
		}
		if row.ProcessedAt.After(lastFinish) {
			lastFinish = *row.ProcessedAt
		}
	}
	p.EndToEnd = Latencies(e2e)
	if d := lastFinish.Sub(firstAccept); d > 0 {
		p.ProcessedPerSec = float64(p.Finished) / d.Seconds()
	}
	return p
}

// GroupFigures computes one group's figures from its records.
func GroupFigures(name string, users int, mode string, records []*attack.Record, rows map[string]api.Row) Group {
	g := Group{Name: name, Users: users, Mode: mode}
	var lat []time.Duration
	var mine []*attack.Record
	for _, r := range records {
		if r.Group != name {
			continue
		}
		mine = append(mine, r)
		lat = append(lat, r.Latency())
		if g.StatusCodes == nil {
			g.StatusCodes = map[string]int{}
		}
		g.StatusCodes[strconv.Itoa(r.Code)]++
	}
	g.Requests = len(mine)
	g.HTTPP99 = Latencies(lat).P99
	e := ProcessingFigures(mine, rows).EndToEnd
	g.E2EP50, g.E2EP99, g.E2EMax = e.P50, e.P99, e.Max
	return g
}

// Round keeps figures readable in report.json: three decimals.
func Round(f float64) float64 { return math.Round(f*1000) / 1000 }

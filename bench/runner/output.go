package runner

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	vegeta "github.com/tsenart/vegeta/v12/lib"
	"github.com/tsenart/vegeta/v12/lib/plot"

	"github.com/docket/docket/bench/api"
	"github.com/docket/docket/bench/attack"
)

// Raw result files in a run's directory, for re-analysis.
const (
	// ResultsFile holds vegeta's results (gob), as `vegeta attack` writes
	// them: `vegeta report < results.bin` and `vegeta plot` read it.
	ResultsFile = "results.bin"
	// RecordsFile holds one attack.Record per line (JSON).
	RecordsFile = "records.jsonl"
	// ListingFile holds one listed request per line (JSON, with its user).
	ListingFile = "listing.jsonl"
	// PlotFile is vegeta's HTML latency plot.
	PlotFile = "plot.html"
)

// ListedRow is a line of ListingFile.
type ListedRow struct {
	User string `json:"user"`
	api.Row
}

// rawOutput keeps the attacks' vegeta results and writes them, with the
// records and listings, when the run ends.
type rawOutput struct {
	results  []*vegeta.Result
	records  []*attack.Record
	listings map[string][]api.Row
}

// add takes one result; it runs on the attack's collecting goroutine.
func (o *rawOutput) add(res *vegeta.Result) { o.results = append(o.results, res) }

// orderResults sorts the results by send time within each attack and
// numbers them again in that order. vegeta numbers hits before the targeter
// runs, and the bench moves each Timestamp to the real send, so the old
// numbers need not follow the times; vegeta's plot wants them to.
func (o *rawOutput) orderResults() {
	slices.SortStableFunc(o.results, func(a, b *vegeta.Result) int {
		if c := strings.Compare(a.Attack, b.Attack); c != 0 {
			return c
		}
		return a.Timestamp.Compare(b.Timestamp)
	})
	seq := map[string]uint64{}
	for _, r := range o.results {
		r.Seq = seq[r.Attack]
		seq[r.Attack]++
	}
}

// write stores every raw file in dir.
func (o *rawOutput) write(dir, title string) error {
	o.orderResults()
	if err := writeFile(filepath.Join(dir, ResultsFile), func(w *bufio.Writer) error {
		enc := vegeta.NewEncoder(w)
		for _, r := range o.results {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, PlotFile), func(w *bufio.Writer) error {
		p := plot.New(plot.Title("docket bench: "+title), plot.Downsample(4000), plot.Label(plot.ErrorLabeler))
		for _, r := range o.results {
			if err := p.Add(r); err != nil {
				return err
			}
		}
		p.Close()
		_, err := p.WriteTo(w)
		return err
	}); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, RecordsFile), func(w *bufio.Writer) error {
		enc := json.NewEncoder(w)
		for _, r := range o.records {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return err
	}
	if o.listings == nil {
		return nil
	}
	return writeFile(filepath.Join(dir, ListingFile), func(w *bufio.Writer) error {
		users := make([]string, 0, len(o.listings))
		for u := range o.listings {
			users = append(users, u)
		}
		slices.Sort(users)
		enc := json.NewEncoder(w)
		for _, u := range users {
			for _, row := range o.listings[u] {
				if err := enc.Encode(ListedRow{User: u, Row: row}); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

func writeFile(path string, write func(*bufio.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	w := bufio.NewWriter(f)
	if err := write(w); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return f.Close()
}

// ReadSaved loads a run's records and listings back from its directory,
// for `bench verify`.
func ReadSaved(dir string) ([]*attack.Record, map[string][]api.Row, error) {
	var records []*attack.Record
	if err := readLines(filepath.Join(dir, RecordsFile), func(dec *json.Decoder) error {
		var r attack.Record
		if err := dec.Decode(&r); err != nil {
			return err
		}
		records = append(records, &r)
		return nil
	}); err != nil {
		return nil, nil, err
	}
	listings := map[string][]api.Row{}
	err := readLines(filepath.Join(dir, ListingFile), func(dec *json.Decoder) error {
		var l ListedRow
		if err := dec.Decode(&l); err != nil {
			return err
		}
		listings[l.User] = append(listings[l.User], l.Row)
		return nil
	})
	return records, listings, err
}

func readLines(path string, each func(*json.Decoder) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("read saved run: %w", err)
	}
	defer f.Close()
	dec := json.NewDecoder(bufio.NewReader(f))
	for dec.More() {
		if err := each(dec); err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
	}
	return nil
}

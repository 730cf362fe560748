// Package scenario reads and checks the bench's scenario files (YAML, see
// scenarios/README.md). Read is the way in: it decodes a file strictly,
// fills defaults and validates every field, so that the rest of the bench
// can trust a *Scenario without checking it again.
package scenario

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Targets: what the attack sends.
const (
	TargetRequests = "requests" // POST /requests, signed with the user's token
	TargetLogin    = "login"    // POST /auth/login: the bcrypt path is the load
)

// Per-user modes.
const (
	ModeOpen       = "open"       // a user's requests may overlap
	ModeSequential = "sequential" // a user sends its next request after the previous answer
)

// Load shapes.
const (
	ShapeConstant = "constant"
	ShapeLinear   = "linear"
	ShapeSteps    = "steps"
	ShapeSpike    = "spike"
)

// Request types of API.md, with their payload limits.
const (
	TypeEcho  = "echo"
	TypeSleep = "sleep"
	TypeCPU   = "cpu"
	TypeFail  = "fail"

	maxSleepMS    = 10000
	maxIterations = 10_000_000
	maxFailTimes  = 10
	maxEchoBytes  = 60 << 10 // under the API's 64 KiB body limit with the envelope
)

// Defaults of optional fields (scenarios/README.md lists them too).
const (
	DefaultMaxInFlight      = 10000
	DefaultTimeout          = 30 * time.Second
	DefaultSetupConcurrency = 8
	DefaultDrainTimeout     = 120 * time.Second
	DefaultStepDrain        = 30 * time.Second
	DefaultEchoBytes        = 16
)

// Scenario is one validated scenario file.
type Scenario struct {
	// File is the path the scenario was read from.
	File string `yaml:"-"`
	// Name names the scenario in reports and result directories.
	Name string `yaml:"name"`
	// Description says in a sentence what the scenario measures.
	Description string `yaml:"description"`
	// Target is what the attack sends: requests (default) or login.
	Target string `yaml:"target"`
	// Users are the groups of bench users; each group sends its share of the load.
	Users []Group `yaml:"users"`
	// Mix is the request mix of every group that has none of its own.
	Mix []Mix `yaml:"mix"`
	// Load is the shape of the attack.
	Load Load `yaml:"load"`
	// Workers is how many worker processes local mode starts (default 1).
	Workers int `yaml:"workers"`
	// SetupConcurrency bounds the parallel registrations and logins before
	// the attack (default 8; bcrypt runs on the server's cores anyway).
	SetupConcurrency int `yaml:"setup_concurrency"`
	// DrainTimeout bounds the wait for the backlog after the attack (default 120s).
	DrainTimeout time.Duration `yaml:"drain_timeout"`
	// BaselineWithout names a group: the scenario first runs without that
	// group, then with it, and reports the other groups' figures side by side.
	BaselineWithout string `yaml:"baseline_without"`
	// SuccessCodes are the status codes that count as success (default 202
	// for requests, 200 for login).
	SuccessCodes []int `yaml:"success_codes"`
	// Faults are injected into the bench-started processes during the main
	// attack (local mode only): workers killed or stopped, the service,
	// RabbitMQ or PostgreSQL restarted.
	Faults []Fault `yaml:"faults"`
	// Env is extra environment for the processes local mode starts.
	Env Env `yaml:"env"`
	// Thresholds decide the exit status.
	Thresholds Thresholds `yaml:"thresholds"`
}

// Group is a set of users that behave alike.
type Group struct {
	// Name names the group in the report (required, unique).
	Name string `yaml:"group"`
	// Count is the number of users in the group (at least 1).
	Count int `yaml:"count"`
	// Share is the group's weight in the load (default 1): a group with
	// share 3 sends three times the requests of a group with share 1.
	Share float64 `yaml:"share"`
	// Mode is open (default) or sequential.
	Mode string `yaml:"mode"`
	// Burst (open mode) is how many consecutive requests of the group go
	// to one user before the next user's turn (default 1). Users take
	// turns evenly, so with a burst of 1 a user's requests are spaced
	// count/rate apart and rarely overlap; a burst sends them back to back.
	Burst int `yaml:"burst"`
	// Target overrides the scenario's target for this group: a login
	// group beside request groups storms the bcrypt path while the others
	// send requests (scenario target requests only).
	Target string `yaml:"target"`
	// Mix overrides the scenario's mix for this group.
	Mix []Mix `yaml:"mix"`
}

// Mix is one request type of a mix, with its weight and payload parameters.
type Mix struct {
	Type       string `yaml:"type"`
	Weight     int    `yaml:"weight"`
	Bytes      *int   `yaml:"bytes"`      // echo: payload string length
	MS         *int   `yaml:"ms"`         // sleep: milliseconds
	Iterations *int   `yaml:"iterations"` // cpu: hash iterations
	Times      *int   `yaml:"times"`      // fail: failed attempts before success
}

// Load is the attack's shape. Which fields apply depends on Shape.
type Load struct {
	Shape         string        `yaml:"shape"`
	Rate          float64       `yaml:"rate"`           // constant; spike: base rate
	Duration      time.Duration `yaml:"duration"`       // constant, linear, spike
	From          float64       `yaml:"from"`           // linear, steps
	To            float64       `yaml:"to"`             // linear, steps
	Step          float64       `yaml:"step"`           // steps
	StepDuration  time.Duration `yaml:"step_duration"`  // steps
	StepDrain     time.Duration `yaml:"step_drain"`     // steps
	Peak          float64       `yaml:"peak"`           // spike
	SpikeAt       time.Duration `yaml:"spike_at"`       // spike
	SpikeDuration time.Duration `yaml:"spike_duration"` // spike
	MaxInFlight   int           `yaml:"max_in_flight"`
	Timeout       time.Duration `yaml:"timeout"`
}

// Thresholds are the pass marks of a run. A nil field is not checked;
// MaxViolations and MaxLost default to 0 for the requests target.
type Thresholds struct {
	HTTPP99              *time.Duration `yaml:"http_p99"`
	E2EP99               *time.Duration `yaml:"e2e_p99"`
	SuccessRatio         *float64       `yaml:"success_ratio"`
	Throughput           *float64       `yaml:"throughput"`
	ProcessedThroughput  *float64       `yaml:"processed_throughput"`
	MaxViolations        *int           `yaml:"max_violations"`
	MaxLost              *int           `yaml:"max_lost"`
	MaxNeighbourSlowdown *float64       `yaml:"max_neighbour_slowdown"`
	MinCapacity          *float64       `yaml:"min_capacity"`
	// MaxRecovery bounds each fault's recovery: the time from the fault's
	// end until the backlog was back to normal.
	MaxRecovery *time.Duration `yaml:"max_recovery"`
	// MaxRSSMB bounds the peak resident memory of each bench-started
	// process, in MiB (local mode).
	MaxRSSMB *float64 `yaml:"max_rss_mb"`
	// HealthzP99 bounds the p99 of GET /healthz during the attack.
	HealthzP99 *time.Duration `yaml:"healthz_p99"`
}

// Read reads and validates the scenario file at path.
func Read(path string) (*Scenario, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open scenario: %w", err)
	}
	defer f.Close()
	return Parse(path, f)
}

// Parse reads and validates a scenario; file names it in errors.
func Parse(file string, r io.Reader) (*Scenario, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &FieldError{File: file, Problem: "the file is empty"}
		}
		return nil, &FieldError{File: file, Problem: fmt.Sprintf("not valid YAML: %v", err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, &FieldError{File: file, Problem: "holds more than one YAML document"}
	}
	s := &Scenario{File: file}
	d := &decoder{file: file, lines: map[string]int{}}
	if err := d.decode("", &root, reflect.ValueOf(s).Elem()); err != nil {
		return nil, err
	}
	s.setDefaults()
	if err := s.validate(); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) && fe.Line == 0 {
			fe.Line = lineOf(d.lines, fe.Field)
		}
		return nil, err
	}
	return s, nil
}

// lineOf finds the line of a field, or of its nearest parent that has one.
func lineOf(lines map[string]int, field string) int {
	for field != "" {
		if l, ok := lines[field]; ok {
			return l
		}
		i := strings.LastIndexAny(field, ".[")
		if i < 0 {
			return 0
		}
		field = field[:i]
	}
	return 0
}

func (s *Scenario) setDefaults() {
	if s.Target == "" {
		s.Target = TargetRequests
	}
	if s.Workers == 0 {
		s.Workers = 1
	}
	if s.SetupConcurrency == 0 {
		s.SetupConcurrency = DefaultSetupConcurrency
	}
	if s.DrainTimeout == 0 {
		s.DrainTimeout = DefaultDrainTimeout
	}
	if len(s.SuccessCodes) == 0 {
		s.SuccessCodes = []int{202}
		if s.Target == TargetLogin {
			s.SuccessCodes = []int{200}
		}
	}
	if len(s.Mix) == 0 && s.Target == TargetRequests {
		s.Mix = []Mix{{Type: TypeEcho}}
	}
	for i := range s.Faults {
		f := &s.Faults[i]
		if f.Action == ActionKillWorker && f.Worker == nil {
			zero := 0
			f.Worker = &zero
		}
	}
	for i := range s.Users {
		g := &s.Users[i]
		if g.Share == 0 {
			g.Share = 1
		}
		if g.Mode == "" {
			g.Mode = ModeOpen
		}
		if g.Burst == 0 {
			g.Burst = 1
		}
		if g.Target == "" {
			g.Target = s.Target
		}
		if len(g.Mix) == 0 && g.Target == TargetRequests {
			g.Mix = s.Mix
		}
	}
	setMixDefaults(s.Mix)
	for i := range s.Users {
		setMixDefaults(s.Users[i].Mix)
	}
	l := &s.Load
	if l.MaxInFlight == 0 {
		l.MaxInFlight = DefaultMaxInFlight
	}
	if l.Timeout == 0 {
		l.Timeout = DefaultTimeout
	}
	if l.Shape == ShapeSteps && l.StepDrain == 0 {
		l.StepDrain = DefaultStepDrain
	}
	if s.Target == TargetRequests {
		zero := 0
		if s.Thresholds.MaxViolations == nil {
			s.Thresholds.MaxViolations = &zero
		}
		if s.Thresholds.MaxLost == nil {
			s.Thresholds.MaxLost = &zero
		}
	}
}

func setMixDefaults(mix []Mix) {
	for i := range mix {
		m := &mix[i]
		if m.Weight == 0 {
			m.Weight = 1
		}
		if m.Type == TypeEcho && m.Bytes == nil {
			n := DefaultEchoBytes
			m.Bytes = &n
		}
	}
}

// Stem is the scenario file's base name without extension.
func (s *Scenario) Stem() string {
	return strings.TrimSuffix(filepath.Base(s.File), filepath.Ext(s.File))
}

// IsSuccess reports whether code counts as success.
func (s *Scenario) IsSuccess(code int) bool { return slices.Contains(s.SuccessCodes, code) }

// TotalUsers is the number of users over all groups.
func (s *Scenario) TotalUsers() int {
	n := 0
	for _, g := range s.Users {
		n += g.Count
	}
	return n
}

// requestGroups returns the names of the groups that send requests.
func (s *Scenario) requestGroups() []string {
	var out []string
	for _, g := range s.Users {
		if g.Target == TargetRequests {
			out = append(out, g.Name)
		}
	}
	return out
}

// MixedTargets reports whether some groups log in while others send
// requests.
func (s *Scenario) MixedTargets() bool {
	for _, g := range s.Users {
		if g.Target != s.Target {
			return true
		}
	}
	return false
}

// Payload returns the JSON body of POST /requests for a mix entry.
func (m Mix) Payload() []byte {
	var payload string
	switch m.Type {
	case TypeEcho:
		payload = `"` + strings.Repeat("x", *m.Bytes) + `"`
	case TypeSleep:
		payload = fmt.Sprintf(`{"ms":%d}`, *m.MS)
	case TypeCPU:
		payload = fmt.Sprintf(`{"iterations":%d}`, *m.Iterations)
	case TypeFail:
		payload = fmt.Sprintf(`{"times":%d}`, *m.Times)
	}
	return []byte(`{"type":"` + m.Type + `","payload":` + payload + `}`)
}

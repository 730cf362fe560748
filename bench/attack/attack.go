// Package attack runs one vegeta attack against docket: a targeter that
// signs each request with its user's token, an open-model Schedule, and a
// record per request (user, send and answer times, status, id and seq)
// for the verifier. It also measures whether the attacker kept its rate, so
// that an attacker bottleneck is never mistaken for a server limit.
//
// Every target's URL carries the request's number in its fragment
// (/requests#17). A fragment never leaves the client (RFC 3986 §3.5), and
// vegeta copies the URL into the Result, so each Result finds its request's
// user and send time again without depending on anything the server sends.
package attack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/docket/docket/bench/api"
)

// Targets.
const (
	TargetRequests = "requests"
	TargetLogin    = "login"
)

// Modes of a group's users.
const (
	ModeOpen       = "open"
	ModeSequential = "sequential"
)

// Body is one weighted request body of a mix.
type Body struct {
	Type   string
	Weight int
	JSON   []byte
}

// Group is a set of users that share a mode, a mix and a share of the load.
type Group struct {
	Name string
	// Target overrides Config.Target for this group (empty: the attack's).
	Target string
	Mode   string
	Share  float64
	// Burst (open mode) is how many consecutive picks go to one user
	// before the next user's turn; 0 or 1 is plain round-robin.
	Burst int
	Users []*api.User
	Mix   []Body // ignored for the login target
}

// Config is one attack.
type Config struct {
	// Base is the API's base URL.
	Base string
	// Target is TargetRequests or TargetLogin.
	Target string
	// Label names the attack in records and vegeta results (main, step-3, baseline).
	Label string
	// RunID prefixes the X-Request-Id of every request.
	RunID string
	// Groups are the users and what they send.
	Groups []Group
	// Schedule paces the attack.
	Schedule Schedule
	// MaxInFlight caps the requests in flight (vegeta's workers).
	MaxInFlight int
	// Timeout bounds each request.
	Timeout time.Duration
	// OnResult, if set, sees every vegeta result (with Timestamp and
	// Latency measured from the real send) on the collecting goroutine.
	OnResult func(*vegeta.Result)
	// OnRecord, if set, sees every record on the collecting goroutine.
	OnRecord func(*Record)
}

func (c *Config) validate() error {
	switch {
	case c.Base == "":
		return errors.New("attack: Base is required")
	case c.Target != TargetRequests && c.Target != TargetLogin:
		return fmt.Errorf("attack: unknown target %q", c.Target)
	case len(c.Groups) == 0:
		return errors.New("attack: no groups")
	case c.Schedule.Duration() <= 0:
		return errors.New("attack: the schedule is empty")
	case c.MaxInFlight < 1:
		return fmt.Errorf("attack: MaxInFlight=%d, want at least 1", c.MaxInFlight)
	}
	for _, g := range c.Groups {
		if len(g.Users) == 0 {
			return fmt.Errorf("attack: group %q has no users", g.Name)
		}
		if g.Target != "" && g.Target != TargetRequests && g.Target != TargetLogin {
			return fmt.Errorf("attack: group %q has unknown target %q", g.Name, g.Target)
		}
		if c.targetOf(g) == TargetRequests && len(g.Mix) == 0 {
			return fmt.Errorf("attack: group %q has no mix", g.Name)
		}
	}
	return nil
}

// targetOf is what group g sends.
func (c *Config) targetOf(g Group) string {
	if g.Target != "" {
		return g.Target
	}
	return c.Target
}

// Record is what the bench knows of one request it sent.
type Record struct {
	Attack   string    `json:"attack"`
	N        uint64    `json:"n"`
	User     string    `json:"user"`
	Group    string    `json:"group"`
	Type     string    `json:"type,omitempty"`
	Sent     time.Time `json:"sent"`
	Received time.Time `json:"received"`
	Code     int       `json:"code"`
	Error    string    `json:"error,omitempty"`
	ID       string    `json:"id,omitempty"`
	Seq      int64     `json:"seq,omitempty"`
}

// Latency is the time from send to the end of the answer.
func (r *Record) Latency() time.Duration { return r.Received.Sub(r.Sent) }

// Why an attack did not keep its rate.
const (
	LimitedByInFlight   = "in_flight_ceiling" // the server answered too slowly for the ceiling
	LimitedBySequential = "sequential_users"  // every sequential user had a request in flight
	LimitedByAttacker   = "attacker"          // the bench itself could not send faster
)

// Stats says how the attacker did against its schedule.
type Stats struct {
	Label        string        `json:"label"`
	Schedule     string        `json:"schedule"`
	Duration     time.Duration `json:"-"`
	Expected     float64       `json:"expected"`
	Sent         int           `json:"sent"`
	SentOnTime   int           `json:"sent_on_time"`
	TargetRate   float64       `json:"target_rate"`
	AchievedRate float64       `json:"achieved_rate"`
	KeptRate     bool          `json:"kept_rate"`
	PeakInFlight int           `json:"peak_in_flight"`
	MaxInFlight  int           `json:"max_in_flight"`
	UserWaits    int64         `json:"user_waits"`
	LimitedBy    string        `json:"limited_by,omitempty"`
	// CPUCores is the CPU the whole bench process used during the attack,
	// in cores (CPU seconds per second): near the machine's core count, the
	// attacker itself is the bottleneck.
	CPUCores float64 `json:"bench_cpu_cores"`
	// Wall is how long the attack took, to its last answer.
	Wall time.Duration `json:"-"`
}

// KeptRateRatio is how much of the target rate an attack must send to
// count as having kept it.
const KeptRateRatio = 0.95

// Snapshot is an attack's live state, for progress lines and metrics.
type Snapshot struct {
	Elapsed    time.Duration
	Duration   time.Duration
	TargetRate float64
	Sent       int64
	Answered   int64
	Success    int64 // 2xx
	InFlight   int64
}

// Attack is one run of a Config. It is single-use, like vegeta's Attacker.
type Attack struct {
	cfg     Config
	groupOf []int           // a weighted round of group indexes
	mixOf   [][]int         // per group, a weighted round of mix indexes
	idle    []chan int      // per sequential group, its idle users
	next    []atomic.Uint64 // per group: round-robin over its users
	nextMix []atomic.Uint64 // per group: position in its mix round
	picks   atomic.Uint64
	n       atomic.Uint64
	stop    chan struct{}
	stopped sync.Once

	// What the targeter needs per hit, built once: per group its target
	// and its URL up to the request's number, per login group each user's
	// body, and the X-Request-Id up to the number.
	targets    []string
	urlPrefix  []string
	loginBody  [][][]byte
	idPrefix   string
	hitHeaders sync.Pool // of *hitHeader

	mu      sync.Mutex
	pending map[uint64]pending

	began     atomic.Int64 // unix nanos; 0 before Run
	sent      atomic.Int64
	answered  atomic.Int64
	success   atomic.Int64
	inFlight  atomic.Int64
	peak      atomic.Int64
	userWaits atomic.Int64
}

type pending struct {
	group, user int
	typ         string
	sent        time.Time
	header      *hitHeader
}

// hitHeader is the header map of one hit's target. vegeta copies a
// target's headers into the *http.Request it sends (Target.Request) before
// it sends it and never looks at the target again, so the map is free once
// the hit's result arrives: collect gives it back for another hit, and a
// hit allocates no header map, only its URL and X-Request-Id.
type hitHeader struct {
	h                        http.Header
	requestID, authorization []string // the values in h, set per hit
}

func newHitHeader() any {
	hh := &hitHeader{requestID: make([]string, 1), authorization: make([]string, 1)}
	hh.h = http.Header{"Content-Type": {"application/json"}, "X-Request-Id": hh.requestID}
	return hh
}

// New prepares an attack.
func New(cfg Config) (*Attack, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.Base = strings.TrimRight(cfg.Base, "/")
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	a := &Attack{
		cfg:     cfg,
		stop:    make(chan struct{}),
		pending: map[uint64]pending{},
		next:    make([]atomic.Uint64, len(cfg.Groups)),
		nextMix: make([]atomic.Uint64, len(cfg.Groups)),
		idle:    make([]chan int, len(cfg.Groups)),
		mixOf:   make([][]int, len(cfg.Groups)),

		targets:    make([]string, len(cfg.Groups)),
		urlPrefix:  make([]string, len(cfg.Groups)),
		loginBody:  make([][][]byte, len(cfg.Groups)),
		idPrefix:   cfg.RunID + "-",
		hitHeaders: sync.Pool{New: newHitHeader},
	}
	shares := make([]float64, len(cfg.Groups))
	for i, g := range cfg.Groups {
		shares[i] = g.Share
		a.targets[i] = cfg.targetOf(g)
		switch a.targets[i] {
		case TargetRequests:
			a.urlPrefix[i] = cfg.Base + "/requests#"
		case TargetLogin:
			a.urlPrefix[i] = cfg.Base + "/auth/login#"
			a.loginBody[i] = make([][]byte, len(g.Users))
			for u, user := range g.Users {
				a.loginBody[i][u], _ = json.Marshal(map[string]string{"username": user.Name, "password": user.Password})
			}
		}
		if g.Mode == ModeSequential {
			a.idle[i] = make(chan int, len(g.Users))
			for u := range g.Users {
				a.idle[i] <- u
			}
		}
		weights := make([]float64, len(g.Mix))
		for j, b := range g.Mix {
			weights[j] = float64(b.Weight)
		}
		a.mixOf[i] = weightedRound(weights, 1000)
	}
	a.groupOf = weightedRound(shares, 1000)
	return a, nil
}

// weightedRound spreads n picks over the weights by smooth weighted
// round-robin, so that a round interleaves the choices evenly.
func weightedRound(weights []float64, n int) []int {
	if len(weights) == 0 {
		return nil
	}
	var total float64
	for _, w := range weights {
		total += w
	}
	cur := make([]float64, len(weights))
	out := make([]int, n)
	for i := range out {
		best := 0
		for j, w := range weights {
			cur[j] += w
			if cur[j] > cur[best] {
				best = j
			}
		}
		cur[best] -= total
		out[i] = best
	}
	return out
}

var errStopped = errors.New("attack stopped")

// targeter is the vegeta.Targeter: it picks a group, a user and a body,
// and signs the request with the user's token. vegeta calls it from many
// workers at once.
func (a *Attack) targeter(t *vegeta.Target) error {
	gi := a.groupOf[a.picks.Add(1)%uint64(len(a.groupOf))]
	g := &a.cfg.Groups[gi]
	var ui int
	if g.Mode == ModeSequential {
		select {
		case ui = <-a.idle[gi]:
		default:
			a.userWaits.Add(1)
			select {
			case ui = <-a.idle[gi]:
			case <-a.stop:
				return errStopped
			}
		}
	} else {
		ui = int(a.next[gi].Add(1) / uint64(max(g.Burst, 1)) % uint64(len(g.Users)))
	}
	n := a.n.Add(1)
	hh := a.hitHeaders.Get().(*hitHeader)
	hh.requestID[0] = withNumber(a.idPrefix, n)
	p := pending{group: gi, user: ui, header: hh}

	t.Method = http.MethodPost
	t.URL = withNumber(a.urlPrefix[gi], n)
	t.Header = hh.h
	switch a.targets[gi] {
	case TargetRequests:
		round := a.mixOf[gi]
		b := &g.Mix[round[a.nextMix[gi].Add(1)%uint64(len(round))]]
		p.typ = b.Type
		t.Body = b.JSON
		hh.authorization[0] = g.Users[ui].Authorization()
		hh.h["Authorization"] = hh.authorization
	case TargetLogin:
		p.typ = "login"
		t.Body = a.loginBody[gi][ui]
		delete(hh.h, "Authorization")
	}
	// The send time is taken last: vegeta sends right after we return, and
	// a time taken earlier would stretch the latency by the wait for an
	// idle user. Taken before the send, it can only make the happens-before
	// check more cautious, never wrong.
	p.sent = time.Now()
	a.mu.Lock()
	a.pending[n] = p
	a.mu.Unlock()
	a.sent.Add(1)
	if f := a.inFlight.Add(1); f > a.peak.Load() {
		for {
			old := a.peak.Load()
			if f <= old || a.peak.CompareAndSwap(old, f) {
				break
			}
		}
	}
	return nil
}

// withNumber is prefix followed by n in decimal, in one allocation.
func withNumber(prefix string, n uint64) string {
	var buf [128]byte
	return string(strconv.AppendUint(append(buf[:0], prefix...), n, 10))
}

// Stop ends the attack early; Run returns what was sent so far.
func (a *Attack) Stop() { a.stopped.Do(func() { close(a.stop) }) }

// Run runs the attack to the end of its schedule (or until ctx ends or
// Stop is called) and returns its stats and records in answer order.
func (a *Attack) Run(ctx context.Context) (Stats, []*Record, error) {
	atk := vegeta.NewAttacker(
		vegeta.Workers(uint64(min(a.cfg.MaxInFlight, 64))),
		vegeta.MaxWorkers(uint64(a.cfg.MaxInFlight)),
		vegeta.Connections(a.cfg.MaxInFlight),
		vegeta.Timeout(a.cfg.Timeout),
		vegeta.MaxBody(64<<10),
		vegeta.KeepAlive(true),
		vegeta.HTTP2(false),
		vegeta.Redirects(vegeta.NoFollow),
	)
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
		case <-a.stop:
		case <-done:
			return
		}
		a.Stop()
		atk.Stop()
	}()

	began := time.Now()
	cpu := processCPU()
	a.began.Store(began.UnixNano())
	results := atk.Attack(a.targeter, a.cfg.Schedule, a.cfg.Schedule.Duration(), a.cfg.Label)
	var records []*Record
	end := began.Add(a.cfg.Schedule.Duration())
	onTime := 0
	for res := range results {
		rec := a.collect(res)
		if rec == nil {
			continue
		}
		if !rec.Sent.After(end) {
			onTime++
		}
		records = append(records, rec)
		if a.cfg.OnRecord != nil {
			a.cfg.OnRecord(rec)
		}
		if a.cfg.OnResult != nil {
			a.cfg.OnResult(res)
		}
	}
	st := a.stats(len(records), onTime)
	st.Wall = time.Since(began)
	st.CPUCores = (processCPU() - cpu).Seconds() / st.Wall.Seconds()
	if err := ctx.Err(); err != nil {
		return st, records, fmt.Errorf("attack %s: %w", a.cfg.Label, err)
	}
	return st, records, nil
}

// collect turns a vegeta result into a record, releases a sequential user,
// and moves the result's times onto the real send time.
func (a *Attack) collect(res *vegeta.Result) *Record {
	_, frag, ok := strings.Cut(res.URL, "#")
	if !ok {
		return nil // the targeter gave up (attack stopped): nothing was sent
	}
	n, err := strconv.ParseUint(frag, 10, 64)
	if err != nil {
		return nil
	}
	a.mu.Lock()
	p, ok := a.pending[n]
	delete(a.pending, n)
	a.mu.Unlock()
	if !ok {
		return nil
	}
	g := &a.cfg.Groups[p.group]
	end := res.End()
	rec := &Record{
		Attack:   a.cfg.Label,
		N:        n,
		User:     g.Users[p.user].Name,
		Group:    g.Name,
		Type:     p.typ,
		Sent:     p.sent,
		Received: end,
		Code:     int(res.Code),
	}
	if rec.Code == 0 {
		rec.Error = res.Error
	}
	if rec.Code == http.StatusAccepted && a.targets[p.group] == TargetRequests {
		id, seq, err := parseAccepted(res.Body)
		if err != nil || id == "" {
			rec.Error = fmt.Sprintf("202 body without id: %.100s", res.Body)
		}
		rec.ID, rec.Seq = id, seq
	}
	// vegeta is done with the hit's target (its result is here): the
	// header map can serve another hit.
	a.hitHeaders.Put(p.header)
	a.inFlight.Add(-1)
	if g.Mode == ModeSequential {
		a.idle[p.group] <- p.user
	}
	a.answered.Add(1)
	if rec.Code >= 200 && rec.Code < 300 {
		a.success.Add(1)
	}
	res.Timestamp = p.sent
	res.Latency = end.Sub(p.sent)
	// The raw results are kept for the whole run: drop what the record
	// already holds or nobody reads (BytesIn keeps the body's size).
	res.Headers, res.Body = nil, nil
	return rec
}

// stats judges the pacing by the requests sent within the schedule's
// time: a sequential user's request that waited past the end for its
// user was sent late, so it does not count towards the rate.
func (a *Attack) stats(sent, onTime int) Stats {
	s := a.cfg.Schedule
	st := Stats{
		Label:      a.cfg.Label,
		Schedule:   s.String(),
		Duration:   s.Duration(),
		Expected:   s.Expected(),
		Sent:       sent,
		SentOnTime: onTime,
		TargetRate: s.MeanRate(),
		// The count runs from the targeter to the collector, a hand-off
		// longer than vegeta's worker holds a request: it can pass the
		// ceiling by one, which vegeta's worker cap rules out.
		PeakInFlight: min(int(a.peak.Load()), a.cfg.MaxInFlight),
		MaxInFlight:  a.cfg.MaxInFlight,
		UserWaits:    a.userWaits.Load(),
	}
	st.AchievedRate = float64(onTime) / st.Duration.Seconds()
	// One hit of slack: a short attack's count is rounded.
	st.KeptRate = float64(onTime)+1 >= KeptRateRatio*st.Expected
	if !st.KeptRate {
		switch {
		case st.PeakInFlight >= st.MaxInFlight:
			st.LimitedBy = LimitedByInFlight
		case st.UserWaits > 0:
			st.LimitedBy = LimitedBySequential
		default:
			st.LimitedBy = LimitedByAttacker
		}
	}
	return st
}

// Snapshot returns the attack's live state; safe at any time.
func (a *Attack) Snapshot() Snapshot {
	s := Snapshot{
		Duration: a.cfg.Schedule.Duration(),
		Sent:     a.sent.Load(),
		Answered: a.answered.Load(),
		Success:  a.success.Load(),
		InFlight: a.inFlight.Load(),
	}
	if b := a.began.Load(); b != 0 {
		s.Elapsed = time.Since(time.Unix(0, b))
		s.TargetRate = a.cfg.Schedule.Rate(s.Elapsed)
	}
	return s
}

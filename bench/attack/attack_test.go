package attack_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docket/docket/bench/api"
	"github.com/docket/docket/bench/attack"
	"github.com/docket/docket/bench/internal/fakedocket"
)

// The attack tests measure pacing, so they run one at a time: on a shared
// two-core machine under -race, parallel attacks starve each other.

func startFake(t *testing.T, f fakedocket.Faults) *fakedocket.Server {
	t.Helper()
	s := fakedocket.Start(f)
	t.Cleanup(s.Close)
	return s
}

// users registers and logs in n users on the fake.
func users(t *testing.T, base string, group string, n int) []*api.User {
	t.Helper()
	c := api.New(base)
	var out []*api.User
	for i := range n {
		u := &api.User{Name: fmt.Sprintf("%s-%d-%d", group, i, time.Now().UnixNano()), Password: "password-123", Group: group}
		if err := c.Register(context.Background(), u); err != nil {
			t.Fatal(err)
		}
		if err := c.Login(context.Background(), u); err != nil {
			t.Fatal(err)
		}
		out = append(out, u)
	}
	return out
}

var echo = []attack.Body{{Type: "echo", Weight: 1, JSON: []byte(`{"type":"echo","payload":"x"}`)}}

func run(t *testing.T, cfg attack.Config) (attack.Stats, []*attack.Record) {
	t.Helper()
	if cfg.Target == "" {
		cfg.Target = attack.TargetRequests
	}
	if cfg.MaxInFlight == 0 {
		cfg.MaxInFlight = 1000
	}
	cfg.Label, cfg.RunID = "test", "run1"
	a, err := attack.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	st, recs, err := a.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st, recs
}

// Every request carries its own user's token: what the server counts per
// token owner is what the bench recorded per user, and each user's seqs
// run 1..n.
func TestAttackSignsEachRequestWithItsUsersToken(t *testing.T) {
	srv := startFake(t, fakedocket.Faults{})
	us := users(t, srv.URL, "g", 4)
	st, recs := run(t, attack.Config{
		Base:     srv.URL,
		Groups:   []attack.Group{{Name: "g", Mode: attack.ModeOpen, Share: 1, Users: us, Mix: echo}},
		Schedule: attack.Constant(200, time.Second),
	})
	if st.Sent != len(recs) || len(recs) < 100 {
		t.Fatalf("sent %d, %d records; want about 200", st.Sent, len(recs))
	}
	perUser := map[string][]int64{}
	for _, r := range recs {
		if r.Code != 202 || r.ID == "" || r.Seq < 1 {
			t.Fatalf("record %+v: want a 202 with id and seq", r)
		}
		if r.Received.Before(r.Sent) {
			t.Fatalf("record %+v: answered before sent", r)
		}
		perUser[r.User] = append(perUser[r.User], r.Seq)
	}
	for _, u := range us {
		n, _ := srv.Posts.Load(u.Name)
		if n == nil || int(n.(*atomic.Int64).Load()) != len(perUser[u.Name]) {
			t.Errorf("user %s: server saw %v requests with its token, bench recorded %d", u.Name, n, len(perUser[u.Name]))
		}
		seqs := perUser[u.Name]
		slices.Sort(seqs)
		for i, s := range seqs {
			if s != int64(i+1) {
				t.Fatalf("user %s: seqs %v, want 1..%d", u.Name, seqs, len(seqs))
			}
		}
	}
}

// The attack sends at the schedule's times, spread evenly, and says so.
func TestAttackKeepsItsPace(t *testing.T) {
	srv := startFake(t, fakedocket.Faults{})
	us := users(t, srv.URL, "g", 2)
	st, recs := run(t, attack.Config{
		Base:     srv.URL,
		Groups:   []attack.Group{{Name: "g", Mode: attack.ModeOpen, Share: 1, Users: us, Mix: echo}},
		Schedule: attack.Constant(50, 2*time.Second),
	})
	if !st.KeptRate || st.LimitedBy != "" {
		t.Errorf("stats %+v: want the rate kept", st)
	}
	if st.CPUCores <= 0 || st.CPUCores > 64 {
		t.Errorf("the bench used %v cores", st.CPUCores)
	}
	if st.Sent < 95 || st.Sent > 101 {
		t.Errorf("sent %d, want about 100", st.Sent)
	}
	slices.SortFunc(recs, func(a, b *attack.Record) int { return a.Sent.Compare(b.Sent) })
	start := recs[0].Sent
	firstHalf := 0
	for _, r := range recs {
		if r.Sent.Sub(start) < time.Second {
			firstHalf++
		}
	}
	if firstHalf < 40 || firstHalf > 60 {
		t.Errorf("%d of %d sent in the first second; want about half", firstHalf, len(recs))
	}
}

// A slow server does not slow an open-model attack: more requests go in
// flight instead.
func TestAttackIsOpenModel(t *testing.T) {
	srv := startFake(t, fakedocket.Faults{Delay: 200 * time.Millisecond})
	us := users(t, srv.URL, "g", 3)
	st, recs := run(t, attack.Config{
		Base:     srv.URL,
		Groups:   []attack.Group{{Name: "g", Mode: attack.ModeOpen, Share: 1, Users: us, Mix: echo}},
		Schedule: attack.Constant(50, time.Second),
	})
	if !st.KeptRate || len(recs) < 47 {
		t.Errorf("sent %d (%+v): want about 50 despite the 200ms answers", len(recs), st)
	}
	if st.PeakInFlight < 7 {
		t.Errorf("peak in flight %d; want about 10 (50/s x 200ms)", st.PeakInFlight)
	}
	for _, r := range recs {
		if r.Latency() < 200*time.Millisecond {
			t.Fatalf("latency %s below the server's delay: times are not the real send and answer", r.Latency())
		}
	}
}

// A sequential user sends its next request only after the previous answer,
// and an attack that cannot keep its rate for that reason says why.
func TestSequentialUsersNeverOverlap(t *testing.T) {
	srv := startFake(t, fakedocket.Faults{Delay: 20 * time.Millisecond})
	us := users(t, srv.URL, "g", 2)
	st, recs := run(t, attack.Config{
		Base:     srv.URL,
		Groups:   []attack.Group{{Name: "g", Mode: attack.ModeSequential, Share: 1, Users: us, Mix: echo}},
		Schedule: attack.Constant(200, time.Second),
	})
	byUser := map[string][]*attack.Record{}
	for _, r := range recs {
		byUser[r.User] = append(byUser[r.User], r)
	}
	for u, rs := range byUser {
		slices.SortFunc(rs, func(a, b *attack.Record) int { return a.Sent.Compare(b.Sent) })
		for i := 1; i < len(rs); i++ {
			if rs[i].Sent.Before(rs[i-1].Received) {
				t.Fatalf("user %s: request sent at %s before the previous answer at %s", u, rs[i].Sent, rs[i-1].Received)
			}
			if rs[i].Seq <= rs[i-1].Seq {
				t.Fatalf("user %s: seqs %d then %d", u, rs[i-1].Seq, rs[i].Seq)
			}
		}
	}
	// Two users x 1/20ms = at most about 100/s of the 200/s asked.
	if st.KeptRate || st.LimitedBy != attack.LimitedBySequential {
		t.Errorf("stats %+v: want the rate missed, limited by sequential users", st)
	}
}

func TestInFlightCeiling(t *testing.T) {
	srv := startFake(t, fakedocket.Faults{Delay: 100 * time.Millisecond})
	us := users(t, srv.URL, "g", 2)
	st, _ := run(t, attack.Config{
		Base:        srv.URL,
		Groups:      []attack.Group{{Name: "g", Mode: attack.ModeOpen, Share: 1, Users: us, Mix: echo}},
		Schedule:    attack.Constant(200, time.Second),
		MaxInFlight: 5,
	})
	if st.PeakInFlight > 5 {
		t.Errorf("peak in flight %d over the ceiling of 5", st.PeakInFlight)
	}
	if st.KeptRate || st.LimitedBy != attack.LimitedByInFlight {
		t.Errorf("stats %+v: want the rate missed, limited by the in-flight ceiling", st)
	}
}

// Groups get their share of the load, each with its own mix.
func TestGroupsShareTheLoad(t *testing.T) {
	srv := startFake(t, fakedocket.Faults{})
	light := users(t, srv.URL, "light", 3)
	heavy := users(t, srv.URL, "heavy", 1)
	sleep := []attack.Body{{Type: "sleep", Weight: 1, JSON: []byte(`{"type":"sleep","payload":{"ms":1}}`)}}
	_, recs := run(t, attack.Config{
		Base: srv.URL,
		Groups: []attack.Group{
			{Name: "light", Mode: attack.ModeOpen, Share: 1, Users: light, Mix: echo},
			{Name: "heavy", Mode: attack.ModeOpen, Share: 3, Users: heavy, Mix: sleep},
		},
		Schedule: attack.Constant(200, time.Second),
	})
	n := map[string]int{}
	for _, r := range recs {
		n[r.Group]++
		if (r.Group == "heavy") != (r.Type == "sleep") {
			t.Fatalf("record %+v: group and type disagree", r)
		}
	}
	if ratio := float64(n["heavy"]) / float64(max(n["light"], 1)); ratio < 2.7 || ratio > 3.3 {
		t.Errorf("per group %v; want 3 heavy to 1 light", n)
	}
}

func TestLoginTarget(t *testing.T) {
	srv := startFake(t, fakedocket.Faults{})
	us := users(t, srv.URL, "g", 3)
	_, recs := run(t, attack.Config{
		Base:     srv.URL,
		Target:   attack.TargetLogin,
		Groups:   []attack.Group{{Name: "g", Mode: attack.ModeOpen, Share: 1, Users: us}},
		Schedule: attack.Constant(50, time.Second),
	})
	for _, r := range recs {
		if r.Code != 200 || r.Type != "login" {
			t.Fatalf("record %+v: want a 200 login", r)
		}
	}
}

// Every request carries its own headers and body, also while login and
// request groups share the attack: its user's token (none for a login),
// and an X-Request-Id of the run and the request's number.
func TestEachRequestCarriesItsOwnHeaders(t *testing.T) {
	var wrong atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		time.Sleep(5 * time.Millisecond) // overlap the requests in flight
		if r.Header.Get("Content-Type") != "application/json" {
			wrong.Add(1)
		}
		switch r.URL.Path {
		case "/requests":
			// The answer's id says what the request carried.
			w.WriteHeader(http.StatusAccepted)
			fmt.Fprintf(w, `{"id":%q,"seq":1}`, r.Header.Get("X-Request-Id")+" "+r.Header.Get("Authorization")+" "+string(body))
		case "/auth/login":
			var cred struct{ Username, Password string }
			if r.Header["Authorization"] != nil || json.Unmarshal(body, &cred) != nil || cred.Password != "pw-"+cred.Username {
				wrong.Add(1)
			}
			w.WriteHeader(http.StatusOK)
		}
	}))
	defer srv.Close()
	newUsers := func(group string, n int) []*api.User {
		var us []*api.User
		for i := range n {
			u := &api.User{Name: fmt.Sprintf("%s-%d", group, i), Group: group}
			u.Password = "pw-" + u.Name
			u.SetToken("tok-"+u.Name, time.Now().Add(time.Hour))
			us = append(us, u)
		}
		return us
	}
	_, recs := run(t, attack.Config{
		Base: srv.URL,
		Groups: []attack.Group{
			{Name: "req", Mode: attack.ModeOpen, Share: 1, Users: newUsers("req", 5), Mix: echo},
			{Name: "login", Target: attack.TargetLogin, Mode: attack.ModeOpen, Share: 1, Users: newUsers("login", 5)},
		},
		Schedule: attack.Constant(400, time.Second),
	})
	logins := 0
	for _, r := range recs {
		if r.Group == "login" {
			logins++
			continue
		}
		if want := fmt.Sprintf("run1-%d Bearer tok-%s %s", r.N, r.User, echo[0].JSON); r.Code != 202 || r.ID != want {
			t.Fatalf("record %+v: want the id %q", r, want)
		}
	}
	if len(recs) < 300 || logins < 100 || wrong.Load() != 0 {
		t.Errorf("%d records, %d logins, %d requests with wrong headers or body", len(recs), logins, wrong.Load())
	}
}

func TestStopEndsTheAttackEarly(t *testing.T) {
	srv := startFake(t, fakedocket.Faults{})
	us := users(t, srv.URL, "g", 1)
	a, err := attack.New(attack.Config{
		Base: srv.URL, Target: attack.TargetRequests, Label: "t", MaxInFlight: 10,
		Groups:   []attack.Group{{Name: "g", Mode: attack.ModeSequential, Share: 1, Users: us, Mix: echo}},
		Schedule: attack.Constant(100, time.Minute),
	})
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(300*time.Millisecond, a.Stop)
	start := time.Now()
	_, recs, err := a.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 5*time.Second || len(recs) == 0 {
		t.Errorf("stopped after %s with %d records", time.Since(start), len(recs))
	}
}

// Each group gets its mix's proportions, whatever the other groups do.
func TestMixProportionsPerGroup(t *testing.T) {
	srv := startFake(t, fakedocket.Faults{})
	a1, a2 := users(t, srv.URL, "a", 1), users(t, srv.URL, "b", 1)
	mix := []attack.Body{
		{Type: "echo", Weight: 3, JSON: []byte(`{"type":"echo","payload":1}`)},
		{Type: "fail", Weight: 1, JSON: []byte(`{"type":"fail","payload":{"times":0}}`)},
	}
	_, recs := run(t, attack.Config{
		Base: srv.URL,
		Groups: []attack.Group{
			{Name: "a", Mode: attack.ModeOpen, Share: 1, Users: a1, Mix: mix},
			{Name: "b", Mode: attack.ModeOpen, Share: 1, Users: a2, Mix: mix},
		},
		Schedule: attack.Constant(200, time.Second),
	})
	n := map[string]int{}
	for _, r := range recs {
		n[r.Group+"/"+r.Type]++
	}
	for _, g := range []string{"a", "b"} {
		echo, fail := n[g+"/echo"], n[g+"/fail"]
		if fail == 0 || echo < 2*fail || echo > 4*fail {
			t.Errorf("group %s: %d echo, %d fail; want 3 to 1", g, echo, fail)
		}
	}
}

// A burst sends one user's requests back to back, so they overlap in flight.
func TestBurstOverlapsAUsersRequests(t *testing.T) {
	srv := startFake(t, fakedocket.Faults{Delay: 30 * time.Millisecond})
	us := users(t, srv.URL, "g", 4)
	overlapping := func(burst int) int {
		_, recs := run(t, attack.Config{
			Base:     srv.URL,
			Groups:   []attack.Group{{Name: "g", Mode: attack.ModeOpen, Share: 1, Burst: burst, Users: us, Mix: echo}},
			Schedule: attack.Constant(50, time.Second),
		})
		byUser := map[string][]*attack.Record{}
		for _, r := range recs {
			byUser[r.User] = append(byUser[r.User], r)
		}
		n := 0
		for _, rs := range byUser {
			slices.SortFunc(rs, func(a, b *attack.Record) int { return a.Sent.Compare(b.Sent) })
			for i := 1; i < len(rs); i++ {
				if rs[i].Sent.Before(rs[i-1].Received) {
					n++
				}
			}
		}
		return n
	}
	// Round-robin over 4 users at 50/s: a user's requests are 80ms apart,
	// longer than the 30ms answers. Bursts of 5: 20ms apart.
	rr, burst := overlapping(1), overlapping(5)
	if burst < 20 || rr > burst/3 {
		t.Errorf("%d overlapping requests in bursts of 5, %d round-robin; want most and few", burst, rr)
	}
}

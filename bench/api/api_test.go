package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docket/docket/bench/api"
)

func TestLoginRetriesAfterOverload(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"error":{"code":"overloaded","message":"busy"}}`)
			return
		}
		fmt.Fprint(w, `{"access_token":"tok","token_type":"Bearer","expires_in":60}`)
	}))
	defer srv.Close()
	u := &api.User{Name: "bench-x-1", Password: "password-1"}
	if err := api.New(srv.URL).Login(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	if u.Token() != "tok" || calls.Load() != 3 {
		t.Errorf("token %q after %d calls", u.Token(), calls.Load())
	}
	if until := time.Until(u.Expires()); until < 50*time.Second || until > time.Minute {
		t.Errorf("expires in %s, want about 60s", until)
	}
}

func TestRetriesAreBounded(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	c := api.New(srv.URL)
	c.MaxRetryWait = 500 * time.Millisecond
	err := c.Register(context.Background(), &api.User{Name: "bench-x-1", Password: "password-1"})
	if err == nil || !strings.Contains(err.Error(), "still 503") || !api.IsStatus(err, 503) {
		t.Fatalf("err = %v", err)
	}
}

func TestErrorsCarryTheCode(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusConflict)
		fmt.Fprint(w, `{"error":{"code":"username_taken","message":"taken"}}`)
	}))
	defer srv.Close()
	err := api.New(srv.URL).Register(context.Background(), &api.User{Name: "bench-x-1", Password: "password-1"})
	if !api.IsStatus(err, 409) || !strings.Contains(err.Error(), "username_taken") {
		t.Fatalf("err = %v", err)
	}
}

// listing serves n rows, limit at a time, as API.md pages them.
func listing(t *testing.T, n int, stuck bool) (*httptest.Server, *[]string) {
	var asked []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(401)
			return
		}
		asked = append(asked, r.URL.RawQuery)
		after, _ := strconv.Atoi(r.URL.Query().Get("after_seq"))
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		var rows []map[string]any
		for s := after + 1; s <= n && len(rows) < limit; s++ {
			rows = append(rows, map[string]any{"id": fmt.Sprint("id-", s), "seq": s, "status": "done",
				"accepted_at": "2026-11-29T07:01:24.123400Z", "processed_at": "2026-11-29T07:01:24.223400Z"})
		}
		var next any
		if last := after + len(rows); last < n {
			next = last
			if stuck {
				next = after
			}
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"requests": rows, "next_after_seq": next})
	}))
	t.Cleanup(srv.Close)
	return srv, &asked
}

func TestListAfterPaginates(t *testing.T) {
	t.Parallel()
	srv, asked := listing(t, 2500, false)
	u := &api.User{Name: "u"}
	u.SetToken("tok", time.Now().Add(time.Hour))
	rows, err := api.New(srv.URL).ListAfter(context.Background(), u, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2500 || rows[2499].Seq != 2500 || !rows[0].Finished() {
		t.Fatalf("%d rows", len(rows))
	}
	want := []string{"after_seq=0&limit=1000", "after_seq=1000&limit=1000", "after_seq=2000&limit=1000"}
	if strings.Join(*asked, " ") != strings.Join(want, " ") {
		t.Errorf("asked %v, want %v", *asked, want)
	}
	if p := rows[0].ProcessedAt; p == nil || p.Sub(rows[0].AcceptedAt) != 100*time.Millisecond {
		t.Errorf("times: %+v", rows[0])
	}
}

func TestListAfterRefusesAStuckCursor(t *testing.T) {
	t.Parallel()
	srv, _ := listing(t, 2500, true)
	u := &api.User{Name: "u"}
	u.SetToken("tok", time.Now().Add(time.Hour))
	if _, err := api.New(srv.URL).ListAfter(context.Background(), u, 0); err == nil || !strings.Contains(err.Error(), "does not advance") {
		t.Fatalf("err = %v", err)
	}
}

func TestParseGauge(t *testing.T) {
	t.Parallel()
	text := []byte("# TYPE docket_backlog_limit gauge\ndocket_backlog_limit 100000\ndocket_backlog 1234\ndocket_backlog_x{a=\"b\"} 7\n")
	if v, err := api.ParseGauge(text, "docket_backlog"); err != nil || v != 1234 {
		t.Errorf("docket_backlog = %v, %v", v, err)
	}
	if _, err := api.ParseGauge(text, "docket_missing"); err == nil {
		t.Error("a missing metric was found")
	}
}

// A new token brings its own Authorization value with it.
func TestUserAuthorizationFollowsTheToken(t *testing.T) {
	t.Parallel()
	u := &api.User{Name: "u"}
	if u.Token() != "" || u.Authorization() != "" {
		t.Fatalf("before login: token %q, authorization %q", u.Token(), u.Authorization())
	}
	for _, tok := range []string{"first", "second"} {
		u.SetToken(tok, time.Now().Add(time.Hour))
		if u.Token() != tok || u.Authorization() != "Bearer "+tok {
			t.Errorf("after SetToken(%q): token %q, authorization %q", tok, u.Token(), u.Authorization())
		}
	}
}

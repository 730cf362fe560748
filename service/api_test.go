package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/valyala/fasthttp"

	"github.com/docket/docket/internal/docket"
	"github.com/docket/docket/internal/testenv"
)

// panicPath is a route the conventions test adds to see a handler panic.
const panicPath = "/test/panic"

// withPanicRoute makes panicPath panic with a value that looks like the
// internals no response may show.
func withPanicRoute(s *setup) {
	s.beforeServe = func(a *app) {
		inner := a.server.Handler
		a.server.Handler = a.instrument(func(ctx *fasthttp.RequestCtx) {
			if string(ctx.Path()) == panicPath {
				panic("boom: goroutine 7 [running]: handlers.go:42 SELECT password_hash FROM users -- pgx $2a$10$abc")
			}
			inner(ctx)
		})
	}
}

func TestConventions(t *testing.T) {
	t.Parallel()
	ta := startApp(t, withPanicRoute)
	u := ta.newUser(t)

	t.Run("unknown path", func(t *testing.T) {
		t.Parallel()
		for _, rt := range []struct{ method, path string }{
			{"GET", "/"},
			{"GET", "/nope"},
			{"POST", "/nope"},
			{"DELETE", "/nope"},
			{"GET", "/auth"},
			{"GET", "/auth/register/x"},
			{"GET", "/requests/" + uuid.NewString() + "/result"},
			{"GET", "/REQUESTS"},
			{"GET", "/healthz/"},
			{"GET", "/requests/"},
		} {
			t.Run(rt.method+" "+rt.path, func(t *testing.T) {
				r := ta.request(t, rt.method, rt.path, "", bearer(u.token))
				wantError(t, r, http.StatusNotFound, "not_found")
			})
		}
	})

	t.Run("wrong method", func(t *testing.T) {
		t.Parallel()
		for _, rt := range []struct {
			method, path string
			allow        []string
		}{
			{"DELETE", "/requests", []string{"GET", "POST"}},
			{"PUT", "/requests", []string{"GET", "POST"}},
			{"PATCH", "/requests/" + uuid.NewString(), []string{"GET"}},
			{"DELETE", "/requests/" + uuid.NewString(), []string{"GET"}},
			{"POST", "/requests/" + uuid.NewString(), []string{"GET"}},
			{"GET", "/auth/register", []string{"POST"}},
			{"GET", "/auth/login", []string{"POST"}},
			{"PUT", "/auth/login", []string{"POST"}},
			{"POST", "/healthz", []string{"GET"}},
			{"DELETE", "/readyz", []string{"GET"}},
			{"POST", "/metrics", []string{"GET"}},
		} {
			t.Run(rt.method+" "+rt.path, func(t *testing.T) {
				r := ta.request(t, rt.method, rt.path, "", bearer(u.token))
				wantError(t, r, http.StatusMethodNotAllowed, "method_not_allowed")
				var allow []string
				for _, m := range strings.Split(r.header.Get("Allow"), ",") {
					if m = strings.TrimSpace(m); m != "" && m != "OPTIONS" && m != "HEAD" {
						allow = append(allow, m)
					}
				}
				slices.Sort(allow)
				if !slices.Equal(allow, rt.allow) {
					t.Errorf("Allow %q, want %v", r.header.Get("Allow"), rt.allow)
				}
			})
		}
	})

	t.Run("request id", func(t *testing.T) {
		t.Parallel()
		routes := []struct{ name, method, path, body string }{
			{"200", "GET", "/healthz", ""},
			{"202", "POST", "/requests", `{}`},
			{"400", "POST", "/requests", `{"type":"nope"}`},
			{"404", "GET", "/nope", ""},
			{"404 request", "GET", "/requests/" + uuid.NewString(), ""},
			{"405", "DELETE", "/requests", ""},
			{"500 panic", "GET", panicPath, ""},
		}
		for _, rt := range routes {
			t.Run(rt.name, func(t *testing.T) {
				for _, id := range []string{"client-id-1", "4f1c2b-" + randomHex(8), strings.Repeat("x", 128), "a:b/c=d;e!~"} {
					r := ta.request(t, rt.method, rt.path, rt.body, hdr("Authorization", "Bearer "+u.token, "X-Request-Id", id))
					if got := r.header.Get("X-Request-Id"); got != id {
						t.Errorf("X-Request-Id %q, want the client's %q echoed", got, id)
					}
				}
				for _, id := range []string{strings.Repeat("x", 129), "has space", "naïve", ""} {
					r := ta.request(t, rt.method, rt.path, rt.body, hdr("Authorization", "Bearer "+u.token, "X-Request-Id", id))
					if got := r.header.Get("X-Request-Id"); got == id || got == "" {
						t.Errorf("invalid X-Request-Id %q answered with %q, want a new one", id, got)
					}
				}
				// Without one, each response gets its own.
				a := ta.request(t, rt.method, rt.path, rt.body, bearer(u.token)).header.Get("X-Request-Id")
				b := ta.request(t, rt.method, rt.path, rt.body, bearer(u.token)).header.Get("X-Request-Id")
				if a == b {
					t.Errorf("two requests got the same new X-Request-Id %q", a)
				}
			})
		}
		t.Run("control characters", func(t *testing.T) {
			for _, id := range []string{"ab\x01cd", "ab\x7fcd", "\x1b[2J"} {
				r := ta.rawExchange(t, "GET /healthz HTTP/1.1\r\nHost: docket\r\nX-Request-Id: "+id+"\r\nConnection: close\r\n\r\n")
				if got := r.header.Get("X-Request-Id"); strings.Contains(got, id) {
					t.Errorf("X-Request-Id %q echoed as %q, want a new one", id, got)
				}
			}
		})
	})

	t.Run("panic", func(t *testing.T) {
		t.Parallel()
		r := ta.request(t, "GET", panicPath, "", hdr("X-Request-Id", "panic-1"))
		wantError(t, r, http.StatusInternalServerError, "internal")
		if r.header.Get("X-Request-Id") != "panic-1" {
			t.Errorf("X-Request-Id %q after a panic, want panic-1", r.header.Get("X-Request-Id"))
		}
		// The server lives on.
		wantStatus(t, ta.request(t, "GET", "/healthz", "", nil), http.StatusOK)
	})
}

func TestOperations(t *testing.T) {
	t.Parallel()
	ta := startApp(t)

	t.Run("healthz", func(t *testing.T) {
		r := ta.request(t, "GET", "/healthz", "", nil)
		wantStatus(t, r, http.StatusOK)
		if !jsonEqual(r.body, `{"status":"ok"}`) {
			t.Errorf("body %s, want {\"status\": \"ok\"}", r.body)
		}
	})
	t.Run("readyz", func(t *testing.T) {
		wantStatus(t, ta.request(t, "GET", "/readyz", "", nil), http.StatusOK)
	})
	t.Run("metrics", func(t *testing.T) {
		r := ta.request(t, "GET", "/metrics", "", nil)
		wantStatus(t, r, http.StatusOK)
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
			t.Errorf("Content-Type %q, want text/plain", ct)
		}
		for _, name := range []string{"docket_http_requests_total", "go_goroutines"} {
			if !strings.Contains(string(r.body), "\n"+name) {
				t.Errorf("/metrics lacks %s", name)
			}
		}
	})
}

// TestConfigDefaults checks the defaults API.md states. Not parallel: it
// clears the environment variables that would override them.
func TestConfigDefaults(t *testing.T) {
	for _, v := range []string{"LISTEN_ADDR", "MAX_BODY_BYTES", "JWT_SECRET_KEY", "JWT_ISSUER"} {
		t.Setenv(v, "")
	}
	cfg, err := parseConfig([]string{"-jwt-secret-key", randomHex(16)})
	if err != nil {
		t.Fatalf("parseConfig: %v", err)
	}
	if cfg.ListenAddr != ":3001" {
		t.Errorf("listen address %q, want :3001", cfg.ListenAddr)
	}
	if cfg.MaxBodyBytes != 64<<10 {
		t.Errorf("body limit %d, want 64 KiB", cfg.MaxBodyBytes)
	}
	short := "too-short-" + randomHex(4)
	_, err = parseConfig([]string{"-jwt-secret-key", short})
	if err == nil || !strings.Contains(err.Error(), "JWT_SECRET_KEY") || strings.Contains(err.Error(), short) {
		t.Errorf("a 18-byte secret: %v, want an error naming JWT_SECRET_KEY without the secret", err)
	}
}

// TestGracefulShutdown holds a POST /requests in its handler, starts the
// shutdown, and checks that the request completes: answered 202, durable in
// the database and published.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{})
	release := make(chan struct{})
	ta := startApp(t, func(s *setup) {
		s.beforeServe = func(a *app) {
			inner := a.server.Handler
			a.server.Handler = func(ctx *fasthttp.RequestCtx) {
				if string(ctx.Request.Header.Peek("X-Request-Id")) == "hold-me" {
					close(entered)
					<-release
				}
				inner(ctx)
			}
		}
	})
	u := ta.newUser(t)

	answer := make(chan response, 1)
	go func() {
		r, err := ta.tryRequest("POST", "/requests", `{"payload":"in flight"}`, hdr("Authorization", "Bearer "+u.token, "X-Request-Id", "hold-me"))
		if err != nil {
			t.Errorf("in-flight request: %v", err)
		}
		answer <- r
	}()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the request never reached the handler")
	}

	stopped := make(chan error, 1)
	go func() { stopped <- ta.stop() }()
	// The shutdown has begun once the listener refuses connections.
	testenv.Eventually(t, 10*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", ta.addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	}, "listener still open during shutdown")
	select {
	case err := <-stopped:
		t.Fatalf("shutdown returned (%v) with a request in flight", err)
	default:
	}
	close(release)

	r := <-answer
	wantStatus(t, r, http.StatusAccepted)
	ta.checkResponse(t, "in-flight request", "/requests", r)
	a := decode[accepted](t, r)
	if err := <-stopped; err != nil {
		t.Errorf("shutdown: %v", err)
	}

	// Durable and published.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, ta.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var payload json.RawMessage
	if err := conn.QueryRow(ctx, "SELECT payload FROM requests WHERE id = $1", a.ID).Scan(&payload); err != nil {
		t.Fatalf("request %s after shutdown: %v", a.ID, err)
	}
	want := docket.Message{ID: a.ID, UserID: u.id, Seq: a.Seq, Type: docket.TypeEcho, Payload: payload}
	ta.messages(t, docket.Partition(u.id, testPartitions), hasMessage(want))
}

package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docket/docket/internal/docket"
	"github.com/docket/docket/internal/testenv"
)

// jsonOfSize returns a valid submission of exactly n bytes.
func jsonOfSize(n int) string {
	const head, tail = `{"payload":"`, `"}`
	return head + strings.Repeat("a", n-len(head)-len(tail)) + tail
}

func TestBodyLimit(t *testing.T) {
	t.Parallel()
	ta := startApp(t)
	u := ta.newUser(t)
	limit := ta.cfg.MaxBodyBytes
	if limit != 64<<10 {
		t.Fatalf("default MAX_BODY_BYTES is %d, want 64 KiB", limit)
	}

	t.Run("at the limit", func(t *testing.T) {
		t.Parallel()
		for _, n := range []int{limit, limit - 100} {
			a := ta.submit(t, u.token, jsonOfSize(n))
			got := decode[requestBody](t, ta.get(t, u.token, "/requests/"+a.ID.String()))
			if len(got.Payload) != n-len(`{"payload":}`) {
				t.Errorf("a %d-byte body stored a %d-byte payload", n, len(got.Payload))
			}
		}
	})

	t.Run("over the limit", func(t *testing.T) {
		t.Parallel()
		for _, rt := range []struct{ name, path string }{
			{"requests", "/requests"},
			{"register", "/auth/register"},
			{"login", "/auth/login"},
			{"unknown path", "/nope"},
		} {
			t.Run(rt.name, func(t *testing.T) {
				r := ta.request(t, http.MethodPost, rt.path, jsonOfSize(limit+1), hdr("Authorization", "Bearer "+u.token, "X-Request-Id", "big-1"))
				wantError(t, r, http.StatusRequestEntityTooLarge, "payload_too_large")
				if got := r.header.Get("X-Request-Id"); got != "big-1" {
					t.Errorf("X-Request-Id %q, want the client's big-1", got)
				}
			})
		}
	})

	// net/http writes the body while the server answers; it must get the
	// 413 rather than a write error.
	t.Run("10 MB with net/http", func(t *testing.T) {
		t.Parallel()
		big := jsonOfSize(10 << 20)
		for i := range 10 {
			r := ta.request(t, http.MethodPost, "/requests", big, hdr("Authorization", "Bearer "+u.token, "X-Request-Id", fmt.Sprintf("nethttp-%d", i)))
			wantError(t, r, http.StatusRequestEntityTooLarge, "payload_too_large")
		}
	})

	// A client that announces 10 MB and keeps sending must read a complete
	// 413, not a reset. Repeated, since losing the answer is a race between
	// the server's close and the client's read.
	t.Run("raw 10 MB", func(t *testing.T) {
		t.Parallel()
		for i := range 10 {
			r := rawBigBody(t, ta, fmt.Sprintf("Content-Length: %d\r\n", 10<<20), false, fmt.Sprintf("raw-%d", i))
			wantError(t, r, http.StatusRequestEntityTooLarge, "payload_too_large")
			if got := r.header.Get("X-Request-Id"); got != fmt.Sprintf("raw-%d", i) {
				t.Errorf("X-Request-Id %q, want the client's raw-%d", got, i)
			}
		}
	})
	// A simpler client writes the whole body before it reads: its writes
	// fail once the server has closed, and the 413 must still be readable.
	t.Run("raw 10 MB, write then read", func(t *testing.T) {
		t.Parallel()
		for i := range 10 {
			r := rawWriteThenRead(t, ta, fmt.Sprintf("wtr-%d", i))
			wantError(t, r, http.StatusRequestEntityTooLarge, "payload_too_large")
		}
	})
	t.Run("raw chunked", func(t *testing.T) {
		t.Parallel()
		for range 5 {
			r := rawBigBody(t, ta, "Transfer-Encoding: chunked\r\n", true, "chunked")
			wantError(t, r, http.StatusRequestEntityTooLarge, "payload_too_large")
		}
	})
	t.Run("raw expect 100-continue", func(t *testing.T) {
		t.Parallel()
		for range 5 {
			r := rawBigBody(t, ta, fmt.Sprintf("Content-Length: %d\r\nExpect: 100-continue\r\n", 10<<20), false, "expect")
			wantError(t, r, http.StatusRequestEntityTooLarge, "payload_too_large")
		}
	})

	// The limit holds and the server stays usable.
	ta.submit(t, u.token, `{}`)
}

// rawBigBody sends a POST /requests with the extra headers and then up to
// 10 MB of body (as chunks if chunked) from another goroutine, and reads the
// answer, skipping interim 1xx responses.
func rawBigBody(t *testing.T, ta *testApp, headers string, chunked bool, requestID string) response {
	t.Helper()
	conn, err := net.DialTimeout("tcp", ta.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
	head := "POST /requests HTTP/1.1\r\nHost: docket\r\nContent-Type: application/json\r\nX-Request-Id: " + requestID + "\r\n" + headers + "\r\n"
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer conn.Close() // ends the sender once the answer is read
	wg.Go(func() {
		chunk := strings.Repeat("a", 32<<10)
		if chunked {
			chunk = fmt.Sprintf("%x\r\n%s\r\n", len(chunk), chunk)
		}
		for sent := 0; sent < 10<<20; sent += 32 << 10 {
			if _, err := io.WriteString(conn, chunk); err != nil {
				return // the server closed: expected
			}
		}
	})
	br := bufio.NewReader(conn)
	for {
		r := readResponse(t, br)
		if r.status/100 != 1 {
			ta.checkResponse(t, "raw big body", "/requests", r)
			return r
		}
	}
}

// rawWriteThenRead announces 10 MB, writes until the server stops taking
// the body, then reads the answer.
func rawWriteThenRead(t *testing.T, ta *testApp, requestID string) response {
	t.Helper()
	conn, err := net.DialTimeout("tcp", ta.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
	head := fmt.Sprintf("POST /requests HTTP/1.1\r\nHost: docket\r\nX-Request-Id: %s\r\nContent-Length: %d\r\n\r\n", requestID, 10<<20)
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	chunk := strings.Repeat("a", 32<<10)
	sent := 0
	for ; sent < 10<<20; sent += len(chunk) {
		_ = conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
		if _, err := io.WriteString(conn, chunk); err != nil {
			t.Logf("write stopped after %d bytes: %v", sent, err)
			break
		}
	}
	r := readResponse(t, bufio.NewReader(conn))
	ta.checkResponse(t, "raw write then read", "/requests", r)
	return r
}

// TestSlowClient checks that a connection that stalls in its request is
// closed after READ_TIMEOUT.
func TestSlowClient(t *testing.T) {
	t.Parallel()
	const readTimeout = 300 * time.Millisecond
	ta := startApp(t, func(s *setup) { s.cfg.ReadTimeout = readTimeout })
	for _, tc := range []struct{ name, sent string }{
		{"nothing", ""},
		{"half a header", "POST /requests HTTP/1.1\r\nHost: docket\r\nContent-"},
		{"half a body", "POST /requests HTTP/1.1\r\nHost: docket\r\nContent-Length: 100\r\n\r\n{\"payload\":"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			conn, err := net.DialTimeout("tcp", ta.addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			start := time.Now()
			if _, err := io.WriteString(conn, tc.sent); err != nil {
				t.Fatal(err)
			}
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			answer, err := io.ReadAll(conn) // until the server closes
			took := time.Since(start)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("connection still open after %s (READ_TIMEOUT %s)", took, readTimeout)
			}
			if took < readTimeout-50*time.Millisecond || took > readTimeout+3*time.Second {
				t.Errorf("closed after %s, want about READ_TIMEOUT %s", took, readTimeout)
			}
			if len(answer) > 0 && !strings.Contains(string(answer), "X-Request-Id: ") {
				t.Errorf("answer without X-Request-Id: %q", answer)
			}
			if tc.sent == "" && len(answer) > 0 {
				t.Errorf("a connection that sent nothing got an answer: %q", answer)
			}
			if strings.HasPrefix(tc.name, "half a header") && len(answer) == 0 {
				t.Errorf("a client cut off in its headers got no answer")
			}
			t.Logf("%s: closed after %s with %d bytes of answer", tc.name, took, len(answer))
		})
	}
	// A prompt client is served.
	wantStatus(t, ta.request(t, http.MethodGet, "/healthz", "", nil), http.StatusOK)
}

func TestBacklogLimit(t *testing.T) {
	t.Parallel()
	const limit = 5
	ta := startApp(t, func(s *setup) {
		s.cfg.BacklogLimit = limit
		// One count at start; from then on the estimate moves with each
		// accept, exactly (a count racing an accept may err by one).
		s.cfg.BacklogInterval = time.Hour
	})
	u, other := ta.newUser(t), ta.newUser(t)
	for i := range limit {
		if a := ta.submit(t, u.token, `{}`); a.Seq != int64(i+1) {
			t.Fatalf("seq %d, want %d", a.Seq, i+1)
		}
	}
	// No worker runs: the backlog stays at the limit once counted.
	testenv.Eventually(t, 5*time.Second, func() bool { return ta.backlog.Load() >= limit },
		"backlog counted as %d, want %d", ta.backlog.Load(), limit)
	for _, who := range []user{u, other} {
		r := ta.post(t, who.token, "/requests", `{}`)
		wantError(t, r, http.StatusTooManyRequests, "overloaded")
		if r.header.Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
		r = ta.post(t, who.token, "/requests", `{}`, "Idempotency-Key", "new-key")
		wantError(t, r, http.StatusTooManyRequests, "overloaded")
	}
	if n := ta.countRequests(t); n != limit {
		t.Errorf("%d requests exist, want the %d accepted", n, limit)
	}
}

func TestBrokerDown(t *testing.T) {
	t.Parallel()

	t.Run("never reachable", func(t *testing.T) {
		t.Parallel()
		ta := startApp(t, func(s *setup) {
			s.cfg.RabbitMQ.URL = fmt.Sprintf("amqp://guest:guest@127.0.0.1:%d/", freePort(t))
			s.waitReady = false
		})
		wantError(t, ta.request(t, http.MethodGet, "/readyz", "", nil), http.StatusServiceUnavailable, "unavailable")
		wantStatus(t, ta.request(t, http.MethodGet, "/healthz", "", nil), http.StatusOK)
		u := ta.newUser(t)
		for i := range 3 {
			start := time.Now()
			a := ta.submit(t, u.token, `{"payload":"durable"}`)
			if a.Seq != int64(i+1) {
				t.Errorf("seq %d, want %d", a.Seq, i+1)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("POST /requests took %s with the broker down", d)
			}
			got := decode[requestBody](t, ta.get(t, u.token, "/requests/"+a.ID.String()))
			if got.Status != "queued" {
				t.Errorf("status %q, want queued", got.Status)
			}
		}
	})

	t.Run("vhost deleted and back", func(t *testing.T) {
		t.Parallel()
		ta := startApp(t, func(s *setup) {
			s.cfg.SweepAfter = 200 * time.Millisecond
			s.cfg.SweepInterval = 100 * time.Millisecond
		})
		u := ta.newUser(t)
		before := ta.submit(t, u.token, `{}`)
		ta.messages(t, docket.Partition(u.id, testPartitions), hasMessage(docket.Message{ID: before.ID, UserID: u.id, Seq: 1, Type: docket.TypeEcho, Payload: json.RawMessage(`null`)}))

		vhost := vhostOf(t, ta.amqpURL)
		manage(t, http.MethodDelete, "/api/vhosts/"+vhost, "")
		testenv.Eventually(t, 15*time.Second, func() bool {
			return ta.request(t, http.MethodGet, "/readyz", "", nil).status == http.StatusServiceUnavailable
		}, "/readyz still 200 with the vhost deleted")
		wantError(t, ta.request(t, http.MethodGet, "/readyz", "", nil), http.StatusServiceUnavailable, "unavailable")

		during := ta.submit(t, u.token, `{"payload":"while down"}`)
		if during.Seq != 2 {
			t.Errorf("seq %d, want 2", during.Seq)
		}
		if got := decode[requestBody](t, ta.get(t, u.token, "/requests/"+during.ID.String())); got.Status != "queued" {
			t.Errorf("status %q, want queued", got.Status)
		}

		manage(t, http.MethodPut, "/api/vhosts/"+vhost, "")
		manage(t, http.MethodPut, "/api/permissions/"+vhost+"/guest", `{"configure":".*","write":".*","read":".*"}`)
		testenv.Eventually(t, 15*time.Second, func() bool {
			return ta.request(t, http.MethodGet, "/readyz", "", nil).status == http.StatusOK
		}, "/readyz not 200 after the vhost came back")
		// The sweeper publishes what was accepted while the broker was away
		// (from the row, without the payload: the worker reads it).
		want := docket.Message{ID: during.ID, UserID: u.id, Seq: 2, Type: docket.TypeEcho}
		ta.messages(t, docket.Partition(u.id, testPartitions), hasMessage(want))
	})
}

func TestDatabaseDown(t *testing.T) {
	t.Parallel()

	// unavailable checks that every route that needs the database answers
	// 503 unavailable, and that the process is alive and says it is not ready.
	unavailable := func(t *testing.T, ta *testApp, u user, known string) {
		t.Helper()
		for _, rt := range []struct {
			name, method, path, body string
			h                        []string
		}{
			{"submit", http.MethodPost, "/requests", `{}`, nil},
			{"submit with key", http.MethodPost, "/requests", `{}`, []string{"Idempotency-Key", "k-" + randomHex(4)}},
			{"get", http.MethodGet, "/requests/" + known, "", nil},
			{"list", http.MethodGet, "/requests", "", nil},
			{"register", http.MethodPost, "/auth/register", credentials(testenv.Name("u"), "password-1"), nil},
			{"login", http.MethodPost, "/auth/login", credentials(u.name, u.password), nil},
			{"readyz", http.MethodGet, "/readyz", "", nil},
		} {
			t.Run(rt.name, func(t *testing.T) {
				h := hdr(append([]string{"Authorization", "Bearer " + u.token}, rt.h...)...)
				start := time.Now()
				r := ta.request(t, rt.method, rt.path, rt.body, h)
				wantError(t, r, http.StatusServiceUnavailable, "unavailable")
				if r.header.Get("Retry-After") == "" {
					t.Error("503 without Retry-After")
				}
				if d := time.Since(start); d > 8*time.Second {
					t.Errorf("answer took %s", d)
				}
			})
		}
		wantStatus(t, ta.request(t, http.MethodGet, "/healthz", "", nil), http.StatusOK)
	}

	t.Run("dropped", func(t *testing.T) {
		t.Parallel()
		ta := startApp(t)
		u := ta.newUser(t)
		a := ta.submit(t, u.token, `{}`)
		adminExec(t, "DROP DATABASE "+databaseName(t, ta.dbURL)+" WITH (FORCE)")
		unavailable(t, ta, u, a.ID.String())
	})

	// While the database refuses connections nothing is written; once it is
	// back, the next request takes the next seq.
	t.Run("refusing connections, then back", func(t *testing.T) {
		t.Parallel()
		ta := startApp(t)
		u := ta.newUser(t)
		a := ta.submit(t, u.token, `{}`)
		name := databaseName(t, ta.dbURL)
		adminExec(t, "ALTER DATABASE "+name+" WITH ALLOW_CONNECTIONS false")
		t.Cleanup(func() { adminExec(t, "ALTER DATABASE "+name+" WITH ALLOW_CONNECTIONS true") })
		adminExec(t, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '"+name+"'")
		unavailable(t, ta, u, a.ID.String())

		adminExec(t, "ALTER DATABASE "+name+" WITH ALLOW_CONNECTIONS true")
		testenv.Eventually(t, 15*time.Second, func() bool {
			return ta.request(t, http.MethodGet, "/readyz", "", nil).status == http.StatusOK
		}, "/readyz not 200 after the database came back")
		if n := ta.countRequests(t); n != 1 {
			t.Errorf("%d requests exist, want 1: a 503 wrote something", n)
		}
		if next := ta.submit(t, u.token, `{}`); next.Seq != 2 {
			t.Errorf("seq %d after the outage, want 2", next.Seq)
		}
	})
}

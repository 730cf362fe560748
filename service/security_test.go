package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/docket/docket/internal/testenv"
)

// TestConfigHidesURLPasswords starts the configuration with URLs that do
// not parse, each holding a password: the error says which setting is wrong
// without printing the password (main prints it, and a supervisor's log
// keeps it).
func TestConfigHidesURLPasswords(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, flag, url, secret, names string
	}{
		{"AMQP port", "-rabbitmq-url", "amqp://docket:S3cret-amqp-1@127.0.0.1:badport/", "S3cret-amqp-1", "RABBITMQ_URL"},
		// net/url takes "pa" for the port and the rest for the path: its
		// error names a piece of the password even without quoting the URL.
		{"AMQP password with a slash", "-rabbitmq-url", "amqp://docket:pa/S3cret-amqp-2@127.0.0.1:5672/", "S3cret-amqp-2", "RABBITMQ_URL"},
		{"AMQP bad escape", "-rabbitmq-url", "amqps://docket:S3cret-amqp-3%zz@127.0.0.1/", "S3cret-amqp-3", "RABBITMQ_URL"},
		{"AMQP missing bracket", "-rabbitmq-url", "amqp://docket:S3cret-amqp-4@[::1/", "S3cret-amqp-4", "RABBITMQ_URL"},
		{"AMQP wrong scheme", "-rabbitmq-url", "http://docket:S3cret-amqp-5@127.0.0.1/", "S3cret-amqp-5", "RABBITMQ_URL"},
		{"AMQP whitespace", "-rabbitmq-url", "amqp://docket:S3cret amqp-6@127.0.0.1/", "S3cret amqp-6", "RABBITMQ_URL"},
		{"PostgreSQL port", "-database-url", "postgres://docket:S3cret-pg-1@127.0.0.1:badport/docket", "S3cret-pg-1", "DATABASE_URL"},
		{"PostgreSQL password with a slash", "-database-url", "postgres://docket:pa/S3cret-pg-2@127.0.0.1:5432/docket", "S3cret-pg-2", "DATABASE_URL"},
		{"PostgreSQL keywords", "-database-url", "host=127.0.0.1 password=S3cret-pg-3 port=abc", "S3cret-pg-3", "DATABASE_URL"},
		{"PostgreSQL sslmode", "-database-url", "postgres://docket:S3cret-pg-4@127.0.0.1/docket?sslmode=bogus", "S3cret-pg-4", "DATABASE_URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := parseConfig([]string{"-jwt-secret-key", randomHex(16), tc.flag, tc.url})
			if err == nil {
				t.Fatalf("%s %q accepted", tc.flag, tc.url)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.names) {
				t.Errorf("error %q does not name %s", msg, tc.names)
			}
			for _, piece := range strings.Fields(tc.secret) {
				if strings.Contains(msg, piece) {
					t.Errorf("error %q prints the password (%q)", msg, piece)
				}
			}
		})
	}
}

// TestHeaderLimits sends headers beyond the 8 KiB read buffer: each gets
// a complete 400 in API.md's shape (not a reset), and the server serves on.
func TestHeaderLimits(t *testing.T) {
	t.Parallel()
	ta := startApp(t)
	for _, tc := range []struct{ name, head string }{
		{"one header of 16 KiB", "GET /healthz HTTP/1.1\r\nHost: docket\r\nX-Big: " + strings.Repeat("a", 16<<10) + "\r\n"},
		{"300 headers of 64 bytes", "GET /healthz HTTP/1.1\r\nHost: docket\r\n" + strings.Repeat("X-Many: "+strings.Repeat("m", 54)+"\r\n", 300)},
		{"a path of 16 KiB", "GET /" + strings.Repeat("p", 16<<10) + " HTTP/1.1\r\nHost: docket\r\n"},
		{"an Authorization of 64 KiB", "GET /requests HTTP/1.1\r\nHost: docket\r\nAuthorization: Bearer " + strings.Repeat("t", 64<<10) + "\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for range 5 { // losing the answer to a reset is a race: try it a few times
				r := ta.rawExchange(t, tc.head+"Connection: close\r\n\r\n")
				wantError(t, r, http.StatusBadRequest, "invalid_request")
			}
		})
	}
	// A client that goes on sending headers while the server answers must
	// read the 400, not a reset.
	t.Run("headers that go on", func(t *testing.T) {
		t.Parallel()
		for i := range 5 {
			r := endlessHeaders(t, ta, fmt.Sprintf("endless-%d", i), false)
			wantError(t, r, http.StatusBadRequest, "invalid_request")
		}
	})
	// A simpler client writes all before it reads: its writes fail once
	// the server has closed, and the 400 must still be readable.
	t.Run("headers written, then the answer read", func(t *testing.T) {
		t.Parallel()
		for i := range 5 {
			r := endlessHeaders(t, ta, fmt.Sprintf("write-then-read-%d", i), true)
			wantError(t, r, http.StatusBadRequest, "invalid_request")
		}
	})
	// Headers of 6 KiB in all are served.
	r := ta.rawExchange(t, "GET /healthz HTTP/1.1\r\nHost: docket\r\nX-Pad: "+strings.Repeat("a", 6<<10)+"\r\nConnection: close\r\n\r\n")
	wantStatus(t, r, http.StatusOK)
}

// endlessHeaders starts a request and sends up to 4 MB of header lines,
// from another goroutine while it reads the answer, or all before it reads
// when writeFirst.
func endlessHeaders(t *testing.T, ta *testApp, requestID string, writeFirst bool) response {
	t.Helper()
	conn, err := net.DialTimeout("tcp", ta.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: docket\r\nX-Request-Id: "+requestID+"\r\n"); err != nil {
		t.Fatal(err)
	}
	send := func() {
		line := "X-More: " + strings.Repeat("h", 1000) + "\r\n"
		for sent := 0; sent < 4<<20; sent += len(line) {
			if _, err := io.WriteString(conn, line); err != nil {
				return // the server closed: expected
			}
		}
	}
	if writeFirst {
		send()
	} else {
		var wg sync.WaitGroup
		defer wg.Wait()
		defer conn.Close() // ends the sender once the answer is read
		wg.Go(send)
	}
	r := readResponse(t, bufio.NewReader(conn))
	ta.checkResponse(t, "endless headers", "/healthz", r)
	return r
}

// lockedBuffer is a bytes.Buffer safe for the app's concurrent log writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// bcryptHashRE matches a whole bcrypt hash.
var bcryptHashRE = regexp.MustCompile(`\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}`)

// sendRaw writes raw on a new connection and reads until the server closes
// it, whatever it answers.
func (ta *testApp) sendRaw(t *testing.T, raw string) []byte {
	t.Helper()
	conn, err := net.DialTimeout("tcp", ta.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = io.WriteString(conn, raw)
	answer, _ := io.ReadAll(conn)
	return answer
}

// TestLogsHoldNoSecrets logs at debug level while a user registers, logs
// in, sends requests, sends malformed HTTP that carries its token and
// password, meets a broker it cannot reach (whose URL holds a password) and
// an unavailable database; the log then holds no password, password hash,
// JWT secret or token.
func TestLogsHoldNoSecrets(t *testing.T) {
	t.Parallel()
	var logs lockedBuffer
	const amqpPassword = "S3cret-amqp-pw"
	ta := startApp(t, withPanicRoute, func(s *setup) {
		s.logTo = &logs
		s.cfg.RabbitMQ.URL = fmt.Sprintf("amqp://docket:%s@127.0.0.1:%d/", amqpPassword, freePort(t))
		s.waitReady = false
	})
	u := ta.newUser(t)
	var hash string
	if err := ta.db.Pool.QueryRow(context.Background(), "SELECT password_hash FROM users WHERE id = $1", u.id).Scan(&hash); err != nil || hash == "" {
		t.Fatalf("read the password hash: %q, %v", hash, err)
	}

	wantError(t, ta.post(t, "", "/auth/login", credentials(u.name, u.password+"-wrong")), http.StatusUnauthorized, "invalid_credentials")
	wantError(t, ta.post(t, "", "/auth/register", credentials(u.name, u.password)), http.StatusConflict, "username_taken")
	ta.submit(t, u.token, `{"payload":"hello"}`) // the publish fails: the broker is away
	wantError(t, ta.post(t, u.token+"x", "/requests", `{}`), http.StatusUnauthorized, "unauthorized")
	wantError(t, ta.request(t, http.MethodGet, panicPath, "", bearer(u.token)), http.StatusInternalServerError, "internal")

	// fasthttp's messages about what it cannot parse quote the request.
	login := `{"username":"` + u.name + `","password":"` + u.password + `"}`
	for _, raw := range []string{
		"GET /requests HTTP/1.1\r\nHost: docket\r\nAuthorization: Bearer " + u.token + "\x01\r\n\r\n",
		"GET /requests HTTP/1.1\r\nHost: docket\r\nAuthorization: Bearer " + u.token + "\r\nNo Colon Here\r\n\r\n",
		"POST /auth/login HTTP/1.1\r\nHost: docket\r\nContent-Length: " + strconv.Itoa(len(login)) + "\r\nBad\x00Key: 1\r\n\r\n" + login,
		"POST /auth/login?password=" + u.password + " HTTP/1.1 x\r\nHost: docket\r\n\r\n",
	} {
		if answer := ta.sendRaw(t, raw); !bytes.HasPrefix(answer, []byte("HTTP/1.1 400 ")) {
			t.Errorf("malformed request answered %q, want 400", answer)
		}
	}
	testenv.Eventually(t, 10*time.Second, func() bool {
		s := logs.String()
		return strings.Contains(s, "error when serving connection") && strings.Contains(s, "rabbitmq publisher: connect failed")
	}, "the log lacks fasthttp's and the publisher's messages:\n%s", logs.String())

	// The database refuses connections: its errors are logged.
	name := databaseName(t, ta.dbURL)
	adminExec(t, "ALTER DATABASE "+name+" WITH ALLOW_CONNECTIONS false")
	t.Cleanup(func() { adminExec(t, "ALTER DATABASE "+name+" WITH ALLOW_CONNECTIONS true") })
	adminExec(t, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '"+name+"'")
	for _, path := range []string{"/auth/login", "/auth/register"} {
		wantError(t, ta.post(t, "", path, credentials(u.name, u.password)), http.StatusServiceUnavailable, "unavailable")
	}
	wantError(t, ta.post(t, u.token, "/requests", `{}`), http.StatusServiceUnavailable, "unavailable")

	log := logs.String()
	if !strings.Contains(log, `"level":"WARN","msg":"request failed"`) {
		t.Errorf("the log lacks the database failures:\n%s", log)
	}
	if !bcryptHashRE.MatchString(hash) {
		t.Errorf("bcryptHashRE does not match the hash %q", hash)
	}
	if h := bcryptHashRE.FindString(log); h != "" {
		t.Errorf("the log holds a bcrypt hash %q", h)
	}
	sig := u.token[strings.LastIndexByte(u.token, '.')+1:]
	for what, secret := range map[string]string{
		"the password":            u.password,
		"the password hash":       hash,
		"the JWT secret":          ta.secret,
		"the token":               u.token,
		"the token's signature":   sig,
		"the AMQP URL's password": amqpPassword,
	} {
		if strings.Contains(log, secret) {
			t.Errorf("the log holds %s (%q)", what, secret)
		}
	}
	if t.Failed() {
		t.Logf("log:\n%s", log)
	}
}

func TestUserRateLimit(t *testing.T) {
	t.Parallel()
	// 0.1 requests a second, bursts of 1: a second request within 10 s
	// is refused, however slowly this machine answers.
	ta := startApp(t, func(s *setup) { s.cfg.UserRateLimit = 0.1 })
	u, other := ta.newUser(t), ta.newUser(t)
	ta.submit(t, u.token, `{}`)
	for _, h := range [][]string{nil, {"Idempotency-Key", "k-" + randomHex(4)}} {
		r := ta.post(t, u.token, "/requests", `{}`, h...)
		wantError(t, r, http.StatusTooManyRequests, "overloaded")
		if n, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || n < 1 || n > 10 {
			t.Errorf("Retry-After %q, want 1 to 10 seconds", r.header.Get("Retry-After"))
		}
	}
	// The limit is the user's, not everyone's; bad requests and reads are
	// not limited (only POST /requests is).
	ta.submit(t, other.token, `{}`)
	wantStatus(t, ta.get(t, u.token, "/requests"), http.StatusOK)
	wantError(t, ta.post(t, "", "/requests", `{}`), http.StatusUnauthorized, "unauthorized")
	if n := ta.countRequests(t); n != 2 {
		t.Errorf("%d requests exist, want the 2 accepted", n)
	}
	if got := ta.users.tracked(); got != 2 {
		t.Errorf("%d users tracked, want 2", got)
	}
}

func TestUserRateLimitConfig(t *testing.T) {
	t.Parallel()
	cfg, err := parseConfig([]string{"-jwt-secret-key", randomHex(16)})
	if err != nil {
		t.Fatal(err)
	}
	// The bench's noisy neighbour sends 400 requests a second as one user.
	if cfg.UserRateLimit != 1000 {
		t.Errorf("USER_RATE_LIMIT default %v, want 1000", cfg.UserRateLimit)
	}
	for _, v := range []string{"-1", "NaN", "+Inf"} {
		_, err := parseConfig([]string{"-jwt-secret-key", randomHex(16), "-user-rate-limit", v})
		if err == nil || !strings.Contains(err.Error(), "USER_RATE_LIMIT") {
			t.Errorf("USER_RATE_LIMIT=%s: err %v, want one naming USER_RATE_LIMIT", v, err)
		}
	}
	if newUserLimiter(0) != nil {
		t.Error("USER_RATE_LIMIT=0 made a limiter")
	}
}

func TestUserLimiter(t *testing.T) {
	t.Parallel()
	start := time.Now()
	at := func(d time.Duration) time.Time { return start.Add(d) }
	alice, bob := uuid.New(), uuid.New()

	t.Run("burst, then the rate", func(t *testing.T) {
		t.Parallel()
		l := newUserLimiter(2) // bursts of 4, refilled in 2s
		for i := range 4 {
			if ok, _ := l.allow(alice, at(0)); !ok {
				t.Fatalf("request %d of the burst refused", i+1)
			}
		}
		ok, wait := l.allow(alice, at(0))
		if ok || wait < 400*time.Millisecond || wait > 500*time.Millisecond || retryAfter(wait) != 1 {
			t.Errorf("5th request: ok %v, wait %s, want refused for 0.5s", ok, wait)
		}
		if ok, _ := l.allow(bob, at(0)); !ok {
			t.Error("another user refused")
		}
		if ok, _ := l.allow(alice, at(500*time.Millisecond)); !ok {
			t.Error("refused after a refill of one")
		}
		if ok, _ := l.allow(alice, at(500*time.Millisecond)); ok {
			t.Error("accepted beyond the refill")
		}
	})

	t.Run("idle users are forgotten", func(t *testing.T) {
		t.Parallel()
		l := newUserLimiter(2)
		l.allow(alice, at(0))
		l.allow(bob, at(time.Second))
		if n := l.tracked(); n != 2 {
			t.Fatalf("%d users tracked, want 2", n)
		}
		l.allow(bob, at(2*time.Second)) // alice idle for 2s: her bucket is full again
		if n := l.tracked(); n != 1 {
			t.Errorf("%d users tracked after alice's refill time, want 1", n)
		}
		for i := range 4 {
			if ok, _ := l.allow(alice, at(2*time.Second)); !ok {
				t.Fatalf("forgotten alice: request %d of a burst refused", i+1)
			}
		}
	})

	t.Run("bounded", func(t *testing.T) {
		t.Parallel()
		l := newUserLimiter(1000)
		for range maxTrackedUsers {
			l.allow(uuid.New(), at(0))
		}
		for range 3 {
			if ok, _ := l.allow(uuid.New(), at(0)); !ok {
				t.Error("a new user beyond the bound refused")
			}
		}
		if n := l.tracked(); n != maxTrackedUsers {
			t.Errorf("%d users tracked, want at most %d", n, maxTrackedUsers)
		}
		l.allow(alice, at(time.Minute))
		if n := l.tracked(); n != 1 {
			t.Errorf("%d users tracked after a minute, want 1", n)
		}
	})

	t.Run("slow rates", func(t *testing.T) {
		t.Parallel()
		l := newUserLimiter(0.1)
		l.allow(alice, at(0))
		if ok, wait := l.allow(alice, at(time.Second)); ok || retryAfter(wait) != 9 {
			t.Errorf("ok %v, Retry-After %d after 1s of 10, want refused and 9", ok, retryAfter(wait))
		}
	})

	if ok, _ := (*userLimiter)(nil).allow(alice, at(0)); !ok {
		t.Error("no limiter refused")
	}
}

func TestRedactQuoted(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`error when serving connection "127.0.0.1:3001"<->"[::1]:5555": invalid header value "Bearer a.b.c\x01": contents: "GET / HTTP/1.1\r\n\"x\""`: `error when serving connection "127.0.0.1:3001"<->"[::1]:5555": invalid header value "…": contents: "…"`,
		`unsupported http version "/x?password=hunter2 HTTP/1.1" in "PO ST"`:                                                                          `unsupported http version "…" in "…"`,
		`empty hex number`: `empty hex number`,
	} {
		if got := redactQuoted(in); got != want {
			t.Errorf("redactQuoted(%q)\n= %q\nwant %q", in, got, want)
		}
	}
}

// slowRequest writes sent a byte every tick on conn from another goroutine,
// until all is sent or the connection fails.
func slowRequest(conn net.Conn, sent string, tick time.Duration) {
	go func() {
		for i := range len(sent) {
			if _, err := io.WriteString(conn, sent[i:i+1]); err != nil {
				return
			}
			time.Sleep(tick)
		}
	}()
}

// TestTrickledRequest checks that READ_TIMEOUT bounds a whole request, not
// each read: a client that trickles its header or its body a byte at a time
// (slowloris) is cut off once READ_TIMEOUT has passed since its first byte,
// also on a kept-alive connection's second request.
func TestTrickledRequest(t *testing.T) {
	t.Parallel()
	const readTimeout = 500 * time.Millisecond
	const tick = 25 * time.Millisecond // 40 bytes a second: 200 bytes take 5s
	ta := startApp(t, func(s *setup) { s.cfg.ReadTimeout = readTimeout })
	head := "POST /requests HTTP/1.1\r\nHost: docket\r\nX-Pad: " + strings.Repeat("a", 200) + "\r\n"
	bodyHead := "POST /requests HTTP/1.1\r\nHost: docket\r\nContent-Type: application/json\r\nContent-Length: 300\r\n\r\n"
	body := `{"payload":"` + strings.Repeat("b", 280) + `"}`
	for _, tc := range []struct {
		name      string
		keptAlive bool   // a complete request first, on the same connection
		atOnce    string // sent at once before the trickle
		trickled  string
	}{
		{name: "header", trickled: head},
		{name: "body", atOnce: bodyHead, trickled: body},
		{name: "header of a second request", keptAlive: true, trickled: head},
		{name: "body of a second request", keptAlive: true, atOnce: bodyHead, trickled: body},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			conn, err := net.DialTimeout("tcp", ta.addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
			br := bufio.NewReader(conn)
			if tc.keptAlive {
				if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: docket\r\n\r\n"); err != nil {
					t.Fatal(err)
				}
				wantStatus(t, readResponse(t, br), http.StatusOK)
			}
			start := time.Now()
			if _, err := io.WriteString(conn, tc.atOnce); err != nil {
				t.Fatal(err)
			}
			slowRequest(conn, tc.trickled, tick)
			_, _ = io.ReadAll(br) // until the server closes
			took := time.Since(start)
			full := time.Duration(len(tc.trickled)) * tick
			if took < readTimeout-50*time.Millisecond || took > readTimeout+3*time.Second || took > full-time.Second {
				t.Errorf("closed after %s, want about READ_TIMEOUT %s (the whole trickle takes %s)", took, readTimeout, full)
			}
			t.Logf("closed after %s", took)
		})
	}
	wantStatus(t, ta.request(t, http.MethodGet, "/healthz", "", nil), http.StatusOK)
}

// TestPprofHidesCommandLine checks that the pprof listener does not serve
// /debug/pprof/cmdline, which shows the process's arguments (a secret given
// as -jwt-secret-key among them), and serves the profiles.
func TestPprofHidesCommandLine(t *testing.T) {
	t.Parallel()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	startApp(t, func(s *setup) { s.cfg.PprofAddr = addr })
	client := &http.Client{Timeout: 10 * time.Second}
	get := func(path string) (int, string) {
		resp, err := client.Get("http://" + addr + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	testenv.Eventually(t, 10*time.Second, func() bool { code, _ := get("/debug/pprof/"); return code == http.StatusOK },
		"pprof listener on %s not serving", addr)
	if code, body := get("/debug/pprof/cmdline"); code == http.StatusOK {
		t.Errorf("/debug/pprof/cmdline answers 200: %q", body)
	}
	if code, _ := get("/debug/pprof/goroutine?debug=1"); code != http.StatusOK {
		t.Errorf("/debug/pprof/goroutine answers %d, want 200", code)
	}
}

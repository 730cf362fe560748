package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/docket/docket/internal/docket"
	"github.com/docket/docket/internal/rabbitmq"
	"github.com/docket/docket/internal/testenv"
)

// testPartitions keeps each test vhost small: every partition is a quorum
// queue the broker has to create and later delete.
const testPartitions = 4

// testApp is a service started on 127.0.0.1:0 with its own database, vhost
// and JWT secret, and an HTTP client that checks the contract's invariants
// on every response it reads.
type testApp struct {
	*app
	addr    string // host:port
	base    string // http://host:port
	dbURL   string
	amqpURL string
	secret  string
	client  *http.Client

	collector collector

	stopOnce sync.Once
	stopErr  error
	served   chan error
}

// setup is what a test may change before its app starts.
type setup struct {
	cfg config
	// waitReady waits for /readyz 200 (database and broker up) before the
	// test starts; tests of a missing broker turn it off.
	waitReady bool
	// beforeServe runs on the app after newApp and before serve: the place
	// to wrap the server's handler.
	beforeServe func(*app)
	// logTo, when set, takes the app's log as JSON at debug level instead
	// of the test's log; it must be safe for concurrent writes.
	logTo io.Writer
}

// startApp starts an app and stops it when the test ends. Each option
// adjusts the setup, whose config starts from parseConfig's defaults with
// test-sized pools, BCRYPT_COST 4, a fresh 32-byte secret, and a sweeper
// that stays out of the way.
func startApp(t testing.TB, opts ...func(*setup)) *testApp {
	t.Helper()
	secret := randomHex(32)
	dbURL := testenv.Database(t)
	amqpURL := testenv.Vhost(t)
	cfg, err := parseConfig([]string{
		"-listen-addr", "127.0.0.1:0",
		"-jwt-secret-key", secret,
		"-database-url", dbURL,
		"-rabbitmq-url", amqpURL,
		"-bcrypt-cost", "4",
	})
	if err != nil {
		t.Fatalf("parseConfig: %v", err)
	}
	cfg.Postgres.MaxConns = 6 // many apps share the server's max_connections
	cfg.Postgres.Writers = 2
	cfg.RabbitMQ.Partitions = testPartitions
	cfg.RabbitMQ.ReconnectMin = 20 * time.Millisecond
	cfg.RabbitMQ.ReconnectMax = 200 * time.Millisecond
	cfg.SweepAfter = time.Hour
	cfg.BacklogInterval = 100 * time.Millisecond
	s := &setup{cfg: cfg, waitReady: true}
	for _, o := range opts {
		o(s)
	}
	if err := s.cfg.validate(); err != nil {
		t.Fatalf("test config: %v", err)
	}

	log := testLogger(t)
	if s.logTo != nil {
		log = slog.New(slog.NewJSONHandler(s.logTo, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	a, err := newApp(context.Background(), s.cfg, log, 10*time.Second)
	if err != nil {
		t.Fatalf("newApp: %v", err)
	}
	if s.beforeServe != nil {
		s.beforeServe(a)
	}
	ln, err := net.Listen("tcp", s.cfg.ListenAddr)
	if err != nil {
		_ = a.shutdown(context.Background())
		t.Fatalf("listen: %v", err)
	}
	ta := &testApp{
		app:     a,
		addr:    ln.Addr().String(),
		base:    "http://" + ln.Addr().String(),
		dbURL:   s.cfg.Postgres.URL,
		amqpURL: s.cfg.RabbitMQ.URL,
		secret:  secret,
		client:  &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
		served:  make(chan error, 1),
	}
	go func() { ta.served <- a.serve(ln) }()
	t.Cleanup(func() {
		if err := ta.stop(); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	t.Cleanup(ta.collector.close) // runs before the app stops
	if s.waitReady {
		testenv.Eventually(t, 20*time.Second, func() bool {
			return ta.request(t, http.MethodGet, "/readyz", "", nil).status == http.StatusOK
		}, "app not ready (database and broker)")
	}
	return ta
}

// stop shuts the app down once and waits for serve to return.
func (ta *testApp) stop() error {
	ta.stopOnce.Do(func() {
		ta.client.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		ta.stopErr = ta.app.shutdown(ctx)
		select {
		case err := <-ta.served:
			if err != nil {
				ta.stopErr = fmt.Errorf("serve: %w", err)
			}
		case <-ctx.Done():
			ta.stopErr = fmt.Errorf("serve did not return after shutdown")
		}
	})
	return ta.stopErr
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// testLogger writes to the test's log (see testenv.Logger).
func testLogger(t testing.TB) *slog.Logger { return testenv.Logger(t, slog.LevelInfo) }

// response is a read HTTP response.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) String() string {
	return fmt.Sprintf("%d %s", r.status, r.body)
}

// hdr builds a header from name, value pairs.
func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h[http.CanonicalHeaderKey(kv[i])] = append(h[http.CanonicalHeaderKey(kv[i])], kv[i+1])
	}
	return h
}

// bearer is the Authorization header of token.
func bearer(token string) http.Header { return hdr("Authorization", "Bearer "+token) }

// request sends one request and checks the invariants every response of
// API.md keeps (see checkResponse). A transport error fails the test.
func (ta *testApp) request(t testing.TB, method, path, body string, h http.Header) response {
	t.Helper()
	r, err := ta.tryRequest(method, path, body, h)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	ta.checkResponse(t, method+" "+path, path, r)
	return r
}

// tryRequest sends one request without checking anything; it is safe to
// call from any goroutine.
func (ta *testApp) tryRequest(method, path, body string, h http.Header) (response, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, ta.base+path, rd)
	if err != nil {
		return response{}, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := ta.client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, fmt.Errorf("read body: %w", err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

func (ta *testApp) get(t testing.TB, token, path string) response {
	t.Helper()
	return ta.request(t, http.MethodGet, path, "", bearer(token))
}

func (ta *testApp) post(t testing.TB, token, path, body string, kv ...string) response {
	t.Helper()
	h := hdr(kv...)
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	return ta.request(t, http.MethodPost, path, body, h)
}

// forbidden are strings no response body may hold: stack traces, panics,
// password hashes, SQL and driver errors. The app's JWT secret is added.
var forbidden = []string{"goroutine ", ".go:", "panic", "$2a$", "$2b$", "$2y$", "SELECT", "INSERT", "pgx", "pq: "}

// errorStatus maps each error code of API.md to the status it comes with.
var errorStatus = map[string][]int{
	"invalid_request":     {400},
	"payload_too_large":   {413},
	"username_taken":      {409},
	"invalid_credentials": {401},
	"unauthorized":        {401},
	"not_found":           {404},
	"method_not_allowed":  {405},
	"overloaded":          {429, 503},
	"unavailable":         {503},
	"internal":            {500},
}

// checkResponse checks what API.md promises of every response: an
// X-Request-Id, JSON with its content type (but /metrics), nothing secret or
// internal in the body, and on errors the one error shape with its headers.
func (ta *testApp) checkResponse(t testing.TB, what, path string, r response) {
	t.Helper()
	if id := r.header.Get("X-Request-Id"); !validRequestIDForTest(id) {
		t.Errorf("%s: X-Request-Id %q, want 1 to 128 printable characters", what, id)
	}
	for _, s := range append(slices.Clone(forbidden), ta.secret) {
		if bytes.Contains(r.body, []byte(s)) {
			t.Errorf("%s: body holds %q: %s", what, s, r.body)
		}
	}
	if strings.HasPrefix(path, "/metrics") && r.status == http.StatusOK {
		return
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q, want application/json (status %d)", what, ct, r.status)
	}
	if !json.Valid(r.body) {
		t.Errorf("%s: body is not JSON: %q", what, r.body)
	}
	if r.status < 400 {
		return
	}
	code, _ := errorShape(t, what, r)
	if st, ok := errorStatus[code]; !ok || !slices.Contains(st, r.status) {
		t.Errorf("%s: status %d with code %q, want one of %v", what, r.status, code, st)
	}
	switch code {
	case "overloaded", "unavailable":
		if r.header.Get("Retry-After") == "" {
			t.Errorf("%s: %s without Retry-After", what, code)
		}
	case "unauthorized":
		if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: WWW-Authenticate %q, want Bearer ...", what, r.header.Get("WWW-Authenticate"))
		}
	case "method_not_allowed":
		if r.header.Get("Allow") == "" {
			t.Errorf("%s: 405 without Allow", what)
		}
	}
}

func validRequestIDForTest(id string) bool {
	if len(id) < 1 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

// errorShape decodes API.md's error body, exactly
// {"error": {"code": "...", "message": "..."}}, and returns code and message.
func errorShape(t testing.TB, what string, r response) (code, message string) {
	t.Helper()
	var outer map[string]json.RawMessage
	if err := json.Unmarshal(r.body, &outer); err != nil || len(outer) != 1 || outer["error"] == nil {
		t.Errorf("%s: error body %q, want {\"error\": {...}} alone", what, r.body)
		return "", ""
	}
	var inner map[string]any
	if err := json.Unmarshal(outer["error"], &inner); err != nil || len(inner) != 2 {
		t.Errorf("%s: error %s, want exactly code and message", what, outer["error"])
		return "", ""
	}
	code, _ = inner["code"].(string)
	message, _ = inner["message"].(string)
	if code == "" || message == "" {
		t.Errorf("%s: error %s, want non-empty string code and message", what, outer["error"])
	}
	return code, message
}

// wantError checks r's status and error code.
func wantError(t testing.TB, r response, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Errorf("status %d, want %d %s: %s", r.status, status, code, r.body)
		return
	}
	if got, _ := errorShape(t, "", r); got != code {
		t.Errorf("error code %q, want %q: %s", got, code, r.body)
	}
}

// wantStatus fails the test unless r has the status.
func wantStatus(t testing.TB, r response, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
}

// decode unmarshals r's body into v, failing the test on error.
func decode[T any](t testing.TB, r response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
	return v
}

// user is a registered, logged-in user.
type user struct {
	id       uuid.UUID
	name     string
	password string
	token    string
}

// newUser registers a user with a random name and logs it in.
func (ta *testApp) newUser(t testing.TB) user {
	t.Helper()
	u := user{name: testenv.Name("u"), password: "password-" + randomHex(4)}
	u.id = ta.register(t, u.name, u.password)
	u.token = ta.login(t, u.name, u.password)
	return u
}

func credentials(name, password string) string {
	b, _ := json.Marshal(map[string]string{"username": name, "password": password})
	return string(b)
}

// register registers a user and returns its id.
func (ta *testApp) register(t testing.TB, name, password string) uuid.UUID {
	t.Helper()
	r := ta.post(t, "", "/auth/register", credentials(name, password))
	wantStatus(t, r, http.StatusCreated)
	got := decode[struct {
		ID       uuid.UUID `json:"id"`
		Username string    `json:"username"`
	}](t, r)
	if got.ID == uuid.Nil || got.Username != name {
		t.Fatalf("register %q: %s", name, r.body)
	}
	return got.ID
}

// login logs a user in and returns the access token.
func (ta *testApp) login(t testing.TB, name, password string) string {
	t.Helper()
	r := ta.post(t, "", "/auth/login", credentials(name, password))
	wantStatus(t, r, http.StatusOK)
	return decode[struct {
		AccessToken string `json:"access_token"`
	}](t, r).AccessToken
}

// accepted is the 202 body of POST /requests.
type accepted struct {
	ID     uuid.UUID `json:"id"`
	Seq    int64     `json:"seq"`
	Status string    `json:"status"`
}

// submit posts a request that must be accepted, and returns the answer.
func (ta *testApp) submit(t testing.TB, token, body string, kv ...string) accepted {
	t.Helper()
	r := ta.post(t, token, "/requests", body, kv...)
	wantStatus(t, r, http.StatusAccepted)
	a := decode[accepted](t, r)
	if a.ID == uuid.Nil || a.Seq < 1 || a.Status != "queued" {
		t.Fatalf("202 body %s, want id, seq >= 1 and status queued", r.body)
	}
	if loc := r.header.Get("Location"); loc != "/requests/"+a.ID.String() {
		t.Errorf("Location %q, want /requests/%s", loc, a.ID)
	}
	return a
}

// requestBody is GET /requests/{id}'s body.
type requestBody struct {
	ID          uuid.UUID       `json:"id"`
	Seq         int64           `json:"seq"`
	Type        string          `json:"type"`
	Status      string          `json:"status"`
	Payload     json.RawMessage `json:"payload"`
	Result      json.RawMessage `json:"result"`
	Error       *string         `json:"error"`
	Attempts    int             `json:"attempts"`
	AcceptedAt  string          `json:"accepted_at"`
	ProcessedAt *string         `json:"processed_at"`
}

type listBody struct {
	Requests     []requestBody `json:"requests"`
	NextAfterSeq *int64        `json:"next_after_seq"`
}

// rawExchange writes raw bytes on a new connection and reads one response;
// the response's invariants are checked like request's.
func (ta *testApp) rawExchange(t testing.TB, raw string) response {
	t.Helper()
	conn, err := net.DialTimeout("tcp", ta.addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatalf("write: %v", err)
	}
	r := readResponse(t, bufio.NewReader(conn))
	ta.checkResponse(t, "raw "+strings.SplitN(raw, "\r\n", 2)[0], "", r)
	return r
}

// readResponse reads one complete HTTP response from br.
func readResponse(t testing.TB, br *bufio.Reader) response {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read response body (status %d): %v", resp.StatusCode, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// manage calls the RabbitMQ management API.
func manage(t testing.TB, method, path, body string) {
	t.Helper()
	base, err := url.Parse(testenv.ManagementURL())
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(method, base.Scheme+"://"+base.Host+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if base.User != nil {
		pw, _ := base.User.Password()
		req.SetBasicAuth(base.User.Username(), pw)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s: %s: %s", method, path, resp.Status, answer)
	}
}

// vhostOf returns the vhost of an AMQP URL.
func vhostOf(t testing.TB, amqpURL string) string {
	t.Helper()
	u, err := amqp.ParseURI(amqpURL)
	if err != nil {
		t.Fatalf("parse %s: %v", amqpURL, err)
	}
	return u.Vhost
}

// messages waits until until returns true for the messages consumed so far
// from partition queue p of the app's vhost, and returns them. A partition
// queue has a single active consumer, so one collector per app consumes
// every partition for all the app's tests; each body must be exactly the
// contract's message: id, user_id, seq, type and, when small, payload.
func (ta *testApp) messages(t testing.TB, p int, until func([]docket.Message) bool) []docket.Message {
	t.Helper()
	var got []docket.Message
	testenv.Eventually(t, 15*time.Second, func() bool {
		if err := ta.collector.consume(ta.amqpURL); err != nil {
			t.Logf("consume: %v", err)
			return false
		}
		var bad []string
		got, bad = ta.collector.snapshot(p)
		for _, b := range bad {
			t.Errorf("message %s: want an object of exactly id, user_id, seq >= 1, type and maybe payload", b)
		}
		return until(got)
	}, "messages in %s: %v", rabbitmq.PartitionQueue(p), &got)
	return got
}

// messageFields reports whether a message has exactly the fields of the
// wire form: id, user_id, seq, type and, optionally, payload.
func messageFields(fields map[string]json.RawMessage) bool {
	_, payload := fields["payload"]
	n := 4
	if payload {
		n++
	}
	for _, f := range []string{"id", "user_id", "seq", "type"} {
		if _, ok := fields[f]; !ok {
			return false
		}
	}
	return len(fields) == n
}

// collector consumes every partition queue of a vhost and keeps what it got.
type collector struct {
	mu   sync.Mutex
	conn *amqp.Connection
	got  map[int][]docket.Message
	bad  []string // bodies that are not a message
}

// consume (re)connects when not connected: a deleted vhost closes the
// connection.
func (c *collector) consume(amqpURL string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil && !c.conn.IsClosed() {
		return nil
	}
	conn, err := amqp.Dial(amqpURL)
	if err != nil {
		return err
	}
	ch, err := conn.Channel()
	if err != nil {
		conn.Close()
		return err
	}
	for p := range testPartitions {
		deliveries, err := ch.Consume(rabbitmq.PartitionQueue(p), "", true /* autoAck */, false, false, false, nil)
		if err != nil {
			conn.Close()
			return fmt.Errorf("consume %s: %w", rabbitmq.PartitionQueue(p), err)
		}
		go func() {
			for d := range deliveries {
				var fields map[string]json.RawMessage
				m, err := docket.DecodeMessage(d.Body)
				c.mu.Lock()
				if err != nil || json.Unmarshal(d.Body, &fields) != nil || !messageFields(fields) {
					c.bad = append(c.bad, string(d.Body))
				} else {
					if c.got == nil {
						c.got = map[int][]docket.Message{}
					}
					c.got[p] = append(c.got[p], m)
				}
				c.mu.Unlock()
			}
		}()
	}
	c.conn = conn
	return nil
}

func (c *collector) snapshot(p int) ([]docket.Message, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	bad := c.bad
	c.bad = nil
	return slices.Clone(c.got[p]), bad
}

func (c *collector) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil {
		_ = c.conn.Close()
	}
}

// hasMessage reports whether ms holds want. Payloads compare as JSON; a
// nil payload matches only a message that carries none.
func hasMessage(want docket.Message) func([]docket.Message) bool {
	return func(ms []docket.Message) bool {
		return slices.ContainsFunc(ms, func(m docket.Message) bool {
			return m.ID == want.ID && m.UserID == want.UserID && m.Seq == want.Seq && m.Type == want.Type &&
				(m.Payload == nil) == (want.Payload == nil) &&
				(want.Payload == nil || jsonEqual(m.Payload, string(want.Payload)))
		})
	}
}

// adminExec runs a statement on the server's admin database.
func adminExec(t testing.TB, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, testenv.PostgresAdminURL())
	if err != nil {
		t.Fatalf("connect to %s: %v", testenv.PostgresAdminURL(), err)
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// countRequests counts the rows of the app's requests table.
func (ta *testApp) countRequests(t testing.TB) int {
	t.Helper()
	var n int
	if err := ta.db.Pool.QueryRow(context.Background(), "SELECT count(*) FROM requests").Scan(&n); err != nil {
		t.Fatalf("count requests: %v", err)
	}
	return n
}

// databaseName returns the database of a PostgreSQL URL.
func databaseName(t testing.TB, dbURL string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(u.Path, "/")
}

// freePort returns a local TCP port that nothing listens on.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	return port
}

// Package api is the bench's client of docket's HTTP contract (API.md):
// accounts, the request listing and the health endpoints. The attack itself
// goes through vegeta (package attack); everything else the bench asks the
// server goes through a Client, so that the bench verifies any server that
// implements API.md the same way, local or remote.
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Client talks to one docket API.
type Client struct {
	base string
	http *http.Client
	// MaxRetryWait bounds the total time one call spends waiting on
	// Retry-After answers (503 overloaded) before it gives up.
	MaxRetryWait time.Duration
}

// New returns a Client for the API at base (http://host:port).
func New(base string) *Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return &Client{
		base:         strings.TrimRight(base, "/"),
		http:         &http.Client{Transport: tr, Timeout: 30 * time.Second},
		MaxRetryWait: 2 * time.Minute,
	}
}

// Base is the API's base URL.
func (c *Client) Base() string { return c.base }

// StatusError is an answer the caller did not expect.
type StatusError struct {
	Op     string
	Status int
	Code   string // API.md error code, if the body had one
	Body   string
}

func (e *StatusError) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("%s: status %d (%s)", e.Op, e.Status, e.Code)
	}
	return fmt.Sprintf("%s: status %d: %.200s", e.Op, e.Status, e.Body)
}

// User is one bench user: its credentials and its current token. The token
// is swapped atomically when it is refreshed during a long attack.
type User struct {
	Name     string
	Password string
	Group    string
	token    atomic.Pointer[credential]
	expires  atomic.Int64 // unix nanoseconds
}

// credential is a token with its Authorization header value, built once
// per login rather than once per request of the attack.
type credential struct {
	token, authorization string
}

// Token returns the user's current bearer token ("" before login).
func (u *User) Token() string {
	if c := u.token.Load(); c != nil {
		return c.token
	}
	return ""
}

// Authorization returns "Bearer <token>" for the current token ("" before
// login).
func (u *User) Authorization() string {
	if c := u.token.Load(); c != nil {
		return c.authorization
	}
	return ""
}

// Expires is when the current token expires.
func (u *User) Expires() time.Time { return time.Unix(0, u.expires.Load()) }

// SetToken stores a token and its expiry.
func (u *User) SetToken(tok string, expires time.Time) {
	u.token.Store(&credential{token: tok, authorization: "Bearer " + tok})
	u.expires.Store(expires.UnixNano())
}

// Health reports whether GET /healthz answers 200.
func (c *Client) Health(ctx context.Context) bool {
	return c.status(ctx, "/healthz") == http.StatusOK
}

// Ready reports whether GET /readyz answers 200.
func (c *Client) Ready(ctx context.Context) bool {
	return c.status(ctx, "/readyz") == http.StatusOK
}

func (c *Client) status(ctx context.Context, path string) int {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return 0
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// Register creates the user's account (201). A 409 username_taken is an
// error: bench usernames carry the run id and must be new.
func (c *Client) Register(ctx context.Context, u *User) error {
	body, _ := json.Marshal(map[string]string{"username": u.Name, "password": u.Password})
	_, err := c.retrying(ctx, "register "+u.Name, http.MethodPost, "/auth/register", "", body, http.StatusCreated)
	return err
}

// Login logs the user in and stores its token.
func (c *Client) Login(ctx context.Context, u *User) error {
	body, _ := json.Marshal(map[string]string{"username": u.Name, "password": u.Password})
	resp, err := c.retrying(ctx, "login "+u.Name, http.MethodPost, "/auth/login", "", body, http.StatusOK)
	if err != nil {
		return err
	}
	var out struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := json.Unmarshal(resp, &out); err != nil || out.AccessToken == "" {
		return fmt.Errorf("login %s: the 200 body has no access_token: %.200s", u.Name, resp)
	}
	if out.ExpiresIn <= 0 {
		out.ExpiresIn = 3600
	}
	u.SetToken(out.AccessToken, time.Now().Add(time.Duration(out.ExpiresIn)*time.Second))
	return nil
}

// Row is one request as GET /requests lists it, reduced to what the bench
// verifies.
type Row struct {
	ID          string     `json:"id"`
	Seq         int64      `json:"seq"`
	Type        string     `json:"type"`
	Status      string     `json:"status"`
	Attempts    int        `json:"attempts"`
	AcceptedAt  time.Time  `json:"accepted_at"`
	ProcessedAt *time.Time `json:"processed_at"`
}

// Finished reports whether the row is done or failed.
func (r Row) Finished() bool { return r.Status == "done" || r.Status == "failed" }

// Page is one page of GET /requests.
type Page struct {
	Requests     []Row  `json:"requests"`
	NextAfterSeq *int64 `json:"next_after_seq"`
}

// ListPage fetches one page of the user's requests after afterSeq.
func (c *Client) ListPage(ctx context.Context, u *User, afterSeq int64, limit int) (Page, error) {
	path := "/requests?after_seq=" + strconv.FormatInt(afterSeq, 10) + "&limit=" + strconv.Itoa(limit)
	body, err := c.retrying(ctx, "list requests of "+u.Name, http.MethodGet, path, u.Token(), nil, http.StatusOK)
	if err != nil {
		return Page{}, err
	}
	var p Page
	if err := json.Unmarshal(body, &p); err != nil {
		return Page{}, fmt.Errorf("list requests of %s after_seq=%d: bad body: %w", u.Name, afterSeq, err)
	}
	return p, nil
}

// ListAfter fetches all of the user's requests after afterSeq, page by page
// (limit 1000), in the order the API lists them.
func (c *Client) ListAfter(ctx context.Context, u *User, afterSeq int64) ([]Row, error) {
	var rows []Row
	for {
		p, err := c.ListPage(ctx, u, afterSeq, 1000)
		if err != nil {
			return rows, err
		}
		rows = append(rows, p.Requests...)
		if p.NextAfterSeq == nil {
			return rows, nil
		}
		if *p.NextAfterSeq <= afterSeq {
			return rows, fmt.Errorf("list requests of %s: next_after_seq %d does not advance past %d", u.Name, *p.NextAfterSeq, afterSeq)
		}
		afterSeq = *p.NextAfterSeq
	}
}

// retrying sends a request and retries 503 and 429 answers after their
// Retry-After (or a short backoff), up to MaxRetryWait in all. Any other
// status than want is a *StatusError.
func (c *Client) retrying(ctx context.Context, op, method, path, token string, body []byte, want int) ([]byte, error) {
	deadline := time.Now().Add(c.MaxRetryWait)
	backoff := 100 * time.Millisecond
	for {
		status, header, resp, err := c.do(ctx, method, path, token, body)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		if status == want {
			return resp, nil
		}
		if status != http.StatusServiceUnavailable && status != http.StatusTooManyRequests {
			return nil, statusError(op, status, resp)
		}
		wait := backoff
		if s, err := strconv.Atoi(header.Get("Retry-After")); err == nil && s >= 0 {
			wait = time.Duration(s) * time.Second
		}
		// A little jitter-free growth keeps a crowd of retrying users from
		// coming back in lockstep forever.
		wait += backoff
		backoff = min(backoff*2, 2*time.Second)
		if time.Now().Add(wait).After(deadline) {
			return nil, fmt.Errorf("%s: still %d after retrying for %s: %w", op, status, c.MaxRetryWait, statusError(op, status, resp))
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%s: %w", op, ctx.Err())
		case <-time.After(wait):
		}
	}
}

func (c *Client) do(ctx context.Context, method, path, token string, body []byte) (int, http.Header, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, nil, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return 0, nil, nil, err
	}
	return resp.StatusCode, resp.Header, b, nil
}

func statusError(op string, status int, body []byte) error {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	return &StatusError{Op: op, Status: status, Code: e.Error.Code, Body: string(body)}
}

// IsStatus reports whether err is a *StatusError with the given status.
func IsStatus(err error, status int) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Status == status
}

// Probe sends GET path once and returns the status (0: no answer within
// timeout) and the time to the end of the answer.
func (c *Client) Probe(ctx context.Context, path string, timeout time.Duration) (int, time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return 0, 0
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, time.Since(start)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, time.Since(start)
	}
	return resp.StatusCode, time.Since(start)
}

// Gauge reads one unlabelled sample, such as docket_backlog, from the
// API's GET /metrics (Prometheus text).
func (c *Client) Gauge(ctx context.Context, name string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	status, _, body, err := c.do(ctx, http.MethodGet, "/metrics", "", nil)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", name, err)
	}
	if status != http.StatusOK {
		return 0, fmt.Errorf("read %s: GET /metrics answered %d", name, status)
	}
	return ParseGauge(body, name)
}

// ParseGauge finds the unlabelled sample name in a Prometheus text
// exposition.
func ParseGauge(text []byte, name string) (float64, error) {
	for line := range strings.Lines(string(text)) {
		rest, ok := strings.CutPrefix(line, name+" ")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			break
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return 0, fmt.Errorf("read %s: bad value %q", name, fields[0])
		}
		return v, nil
	}
	return 0, fmt.Errorf("read %s: not in GET /metrics", name)
}

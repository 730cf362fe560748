// Package fakedocket is a small in-memory server of docket's HTTP contract
// (API.md) for the bench's own tests: accounts, tokens, POST /requests with
// per-user seq, a processor that finishes requests in seq order, and the
// listing. Faults can be switched on to make it break the contract in the
// ways the bench's verifier must catch. It is no model of the real server's
// performance and is not used outside tests.
package fakedocket

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Faults make the server break API.md on purpose.
type Faults struct {
	// NeverFinishSeq leaves each user's request with this seq queued (lost).
	NeverFinishSeq int64
	// SkipSeq makes each user's seq jump past this value (a gap).
	SkipSeq int64
	// FinishOutOfOrder stamps each user's seq 2 as finished before seq 1.
	FinishOutOfOrder bool
	// OverloadLogins answers the first n logins and registrations 503.
	OverloadLogins int64
	// Delay holds every POST /requests answer this long.
	Delay time.Duration
}

// Server is a running fake.
type Server struct {
	*httptest.Server
	faults Faults

	mu       sync.Mutex
	users    map[string]*user // by name
	byToken  map[string]*user
	overload atomic.Int64
	stop     chan struct{}
	// lastFinish keeps processed_at strictly rising (under mu).
	lastFinish time.Time

	// Posts counts POST /requests by the user their token belongs to.
	Posts sync.Map // user name -> *atomic.Int64
}

type user struct {
	name, password string
	rows           []*row
	nextSeq        int64
	finishedUpTo   int
}

type row struct {
	ID          string  `json:"id"`
	Seq         int64   `json:"seq"`
	Type        string  `json:"type"`
	Status      string  `json:"status"`
	Payload     any     `json:"payload"`
	Result      any     `json:"result"`
	Error       *string `json:"error"`
	Attempts    int     `json:"attempts"`
	AcceptedAt  string  `json:"accepted_at"`
	ProcessedAt *string `json:"processed_at"`
	accepted    time.Time
}

const timeFormat = "2006-01-02T15:04:05.000000Z"

// Start starts a fake with the given faults; Close stops it.
func Start(f Faults) *Server {
	s := &Server{faults: f, users: map[string]*user{}, byToken: map[string]*user{}}
	s.overload.Store(f.OverloadLogins)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { write(w, 200, map[string]string{"status": "ok"}) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { write(w, 200, map[string]string{"status": "ok"}) })
	mux.HandleFunc("POST /auth/register", s.register)
	mux.HandleFunc("POST /auth/login", s.login)
	mux.HandleFunc("POST /requests", s.submit)
	mux.HandleFunc("GET /requests", s.list)
	mux.HandleFunc("GET /metrics", s.metrics)
	s.Server = httptest.NewServer(mux)
	s.stop = make(chan struct{})
	go s.process()
	return s
}

// Close stops the server and its processor.
func (s *Server) Close() {
	s.Server.Close()
	close(s.stop)
}

func write(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func fail(w http.ResponseWriter, status int, code string) {
	write(w, status, map[string]any{"error": map[string]string{"code": code, "message": code}})
}

func (s *Server) shed(w http.ResponseWriter) bool {
	if s.overload.Add(-1) >= 0 {
		w.Header().Set("Retry-After", "0")
		fail(w, http.StatusServiceUnavailable, "overloaded")
		return true
	}
	return false
}

type creds struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

func (s *Server) register(w http.ResponseWriter, r *http.Request) {
	if s.shed(w) {
		return
	}
	var c creds
	if err := json.NewDecoder(r.Body).Decode(&c); err != nil || len(c.Username) < 3 || len(c.Password) < 8 {
		fail(w, 400, "invalid_request")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[strings.ToLower(c.Username)]; ok {
		fail(w, 409, "username_taken")
		return
	}
	s.users[strings.ToLower(c.Username)] = &user{name: c.Username, password: c.Password}
	write(w, 201, map[string]string{"id": newID(), "username": c.Username})
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if s.shed(w) {
		return
	}
	var c creds
	if err := json.NewDecoder(r.Body).Decode(&c); err != nil {
		fail(w, 400, "invalid_request")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[strings.ToLower(c.Username)]
	if !ok || u.password != c.Password {
		fail(w, 401, "invalid_credentials")
		return
	}
	tok := "tok-" + newID()
	s.byToken[tok] = u
	write(w, 200, map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 3600})
}

func (s *Server) auth(w http.ResponseWriter, r *http.Request) *user {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	u := s.byToken[tok]
	s.mu.Unlock()
	if !ok || u == nil {
		w.Header().Set("WWW-Authenticate", "Bearer")
		fail(w, 401, "unauthorized")
		return nil
	}
	return u
}

func (s *Server) submit(w http.ResponseWriter, r *http.Request) {
	if strings.Contains(r.RequestURI, "#") {
		fail(w, 400, "invalid_request") // a fragment must never leave the client
		return
	}
	u := s.auth(w, r)
	if u == nil {
		return
	}
	var body struct {
		Type    string `json:"type"`
		Payload any    `json:"payload"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		fail(w, 400, "invalid_request")
		return
	}
	if !slices.Contains([]string{"echo", "sleep", "cpu", "fail"}, body.Type) {
		fail(w, 400, "invalid_request")
		return
	}
	n, _ := s.Posts.LoadOrStore(u.name, new(atomic.Int64))
	n.(*atomic.Int64).Add(1)
	now := time.Now().UTC()
	s.mu.Lock()
	u.nextSeq++
	if s.faults.SkipSeq > 0 && u.nextSeq == s.faults.SkipSeq {
		u.nextSeq++
	}
	rw := &row{ID: newID(), Seq: u.nextSeq, Type: body.Type, Status: "queued", Payload: body.Payload, AcceptedAt: now.Format(timeFormat), accepted: now}
	u.rows = append(u.rows, rw)
	id, seq := rw.ID, rw.Seq
	s.mu.Unlock()
	if s.faults.Delay > 0 {
		time.Sleep(s.faults.Delay)
	}
	w.Header().Set("Location", "/requests/"+id)
	write(w, 202, map[string]any{"id": id, "seq": seq, "status": "queued"})
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	u := s.auth(w, r)
	if u == nil {
		return
	}
	after, _ := strconv.ParseInt(r.URL.Query().Get("after_seq"), 10, 64)
	limit, err := strconv.Atoi(r.URL.Query().Get("limit"))
	if err != nil || limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []row{}
	var next *int64
	for _, rw := range u.rows {
		if rw.Seq <= after {
			continue
		}
		if len(out) == limit {
			n := out[len(out)-1].Seq
			next = &n
			break
		}
		out = append(out, *rw)
	}
	write(w, 200, map[string]any{"requests": out, "next_after_seq": next})
}

// process finishes queued requests in each user's seq order.
func (s *Server) process() {
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.mu.Lock()
		for _, u := range s.users {
			for ; u.finishedUpTo < len(u.rows); u.finishedUpTo++ {
				if rw := u.rows[u.finishedUpTo]; rw.Seq != s.faults.NeverFinishSeq {
					s.finish(u, rw)
				}
			}
		}
		s.mu.Unlock()
	}
}

func (s *Server) finish(u *user, rw *row) {
	now := time.Now().UTC()
	if !now.After(s.lastFinish) {
		now = s.lastFinish.Add(time.Microsecond)
	}
	s.lastFinish = now
	if s.faults.FinishOutOfOrder && rw.Seq == 2 && u.rows[0].ProcessedAt != nil {
		// Claim seq 2 finished a millisecond before seq 1 did.
		first, _ := time.Parse(timeFormat, *u.rows[0].ProcessedAt)
		now = first.Add(-time.Millisecond)
	}
	p := now.Format(timeFormat)
	rw.ProcessedAt = &p
	rw.Status = "done"
	rw.Result = rw.Payload
	rw.Attempts = 1
}

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// metrics serves docket_backlog: the requests accepted and not finished.
func (s *Server) metrics(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	n := 0
	for _, u := range s.users {
		for _, rw := range u.rows {
			if rw.ProcessedAt == nil {
				n++
			}
		}
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	fmt.Fprintf(w, "docket_backlog_limit 100000\ndocket_backlog %d\n", n)
}

package postgres

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/docket/docket/internal/docket"
	"github.com/docket/docket/internal/testenv"
)

func openTestDB(t *testing.T) *DB {
	t.Helper()
	db, err := Open(context.Background(), Config{URL: testenv.Database(t), Writers: 2, MaxBatch: 16}, 5*time.Second,
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(db.Close)
	return db
}

func newUser(t *testing.T, db *DB, name string) uuid.UUID {
	t.Helper()
	id := uuid.New()
	if err := db.CreateUser(context.Background(), id, name, "hash"); err != nil {
		t.Fatalf("create user %s: %v", name, err)
	}
	return id
}

var echo = docket.Submission{Type: docket.TypeEcho, Payload: json.RawMessage(`{"n":1}`)}

func TestMigrateIsIdempotent(t *testing.T) {
	url := testenv.Database(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for range 3 { // processes that start together
		wg.Go(func() {
			db, err := Open(context.Background(), Config{URL: url}, 5*time.Second, log)
			if err == nil {
				db.Close()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("open: %v", err)
		}
	}
}

func TestCreateUserUniqueCaseInsensitive(t *testing.T) {
	db := openTestDB(t)
	ctx := context.Background()
	newUser(t, db, "Alice")
	err := db.CreateUser(ctx, uuid.New(), "aLICE", "hash")
	if docket.ErrorCode(err) != docket.CodeUsernameTaken {
		t.Fatalf("second alice: got %v, want username_taken", err)
	}
	id, hash, found, err := db.UserByName(ctx, "ALICE")
	if err != nil || !found || hash != "hash" || id == uuid.Nil {
		t.Fatalf("UserByName = %v %q %v %v", id, hash, found, err)
	}
	if _, _, found, err := db.UserByName(ctx, "bob"); found || err != nil {
		t.Fatalf("unknown user: found=%v err=%v", found, err)
	}
}

// Concurrent accepts of several users get gapless seqs 1..n per user, and a
// request accepted before another was submitted has the smaller seq.
func TestAcceptSeqsAreGaplessAndOrdered(t *testing.T) {
	db := openTestDB(t)
	in := NewIntake(db, nil)
	defer in.Close()
	users := []uuid.UUID{newUser(t, db, "u1"), newUser(t, db, "u2"), newUser(t, db, "u3")}
	const perStream, streams = 40, 4
	var (
		mu   sync.Mutex
		seqs = map[uuid.UUID][]int64{}
		wg   sync.WaitGroup
	)
	for _, u := range users {
		for range streams {
			wg.Go(func() {
				last := int64(0)
				for range perStream {
					a, err := in.Accept(context.Background(), u, echo, "")
					if err != nil {
						t.Errorf("accept: %v", err)
						return
					}
					if a.Seq <= last {
						t.Errorf("user %s: seq %d after %d in one sequential stream", u, a.Seq, last)
					}
					last = a.Seq
					mu.Lock()
					seqs[u] = append(seqs[u], a.Seq)
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	for _, u := range users {
		got := map[int64]bool{}
		for _, s := range seqs[u] {
			if got[s] {
				t.Fatalf("user %s: seq %d handed out twice", u, s)
			}
			got[s] = true
		}
		for s := int64(1); s <= perStream*streams; s++ {
			if !got[s] {
				t.Fatalf("user %s: seq %d missing", u, s)
			}
		}
	}
	n, err := db.Backlog(context.Background())
	if err != nil || n != int64(len(users)*perStream*streams) {
		t.Fatalf("backlog = %d, %v; want %d", n, err, len(users)*perStream*streams)
	}
}

func TestAcceptUnknownUserIsUnauthorized(t *testing.T) {
	db := openTestDB(t)
	in := NewIntake(db, nil)
	defer in.Close()
	_, err := in.Accept(context.Background(), uuid.New(), echo, "")
	if docket.ErrorCode(err) != docket.CodeUnauthorized {
		t.Fatalf("got %v, want unauthorized", err)
	}
	_, err = in.Accept(context.Background(), uuid.New(), echo, "key")
	if docket.ErrorCode(err) != docket.CodeUnauthorized {
		t.Fatalf("keyed: got %v, want unauthorized", err)
	}
}

// The same key sent many times at once makes one request; every answer
// names it, and the counter moved once.
func TestIdempotencyKeyConcurrentDuplicates(t *testing.T) {
	db := openTestDB(t)
	in := NewIntake(db, nil)
	defer in.Close()
	u := newUser(t, db, "idem")
	other := newUser(t, db, "other")
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		got []Accepted
	)
	for range 20 {
		wg.Go(func() {
			a, err := in.Accept(context.Background(), u, echo, "same-key")
			if err != nil {
				t.Errorf("accept: %v", err)
				return
			}
			mu.Lock()
			got = append(got, a)
			mu.Unlock()
		})
	}
	wg.Wait()
	first := 0
	for _, a := range got {
		if a.ID != got[0].ID || a.Seq != got[0].Seq {
			t.Fatalf("answers differ: %+v vs %+v", a, got[0])
		}
		if !a.Replayed {
			first++
		}
	}
	if first != 1 {
		t.Fatalf("%d answers created the request, want 1", first)
	}
	list, _, err := db.ListRequests(context.Background(), u, 0, 100)
	if err != nil || len(list) != 1 || list[0].Seq != 1 {
		t.Fatalf("list = %+v, %v; want one request with seq 1", list, err)
	}
	// Keys are per user.
	a, err := in.Accept(context.Background(), other, echo, "same-key")
	if err != nil || a.Replayed || a.Seq != 1 {
		t.Fatalf("other user's same key: %+v %v", a, err)
	}
	// The counter did not move for the replays: the next request is seq 2.
	a, err = in.Accept(context.Background(), u, echo, "")
	if err != nil || a.Seq != 2 {
		t.Fatalf("next request: seq %d, %v; want 2", a.Seq, err)
	}
}

func TestGetAndListRequests(t *testing.T) {
	db := openTestDB(t)
	in := NewIntake(db, nil)
	defer in.Close()
	ctx := context.Background()
	u, other := newUser(t, db, "owner"), newUser(t, db, "stranger")
	var ids []uuid.UUID
	for range 5 {
		a, err := in.Accept(ctx, u, echo, "")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, a.ID)
	}
	r, err := db.GetRequest(ctx, u, ids[2])
	if err != nil || r.Seq != 3 || r.Status != docket.StatusQueued || string(r.Payload) != `{"n": 1}` || !r.ProcessedAt.IsZero() {
		t.Fatalf("get = %+v, %v", r, err)
	}
	if _, err := db.GetRequest(ctx, other, ids[2]); docket.ErrorCode(err) != docket.CodeNotFound {
		t.Fatalf("another user's request: %v, want not_found", err)
	}
	if _, err := db.GetRequest(ctx, u, uuid.New()); docket.ErrorCode(err) != docket.CodeNotFound {
		t.Fatalf("unknown id: %v, want not_found", err)
	}
	page, more, err := db.ListRequests(ctx, u, 1, 2)
	if err != nil || !more || len(page) != 2 || page[0].Seq != 2 || page[1].Seq != 3 {
		t.Fatalf("page = %+v more=%v %v", page, more, err)
	}
	page, more, err = db.ListRequests(ctx, u, 3, 2)
	if err != nil || more || len(page) != 2 || page[1].Seq != 5 {
		t.Fatalf("last page = %+v more=%v %v", page, more, err)
	}
}

// Claims succeed only for the user's next request; finishes only apply in
// order and move the counter; processed_at strictly rises.
func TestClaimAndFinishFollowTheCounter(t *testing.T) {
	db := openTestDB(t)
	in := NewIntake(db, nil)
	defer in.Close()
	p := NewProcessing(db)
	defer p.Close()
	ctx := context.Background()
	u := newUser(t, db, "worker")
	var msgs []docket.Message
	for range 3 {
		a, err := in.Accept(ctx, u, echo, "")
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, a.Message())
	}
	if _, ok, err := p.Claim(ctx, msgs[1]); ok || err != nil {
		t.Fatalf("claim of seq 2 before seq 1: ok=%v err=%v", ok, err)
	}
	c, ok, err := p.Claim(ctx, msgs[0])
	if !ok || err != nil || c.Attempts != 1 || string(c.Payload) != `{"n": 1}` {
		t.Fatalf("claim seq 1: %+v ok=%v err=%v", c, ok, err)
	}
	if f, err := p.Finish(ctx, Finish{ID: msgs[1].ID, UserID: u, Seq: 2, Status: docket.StatusDone, Result: []byte(`1`)}); f.Applied || err != nil {
		t.Fatalf("finish of seq 2 before seq 1: %+v err=%v", f, err)
	}
	for i, m := range msgs {
		if _, ok, err := p.Claim(ctx, m); !ok || err != nil {
			t.Fatalf("claim seq %d: ok=%v err=%v", m.Seq, ok, err)
		}
		st := docket.StatusDone
		if i == 1 {
			st = docket.StatusFailed
		}
		f, err := p.Finish(ctx, Finish{ID: m.ID, UserID: u, Seq: m.Seq, Status: st, Result: []byte(`{"ok":true}`), Error: "boom"})
		if !f.Applied || err != nil || f.AcceptedAt.IsZero() {
			t.Fatalf("finish seq %d: %+v err=%v", m.Seq, f, err)
		}
		// A second finish of the same request (a redelivery) changes nothing.
		if f, err := p.Finish(ctx, Finish{ID: m.ID, UserID: u, Seq: m.Seq, Status: docket.StatusDone}); f.Applied || err != nil {
			t.Fatalf("refinish seq %d: %+v err=%v", m.Seq, f, err)
		}
	}
	list, _, err := db.ListRequests(ctx, u, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range list {
		if i > 0 && !r.ProcessedAt.After(list[i-1].ProcessedAt) {
			t.Fatalf("processed_at of seq %d (%s) not after seq %d (%s)", r.Seq, r.ProcessedAt, list[i-1].Seq, list[i-1].ProcessedAt)
		}
	}
	if list[1].Status != docket.StatusFailed || list[1].Error != "boom" || list[0].Error != "" {
		t.Fatalf("statuses: %+v", list)
	}
	st, err := p.State(ctx, msgs[2].ID)
	if err != nil || st.FinishedSeq != 3 || st.Status != docket.StatusDone {
		t.Fatalf("state = %+v, %v", st, err)
	}
	if _, err := p.State(ctx, uuid.New()); err != ErrNoRequest {
		t.Fatalf("state of unknown id: %v", err)
	}
	if n, err := db.Backlog(ctx); n != 0 || err != nil {
		t.Fatalf("backlog = %d, %v", n, err)
	}
}

func TestUnfinishedAndStalled(t *testing.T) {
	db := openTestDB(t)
	in := NewIntake(db, nil)
	defer in.Close()
	p := NewProcessing(db)
	defer p.Close()
	ctx := context.Background()
	u := newUser(t, db, "gappy")
	var last Accepted
	for range 4 {
		a, err := in.Accept(ctx, u, echo, "")
		if err != nil {
			t.Fatal(err)
		}
		last = a
	}
	gap, err := p.Unfinished(ctx, u, 0, 4)
	if err != nil || len(gap) != 3 || gap[0].Seq != 1 || gap[2].Seq != 3 {
		t.Fatalf("unfinished = %+v, %v", gap, err)
	}
	stalled, err := db.Stalled(ctx, time.Hour, 10)
	if err != nil || len(stalled) != 0 {
		t.Fatalf("stalled (1h) = %+v, %v", stalled, err)
	}
	time.Sleep(20 * time.Millisecond)
	stalled, err = db.Stalled(ctx, 10*time.Millisecond, 10)
	if err != nil || len(stalled) != 1 || !reflect.DeepEqual(stalled[0], withoutPayload(last.Message())) {
		t.Fatalf("stalled = %+v, %v; want the newest request %+v", stalled, err, last.Message())
	}
}

// A page stops early once its payloads pass the byte budget, and says more
// follow, so a list of large requests cannot build a huge response.
func TestListRequestsByteBudget(t *testing.T) {
	db := openTestDB(t)
	in := NewIntake(db, nil)
	defer in.Close()
	ctx := context.Background()
	u := newUser(t, db, "bulky")
	big := docket.Submission{Type: docket.TypeEcho, Payload: json.RawMessage(`"` + strings.Repeat("x", 60<<10) + `"`)}
	for range 80 { // 80 x 60 KiB: more than one page's budget
		if _, err := in.Accept(ctx, u, big, ""); err != nil {
			t.Fatal(err)
		}
	}
	page, more, err := db.ListRequests(ctx, u, 0, 1000)
	if err != nil || !more || len(page) == 0 || len(page) >= 80 {
		t.Fatalf("first page: %d requests, more=%v, %v; want a page cut short with more", len(page), more, err)
	}
	rest, more, err := db.ListRequests(ctx, u, page[len(page)-1].Seq, 1000)
	if err != nil || more || len(page)+len(rest) != 80 {
		t.Fatalf("second page: %d requests, more=%v, %v; want the remaining %d", len(rest), more, err, 80-len(page))
	}
}

// withoutPayload returns m as read back from its row: the sweeper's
// messages carry no payload.
func withoutPayload(m docket.Message) docket.Message {
	m.Payload = nil
	return m
}

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/docket/docket/internal/docket"
)

func TestSubmit(t *testing.T) {
	t.Parallel()
	ta := startApp(t)

	t.Run("valid", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			name, body, wantType, wantPayload string
		}{
			{"empty object is echo of null", `{}`, "echo", `null`},
			{"type defaults to echo", `{"payload":{"a":[1,2,{"b":null}]}}`, "echo", `{"a":[1,2,{"b":null}]}`},
			{"echo of an array", `{"type":"echo","payload":[1,"two",3.5]}`, "echo", `[1,"two",3.5]`},
			{"echo of a string", `{"type":"echo","payload":"hi"}`, "echo", `"hi"`},
			{"echo of a number", `{"type":"echo","payload":42}`, "echo", `42`},
			{"echo of a spread object", "{ \"type\" : \"echo\" ,\n \"payload\" : { \"k\" : true } }", "echo", `{"k":true}`},
			{"sleep 0", `{"type":"sleep","payload":{"ms":0}}`, "sleep", `{"ms":0}`},
			{"sleep 10000", `{"type":"sleep","payload":{"ms":10000}}`, "sleep", `{"ms":10000}`},
			{"cpu 1", `{"type":"cpu","payload":{"iterations":1}}`, "cpu", `{"iterations":1}`},
			{"cpu 10000000", `{"type":"cpu","payload":{"iterations":10000000}}`, "cpu", `{"iterations":10000000}`},
			{"fail 0", `{"type":"fail","payload":{"times":0}}`, "fail", `{"times":0}`},
			{"fail 10", `{"type":"fail","payload":{"times":10}}`, "fail", `{"times":10}`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				u := ta.newUser(t)
				r := ta.post(t, u.token, "/requests", tc.body)
				wantStatus(t, r, http.StatusAccepted)
				var body map[string]any
				if err := json.Unmarshal(r.body, &body); err != nil || len(body) != 3 {
					t.Fatalf("202 body %s, want exactly id, seq and status", r.body)
				}
				a := decode[accepted](t, r)
				if a.Seq != 1 || a.Status != "queued" || a.ID == uuid.Nil {
					t.Errorf("202 body %s, want a new id, seq 1, status queued", r.body)
				}
				if loc := r.header.Get("Location"); loc != "/requests/"+a.ID.String() {
					t.Errorf("Location %q, want /requests/%s", loc, a.ID)
				}
				// The row exists: GET shows it as submitted.
				got := decode[requestBody](t, ta.get(t, u.token, "/requests/"+a.ID.String()))
				if got.Type != tc.wantType || !jsonEqual(got.Payload, tc.wantPayload) || got.Seq != 1 || got.ID != a.ID {
					t.Errorf("GET shows type %q payload %s seq %d, want %q %s 1", got.Type, got.Payload, got.Seq, tc.wantType, tc.wantPayload)
				}
				// And a message was published to the user's partition.
				want := docket.Message{ID: a.ID, UserID: u.id, Seq: 1, Type: docket.Type(tc.wantType), Payload: json.RawMessage(tc.wantPayload)}
				ta.messages(t, docket.Partition(u.id, testPartitions), hasMessage(want))
			})
		}
	})

	t.Run("invalid", func(t *testing.T) {
		t.Parallel()
		u := ta.newUser(t)
		for _, tc := range []struct{ name, body string }{
			{"unknown type", `{"type":"shell","payload":"rm -rf /"}`},
			{"type in another case", `{"type":"ECHO"}`},
			{"type empty", `{"type":""}`},
			{"type a number", `{"type":1}`},
			{"unknown field", `{"type":"echo","payload":1,"priority":9}`},
			{"sleep ms -1", `{"type":"sleep","payload":{"ms":-1}}`},
			{"sleep ms 10001", `{"type":"sleep","payload":{"ms":10001}}`},
			{"sleep ms 1.5", `{"type":"sleep","payload":{"ms":1.5}}`},
			{"sleep ms a string", `{"type":"sleep","payload":{"ms":"5"}}`},
			{"sleep ms null", `{"type":"sleep","payload":{"ms":null}}`},
			{"sleep ms huge", `{"type":"sleep","payload":{"ms":1e30}}`},
			{"sleep without ms", `{"type":"sleep","payload":{}}`},
			{"sleep with an extra field", `{"type":"sleep","payload":{"ms":5,"jitter":1}}`},
			{"sleep without payload", `{"type":"sleep"}`},
			{"sleep payload a number", `{"type":"sleep","payload":5}`},
			{"sleep payload an array", `{"type":"sleep","payload":[{"ms":5}]}`},
			{"sleep payload null", `{"type":"sleep","payload":null}`},
			{"cpu iterations 0", `{"type":"cpu","payload":{"iterations":0}}`},
			{"cpu iterations 10000001", `{"type":"cpu","payload":{"iterations":10000001}}`},
			{"cpu without iterations", `{"type":"cpu","payload":{"ms":5}}`},
			{"fail times 11", `{"type":"fail","payload":{"times":11}}`},
			{"fail times -1", `{"type":"fail","payload":{"times":-1}}`},
			{"fail payload of another type", `{"type":"fail","payload":{"iterations":1}}`},
			{"not JSON", `type=echo`},
			{"JSON array", `[{"type":"echo"}]`},
			{"trailing garbage", `{"type":"echo"}}`},
			{"payload cut short", `{"type":"echo","payload":{"a":`},
			{"empty body", ``},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := ta.post(t, u.token, "/requests", tc.body)
				wantError(t, r, http.StatusBadRequest, "invalid_request")
			})
		}
		// Nothing was written and no seq was used up.
		if a := ta.submit(t, u.token, `{}`); a.Seq != 1 {
			t.Errorf("first accepted request after the refused ones has seq %d, want 1", a.Seq)
		}
	})

	t.Run("seq per user", func(t *testing.T) {
		t.Parallel()
		alice, bob := ta.newUser(t), ta.newUser(t)
		var msgs []docket.Message
		for i, want := range []struct {
			u   user
			seq int64
		}{{alice, 1}, {alice, 2}, {bob, 1}, {alice, 3}, {bob, 2}} {
			a := ta.submit(t, want.u.token, fmt.Sprintf(`{"payload":%d}`, i))
			if a.Seq != want.seq {
				t.Errorf("request %d of %s: seq %d, want %d", i, want.u.name, a.Seq, want.seq)
			}
			msgs = append(msgs, docket.Message{ID: a.ID, UserID: want.u.id, Seq: a.Seq, Type: docket.TypeEcho, Payload: json.RawMessage(strconv.Itoa(i))})
		}
		for _, m := range msgs {
			ta.messages(t, docket.Partition(m.UserID, testPartitions), hasMessage(m))
		}
	})

	t.Run("concurrent seq has no gaps", func(t *testing.T) {
		t.Parallel()
		u := ta.newUser(t)
		const n = 30
		seqs := make([]int64, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				r, err := ta.tryRequest(http.MethodPost, "/requests", `{"type":"echo"}`, bearer(u.token))
				if err != nil || r.status != http.StatusAccepted {
					t.Errorf("POST: %v %v", err, r)
					return
				}
				var a accepted
				_ = json.Unmarshal(r.body, &a)
				seqs[i] = a.Seq
			})
		}
		wg.Wait()
		slices.Sort(seqs)
		for i, s := range seqs {
			if s != int64(i+1) {
				t.Fatalf("seqs %v, want 1 to %d", seqs, n)
			}
		}
	})
}

func jsonEqual(got json.RawMessage, want string) bool {
	var a, b any
	if json.Unmarshal(got, &a) != nil || json.Unmarshal([]byte(want), &b) != nil {
		return false
	}
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	ta := startApp(t)

	t.Run("same key twice", func(t *testing.T) {
		t.Parallel()
		u := ta.newUser(t)
		first := ta.post(t, u.token, "/requests", `{"payload":"first"}`, "Idempotency-Key", "order-42")
		again := ta.post(t, u.token, "/requests", `{"payload":"first"}`, "Idempotency-Key", "order-42")
		wantStatus(t, first, http.StatusAccepted)
		wantStatus(t, again, http.StatusAccepted)
		if !bytes.Equal(first.body, again.body) || first.header.Get("Location") != again.header.Get("Location") {
			t.Errorf("answers differ: %s %s", first, again)
		}
		// Even with another body the key names the first request.
		other := ta.post(t, u.token, "/requests", `{"payload":"second"}`, "Idempotency-Key", "order-42")
		if !bytes.Equal(first.body, other.body) {
			t.Errorf("same key, other body: %s, want %s", other, first)
		}
		list := decode[listBody](t, ta.get(t, u.token, "/requests"))
		if len(list.Requests) != 1 || !jsonEqual(list.Requests[0].Payload, `"first"`) {
			t.Errorf("requests %+v, want the first alone", list.Requests)
		}
		// A new key (or none) is a new request with the next seq.
		if a := ta.submit(t, u.token, `{}`, "Idempotency-Key", "order-43"); a.Seq != 2 {
			t.Errorf("new key: seq %d, want 2", a.Seq)
		}
		if a := ta.submit(t, u.token, `{}`); a.Seq != 3 {
			t.Errorf("no key: seq %d, want 3", a.Seq)
		}
		// Printable includes an inner space.
		if a := ta.submit(t, u.token, `{}`, "Idempotency-Key", "order 44"); a.Seq != 4 {
			t.Errorf("key with a space: seq %d, want 4", a.Seq)
		}
		// The longest key is accepted.
		long := strings.Repeat("k", 128)
		a1, a2 := ta.submit(t, u.token, `{}`, "Idempotency-Key", long), ta.submit(t, u.token, `{}`, "Idempotency-Key", long)
		if a1 != a2 || a1.Seq != 5 {
			t.Errorf("128-character key: %+v then %+v, want the same, seq 5", a1, a2)
		}
	})

	t.Run("concurrent duplicates", func(t *testing.T) {
		t.Parallel()
		u := ta.newUser(t)
		const n = 20
		answers := make([]response, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				r, err := ta.tryRequest(http.MethodPost, "/requests", `{"type":"echo","payload":1}`,
					hdr("Authorization", "Bearer "+u.token, "Idempotency-Key", "same-moment"))
				if err != nil {
					t.Errorf("POST: %v", err)
				}
				answers[i] = r
			})
		}
		close(start)
		wg.Wait()
		for i, r := range answers {
			if r.status != http.StatusAccepted || !bytes.Equal(r.body, answers[0].body) {
				t.Errorf("answer %d: %s, want the same 202 as answer 0: %s", i, r, answers[0])
			}
		}
		list := decode[listBody](t, ta.get(t, u.token, "/requests"))
		if len(list.Requests) != 1 || list.Requests[0].Seq != 1 {
			t.Errorf("%d requests exist, want 1 with seq 1: %+v", len(list.Requests), list.Requests)
		}
		if a := ta.submit(t, u.token, `{}`); a.Seq != 2 {
			t.Errorf("next request: seq %d, want 2 (no seq used up by the duplicates)", a.Seq)
		}
	})

	t.Run("keys are per user", func(t *testing.T) {
		t.Parallel()
		alice, bob := ta.newUser(t), ta.newUser(t)
		a := ta.submit(t, alice.token, `{}`, "Idempotency-Key", "shared")
		b := ta.submit(t, bob.token, `{}`, "Idempotency-Key", "shared")
		if a.ID == b.ID {
			t.Errorf("two users' requests with one key share id %s", a.ID)
		}
		wantError(t, ta.get(t, alice.token, "/requests/"+b.ID.String()), http.StatusNotFound, "not_found")
	})

	t.Run("bad keys", func(t *testing.T) {
		t.Parallel()
		u := ta.newUser(t)
		for _, tc := range []struct{ name, key string }{
			{"empty", ""},
			{"129 characters", strings.Repeat("k", 129)},
			{"tab inside", "a\tb"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := ta.post(t, u.token, "/requests", `{}`, "Idempotency-Key", tc.key)
				wantError(t, r, http.StatusBadRequest, "invalid_request")
			})
		}
		// Control characters net/http refuses to send go over a raw connection.
		for _, tc := range []struct{ name, key string }{
			{"control character", "a\x01b"},
			{"DEL", "a\x7fb"},
			{"escape", "\x1b[31m"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				body := `{}`
				r := ta.rawExchange(t, "POST /requests HTTP/1.1\r\nHost: docket\r\nAuthorization: Bearer "+u.token+
					"\r\nIdempotency-Key: "+tc.key+"\r\nContent-Type: application/json\r\nContent-Length: "+
					fmt.Sprint(len(body))+"\r\nConnection: close\r\n\r\n"+body)
				wantError(t, r, http.StatusBadRequest, "invalid_request")
			})
		}
		if n := len(decode[listBody](t, ta.get(t, u.token, "/requests")).Requests); n != 0 {
			t.Errorf("bad keys wrote %d requests", n)
		}
	})
}

var timeRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$`)

func TestGetRequest(t *testing.T) {
	t.Parallel()
	ta := startApp(t)
	u, other := ta.newUser(t), ta.newUser(t)
	a := ta.submit(t, u.token, `{"type":"sleep","payload":{"ms":25}}`)
	theirs := ta.submit(t, other.token, `{}`)

	t.Run("all fields", func(t *testing.T) {
		r := ta.get(t, u.token, "/requests/"+a.ID.String())
		wantStatus(t, r, http.StatusOK)
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(r.body, &fields); err != nil {
			t.Fatal(err)
		}
		want := []string{"id", "seq", "type", "status", "payload", "result", "error", "attempts", "accepted_at", "processed_at"}
		for _, f := range want {
			if _, ok := fields[f]; !ok {
				t.Errorf("field %s missing from %s", f, r.body)
			}
		}
		if len(fields) != len(want) {
			t.Errorf("fields %s, want exactly %v", r.body, want)
		}
		got := decode[requestBody](t, r)
		if got.ID != a.ID || got.Seq != 1 || got.Type != "sleep" || got.Status != "queued" || !jsonEqual(got.Payload, `{"ms":25}`) || got.Attempts != 0 {
			t.Errorf("request %s, want id %s seq 1 sleep queued {\"ms\":25} attempts 0", r.body, a.ID)
		}
		for _, f := range []string{"result", "error", "processed_at"} {
			if string(fields[f]) != "null" {
				t.Errorf("%s is %s while queued, want null", f, fields[f])
			}
		}
		if !timeRE.MatchString(got.AcceptedAt) {
			t.Errorf("accepted_at %q, want RFC 3339 UTC with six fractional digits", got.AcceptedAt)
		}
	})

	t.Run("not found alike", func(t *testing.T) {
		var bodies [][]byte
		for _, path := range []string{
			"/requests/" + uuid.NewString(),                           // unknown id
			"/requests/" + theirs.ID.String(),                         // another user's
			"/requests/not-a-uuid",                                    // malformed
			"/requests/12345",                                         // malformed
			"/requests/" + strings.Repeat("z", 36),                    // malformed, uuid length
			"/requests/" + strings.ReplaceAll(a.ID.String(), "-", ""), // unhyphenated form of mine
			"/requests/urn:uuid:" + a.ID.String(),                     // urn form of mine
			"/requests/" + a.ID.String() + "0",                        // one character more
		} {
			r := ta.get(t, u.token, path)
			wantError(t, r, http.StatusNotFound, "not_found")
			bodies = append(bodies, r.body)
		}
		for i := range bodies {
			if !bytes.Equal(bodies[i], bodies[0]) {
				t.Errorf("404 bodies differ:\n%s\n%s", bodies[0], bodies[i])
			}
		}
		// The owner still sees it.
		wantStatus(t, ta.get(t, other.token, "/requests/"+theirs.ID.String()), http.StatusOK)
	})
}

func TestListRequests(t *testing.T) {
	t.Parallel()
	ta := startApp(t)
	u, other, empty := ta.newUser(t), ta.newUser(t), ta.newUser(t)
	const n = 101
	var wg sync.WaitGroup
	post := func(token, body string) {
		r, err := ta.tryRequest(http.MethodPost, "/requests", body, bearer(token))
		if err != nil || r.status != http.StatusAccepted {
			t.Errorf("POST /requests: %v %v", err, r)
		}
	}
	for range 4 {
		wg.Go(func() { post(other.token, `{}`) })
	}
	for i := range n {
		wg.Go(func() { post(u.token, fmt.Sprintf(`{"payload":%d}`, i)) })
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	// page fetches one page and checks it holds the seqs from..to of u.
	page := func(t *testing.T, query string, from, to int64, next *int64) {
		t.Helper()
		r := ta.get(t, u.token, "/requests"+query)
		wantStatus(t, r, http.StatusOK)
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(r.body, &raw); err != nil || len(raw) != 2 {
			t.Fatalf("list body %.200s, want exactly requests and next_after_seq", r.body)
		}
		if _, ok := raw["next_after_seq"]; !ok {
			t.Fatalf("next_after_seq missing: %.200s", r.body)
		}
		l := decode[listBody](t, r)
		var seqs []int64
		for _, req := range l.Requests {
			seqs = append(seqs, req.Seq)
			if req.ID == uuid.Nil || req.Status != "queued" || !timeRE.MatchString(req.AcceptedAt) {
				t.Errorf("listed request %+v", req)
			}
		}
		var want []int64
		for s := from; s <= to; s++ {
			want = append(want, s)
		}
		if !slices.Equal(seqs, want) {
			t.Errorf("seqs %v, want %d to %d", seqs, from, to)
		}
		switch {
		case next == nil && l.NextAfterSeq != nil:
			t.Errorf("next_after_seq %d, want null", *l.NextAfterSeq)
		case next != nil && (l.NextAfterSeq == nil || *l.NextAfterSeq != *next):
			t.Errorf("next_after_seq %v, want %d", l.NextAfterSeq, *next)
		}
	}
	ptr := func(v int64) *int64 { return &v }

	t.Run("defaults", func(t *testing.T) { page(t, "", 1, 100, ptr(100)) })
	t.Run("after_seq from next_after_seq", func(t *testing.T) { page(t, "?after_seq=100", 101, 101, nil) })
	t.Run("limit 1000", func(t *testing.T) { page(t, "?limit=1000", 1, 101, nil) })
	t.Run("limit 1", func(t *testing.T) { page(t, "?limit=1", 1, 1, ptr(1)) })
	t.Run("pages", func(t *testing.T) {
		page(t, "?after_seq=0&limit=40", 1, 40, ptr(40))
		page(t, "?after_seq=40&limit=40", 41, 80, ptr(80))
		page(t, "?after_seq=80&limit=40", 81, 101, nil)
	})
	t.Run("page ending at the last", func(t *testing.T) { page(t, "?after_seq=96&limit=5", 97, 101, nil) })
	t.Run("after the last", func(t *testing.T) { page(t, "?after_seq=101", 1, 0, nil) })
	t.Run("far after the last", func(t *testing.T) { page(t, "?after_seq=999999999", 1, 0, nil) })
	t.Run("payloads in order", func(t *testing.T) {
		l := decode[listBody](t, ta.get(t, u.token, "/requests?limit=1000"))
		for _, req := range l.Requests {
			got := decode[requestBody](t, ta.get(t, u.token, "/requests/"+req.ID.String()))
			if !bytes.Equal(got.Payload, req.Payload) || got.Seq != req.Seq {
				t.Errorf("listed %+v, GET shows %+v", req, got)
			}
		}
	})
	t.Run("only the caller's", func(t *testing.T) {
		l := decode[listBody](t, ta.get(t, other.token, "/requests"))
		if len(l.Requests) != 4 {
			t.Errorf("other user lists %d requests, want its 4", len(l.Requests))
		}
		for i, req := range l.Requests {
			if req.Seq != int64(i+1) {
				t.Errorf("other user's request %d has seq %d", i, req.Seq)
			}
		}
		r := ta.get(t, empty.token, "/requests")
		wantStatus(t, r, http.StatusOK)
		if got := strings.ReplaceAll(string(r.body), " ", ""); got != `{"requests":[],"next_after_seq":null}` {
			t.Errorf("a user without requests lists %s, want an empty array and null", r.body)
		}
	})
	t.Run("bad arguments", func(t *testing.T) {
		for _, q := range []string{
			"limit=1001", "limit=0", "limit=-1", "limit=1.5", "limit=ten", "limit=", "limit=1e2",
			"limit=99999999999999999999", "after_seq=-1", "after_seq=x", "after_seq=", "after_seq=1.0",
		} {
			t.Run(q, func(t *testing.T) {
				wantError(t, ta.get(t, u.token, "/requests?"+q), http.StatusBadRequest, "invalid_request")
			})
		}
	})
}

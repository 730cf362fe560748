package docket_test

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/docket/docket/internal/docket"
)

var (
	testID     = uuid.MustParse("0f8fad5b-d9cb-469f-a165-70867728950e")
	testUserID = uuid.MustParse("7c9e6679-7425-40de-944b-e07fc1f90ae7")
)

func TestMessageRoundTrip(t *testing.T) {
	t.Parallel()
	for _, m := range []docket.Message{
		{ID: testID, UserID: testUserID, Seq: 1, Type: docket.TypeEcho},
		{ID: testID, UserID: testUserID, Seq: 7, Type: docket.TypeSleep},
		{ID: testUserID, UserID: testID, Seq: 1<<63 - 1, Type: docket.TypeFail},
		{ID: uuid.New(), UserID: uuid.New(), Seq: 42, Type: docket.TypeCPU},
		{ID: testID, UserID: testUserID, Seq: 3, Type: docket.TypeEcho, Payload: json.RawMessage(`{"a":[1,"x"]}`)},
		{ID: testID, UserID: testUserID, Seq: 3, Type: docket.TypeEcho, Payload: json.RawMessage(`null`)},
	} {
		got, err := docket.DecodeMessage(m.Encode())
		if err != nil {
			t.Fatalf("DecodeMessage(%s): %v", m.Encode(), err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("round trip of %+v gave %+v", m, got)
		}
	}
}

// TestMessageWireForm pins the JSON the API and the workers share: a worker
// of the previous release must read what this one publishes.
func TestMessageWireForm(t *testing.T) {
	t.Parallel()
	m := docket.Message{ID: testID, UserID: testUserID, Seq: 7, Type: docket.TypeSleep}
	const want = `{"id":"0f8fad5b-d9cb-469f-a165-70867728950e","user_id":"7c9e6679-7425-40de-944b-e07fc1f90ae7","seq":7,"type":"sleep"}`
	if got := string(m.Encode()); got != want {
		t.Errorf("Encode() = %s\nwant      %s", got, want)
	}
}

// A small payload rides in the message; a large one stays in the row.
func TestMessageWithPayload(t *testing.T) {
	t.Parallel()
	m := docket.Message{ID: testID, UserID: testUserID, Seq: 1, Type: docket.TypeEcho}
	small := json.RawMessage(`"` + strings.Repeat("x", docket.MaxInlinePayload-2) + `"`)
	if got := m.WithPayload(small); !bytes.Equal(got.Payload, small) {
		t.Errorf("a payload of %d bytes was not inlined", len(small))
	}
	large := json.RawMessage(`"` + strings.Repeat("x", docket.MaxInlinePayload-1) + `"`)
	if got := m.WithPayload(large); got.Payload != nil {
		t.Errorf("a payload of %d bytes was inlined", len(large))
	}
	const want = `{"id":"0f8fad5b-d9cb-469f-a165-70867728950e","user_id":"7c9e6679-7425-40de-944b-e07fc1f90ae7","seq":1,"type":"echo","payload":{"n":1}}`
	if got := string(m.WithPayload(json.RawMessage(`{"n":1}`)).Encode()); got != want {
		t.Errorf("Encode() = %s\nwant      %s", got, want)
	}
	body := `{"id":"0f8fad5b-d9cb-469f-a165-70867728950e","user_id":"7c9e6679-7425-40de-944b-e07fc1f90ae7","seq":1,"type":"echo","payload":` + string(large) + `}`
	if _, err := docket.DecodeMessage([]byte(body)); err == nil {
		t.Errorf("a message with a payload over %d bytes was accepted", docket.MaxInlinePayload)
	}
}

func TestDecodeMessageRefuses(t *testing.T) {
	t.Parallel()
	const id, user = `"0f8fad5b-d9cb-469f-a165-70867728950e"`, `"7c9e6679-7425-40de-944b-e07fc1f90ae7"`
	tests := []struct{ name, body string }{
		{"empty", ``},
		{"not JSON", `id=1`},
		{"cut short", `{"id":` + id},
		{"array", `[]`},
		{"null", `null`},
		{"empty object", `{}`},
		{"id missing", `{"user_id":` + user + `,"seq":1,"type":"echo"}`},
		{"id nil", `{"id":"00000000-0000-0000-0000-000000000000","user_id":` + user + `,"seq":1,"type":"echo"}`},
		{"id not a UUID", `{"id":"request-1","user_id":` + user + `,"seq":1,"type":"echo"}`},
		{"id a number", `{"id":1,"user_id":` + user + `,"seq":1,"type":"echo"}`},
		{"user_id missing", `{"id":` + id + `,"seq":1,"type":"echo"}`},
		{"user_id nil", `{"id":` + id + `,"user_id":"00000000-0000-0000-0000-000000000000","seq":1,"type":"echo"}`},
		{"seq missing", `{"id":` + id + `,"user_id":` + user + `,"type":"echo"}`},
		{"seq 0", `{"id":` + id + `,"user_id":` + user + `,"seq":0,"type":"echo"}`},
		{"seq -1", `{"id":` + id + `,"user_id":` + user + `,"seq":-1,"type":"echo"}`},
		{"seq a string", `{"id":` + id + `,"user_id":` + user + `,"seq":"1","type":"echo"}`},
		{"seq a fraction", `{"id":` + id + `,"user_id":` + user + `,"seq":1.5,"type":"echo"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if m, err := docket.DecodeMessage([]byte(tt.body)); err == nil {
				t.Errorf("DecodeMessage(%s) = %+v, want an error", tt.body, m)
			}
		})
	}
}

func TestPartition(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	randomUser := func() uuid.UUID {
		var u uuid.UUID
		for i := range u {
			u[i] = byte(rng.Uint32())
		}
		return u
	}

	t.Run("deterministic and in range", func(t *testing.T) {
		for _, partitions := range []int{1, 16, 64} {
			for range 1000 {
				u := randomUser()
				p := docket.Partition(u, partitions)
				if p < 0 || p >= partitions {
					t.Fatalf("Partition(%s, %d) = %d, out of range", u, partitions, p)
				}
				if again := docket.Partition(u, partitions); again != p {
					t.Fatalf("Partition(%s, %d) = %d then %d", u, partitions, p, again)
				}
			}
		}
	})

	// Pinned: the service and the workers of every release must agree, and
	// queues may hold messages routed by the previous one.
	t.Run("stable across releases", func(t *testing.T) {
		for _, tt := range []struct {
			user       uuid.UUID
			partitions int
			want       int
		}{
			{testUserID, 1, 0}, {testUserID, 16, 10}, {testUserID, 64, 42},
			{testID, 16, 12}, {testID, 64, 44},
		} {
			if got := docket.Partition(tt.user, tt.partitions); got != tt.want {
				t.Errorf("Partition(%s, %d) = %d, want %d", tt.user, tt.partitions, got, tt.want)
			}
		}
	})

	t.Run("spreads users", func(t *testing.T) {
		const users, partitions = 10000, 16
		var counts [partitions]int
		for range users {
			counts[docket.Partition(randomUser(), partitions)]++
		}
		mean := users / partitions
		for p, n := range counts {
			if n < mean/2 || n > mean*2 {
				t.Errorf("partition %d has %d users; the mean is %d (all: %v)", p, n, mean, counts)
			}
		}
	})
}

func TestRoutingKey(t *testing.T) {
	t.Parallel()
	for p, want := range map[int]string{0: "0", 7: "7", 15: "15", 63: "63"} {
		if got := docket.RoutingKey(p); got != want {
			t.Errorf("RoutingKey(%d) = %q, want %q", p, got, want)
		}
	}
}

func TestFormatTime(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   time.Time
		want string
	}{
		{"API.md's example", time.Date(2026, 11, 29, 7, 1, 24, 123400000, time.UTC), "2026-11-29T07:01:24.123400Z"},
		{"zero nanoseconds", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), "2026-01-02T03:04:05.000000Z"},
		{"microseconds", time.Date(2026, 1, 2, 3, 4, 5, 1000, time.UTC), "2026-01-02T03:04:05.000001Z"},
		{"nanoseconds truncated, not rounded", time.Date(2026, 1, 2, 3, 4, 5, 999999999, time.UTC), "2026-01-02T03:04:05.999999Z"},
		{"zone east of UTC", time.Date(2026, 11, 29, 12, 31, 24, 500000000, time.FixedZone("IST", 5*3600+1800)), "2026-11-29T07:01:24.500000Z"},
		{"zone west, across midnight", time.Date(2026, 12, 31, 20, 0, 0, 0, time.FixedZone("EST", -5*3600)), "2027-01-01T01:00:00.000000Z"},
		{"local time", time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC).Local(), "2026-06-01T00:00:00.000000Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := docket.FormatTime(tt.in)
			if got != tt.want {
				t.Errorf("FormatTime(%v) = %s, want %s", tt.in, got, tt.want)
			}
			frac := got[strings.IndexByte(got, '.')+1:]
			if len(frac) != len("000000Z") || !strings.HasSuffix(frac, "Z") {
				t.Errorf("FormatTime(%v) = %s: want six fractional digits and Z", tt.in, got)
			}
			back, err := time.Parse(time.RFC3339Nano, got)
			if err != nil || !back.Equal(tt.in.Truncate(time.Microsecond)) {
				t.Errorf("FormatTime(%v) = %s parses back as %v, %v", tt.in, got, back, err)
			}
		})
	}
}

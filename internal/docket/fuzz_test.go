package docket_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"

	"github.com/docket/docket/internal/docket"
)

// requireInvalidRequest fails unless err is what a client may see for a bad
// body: an *docket.Error with CodeInvalidRequest.
func requireInvalidRequest(t *testing.T, body []byte, err error) {
	t.Helper()
	var e *docket.Error
	if !errors.As(err, &e) || e.Code != docket.CodeInvalidRequest || e.Message == "" {
		t.Fatalf("body %q: err = %#v, want an *docket.Error with %s", body, err, docket.CodeInvalidRequest)
	}
}

// FuzzParseSubmission checks POST /requests bodies; more seeds, nasty ones
// included, are in testdata/fuzz/FuzzParseSubmission.
func FuzzParseSubmission(f *testing.F) {
	for _, seed := range []string{
		`{}`,
		`{"type":"echo","payload":{"a":[1,2,{"b":null}]}}`,
		`{"type":"sleep","payload":{"ms":10000}}`,
		`{"type":"cpu","payload":{"iterations":1}}`,
		`{"type":"fail","payload":{"times":11}}`,
		`{"type":"sleep","payload":{"ms":null}}`,
		`{"type":"sleep","payload":{"ms":1,"ms":2}}`,
		`{"payload":"\ud83d\ude00 \u0000 \ud800"}`,
		`{"payload":[1e400,1e131072,-0.5e-16383]}`,
		`{"type":"echo","type":"cpu"}`,
		`{} {}`,
		`null`,
		"{\"payload\":\"\xff\"}",
		`[`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		s, err := docket.ParseSubmission(body)
		if err != nil {
			requireInvalidRequest(t, body, err)
			return
		}
		switch s.Type {
		case docket.TypeEcho, docket.TypeSleep, docket.TypeCPU, docket.TypeFail:
		default:
			t.Fatalf("body %q: accepted type %q", body, s.Type)
		}
		if !json.Valid(s.Payload) || !utf8.Valid(s.Payload) {
			t.Fatalf("body %q: payload %q is not valid JSON in UTF-8", body, s.Payload)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, s.Payload); err != nil || !bytes.Equal(compact.Bytes(), s.Payload) {
			t.Fatalf("body %q: payload %q is not compact", body, s.Payload)
		}
		if err := docket.ValidatePayload(s.Type, s.Payload); err != nil {
			t.Fatalf("body %q: accepted payload fails ValidatePayload: %v", body, err)
		}
		// What was accepted, sent again, is accepted as the same submission.
		again := []byte(`{"type":"` + string(s.Type) + `","payload":` + string(s.Payload) + `}`)
		s2, err := docket.ParseSubmission(again)
		if err != nil || s2.Type != s.Type || !bytes.Equal(s2.Payload, s.Payload) {
			t.Fatalf("body %q: accepted %s %s, but its resubmission gives %s %s, %v", body, s.Type, s.Payload, s2.Type, s2.Payload, err)
		}
	})
}

func FuzzParseCredentials(f *testing.F) {
	for _, seed := range []string{
		`{"username":"alice","password":"correct horse"}`,
		`{"username":"a","password":""}`,
		`{"username":null,"password":"x"}`,
		`{"username":"\u0000","password":"\ud800"}`,
		`{"username":"a","password":"b","role":"admin"}`,
		`{"username":"a","password":"b"} x`,
		"{\"username\":\"a\",\"password\":\"\xff\"}",
		`[]`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := docket.ParseCredentials(body)
		if err != nil {
			requireInvalidRequest(t, body, err)
			return
		}
		if !utf8.ValidString(c.Username) || !utf8.ValidString(c.Password) {
			t.Fatalf("body %q: credentials %q are not UTF-8", body, c)
		}
		// The rules never panic on what the parser lets through.
		_ = docket.ValidateUsername(c.Username)
		_ = docket.ValidatePassword(c.Password)
		again, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		c2, err := docket.ParseCredentials(again)
		if err != nil || c2 != c {
			t.Fatalf("body %q: credentials %q re-encoded as %s parse as %q, %v", body, c, again, c2, err)
		}
	})
}

func FuzzDecodeMessage(f *testing.F) {
	for _, seed := range []string{
		`{"id":"0f8fad5b-d9cb-469f-a165-70867728950e","user_id":"7c9e6679-7425-40de-944b-e07fc1f90ae7","seq":7,"type":"sleep"}`,
		`{"id":"0f8fad5b-d9cb-469f-a165-70867728950e","user_id":"7c9e6679-7425-40de-944b-e07fc1f90ae7","seq":0}`,
		`{"id":"00000000-0000-0000-0000-000000000000","user_id":"7c9e6679-7425-40de-944b-e07fc1f90ae7","seq":1}`,
		`{"id":"0f8fad5b-d9cb-469f-a165-70867728950e","user_id":"7c9e6679-7425-40de-944b-e07fc1f90ae7","seq":1,"type":"\xff"}`,
		`{"id":"{0f8fad5b-d9cb-469f-a165-70867728950e}","user_id":"urn:uuid:7c9e6679-7425-40de-944b-e07fc1f90ae7","seq":1}`,
		`{"id":1}`,
		`null`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := docket.DecodeMessage(body)
		if err != nil {
			return
		}
		if m.Seq < 1 || m.ID == [16]byte{} || m.UserID == [16]byte{} {
			t.Fatalf("body %q: accepted %+v", body, m)
		}
		got, err := docket.DecodeMessage(m.Encode())
		if err != nil || got.ID != m.ID || got.UserID != m.UserID || got.Seq != m.Seq || got.Type != m.Type ||
			!bytes.Equal(got.Encode(), m.Encode()) {
			t.Fatalf("body %q: %+v encodes as %s, which decodes as %+v, %v", body, m, m.Encode(), got, err)
		}
	})
}

// FuzzValidateIdempotencyKey checks the header rule of API.md: 1 to 128
// printable ASCII characters, and a refusal that never repeats the key.
func FuzzValidateIdempotencyKey(f *testing.F) {
	f.Add([]byte("order-42"))
	f.Fuzz(func(t *testing.T, key []byte) {
		err := docket.ValidateIdempotencyKey(key)
		printable := len(key) >= 1 && len(key) <= docket.MaxIdemKeySize
		for _, c := range key {
			printable = printable && c >= 0x20 && c <= 0x7e
		}
		if printable != (err == nil) {
			t.Fatalf("key %q: err = %v, want accepted = %v", key, err, printable)
		}
		if err == nil {
			return
		}
		requireInvalidRequest(t, key, err)
		if msg := docket.ErrorMessage(err); len(key) > 3 && bytes.Contains([]byte(msg), key) {
			t.Fatalf("key %q: the refusal %q repeats it", key, msg)
		}
	})
}

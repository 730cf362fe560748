package docket_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/docket/docket/internal/docket"
)

// wantInvalid fails the test unless err is an *docket.Error with
// CodeInvalidRequest whose message is a sentence that does not repeat
// secret, the part of the client's input it must not echo.
func wantInvalid(t *testing.T, err error, secret string) {
	t.Helper()
	var e *docket.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v (%T), want *docket.Error", err, err)
	}
	if e.Code != docket.CodeInvalidRequest {
		t.Errorf("code = %q, want %q (message %q)", e.Code, docket.CodeInvalidRequest, e.Message)
	}
	if e.Message == "" || !strings.HasSuffix(e.Message, ".") {
		t.Errorf("message = %q, want a sentence", e.Message)
	}
	if secret != "" && strings.Contains(e.Message, secret) {
		t.Errorf("message %q echoes the input %q", e.Message, secret)
	}
}

func TestParseSubmission(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		body        string
		wantType    docket.Type
		wantPayload string
	}{
		{"empty object is echo of null", `{}`, docket.TypeEcho, `null`},
		{"type omitted", `{"payload": {"a": 1}}`, docket.TypeEcho, `{"a":1}`},
		{"payload omitted", `{"type": "echo"}`, docket.TypeEcho, `null`},
		{"type null is the default", `{"type": null, "payload": 1}`, docket.TypeEcho, `1`},
		{"echo nested", `{"type":"echo","payload":{"a":[1,{"b":null}],"c":{"d":"e"}}}`, docket.TypeEcho, `{"a":[1,{"b":null}],"c":{"d":"e"}}`},
		{"echo string", `{"payload": "hello"}`, docket.TypeEcho, `"hello"`},
		{"echo number", `{"payload": -12.5e3}`, docket.TypeEcho, `-12.5e3`},
		{"echo array", `{"payload": [1, "two", null, true, {}]}`, docket.TypeEcho, `[1,"two",null,true,{}]`},
		{"echo null", `{"payload": null}`, docket.TypeEcho, `null`},
		{"echo false", `{"payload": false}`, docket.TypeEcho, `false`},
		{"echo empty string", `{"payload": ""}`, docket.TypeEcho, `""`},
		{"echo keeps escapes and UTF-8", `{"payload": "\u00e9 € \ud83d\ude00 \n \"q\" <b>"}`, docket.TypeEcho, `"\u00e9 € \ud83d\ude00 \n \"q\" <b>"`},
		{"echo control escape", `{"payload": "\u0001"}`, docket.TypeEcho, `"\u0001"`},
		// PostgreSQL's numeric holds far more than float64; the limits are its own.
		{"echo 1e400", `{"payload": 1e400}`, docket.TypeEcho, `1e400`},
		{"echo largest exponent", `{"payload": [9.99e400, -1e-400]}`, docket.TypeEcho, `[9.99e400,-1e-400]`},
		{"echo many digits, no exponent", `{"payload": 12345678901234567890123456789012345678901234567890.5}`, docket.TypeEcho, `12345678901234567890123456789012345678901234567890.5`},
		{"whitespace around the body", " \r\n\t{\"type\": \"echo\"}\n ", docket.TypeEcho, `null`},
		{"field order free", `{"payload": {"ms": 5}, "type": "sleep"}`, docket.TypeSleep, `{"ms":5}`},
		{"sleep 0", `{"type": "sleep", "payload": {"ms": 0}}`, docket.TypeSleep, `{"ms":0}`},
		{"sleep 10000", `{"type": "sleep", "payload": {"ms": 10000}}`, docket.TypeSleep, `{"ms":10000}`},
		{"cpu 1", `{"type": "cpu", "payload": {"iterations": 1}}`, docket.TypeCPU, `{"iterations":1}`},
		{"cpu 10000000", `{"type": "cpu", "payload": {"iterations": 10000000}}`, docket.TypeCPU, `{"iterations":10000000}`},
		{"fail 0", `{"type": "fail", "payload": {"times": 0}}`, docket.TypeFail, `{"times":0}`},
		{"fail 10", `{"type": "fail", "payload": {"times": 10}}`, docket.TypeFail, `{"times":10}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := docket.ParseSubmission([]byte(tt.body))
			if err != nil {
				t.Fatalf("ParseSubmission(%s): %v", tt.body, err)
			}
			if s.Type != tt.wantType || string(s.Payload) != tt.wantPayload {
				t.Errorf("ParseSubmission(%s) = %s %s, want %s %s", tt.body, s.Type, s.Payload, tt.wantType, tt.wantPayload)
			}
			if err := docket.ValidatePayload(s.Type, s.Payload); err != nil {
				t.Errorf("ValidatePayload of an accepted submission: %v", err)
			}
		})
	}
}

func TestParseSubmissionRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		// secret is what the message must not echo; empty means the body.
		secret string
	}{
		{"exponent that would expand a small body", `{"payload": 1e131071}`, ""},
		{"negative exponent that would expand", `{"payload": 1e-16383}`, ""},
		{"exponent just beyond the limit", `{"payload": 1e401}`, ""},
		{"empty body", ``, ""},
		{"whitespace only", "  \n", ""},
		{"not JSON", `type=echo`, ""},
		{"cut short", `{"type": "echo"`, `"echo"`},
		{"array body", `[{"type": "echo"}]`, `"echo"`},
		{"null body", `null`, ""},
		{"string body", `"echo"`, ""},
		{"number body", `42`, ""},
		{"trailing object", `{} {}`, ""},
		{"trailing garbage", `{"type": "echo"} xq_garbage`, "xq_garbage"},
		{"trailing array", `{}[]`, ""},
		{"unknown field", `{"type": "echo", "xq_field": 1}`, "xq_field"},
		{"unknown field with markup", `{"<script>alert(1)</script>": 1}`, "<script>"},
		{"type a number", `{"type": 5}`, ""},
		{"type an array", `{"type": ["echo"]}`, ""},
		{"type an object", `{"type": {"xq_t": 1}}`, "xq_t"},
		{"unknown type", `{"type": "xq_type"}`, "xq_type"},
		{"empty type", `{"type": ""}`, ""},
		{"type in capitals", `{"type": "ECHO"}`, "ECHO"},
		{"type with a space", `{"type": "echo "}`, ""},
		{"body not UTF-8", "{\"payload\": \"\xff\xfe\"}", "\xff"},
		{"payload too deep", `{"payload": ` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`, "[[["},

		{"sleep ms -1", `{"type": "sleep", "payload": {"ms": -1}}`, ""},
		{"sleep ms 10001", `{"type": "sleep", "payload": {"ms": 10001}}`, "10001"},
		{"sleep ms 1.5", `{"type": "sleep", "payload": {"ms": 1.5}}`, "1.5"},
		{"sleep ms 1e3", `{"type": "sleep", "payload": {"ms": 1e3}}`, "1e3"},
		{"sleep ms 1e400", `{"type": "sleep", "payload": {"ms": 1e400}}`, "1e400"},
		{"sleep ms past int64", `{"type": "sleep", "payload": {"ms": 99999999999999999999}}`, "99999999999999999999"},
		{"sleep ms a string", `{"type": "sleep", "payload": {"ms": "5"}}`, ""},
		{"sleep ms null", `{"type": "sleep", "payload": {"ms": null}}`, ""},
		{"sleep ms true", `{"type": "sleep", "payload": {"ms": true}}`, ""},
		{"sleep ms missing", `{"type": "sleep", "payload": {}}`, ""},
		{"sleep ms in capitals", `{"type": "sleep", "payload": {"MS": 5}}`, ""},
		{"sleep extra field", `{"type": "sleep", "payload": {"ms": 5, "xq_extra": 1}}`, "xq_extra"},
		{"sleep payload missing", `{"type": "sleep"}`, ""},
		{"sleep payload null", `{"type": "sleep", "payload": null}`, ""},
		{"sleep payload a number", `{"type": "sleep", "payload": 5}`, ""},
		{"sleep payload a string", `{"type": "sleep", "payload": "xq_ms"}`, "xq_ms"},
		{"sleep payload an array", `{"type": "sleep", "payload": [{"ms": 5}]}`, ""},

		{"cpu iterations 0", `{"type": "cpu", "payload": {"iterations": 0}}`, ""},
		{"cpu iterations 10000001", `{"type": "cpu", "payload": {"iterations": 10000001}}`, "10000001"},
		{"cpu iterations -1", `{"type": "cpu", "payload": {"iterations": -1}}`, ""},
		{"cpu iterations 1e400", `{"type": "cpu", "payload": {"iterations": 1e400}}`, "1e400"},
		{"cpu iterations null", `{"type": "cpu", "payload": {"iterations": null}}`, ""},
		{"cpu payload missing", `{"type": "cpu"}`, ""},
		{"cpu payload an array", `{"type": "cpu", "payload": [1]}`, ""},
		{"cpu wrong field", `{"type": "cpu", "payload": {"ms": 5}}`, ""},

		{"fail times -1", `{"type": "fail", "payload": {"times": -1}}`, ""},
		{"fail times 11", `{"type": "fail", "payload": {"times": 11}}`, ""},
		{"fail times 1e400", `{"type": "fail", "payload": {"times": 1e400}}`, "1e400"},
		{"fail times true", `{"type": "fail", "payload": {"times": true}}`, ""},
		{"fail times null", `{"type": "fail", "payload": {"times": null}}`, ""},
		{"fail payload missing", `{"type": "fail"}`, ""},
		{"fail payload a string", `{"type": "fail", "payload": "3"}`, ""},

		// jsonb refuses these, and one of them would fail its whole intake batch.
		{"echo NUL escape", `{"payload": "xq\u0000b"}`, `xq\u0000b`},
		{"echo NUL escape in a key", `{"payload": {"\u0000": 1}}`, ""},
		{"echo lone high surrogate", `{"payload": "\ud800"}`, `\ud800`},
		{"echo lone high surrogate at the end", `{"payload": ["x\ud83d"]}`, ""},
		{"echo high surrogate then a letter", `{"payload": "\ud800\u0041"}`, ""},
		{"echo two high surrogates", `{"payload": "\ud800\ud800"}`, ""},
		{"echo lone low surrogate", `{"payload": "\udc00x"}`, ""},
		{"echo number too large for numeric", `{"payload": 1e131072}`, "1e131072"},
		{"echo number too fine for numeric", `{"payload": [1, -1e-16384]}`, "1e-16384"},
		{"echo zero too fine for numeric", `{"payload": 0.5e-16383}`, ""},
		{"echo too many fraction digits", `{"payload": 0.` + strings.Repeat("1", 16384) + `}`, "1111"},
		{"echo exponent past int64", `{"payload": 1e-99999999999999999999}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := docket.ParseSubmission([]byte(tt.body))
			if err == nil {
				t.Fatalf("ParseSubmission(%.80s) = %s %s, want an error", tt.body, s.Type, s.Payload)
			}
			secret := tt.secret
			if secret == "" && strings.TrimSpace(tt.body) != "" {
				secret = tt.body
			}
			wantInvalid(t, err, secret)
		})
	}
}

// TestParseSubmissionDuplicateKeys documents what a repeated key means: the
// last one counts, as it does for the worker that decodes the stored payload.
func TestParseSubmissionDuplicateKeys(t *testing.T) {
	t.Parallel()
	t.Run("top-level type", func(t *testing.T) {
		s, err := docket.ParseSubmission([]byte(`{"type": "sleep", "type": "echo", "payload": 7}`))
		if err != nil || s.Type != docket.TypeEcho {
			t.Fatalf("got %s, %v; want echo (the last type)", s.Type, err)
		}
	})
	t.Run("top-level payload", func(t *testing.T) {
		s, err := docket.ParseSubmission([]byte(`{"payload": 1, "payload": [2]}`))
		if err != nil || string(s.Payload) != `[2]` {
			t.Fatalf("got %s, %v; want [2] (the last payload)", s.Payload, err)
		}
	})
	t.Run("payload field: the last value is validated", func(t *testing.T) {
		s, err := docket.ParseSubmission([]byte(`{"type": "sleep", "payload": {"ms": 20000, "ms": 5}}`))
		if err != nil {
			t.Fatalf("ParseSubmission: %v", err)
		}
		// The payload is stored as sent (compacted); the worker reads the same value.
		var p docket.SleepPayload
		if err := json.Unmarshal(s.Payload, &p); err != nil || p.MS != 5 {
			t.Errorf("stored payload %s decodes to %d, %v; want 5", s.Payload, p.MS, err)
		}
	})
	t.Run("payload field: an out-of-range last value is refused", func(t *testing.T) {
		_, err := docket.ParseSubmission([]byte(`{"type": "sleep", "payload": {"ms": 5, "ms": 20000}}`))
		wantInvalid(t, err, "20000")
	})
}

func TestValidatePayload(t *testing.T) {
	t.Parallel()
	tests := []struct {
		typ     docket.Type
		payload string
		ok      bool
	}{
		{docket.TypeEcho, `anything: echo does not look`, true},
		{docket.TypeSleep, `{"ms":10}`, true},
		{docket.TypeSleep, ``, false},
		{docket.TypeSleep, `{"ms":10`, false},
		{docket.TypeCPU, `{"iterations":10}`, true},
		{docket.TypeFail, `{"times":1}`, true},
		{docket.Type("xq"), `null`, false},
		{docket.Type(""), `null`, false},
	}
	for _, tt := range tests {
		t.Run(string(tt.typ)+" "+tt.payload, func(t *testing.T) {
			err := docket.ValidatePayload(tt.typ, json.RawMessage(tt.payload))
			if tt.ok && err != nil {
				t.Fatalf("ValidatePayload: %v", err)
			}
			if !tt.ok {
				wantInvalid(t, err, tt.payload)
			}
		})
	}
}

func TestParseCredentials(t *testing.T) {
	t.Parallel()
	good := []struct {
		body string
		want docket.Credentials
	}{
		{`{"username": "alice", "password": "correct horse"}`, docket.Credentials{Username: "alice", Password: "correct horse"}},
		{`{"password": "p", "username": "u"}`, docket.Credentials{Username: "u", Password: "p"}}, // shape only: rules are separate
		{`{"username": "", "password": ""}`, docket.Credentials{}},
		{`{"username": "b\u00f6b", "password": "\u20ac\u20ac"}`, docket.Credentials{Username: "böb", Password: "€€"}},
	}
	for _, tt := range good {
		t.Run(tt.body, func(t *testing.T) {
			got, err := docket.ParseCredentials([]byte(tt.body))
			if err != nil || got != tt.want {
				t.Fatalf("ParseCredentials(%s) = %+v, %v; want %+v", tt.body, got, err, tt.want)
			}
		})
	}
	bad := []struct {
		name, body, secret string
	}{
		{"empty", ``, ""},
		{"not JSON", `username=alice`, "alice"},
		{"null", `null`, ""},
		{"array", `[{"username": "alice", "password": "xq_pw_123"}]`, "xq_pw_123"},
		{"username missing", `{"password": "xq_pw_123"}`, "xq_pw_123"},
		{"password missing", `{"username": "alice"}`, "alice"},
		{"username null", `{"username": null, "password": "xq_pw_123"}`, "xq_pw_123"},
		{"password null", `{"username": "alice", "password": null}`, "alice"},
		{"username a number", `{"username": 5, "password": "xq_pw_123"}`, "xq_pw_123"},
		{"password a number", `{"username": "alice", "password": 12345678}`, "12345678"},
		{"unknown field", `{"username": "alice", "password": "xq_pw_123", "xq_role": "admin"}`, "xq_role"},
		{"trailing object", `{"username": "alice", "password": "xq_pw_123"} {}`, "xq_pw_123"},
		// The decoder would turn each bad byte into U+FFFD: different passwords, one hash.
		{"password not UTF-8", "{\"username\": \"alice\", \"password\": \"xq_pw_\xff\xfe\"}", "xq_pw_"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			got, err := docket.ParseCredentials([]byte(tt.body))
			if err == nil {
				t.Fatalf("ParseCredentials(%s) = %+v, want an error", tt.body, got)
			}
			wantInvalid(t, err, tt.secret)
		})
	}
}

func TestValidateUsername(t *testing.T) {
	t.Parallel()
	ok := []string{
		"abc",
		strings.Repeat("a", 64),
		"lowercase",
		"UPPERCASE",
		"0123456789",
		"___",
		"...",
		"---",
		"Mixed_Name.with-All09",
	}
	for _, name := range ok {
		if err := docket.ValidateUsername(name); err != nil {
			t.Errorf("ValidateUsername(%q): %v", name, err)
		}
	}
	bad := []string{
		"",
		"ab",
		strings.Repeat("a", 65),
		"with space",
		" abc",
		"abc\n",
		"abc\x00",
		"tab\there",
		"alice@example",
		"a/b",
		`a\b`,
		"a+b",
		"a:b",
		"al\u00e9x",                  // é, 5 bytes
		"\u65e5\u672c\u8a9e",         // 3 characters, 9 bytes
		"caf\u0065\u0301",            // combining accent
		"\u0430dmin",                 // Cyrillic а
		strings.Repeat("\u00e9", 20), // 40 bytes of letters, none ASCII
	}
	for _, name := range bad {
		wantInvalid(t, docket.ValidateUsername(name), "")
	}
}

func TestValidatePassword(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		password string
		ok       bool
	}{
		{"empty", "", false},
		{"7 bytes", strings.Repeat("p", 7), false},
		{"8 bytes", strings.Repeat("p", 8), true},
		{"72 bytes", strings.Repeat("p", 72), true},
		{"73 bytes", strings.Repeat("p", 73), false},
		{"3 euro signs are 9 bytes", strings.Repeat("€", 3), true},
		{"2 euro signs are 6 bytes", strings.Repeat("€", 2), false},
		{"19 euro signs are 57 bytes", strings.Repeat("€", 19), true},
		{"24 euro signs are 72 bytes", strings.Repeat("€", 24), true},
		{"25 euro signs are 75 bytes", strings.Repeat("€", 25), false},
		{"spaces count", "        ", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := docket.ValidatePassword(tt.password)
			if tt.ok && err != nil {
				t.Fatalf("ValidatePassword(%d bytes): %v", len(tt.password), err)
			}
			if !tt.ok {
				wantInvalid(t, err, tt.password)
			}
		})
	}
}

func TestValidateIdempotencyKey(t *testing.T) {
	t.Parallel()
	var printable []byte
	for c := byte(0x20); c <= 0x7e; c++ {
		printable = append(printable, c)
	}
	ok := [][]byte{
		[]byte("a"),
		[]byte(strings.Repeat("k", 128)),
		[]byte("6f1d2b7c-0a5e-4c9b-8d21-3f0e9a7b1c44"),
		printable, // 95 characters, space to tilde
	}
	for _, key := range ok {
		if err := docket.ValidateIdempotencyKey(key); err != nil {
			t.Errorf("ValidateIdempotencyKey(%q): %v", key, err)
		}
	}
	bad := [][]byte{
		nil,
		{},
		[]byte(strings.Repeat("k", 129)),
		[]byte("a\x00b"),
		[]byte("a\tb"),
		[]byte("a\nb"),
		[]byte("a\rb"),
		[]byte("\x1f"),
		[]byte("a\x7fb"), // DEL
		[]byte("cl\u00e9"),
		[]byte("\u20ac"),
		[]byte("\xff"),
		[]byte("\x80"),
	}
	for _, key := range bad {
		wantInvalid(t, docket.ValidateIdempotencyKey(key), "")
	}
}

package docket

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Status is where a request is in its life.
type Status string

// The statuses of API.md.
const (
	StatusQueued     Status = "queued"
	StatusProcessing Status = "processing"
	StatusDone       Status = "done"
	StatusFailed     Status = "failed"
)

// Type names what the worker does with a request.
type Type string

// The request types the worker knows.
const (
	TypeEcho  Type = "echo"
	TypeSleep Type = "sleep"
	TypeCPU   Type = "cpu"
	TypeFail  Type = "fail"
)

// Limits of the payloads of API.md.
const (
	MaxSleepMS     = 10000
	MaxIterations  = 10_000_000
	MaxFailTimes   = 10
	MaxIdemKeySize = 128
)

// Request is one user's request as the API reports it.
type Request struct {
	ID          uuid.UUID
	UserID      uuid.UUID
	Seq         int64
	Type        Type
	Status      Status
	Payload     json.RawMessage
	Result      json.RawMessage // nil until done
	Error       string          // empty unless failed
	Attempts    int
	AcceptedAt  time.Time
	ProcessedAt time.Time // zero until finished
}

// Submission is a validated body of POST /requests.
type Submission struct {
	Type    Type
	Payload json.RawMessage // compact JSON; "null" when the client sent none
}

// SleepPayload is the payload of a sleep request.
type SleepPayload struct {
	MS int `json:"ms"`
}

// CPUPayload is the payload of a cpu request.
type CPUPayload struct {
	Iterations int `json:"iterations"`
}

// FailPayload is the payload of a fail request.
type FailPayload struct {
	Times int `json:"times"`
}

// ParseSubmission validates the body of POST /requests: a JSON object with
// the optional fields type (default echo) and payload, whose shape the type
// decides. Any problem is an *Error with CodeInvalidRequest.
func ParseSubmission(body []byte) (Submission, error) {
	var in struct {
		Type    *string         `json:"type"`
		Payload json.RawMessage `json:"payload"`
	}
	if err := decodeStrict(body, &in); err != nil {
		return Submission{}, err
	}
	s := Submission{Type: TypeEcho, Payload: json.RawMessage("null")}
	if in.Type != nil {
		s.Type = Type(*in.Type)
	}
	if len(in.Payload) > 0 {
		var buf bytes.Buffer
		if err := json.Compact(&buf, in.Payload); err != nil {
			return Submission{}, Errorf(CodeInvalidRequest, "payload is not valid JSON.")
		}
		s.Payload = buf.Bytes()
		if !jsonbStorable(s.Payload) {
			return Submission{}, Errorf(CodeInvalidRequest, "payload must not hold \\u0000, unpaired UTF-16 surrogates, numbers with an exponent beyond ±400, or numbers of more than 131072 integer or 16383 fractional digits.")
		}
	}
	if err := ValidatePayload(s.Type, s.Payload); err != nil {
		return Submission{}, err
	}
	return s, nil
}

// ValidatePayload checks that payload fits type t.
func ValidatePayload(t Type, payload json.RawMessage) error {
	switch t {
	case TypeEcho:
		return nil
	case TypeSleep:
		var p SleepPayload
		if err := decodePayload(t, payload, &p, "ms"); err != nil {
			return err
		}
		if p.MS < 0 || p.MS > MaxSleepMS {
			return Errorf(CodeInvalidRequest, "payload.ms must be an integer from 0 to %d.", MaxSleepMS)
		}
	case TypeCPU:
		var p CPUPayload
		if err := decodePayload(t, payload, &p, "iterations"); err != nil {
			return err
		}
		if p.Iterations < 1 || p.Iterations > MaxIterations {
			return Errorf(CodeInvalidRequest, "payload.iterations must be an integer from 1 to %d.", MaxIterations)
		}
	case TypeFail:
		var p FailPayload
		if err := decodePayload(t, payload, &p, "times"); err != nil {
			return err
		}
		if p.Times < 0 || p.Times > MaxFailTimes {
			return Errorf(CodeInvalidRequest, "payload.times must be an integer from 0 to %d.", MaxFailTimes)
		}
	default:
		return Errorf(CodeInvalidRequest, "type must be one of echo, sleep, cpu, fail.")
	}
	return nil
}

// decodePayload decodes a typed payload: an object with exactly one
// required integer field.
func decodePayload(t Type, payload json.RawMessage, dst any, field string) error {
	want := Errorf(CodeInvalidRequest, "payload for type %s must be an object {%q: <integer>}.", t, field)
	if len(payload) == 0 || payload[0] != '{' {
		return want
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(payload, &fields); err != nil {
		return want
	}
	// A null value would decode as 0 without complaint: only a number will do.
	if v, ok := fields[field]; !ok || len(fields) != 1 || len(v) == 0 || v[0] != '-' && (v[0] < '0' || v[0] > '9') {
		return want
	}
	if err := json.Unmarshal(payload, dst); err != nil {
		return want
	}
	return nil
}

// Credentials is the body of /auth/register and /auth/login.
type Credentials struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// ParseCredentials decodes a credentials body strictly; it checks shape, not
// the rules of registration (see ValidateUsername and ValidatePassword).
func ParseCredentials(body []byte) (Credentials, error) {
	var in struct {
		Username *string `json:"username"`
		Password *string `json:"password"`
	}
	if err := decodeStrict(body, &in); err != nil {
		return Credentials{}, err
	}
	if in.Username == nil || in.Password == nil {
		return Credentials{}, Errorf(CodeInvalidRequest, "username and password are required.")
	}
	return Credentials{Username: *in.Username, Password: *in.Password}, nil
}

// ValidateUsername enforces 3 to 64 characters of [A-Za-z0-9_.-].
func ValidateUsername(name string) error {
	if len(name) < 3 || len(name) > 64 {
		return Errorf(CodeInvalidRequest, "username must be 3 to 64 characters of A-Z, a-z, 0-9, '_', '.' and '-'.")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return Errorf(CodeInvalidRequest, "username must be 3 to 64 characters of A-Z, a-z, 0-9, '_', '.' and '-'.")
		}
	}
	return nil
}

// ValidatePassword enforces 8 to 72 bytes: bcrypt reads no further than 72,
// so a longer password is refused rather than silently truncated.
func ValidatePassword(password string) error {
	if len(password) < 8 || len(password) > 72 {
		return Errorf(CodeInvalidRequest, "password must be 8 to 72 bytes long.")
	}
	return nil
}

// ValidateIdempotencyKey enforces 1 to 128 printable ASCII characters.
func ValidateIdempotencyKey(key []byte) error {
	if len(key) < 1 || len(key) > MaxIdemKeySize {
		return Errorf(CodeInvalidRequest, "Idempotency-Key must be 1 to %d printable characters.", MaxIdemKeySize)
	}
	for _, c := range key {
		if c < 0x20 || c > 0x7e {
			return Errorf(CodeInvalidRequest, "Idempotency-Key must be 1 to %d printable characters.", MaxIdemKeySize)
		}
	}
	return nil
}

// decodeStrict decodes one JSON object into dst, refusing unknown fields,
// wrong types and trailing data. It refuses text that is not UTF-8 (RFC
// 8259), which the decoder would otherwise mend silently, changing a
// password or storing bytes PostgreSQL refuses.
func decodeStrict(body []byte, dst any) error {
	if !utf8.Valid(body) {
		return Errorf(CodeInvalidRequest, "body must be a JSON object with the documented fields: the body is not valid UTF-8.")
	}
	// A bare null decodes into a struct without error; it is not an object.
	if trimmed := bytes.TrimLeft(body, " \t\r\n"); len(trimmed) > 0 && trimmed[0] != '{' {
		return Errorf(CodeInvalidRequest, "body must be a JSON object with the documented fields: the body is not a JSON object.")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return Errorf(CodeInvalidRequest, "body must be a JSON object with the documented fields: %s.", describeJSONError(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Errorf(CodeInvalidRequest, "body must hold exactly one JSON object.")
	}
	return nil
}

// describeJSONError turns a decoding error into a short sentence fit for a
// client; it names the field but never echoes the input.
func describeJSONError(err error) string {
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		if te.Field != "" {
			return fmt.Sprintf("field %q has the wrong type", te.Field)
		}
		return "the body is not a JSON object"
	}
	if _, ok := errors.AsType[*json.SyntaxError](err); ok {
		return "the body is not valid JSON"
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "the body is empty or cut short"
	}
	// The unknown field's name is the client's text: not repeated back.
	const unknown = "json: unknown field "
	if msg := err.Error(); len(msg) > len(unknown) && msg[:len(unknown)] == unknown {
		return "it has an unknown field"
	}
	return "the body does not match"
}

// Limits of PostgreSQL's numeric type, which holds jsonb's numbers.
const (
	maxNumericIntDigits  = 131072
	maxNumericFracDigits = 16383
)

// jsonbStorable reports whether PostgreSQL's jsonb takes v, compact and
// valid JSON in UTF-8. jsonb refuses \u0000, unpaired UTF-16 surrogates and
// numbers beyond its numeric type, which JSON allows; and since requests are
// inserted in batches, one such payload would fail its whole batch.
func jsonbStorable(v []byte) bool {
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '"':
			end, ok := scanJSONString(v, i+1)
			if !ok {
				return false
			}
			i = end
		case c == '-' || c >= '0' && c <= '9':
			end := i
			for end < len(v) && (v[end] >= '0' && v[end] <= '9' || v[end] == '.' || v[end] == 'e' || v[end] == 'E' || v[end] == '+' || v[end] == '-') {
				end++
			}
			if !numericInRange(v[i:end]) {
				return false
			}
			i = end - 1
		}
	}
	return true
}

// scanJSONString checks the escapes of the string whose text starts at
// v[i], and returns the index of its closing quote.
func scanJSONString(v []byte, i int) (int, bool) {
	for ; i < len(v); i++ {
		switch v[i] {
		case '"':
			return i, true
		case '\\':
			if i+1 < len(v) && v[i+1] != 'u' {
				i++
				continue
			}
			r, ok := hexRune(v, i)
			switch {
			case !ok || r == 0 || utf16IsLowSurrogate(r):
				return 0, false
			case utf16IsHighSurrogate(r):
				if low, ok := hexRune(v, i+6); !ok || !utf16IsLowSurrogate(low) {
					return 0, false
				}
				i += 11
			default:
				i += 5
			}
		}
	}
	return 0, false
}

// hexRune decodes the escape at v[i]: a backslash, 'u' and four hex digits.
func hexRune(v []byte, i int) (rune, bool) {
	if i+6 > len(v) || v[i] != '\\' || v[i+1] != 'u' {
		return 0, false
	}
	r, err := strconv.ParseUint(string(v[i+2:i+6]), 16, 16)
	return rune(r), err == nil
}

func utf16IsHighSurrogate(r rune) bool { return r >= 0xd800 && r < 0xdc00 }
func utf16IsLowSurrogate(r rune) bool  { return r >= 0xdc00 && r < 0xe000 }

// numericInRange reports whether the JSON number n fits PostgreSQL's
// numeric: at most 131072 digits before the point and 16383 after it, once
// the exponent is applied. It errs on the side of refusing (a zero, or a
// fraction with leading zeros, with a huge exponent), which no sensible
// client sends.
// maxExponent is the largest exponent a payload number may carry.
const maxExponent = 400

func numericInRange(n []byte) bool {
	mantissa, exp := n, int64(0)
	if i := bytes.IndexAny(n, "eE"); i >= 0 {
		e, err := strconv.ParseInt(string(n[i+1:]), 10, 64)
		// An exponent expands to digits when stored: "1e100000" is 8 bytes
		// in and 100,000 digits out. Beyond float64's range (about ±308)
		// no client means it, so refuse it rather than let a small body
		// write a large row.
		if err != nil || e > maxExponent || e < -maxExponent {
			return false
		}
		mantissa, exp = n[:i], e
	}
	mantissa = bytes.TrimPrefix(mantissa, []byte("-"))
	intDigits, fracDigits := int64(len(mantissa)), int64(0)
	if i := bytes.IndexByte(mantissa, '.'); i >= 0 {
		intDigits, fracDigits = int64(i), int64(len(mantissa)-i-1)
	}
	if len(mantissa) > 0 && mantissa[0] == '0' { // JSON's only leading zero: 0 or 0.xxx
		intDigits = 0
	}
	return intDigits+exp <= maxNumericIntDigits && fracDigits-exp <= maxNumericFracDigits
}

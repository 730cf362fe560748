package attack

import (
	"encoding/json"
	"strconv"
)

// parseAccepted reads the id and seq of a 202 body,
// {"id": "<uuid>", "seq": <n>, "status": "queued"} (API.md). It is on
// every answer's path, so it scans the body itself instead of going
// through encoding/json's reflection: a flat object whose id is a plain
// string and whose seq is a plain integer, which is what the service
// writes. Anything else (escapes, nesting, case-folded keys, non-ASCII in
// the id, a seq that is no int64, bad JSON) goes to json.Unmarshal, so
// the result is always exactly what json.Unmarshal into
// struct{ID string; Seq int64} gives, error included.
func parseAccepted(body []byte) (id string, seq int64, err error) {
	if id, seq, ok := scanAccepted(body); ok {
		return id, seq, nil
	}
	var v struct {
		ID  string `json:"id"`
		Seq int64  `json:"seq"`
	}
	err = json.Unmarshal(body, &v)
	return v.ID, v.Seq, err
}

// scanAccepted is parseAccepted's fast path; ok is false whenever the body
// is not a case it is sure to read exactly as encoding/json would.
func scanAccepted(b []byte) (id string, seq int64, ok bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return "", 0, false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return "", 0, skipSpace(b, i+1) == len(b)
	}
	var idRaw []byte
	for {
		key, next, good := plainString(b, i)
		if !good {
			return "", 0, false
		}
		i = skipSpace(b, next)
		if i >= len(b) || b[i] != ':' {
			return "", 0, false
		}
		i = skipSpace(b, i+1)
		switch {
		case string(key) == "id":
			s, next, good := plainString(b, i)
			if !good || !ascii(s) {
				return "", 0, false
			}
			idRaw, i = s, next
		case string(key) == "seq":
			n, next, good := plainInt(b, i)
			if !good {
				return "", 0, false
			}
			seq, i = n, next
		case foldsTo(key, "id") || foldsTo(key, "seq"):
			return "", 0, false // encoding/json matches keys case-insensitively
		default:
			next, good := skipScalar(b, i)
			if !good {
				return "", 0, false
			}
			i = next
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return "", 0, false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			if skipSpace(b, i+1) != len(b) {
				return "", 0, false
			}
			return string(idRaw), seq, true
		default:
			return "", 0, false
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// plainString reads a JSON string at b[i] with no escapes and no control
// characters, returning its contents and the index after it.
func plainString(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, 0, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return b[i+1 : j], j + 1, true
		case c == '\\' || c < 0x20:
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// plainInt reads a JSON integer (no fraction, no exponent) that fits an
// int64.
func plainInt(b []byte, i int) (int64, int, bool) {
	j := i
	if j < len(b) && b[j] == '-' {
		j++
	}
	start := j
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		j++
	}
	if j == start || (b[start] == '0' && j-start > 1) {
		return 0, 0, false // no digits, or a leading zero: not JSON
	}
	if j < len(b) && (b[j] == '.' || b[j] == 'e' || b[j] == 'E') {
		return 0, 0, false
	}
	n, err := strconv.ParseInt(string(b[i:j]), 10, 64)
	if err != nil {
		return 0, 0, false
	}
	return n, j, true
}

// skipScalar skips a plain string, an integer, true, false or null.
func skipScalar(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch b[i] {
	case '"':
		_, next, ok := plainString(b, i)
		return next, ok
	case 't':
		return literal(b, i, "true")
	case 'f':
		return literal(b, i, "false")
	case 'n':
		return literal(b, i, "null")
	}
	_, next, ok := plainInt(b, i)
	return next, ok
}

func literal(b []byte, i int, lit string) (int, bool) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return 0, false
	}
	return i + len(lit), true
}

func ascii(s []byte) bool {
	for _, c := range s {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// foldsTo reports whether encoding/json could match key to the field
// name: ASCII case folding, and any non-ASCII key counts as a possible
// match (the Kelvin sign folds to k, the long s to s).
func foldsTo(key []byte, name string) bool {
	if !ascii(key) {
		return true
	}
	if len(key) != len(name) {
		return false
	}
	for i := range key {
		c := key[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != name[i] {
			return false
		}
	}
	return true
}

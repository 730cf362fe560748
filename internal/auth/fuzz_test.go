package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/docket/docket/internal/docket"
)

// fuzzUser is the user of the tokens FuzzVerify issues; the seed corpus in
// testdata/fuzz/FuzzVerify holds tokens for it signed with testSecret.
var fuzzUser = uuid.MustParse("7d444840-9dc0-11d1-b245-5ffdce74fad2")

// FuzzVerify feeds Verify arbitrary Authorization headers, and tokens this
// Tokens issued with a piece of them replaced. Verify must never panic, must
// answer every refusal with the one unauthorized error, must accept only
// tokens whose HS256 signature is right under the secret and whose claims
// hold, and a changed token it still accepts must name the same user.
func FuzzVerify(f *testing.F) {
	tokens := newTestTokens(f)
	// Seeds beside testdata/fuzz/FuzzVerify: the shapes a fuzzer cannot
	// build by itself, made fresh (a stored token expires).
	issued, _, err := tokens.Issue(fuzzUser)
	if err != nil {
		f.Fatal(err)
	}
	dot := strings.IndexByte(issued, '.')
	f.Add("Bearer "+issued, uint16(0), "")
	f.Add("bearer "+issued, uint16(len(issued)-1), "A")       // the last base64 character
	f.Add("Bearer "+issued, uint16(dot), "")                  // nothing changes at the first dot
	f.Add("Bearer "+issued, uint16(dot+1), "eyJzdWIiOiJ4In0") // another payload
	f.Add("Bearer "+issued+" ", uint16(len(issued)), ".x")

	f.Fuzz(func(t *testing.T, header string, pos uint16, patch string) {
		now := time.Now()
		got, err := tokens.Verify([]byte(header))
		checkVerify(t, tokens, header, got, err, now)

		// A token issued now, with patch written over it at pos.
		token, _, err := tokens.Issue(fuzzUser)
		if err != nil {
			t.Fatal(err)
		}
		p := int(pos) % (len(token) + 1)
		changed := token[:p] + patch + token[min(p+len(patch), len(token)):]
		got, err = tokens.Verify([]byte("Bearer " + changed))
		checkVerify(t, tokens, "Bearer "+changed, got, err, now)
		if err == nil && got != fuzzUser {
			t.Fatalf("token %q, changed to %q, verifies as user %s; it was issued to %s", token, changed, got, fuzzUser)
		}
	})
}

// checkVerify holds Verify's answer for header against what an independent
// reading of the token says.
func checkVerify(t *testing.T, tokens *Tokens, header string, got uuid.UUID, err error, now time.Time) {
	t.Helper()
	if err != nil {
		if got != uuid.Nil {
			t.Fatalf("header %q: refused, yet user %s", header, got)
		}
		if docket.ErrorCode(err) != docket.CodeUnauthorized || docket.ErrorMessage(err) != errUnauthorized.Message {
			t.Fatalf("header %q: refusal %v, want the one unauthorized error", header, err)
		}
		return
	}
	raw, ok := bearerToken([]byte(header))
	if !ok {
		t.Fatalf("header %q: accepted without a bearer token", header)
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("header %q: accepted a token of %d parts", header, len(parts))
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	mac := hmac.New(sha256.New, testSecret)
	mac.Write([]byte(parts[0] + "." + parts[1]))
	if err != nil || !hmac.Equal(sig, mac.Sum(nil)) {
		t.Fatalf("header %q: accepted a token that is not HS256-signed with the secret", header)
	}
	var head struct {
		Alg string `json:"alg"`
	}
	if b, err := base64.RawURLEncoding.DecodeString(parts[0]); err != nil || json.Unmarshal(b, &head) != nil || head.Alg != "HS256" {
		t.Fatalf("header %q: accepted a token whose alg is not HS256", header)
	}
	var claims struct {
		Sub string   `json:"sub"`
		Iss string   `json:"iss"`
		Jti string   `json:"jti"`
		Exp *float64 `json:"exp"`
		Iat *float64 `json:"iat"`
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || json.Unmarshal(b, &claims) != nil {
		t.Fatalf("header %q: accepted a token whose claims do not decode: %v", header, err)
	}
	leeway := 30 * time.Second // newTestTokens' default
	switch {
	case claims.Sub != got.String():
		t.Fatalf("header %q: sub %q, but Verify says user %s", header, claims.Sub, got)
	case claims.Iss != tokens.issuer:
		t.Fatalf("header %q: accepted iss %q", header, claims.Iss)
	case claims.Jti == "":
		t.Fatalf("header %q: accepted a token without jti", header)
	case claims.Exp == nil || claims.Iat == nil:
		t.Fatalf("header %q: accepted a token without exp or iat", header)
	case time.Unix(int64(*claims.Exp), 0).Before(now.Add(-leeway - time.Second)):
		t.Fatalf("header %q: accepted a token that expired at %v", header, *claims.Exp)
	case *claims.Exp-*claims.Iat > MaxTTL.Seconds()+1:
		t.Fatalf("header %q: accepted a lifetime of %vs", header, *claims.Exp-*claims.Iat)
	}
}

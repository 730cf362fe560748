package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/docket/docket/internal/docket"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef") // 32 bytes

func newTestTokens(t testing.TB) *Tokens {
	t.Helper()
	tokens, err := NewTokens(TokenConfig{Secret: testSecret})
	if err != nil {
		t.Fatalf("NewTokens: %v", err)
	}
	return tokens
}

// sign signs claims with method and key, as an attacker or a foreign issuer
// would.
func sign(t testing.TB, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	token, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", method.Alg(), err)
	}
	return token
}

// goodClaims returns claims Verify accepts, for the cases to spoil one by one.
func goodClaims(userID uuid.UUID) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"sub": userID.String(),
		"iss": "docket",
		"iat": now.Unix(),
		"exp": now.Add(time.Hour).Unix(),
		"jti": uuid.NewString(),
	}
}

func with(c jwt.MapClaims, key string, value any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range c {
		out[k] = v
	}
	if value == nil {
		delete(out, key)
	} else {
		out[key] = value
	}
	return out
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestVerifyRefuses(t *testing.T) {
	t.Parallel()
	tokens := newTestTokens(t)
	userID := uuid.New()
	good := goodClaims(userID)
	now := time.Now()
	beyondLeeway := 30*time.Second + time.Minute

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("rsa key: %v", err)
	}

	// Tampered: a good token's signature over another user's claims.
	goodToken := sign(t, jwt.SigningMethodHS256, testSecret, good)
	parts := strings.Split(goodToken, ".")
	otherPayload := strings.Split(sign(t, jwt.SigningMethodHS256, testSecret, with(good, "sub", uuid.NewString())), ".")[1]
	tampered := parts[0] + "." + otherPayload + "." + parts[2]

	claimsJSON := `{"sub":"` + userID.String() + `","iss":"docket","iat":` + strconv.FormatInt(now.Unix(), 10) +
		`,"exp":` + strconv.FormatInt(now.Add(time.Hour).Unix(), 10) + `,"jti":"` + uuid.NewString() + `"}`

	// Controls: the good claims, and the hand-built ones with a real HS256
	// signature, are accepted, so each case below fails for its one change.
	if _, err := tokens.Verify([]byte("Bearer " + goodToken)); err != nil {
		t.Fatalf("control token refused: %v", err)
	}
	signingInput := b64(`{"alg":"HS256","typ":"JWT"}`) + "." + b64(claimsJSON)
	mac := hmac.New(sha256.New, testSecret)
	mac.Write([]byte(signingInput))
	handBuilt := signingInput + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	if _, err := tokens.Verify([]byte("Bearer " + handBuilt)); err != nil {
		t.Fatalf("hand-built HS256 control token refused: %v", err)
	}

	cases := []struct {
		name   string
		header string
	}{
		{"empty", ""},
		{"basic scheme", "Basic x"},
		{"bearer with nothing", "Bearer"},
		{"bearer with spaces", "Bearer   "},
		{"no scheme", goodToken},
		{"scheme glued to token", "Bearer" + goodToken},
		{"garbage", "Bearer garbage"},
		{"three garbage parts", "Bearer a.b.c"},
		{"token then junk", "Bearer " + goodToken + " x"},
		{"alg none by hand", "Bearer " + b64(`{"alg":"none","typ":"JWT"}`) + "." + b64(claimsJSON) + "."},
		{"alg none by hand with HS256 signature", "Bearer " + b64(`{"alg":"none","typ":"JWT"}`) + "." + parts[1] + "." + parts[2]},
		{"alg none by library", "Bearer " + sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, good)},
		{"HS384 same secret", "Bearer " + sign(t, jwt.SigningMethodHS384, testSecret, good)},
		{"HS512 same secret", "Bearer " + sign(t, jwt.SigningMethodHS512, testSecret, good)},
		{"RS256", "Bearer " + sign(t, jwt.SigningMethodRS256, rsaKey, good)},
		{"wrong key", "Bearer " + sign(t, jwt.SigningMethodHS256, []byte("another-secret-of-at-least-32-bytes!"), good)},
		{"tampered payload", "Bearer " + tampered},
		{"expired beyond leeway", "Bearer " + sign(t, jwt.SigningMethodHS256, testSecret,
			with(with(good, "exp", now.Add(-beyondLeeway).Unix()), "iat", now.Add(-2*time.Hour).Unix()))},
		{"iat in the future", "Bearer " + sign(t, jwt.SigningMethodHS256, testSecret, with(good, "iat", now.Add(beyondLeeway).Unix()))},
		{"nbf in the future", "Bearer " + sign(t, jwt.SigningMethodHS256, testSecret, with(good, "nbf", now.Add(beyondLeeway).Unix()))},
		{"exp not a number", "Bearer " + sign(t, jwt.SigningMethodHS256, testSecret, with(good, "exp", "tomorrow"))},
		{"missing exp", "Bearer " + sign(t, jwt.SigningMethodHS256, testSecret, with(good, "exp", nil))},
		{"wrong iss", "Bearer " + sign(t, jwt.SigningMethodHS256, testSecret, with(good, "iss", "someone-else"))},
		{"missing iss", "Bearer " + sign(t, jwt.SigningMethodHS256, testSecret, with(good, "iss", nil))},
		{"missing sub", "Bearer " + sign(t, jwt.SigningMethodHS256, testSecret, with(good, "sub", nil))},
		{"sub not a uuid", "Bearer " + sign(t, jwt.SigningMethodHS256, testSecret, with(good, "sub", "alice"))},
		{"sub uuid without hyphens", "Bearer " + sign(t, jwt.SigningMethodHS256, testSecret,
			with(good, "sub", strings.ReplaceAll(userID.String(), "-", "")))},
		{"sub nil uuid", "Bearer " + sign(t, jwt.SigningMethodHS256, testSecret, with(good, "sub", uuid.Nil.String()))},
		{"missing jti", "Bearer " + sign(t, jwt.SigningMethodHS256, testSecret, with(good, "jti", nil))},
		{"missing iat", "Bearer " + sign(t, jwt.SigningMethodHS256, testSecret, with(good, "iat", nil))},
		{"lifetime over MaxTTL", "Bearer " + sign(t, jwt.SigningMethodHS256, testSecret,
			with(good, "exp", now.Add(MaxTTL+time.Minute).Unix()))},
		{"exp in the year 2100", "Bearer " + sign(t, jwt.SigningMethodHS256, testSecret, with(good, "exp", 4102444800))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id, err := tokens.Verify([]byte(tc.header))
			if err == nil {
				t.Fatalf("Verify accepted %q as user %s", tc.header, id)
			}
			if code := docket.ErrorCode(err); code != docket.CodeUnauthorized {
				t.Errorf("code = %q, want %q (err %v)", code, docket.CodeUnauthorized, err)
			}
			if msg := docket.ErrorMessage(err); msg != errUnauthorized.Message {
				t.Errorf("message = %q, want the one generic sentence %q", msg, errUnauthorized.Message)
			}
			if id != uuid.Nil {
				t.Errorf("id = %s on failure, want uuid.Nil", id)
			}
		})
	}
}

func TestVerifyAccepts(t *testing.T) {
	t.Parallel()
	tokens := newTestTokens(t)
	userID := uuid.New()
	issued, _, err := tokens.Issue(userID)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	now := time.Now()
	withinLeeway := sign(t, jwt.SigningMethodHS256, testSecret,
		with(with(goodClaims(userID), "exp", now.Add(-10*time.Second).Unix()), "iat", now.Add(-time.Hour).Unix()))
	iatSlightlyAhead := sign(t, jwt.SigningMethodHS256, testSecret,
		with(goodClaims(userID), "iat", now.Add(10*time.Second).Unix()))
	lifetimeOfMaxTTL := sign(t, jwt.SigningMethodHS256, testSecret,
		with(goodClaims(userID), "exp", now.Add(MaxTTL).Unix()))

	cases := []struct {
		name   string
		header string
	}{
		{"issued", "Bearer " + issued},
		{"lowercase scheme", "bearer " + issued},
		{"uppercase scheme", "BEARER " + issued},
		{"surrounding spaces", "  Bearer  " + issued + " "},
		{"expired within leeway", "Bearer " + withinLeeway},
		{"iat ahead within leeway", "Bearer " + iatSlightlyAhead},
		{"lifetime of exactly MaxTTL", "Bearer " + lifetimeOfMaxTTL},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := tokens.Verify([]byte(tc.header))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got != userID {
				t.Errorf("user = %s, want %s", got, userID)
			}
		})
	}
}

func TestIssue(t *testing.T) {
	t.Parallel()
	tokens, err := NewTokens(TokenConfig{Secret: testSecret, Issuer: "test-issuer", TTL: 15 * time.Minute})
	if err != nil {
		t.Fatalf("NewTokens: %v", err)
	}
	userID := uuid.New()
	first, ttl, err := tokens.Issue(userID)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	if ttl != 15*time.Minute {
		t.Errorf("ttl = %s, want 15m", ttl)
	}
	second, _, err := tokens.Issue(userID)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}

	var claims jwt.RegisteredClaims
	token, _, err := jwt.NewParser().ParseUnverified(first, &claims)
	if err != nil {
		t.Fatalf("parse issued token: %v", err)
	}
	if alg := token.Header["alg"]; alg != "HS256" {
		t.Errorf("alg = %v, want HS256", alg)
	}
	if claims.Subject != userID.String() {
		t.Errorf("sub = %q, want %q", claims.Subject, userID)
	}
	if claims.Issuer != "test-issuer" {
		t.Errorf("iss = %q, want test-issuer", claims.Issuer)
	}
	if _, err := uuid.Parse(claims.ID); err != nil {
		t.Errorf("jti = %q, want a uuid: %v", claims.ID, err)
	}
	if claims.IssuedAt == nil || claims.ExpiresAt == nil {
		t.Fatalf("iat = %v, exp = %v, want both", claims.IssuedAt, claims.ExpiresAt)
	}
	if d := claims.ExpiresAt.Sub(claims.IssuedAt.Time); d < ttl-time.Second || d > ttl+time.Second {
		t.Errorf("exp - iat = %s, want %s", d, ttl)
	}
	if d := time.Since(claims.IssuedAt.Time); d < -time.Second || d > 5*time.Second {
		t.Errorf("iat is %s from now, want now", d)
	}

	var again jwt.RegisteredClaims
	if _, _, err := jwt.NewParser().ParseUnverified(second, &again); err != nil {
		t.Fatalf("parse second token: %v", err)
	}
	if again.ID == claims.ID {
		t.Errorf("two tokens share jti %q", claims.ID)
	}

	// A token of another issuer's Tokens with the same secret is refused.
	other := newTestTokens(t)
	if _, err := other.Verify([]byte("Bearer " + first)); docket.ErrorCode(err) != docket.CodeUnauthorized {
		t.Errorf("Verify with issuer docket of an iss=test-issuer token: err = %v, want unauthorized", err)
	}
}

func TestTokenConfig(t *testing.T) {
	t.Parallel()
	t.Run("defaults", func(t *testing.T) {
		t.Parallel()
		got := TokenConfig{}.WithDefaults()
		if got.Issuer != "docket" || got.TTL != time.Hour || got.Leeway != 30*time.Second {
			t.Errorf("WithDefaults() = %+v, want issuer docket, TTL 1h, leeway 30s", got)
		}
	})

	secret31 := strings.Repeat("s", 31)
	_, err := NewTokens(TokenConfig{Secret: []byte(secret31)})
	if err == nil {
		t.Fatal("NewTokens accepted a 31-byte secret")
	}
	if msg := err.Error(); !strings.Contains(msg, "JWT_SECRET_KEY") || !strings.Contains(msg, "at least 32 bytes") {
		t.Errorf("error %q should name JWT_SECRET_KEY and say it needs at least 32 bytes", msg)
	}
	if strings.Contains(err.Error(), secret31) {
		t.Errorf("error %q prints the secret", err)
	}
	if _, err := NewTokens(TokenConfig{}); err == nil || !strings.Contains(err.Error(), "JWT_SECRET_KEY") {
		t.Errorf("NewTokens without a secret: err = %v, want one naming JWT_SECRET_KEY", err)
	}
	if _, err := NewTokens(TokenConfig{Secret: []byte(strings.Repeat("s", 32))}); err != nil {
		t.Errorf("NewTokens with a 32-byte secret: %v", err)
	}

	bad := []struct {
		name string
		cfg  TokenConfig
		want string
	}{
		{"negative TTL", TokenConfig{Secret: testSecret, TTL: -time.Second}, "TTL=-1s"},
		{"TTL over a day", TokenConfig{Secret: testSecret, TTL: 25 * time.Hour}, "TTL=25h0m0s"},
		{"negative leeway", TokenConfig{Secret: testSecret, Leeway: -time.Second}, "Leeway=-1s"},
		{"leeway over 5m", TokenConfig{Secret: testSecret, Leeway: 6 * time.Minute}, "Leeway=6m0s"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewTokens(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewTokens(%s): err = %v, want one containing %q", tc.name, err, tc.want)
			}
		})
	}
}

func TestNewTokensCopiesSecret(t *testing.T) {
	t.Parallel()
	secret := []byte(string(testSecret))
	tokens, err := NewTokens(TokenConfig{Secret: secret})
	if err != nil {
		t.Fatalf("NewTokens: %v", err)
	}
	token, _, err := tokens.Issue(uuid.New())
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	clear(secret)
	if _, err := tokens.Verify([]byte("Bearer " + token)); err != nil {
		t.Errorf("Verify after the caller cleared its secret: %v", err)
	}
}

func BenchmarkVerify(b *testing.B) {
	tokens := newTestTokens(b)
	token, _, err := tokens.Issue(uuid.New())
	if err != nil {
		b.Fatalf("Issue: %v", err)
	}
	header := []byte("Bearer " + token)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := tokens.Verify(header); err != nil {
				b.Errorf("Verify: %v", err)
				return
			}
		}
	})
}

func BenchmarkIssue(b *testing.B) {
	tokens := newTestTokens(b)
	userID := uuid.New()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := tokens.Issue(userID); err != nil {
			b.Fatalf("Issue: %v", err)
		}
	}
}

// A verified token is remembered, but only until it expires, and only in
// its exact form: a later copy with a changed signature is checked in full.
func TestVerifyRemembersUntilExpiry(t *testing.T) {
	tokens := newTestTokens(t)
	clock := time.Now()
	tokens.now = func() time.Time { return clock }
	userID := uuid.New()
	token := sign(t, jwt.SigningMethodHS256, testSecret,
		with(with(goodClaims(userID), "iat", clock.Unix()), "exp", clock.Add(time.Hour).Unix()))
	for range 2 { // the second answer comes from the cache
		if got, err := tokens.Verify([]byte("Bearer " + token)); err != nil || got != userID {
			t.Fatalf("Verify = %s, %v; want %s", got, err, userID)
		}
	}
	if tokens.verified.Len() != 1 {
		t.Fatalf("%d tokens remembered, want 1", tokens.verified.Len())
	}
	tampered := token[:len(token)-2] + "AA"
	if token[len(token)-2:] == "AA" {
		tampered = token[:len(token)-2] + "BB"
	}
	if _, err := tokens.Verify([]byte("Bearer " + tampered)); err == nil {
		t.Error("a tampered copy of a remembered token was accepted")
	}
	clock = clock.Add(time.Hour + 29*time.Second) // within the 30 s leeway
	if _, err := tokens.Verify([]byte("Bearer " + token)); err != nil {
		t.Errorf("within the leeway: %v", err)
	}
	clock = clock.Add(2 * time.Second)
	for range 2 { // from the cache, then from the full check
		if _, err := tokens.Verify([]byte("Bearer " + token)); err == nil {
			t.Fatal("an expired token was accepted")
		}
	}
	if tokens.verified.Len() != 0 {
		t.Errorf("an expired token is still remembered")
	}
}

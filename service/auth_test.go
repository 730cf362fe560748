package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/docket/docket/internal/testenv"
)

func TestRegister(t *testing.T) {
	t.Parallel()
	ta := startApp(t)

	t.Run("accepted", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct{ name, username, password string }{
			{"shortest username", "a" + randomHex(1), "password"},
			{"longest username", "Z" + randomHex(31) + "_", "password"},
			{"every allowed character", "Az09_.-" + randomHex(4), "password"},
			{"shortest password", testenv.Name("u"), "12345678"},
			{"8-byte password of 4 characters", testenv.Name("u"), "éééé"},
			{"72-byte password", testenv.Name("u"), strings.Repeat("p", 72)},
			{"72-byte password of 24 characters", testenv.Name("u"), strings.Repeat("€", 24)},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				r := ta.post(t, "", "/auth/register", credentials(tc.username, tc.password))
				wantStatus(t, r, http.StatusCreated)
				var body map[string]any
				if err := json.Unmarshal(r.body, &body); err != nil || len(body) != 2 {
					t.Fatalf("201 body %s, want exactly id and username", r.body)
				}
				if id, _ := body["id"].(string); len(id) != 36 || uuid.Validate(id) != nil {
					t.Errorf("id %v, want a uuid", body["id"])
				}
				if body["username"] != tc.username {
					t.Errorf("username %v, want %q", body["username"], tc.username)
				}
				if bytes.Contains(r.body, []byte(tc.password)) {
					t.Errorf("201 body holds the password: %s", r.body)
				}
				// The boundary password works for login, and one byte more is
				// not the same password: nothing was truncated.
				ta.login(t, tc.username, tc.password)
				wantError(t, ta.post(t, "", "/auth/login", credentials(tc.username, tc.password+"x")),
					http.StatusUnauthorized, "invalid_credentials")
			})
		}
	})

	t.Run("invalid", func(t *testing.T) {
		t.Parallel()
		ok := "password-1"
		for _, tc := range []struct{ name, body string }{
			{"username of 2", credentials("ab", ok)},
			{"username of 65", credentials(strings.Repeat("a", 65), ok)},
			{"empty username", credentials("", ok)},
			{"username with space", credentials("ab cd", ok)},
			{"username with unicode", credentials("jörg", ok)},
			{"username with slash", credentials("ab/cd", ok)},
			{"username with at", credentials("ab@cd", ok)},
			{"username with NUL", credentials("abc\x00d", ok)},
			{"password of 7", credentials("valid_name", "1234567")},
			{"password of 73", credentials("valid_name", strings.Repeat("p", 73))},
			{"password of 73 bytes in 72 characters", credentials("valid_name", strings.Repeat("p", 71)+"é")},
			{"missing password", `{"username":"valid_name"}`},
			{"missing username", `{"password":"password-1"}`},
			{"null password", `{"username":"valid_name","password":null}`},
			{"unknown field", `{"username":"valid_name","password":"password-1","admin":true}`},
			{"username a number", `{"username":123,"password":"password-1"}`},
			{"password a number", `{"username":"valid_name","password":12345678}`},
			{"password an array", `{"username":"valid_name","password":["password-1"]}`},
			{"not JSON", `username=valid_name&password=password-1`},
			{"JSON array", `[{"username":"valid_name","password":"password-1"}]`},
			{"JSON string", `"valid_name"`},
			{"JSON null", `null`},
			{"trailing garbage", `{"username":"valid_name","password":"password-1"} x`},
			{"two objects", `{"username":"valid_name","password":"password-1"}{}`},
			{"cut short", `{"username":"valid_name","password":"pass`},
			{"empty body", ``},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				r := ta.request(t, http.MethodPost, "/auth/register", tc.body, hdr("Content-Type", "application/json"))
				wantError(t, r, http.StatusBadRequest, "invalid_request")
			})
		}
		// None of them created valid_name.
		ta.register(t, "valid_name", "password-1")
	})

	t.Run("taken in any letter case", func(t *testing.T) {
		t.Parallel()
		name := "Case_" + randomHex(4)
		ta.register(t, name, "password-1")
		for _, again := range []string{name, strings.ToLower(name), strings.ToUpper(name)} {
			r := ta.post(t, "", "/auth/register", credentials(again, "password-2"))
			wantError(t, r, http.StatusConflict, "username_taken")
		}
		// The first password still holds.
		ta.login(t, name, "password-1")
	})
}

func TestLogin(t *testing.T) {
	t.Parallel()
	ta := startApp(t)
	u := ta.newUser(t)

	t.Run("token", func(t *testing.T) {
		t.Parallel()
		r := ta.post(t, "", "/auth/login", credentials(u.name, u.password))
		wantStatus(t, r, http.StatusOK)
		var body map[string]any
		if err := json.Unmarshal(r.body, &body); err != nil || len(body) != 3 {
			t.Fatalf("200 body %s, want exactly access_token, token_type and expires_in", r.body)
		}
		if body["token_type"] != "Bearer" {
			t.Errorf("token_type %v, want Bearer", body["token_type"])
		}
		if n, _ := body["expires_in"].(float64); n <= 0 || n != float64(int64(n)) {
			t.Errorf("expires_in %v, want a positive integer", body["expires_in"])
		}
		token, _ := body["access_token"].(string)
		claims := jwt.MapClaims{}
		parsed, err := jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithIssuer(ta.cfg.Tokens.Issuer),
			jwt.WithExpirationRequired(), jwt.WithIssuedAt()).
			ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return []byte(ta.secret), nil })
		if err != nil || !parsed.Valid {
			t.Fatalf("access_token %q is not an HS256 JWT of the secret: %v", token, err)
		}
		for _, c := range []string{"sub", "iat", "exp", "jti", "iss"} {
			if claims[c] == nil {
				t.Errorf("claim %s missing from %v", c, claims)
			}
		}
		if claims["sub"] != u.id.String() {
			t.Errorf("sub %v, want %s", claims["sub"], u.id)
		}
		exp, _ := claims.GetExpirationTime()
		if d := time.Until(exp.Time) - time.Duration(body["expires_in"].(float64))*time.Second; d < -5*time.Second || d > 5*time.Second {
			t.Errorf("exp %s does not match expires_in %v", exp, body["expires_in"])
		}
		// The token works.
		wantStatus(t, ta.get(t, token, "/requests"), http.StatusOK)
	})

	t.Run("username in another case", func(t *testing.T) {
		t.Parallel()
		for _, name := range []string{strings.ToUpper(u.name), strings.ToLower(u.name)} {
			token := ta.login(t, name, u.password)
			claims := jwt.MapClaims{}
			if _, _, err := jwt.NewParser().ParseUnverified(token, claims); err != nil || claims["sub"] != u.id.String() {
				t.Errorf("login as %q: sub %v, want %s (%v)", name, claims["sub"], u.id, err)
			}
		}
	})

	t.Run("invalid credentials look alike", func(t *testing.T) {
		t.Parallel()
		var bodies [][]byte
		for _, creds := range []string{
			credentials("nobody_"+randomHex(4), u.password),  // unknown user
			credentials(u.name, "wrong-password"),            // wrong password
			credentials(u.name, strings.ToUpper(u.password)), // passwords are case-sensitive
			credentials(u.name, u.password+"x"),              // not a prefix match
			credentials(u.name, u.password[:len(u.password)-1]),
			credentials(u.name, strings.Repeat("p", 100)), // longer than bcrypt reads
			credentials("x", u.password),                  // a name that cannot exist
		} {
			r := ta.post(t, "", "/auth/login", creds)
			wantError(t, r, http.StatusUnauthorized, "invalid_credentials")
			bodies = append(bodies, r.body)
		}
		for i := range bodies {
			if !bytes.Equal(bodies[i], bodies[0]) {
				t.Errorf("401 bodies differ:\n%s\n%s", bodies[0], bodies[i])
			}
		}
	})

	t.Run("malformed body", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct{ name, body string }{
			{"not JSON", "user=" + u.name},
			{"missing password", `{"username":"` + u.name + `"}`},
			{"unknown field", `{"username":"` + u.name + `","password":"` + u.password + `","remember":true}`},
			{"wrong type", `{"username":"` + u.name + `","password":1}`},
			{"JSON array", `[]`},
			{"trailing garbage", credentials(u.name, u.password) + "]"},
			{"empty body", ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := ta.request(t, http.MethodPost, "/auth/login", tc.body, hdr("Content-Type", "application/json"))
				wantError(t, r, http.StatusBadRequest, "invalid_request")
			})
		}
	})
}

// TestLoginTiming checks that an unknown user takes as long as a wrong
// password. Not parallel: it measures time.
func TestLoginTiming(t *testing.T) {
	ta := startApp(t, func(s *setup) { s.cfg.Hasher.Cost = 8 })
	u := ta.newUser(t)
	unknown := credentials("nobody_"+randomHex(4), u.password)
	wrong := credentials(u.name, "wrong-password")

	var tUnknown, tWrong []time.Duration
	measure := func(body string) (time.Duration, []byte) {
		start := time.Now()
		r := ta.post(t, "", "/auth/login", body)
		d := time.Since(start)
		wantError(t, r, http.StatusUnauthorized, "invalid_credentials")
		return d, r.body
	}
	measure(unknown) // warm up connections and caches
	measure(wrong)
	for range 7 { // interleaved, so that load from elsewhere hits both alike
		d1, b1 := measure(unknown)
		d2, b2 := measure(wrong)
		tUnknown, tWrong = append(tUnknown, d1), append(tWrong, d2)
		if !bytes.Equal(b1, b2) {
			t.Fatalf("401 bodies differ:\n%s\n%s", b1, b2)
		}
	}
	ratio := float64(median(tUnknown)) / float64(median(tWrong))
	t.Logf("median unknown user %s, wrong password %s, ratio %.2f", median(tUnknown), median(tWrong), ratio)
	if ratio < 0.5 || ratio > 2 {
		t.Errorf("unknown user takes %.2f times as long as a wrong password (medians %s and %s); want 0.5 to 2",
			ratio, median(tUnknown), median(tWrong))
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestHashingOverload storms a one-slot bcrypt pool with no queue: some
// sign-ins and registrations are shed with 503 overloaded, none hangs, and
// the server keeps answering. Not parallel: it needs the CPU to itself.
func TestHashingOverload(t *testing.T) {
	ta := startApp(t, func(s *setup) {
		s.cfg.Hasher.Cost = 8
		s.cfg.Hasher.Workers = 1
		s.cfg.Hasher.Queue = 0
		s.cfg.Hasher.Wait = 20 * time.Millisecond
	})
	u := ta.newUser(t)

	// storm fires rounds of n simultaneous requests made by body and counts
	// the statuses.
	storm := func(rounds, n int, path string, body func() string) map[int]int {
		var (
			mu     sync.Mutex
			counts = map[int]int{}
		)
		for range rounds {
			var wg sync.WaitGroup
			start := make(chan struct{})
			for range n {
				wg.Go(func() {
					<-start
					began := time.Now()
					r, err := ta.tryRequest(http.MethodPost, path, body(), nil)
					took := time.Since(began)
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err != nil:
						t.Errorf("%s during the storm: %v", path, err)
					case took > 10*time.Second:
						t.Errorf("%s took %s during the storm", path, took)
					case r.status == http.StatusServiceUnavailable:
						if code, _ := errorShape(t, path, r); code != "overloaded" || r.header.Get("Retry-After") == "" {
							t.Errorf("%s: 503 without overloaded and Retry-After: %s", path, r)
						}
					}
					counts[r.status]++
				})
			}
			close(start)
			wg.Wait()
		}
		return counts
	}

	done := make(chan struct{})
	var logins, registrations map[int]int
	go func() {
		defer close(done)
		logins = storm(3, 12, "/auth/login", func() string { return credentials(u.name, u.password) })
		registrations = storm(2, 12, "/auth/register", func() string { return credentials(testenv.Name("u"), "password-1") })
	}()
	// The server answers other routes while the storm lasts.
	healthz := 0
	for storming := true; storming; {
		select {
		case <-done:
			storming = false
		default:
		}
		start := time.Now()
		r := ta.request(t, http.MethodGet, "/healthz", "", nil)
		wantStatus(t, r, http.StatusOK)
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("/healthz took %s during the storm", d)
		}
		healthz++
	}
	<-done
	t.Logf("logins %v, registrations %v, /healthz answered %d times", logins, registrations, healthz)
	for _, c := range []struct {
		what   string
		counts map[int]int
		ok     int
	}{{"logins", logins, http.StatusOK}, {"registrations", registrations, http.StatusCreated}} {
		if c.counts[http.StatusServiceUnavailable] == 0 {
			t.Errorf("%s: none shed with 503 overloaded: %v", c.what, c.counts)
		}
		if c.counts[c.ok] == 0 {
			t.Errorf("%s: none succeeded: %v", c.what, c.counts)
		}
		for status := range c.counts {
			if status != c.ok && status != http.StatusServiceUnavailable {
				t.Errorf("%s: status %d during the storm: %v", c.what, status, c.counts)
			}
		}
	}
	// Once the storm is over, the pool is free again.
	ta.login(t, u.name, u.password)
}

// forge signs claims with method and key.
func forge(t testing.TB, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatalf("sign %s token: %v", method.Alg(), err)
	}
	return s
}

// tamper replaces the claims of a signed token, keeping its header and
// signature.
func tamper(t testing.TB, token string, claims jwt.MapClaims) string {
	t.Helper()
	parts := strings.Split(token, ".")
	b, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	parts[1] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

func TestTokens(t *testing.T) {
	t.Parallel()
	ta := startApp(t)
	u := ta.newUser(t)
	other := ta.newUser(t)
	mine := ta.submit(t, u.token, `{}`)
	secret := []byte(ta.secret)

	now := time.Now()
	claims := func(change func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{
			"sub": u.id.String(),
			"iat": now.Unix(),
			"exp": now.Add(time.Hour).Unix(),
			"jti": uuid.NewString(),
			"iss": ta.cfg.Tokens.Issuer,
		}
		if change != nil {
			change(c)
		}
		return c
	}

	// The forger is right: its well-formed token is accepted.
	good := forge(t, jwt.SigningMethodHS256, secret, claims(nil))
	wantStatus(t, ta.get(t, good, "/requests/"+mine.ID.String()), http.StatusOK)

	otherKey := []byte(randomHex(32))
	headers := []struct {
		name   string
		header http.Header
	}{
		{"no header", nil},
		{"empty", hdr("Authorization", "")},
		{"basic", hdr("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(u.name+":"+u.password)))},
		{"bearer without token", hdr("Authorization", "Bearer")},
		{"bearer and spaces", hdr("Authorization", "Bearer    ")},
		{"token without scheme", hdr("Authorization", good)},
		{"garbage", bearer("garbage")},
		{"garbage of three parts", bearer("a.b.c")},
		{"alg none", bearer(forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(nil)))},
		{"alg none without signature", bearer(strings.Join(strings.Split(forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(nil)), ".")[:2], ".") + ".")},
		{"HS512 with the secret", bearer(forge(t, jwt.SigningMethodHS512, secret, claims(nil)))},
		{"HS384 with the secret", bearer(forge(t, jwt.SigningMethodHS384, secret, claims(nil)))},
		{"another key", bearer(forge(t, jwt.SigningMethodHS256, otherKey, claims(nil)))},
		{"tampered sub", bearer(tamper(t, good, claims(func(c jwt.MapClaims) { c["sub"] = other.id.String() })))},
		{"tampered exp", bearer(tamper(t, forge(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Hour).Unix() })), claims(nil)))},
		{"signature cut", bearer(good[:len(good)-4])},
		{"expired", bearer(forge(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) {
			c["iat"] = now.Add(-3 * time.Hour).Unix()
			c["exp"] = now.Add(-2 * time.Hour).Unix()
		})))},
		{"wrong iss", bearer(forge(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["iss"] = "someone-else" })))},
		{"no iss", bearer(forge(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { delete(c, "iss") })))},
		{"no exp", bearer(forge(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { delete(c, "exp") })))},
		{"exp a string", bearer(forge(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["exp"] = "tomorrow" })))},
		{"no sub", bearer(forge(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { delete(c, "sub") })))},
		{"sub not a uuid", bearer(forge(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["sub"] = "admin" })))},
		{"sub an unknown user", bearer(forge(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["sub"] = uuid.NewString() })))},
	}
	routes := []struct{ name, method, path, body string }{
		{"POST /requests", http.MethodPost, "/requests", `{"type":"echo","payload":1}`},
		{"GET /requests", http.MethodGet, "/requests", ""},
		{"GET /requests/{id}", http.MethodGet, "/requests/" + mine.ID.String(), ""},
	}
	before := ta.countRequests(t)
	for _, h := range headers {
		for _, rt := range routes {
			t.Run(h.name+"/"+rt.name, func(t *testing.T) {
				r := ta.request(t, rt.method, rt.path, rt.body, h.header)
				if h.name == "sub an unknown user" && rt.method == http.MethodGet {
					// Validly signed by the server's key: a user that does
					// not exist owns nothing, so reads find nothing.
					if r.status != http.StatusUnauthorized && r.status != http.StatusOK && r.status != http.StatusNotFound {
						t.Errorf("status %d: %s", r.status, r.body)
					}
					if r.status == http.StatusOK && strings.Contains(string(r.body), mine.ID.String()) {
						t.Errorf("a token of an unknown user reads another user's requests: %s", r.body)
					}
					return
				}
				wantError(t, r, http.StatusUnauthorized, "unauthorized")
				if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("WWW-Authenticate %q, want Bearer", r.header.Get("WWW-Authenticate"))
				}
			})
		}
	}
	if after := ta.countRequests(t); after != before {
		t.Errorf("refused tokens wrote %d requests", after-before)
	}
}

package auth

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/docket/docket/internal/docket"
)

// MinSecretLen is the shortest JWT_SECRET_KEY accepted: HS256 wants a key at
// least as long as its 32-byte output.
const MinSecretLen = 32

// MaxTTL is the longest token lifetime: no configuration issues longer, and
// Verify refuses a token whose exp is further than this from its iat.
const MaxTTL = 24 * time.Hour

// errUnauthorized is the one answer to every bad token. It is shared (Verify
// is on every request's path) and says nothing about which check failed.
var errUnauthorized = docket.Errorf(docket.CodeUnauthorized,
	"A valid bearer access token is required.")

// errWrongMethod refuses a key to any method but HS256. The parser already
// checks the alg; this keeps the key from an HMAC-with-public-key mix-up even
// if the parser options change.
var errWrongMethod = errors.New("signing method is not HS256")

// TokenConfig configures JWT issuing and verification.
type TokenConfig struct {
	// Secret is the HS256 key (JWT_SECRET_KEY), at least MinSecretLen bytes.
	// NewTokens copies it.
	Secret []byte

	// Issuer is written to iss and required on verification. Empty selects
	// "docket".
	Issuer string

	// TTL is how long a token is valid, more than 0 and at most MaxTTL
	// (24h). Zero selects 1h.
	TTL time.Duration

	// Leeway is the clock skew allowed on exp, nbf and iat, 0 to 5m. Zero
	// selects 30s.
	Leeway time.Duration
}

// WithDefaults returns c with the documented defaults filled in.
func (c TokenConfig) WithDefaults() TokenConfig {
	if c.Issuer == "" {
		c.Issuer = "docket"
	}
	if c.TTL == 0 {
		c.TTL = time.Hour
	}
	if c.Leeway == 0 {
		c.Leeway = 30 * time.Second
	}
	return c
}

// Validate reports the first field of c that is out of range. It never
// prints the secret.
func (c TokenConfig) Validate() error {
	switch {
	case len(c.Secret) < MinSecretLen:
		return fmt.Errorf("JWT_SECRET_KEY is %d bytes: it needs at least %d bytes (for example `openssl rand -hex 32`)",
			len(c.Secret), MinSecretLen)
	case c.Issuer == "":
		return errors.New("token Issuer is empty")
	case c.TTL <= 0 || c.TTL > MaxTTL:
		return fmt.Errorf("token TTL=%s: want more than 0 and at most 24h", c.TTL)
	case c.Leeway < 0 || c.Leeway > 5*time.Minute:
		return fmt.Errorf("token Leeway=%s: want 0 to 5m", c.Leeway)
	}
	return nil
}

// Tokens issues and verifies access tokens. It is safe for concurrent use.
type Tokens struct {
	secret  []byte
	issuer  string
	ttl     time.Duration
	leeway  time.Duration
	parser  *jwt.Parser
	keyFunc jwt.Keyfunc

	// verified remembers tokens that passed every check, by their exact
	// text, until they expire: a client sends one token with all its
	// requests, and checking it again costs an HMAC and two JSON decodes
	// each time. Only a token that verified is stored, so a forged or
	// altered one always takes the full check.
	verified *lru.Cache[string, verifiedToken]

	now func() time.Time // the verifying clock; tests move it
}

// verifiedCacheSize bounds the verified tokens remembered (about 400 bytes
// each): the least recently used go first.
const verifiedCacheSize = 16384

type verifiedToken struct {
	user uuid.UUID
	exp  time.Time // with the leeway added
}

// NewTokens returns Tokens for cfg with defaults applied.
func NewTokens(cfg TokenConfig) (*Tokens, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	secret := bytes.Clone(cfg.Secret)
	// Boxed once: returning the []byte from the key func would allocate an
	// interface value on every Verify.
	var key any = secret
	verified, err := lru.New[string, verifiedToken](verifiedCacheSize)
	if err != nil {
		return nil, err
	}
	var t *Tokens // the parser's clock reads t.now
	t = &Tokens{
		secret:   secret,
		issuer:   cfg.Issuer,
		ttl:      cfg.TTL,
		leeway:   cfg.Leeway,
		verified: verified,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
			jwt.WithExpirationRequired(),
			jwt.WithIssuer(cfg.Issuer),
			jwt.WithLeeway(cfg.Leeway),
			jwt.WithIssuedAt(),
			jwt.WithTimeFunc(func() time.Time { return t.now() }),
		),
		keyFunc: func(token *jwt.Token) (any, error) {
			if token.Method != jwt.SigningMethodHS256 {
				return nil, errWrongMethod
			}
			return key, nil
		},
		now: time.Now,
	}
	return t, nil
}

// Issue signs an HS256 token for userID and returns it with its lifetime.
func (t *Tokens) Issue(userID uuid.UUID) (token string, ttl time.Duration, err error) {
	jti, err := uuid.NewRandom()
	if err != nil {
		return "", 0, fmt.Errorf("token id: %w", err)
	}
	now := time.Now()
	claims := jwt.RegisteredClaims{
		Issuer:    t.issuer,
		Subject:   userID.String(),
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(t.ttl)),
		ID:        jti.String(),
	}
	token, err = jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(t.secret)
	if err != nil {
		return "", 0, fmt.Errorf("sign token: %w", err)
	}
	return token, t.ttl, nil
}

// Verify checks an Authorization header value ("Bearer <jwt>", the scheme in
// any case) and returns the user id in its sub. Every failure returns the
// same docket.CodeUnauthorized error. Verify keeps nothing of authorization.
func (t *Tokens) Verify(authorization []byte) (uuid.UUID, error) {
	raw, ok := bearerToken(authorization)
	if !ok {
		return uuid.Nil, errUnauthorized
	}
	if v, ok := t.verified.Get(raw); ok {
		if t.now().Before(v.exp) {
			return v.user, nil
		}
		t.verified.Remove(raw)
		return uuid.Nil, errUnauthorized
	}
	var claims jwt.RegisteredClaims
	if _, err := t.parser.ParseWithClaims(raw, &claims, t.keyFunc); err != nil {
		return uuid.Nil, errUnauthorized
	}
	if claims.ID == "" {
		return uuid.Nil, errUnauthorized
	}
	// Issue always writes iat, and never a lifetime over MaxTTL: a token
	// without iat, or valid for longer, was not made by any configuration
	// of this service (a leaked key, or a forger's guess at one).
	if claims.IssuedAt == nil || claims.ExpiresAt.Sub(claims.IssuedAt.Time) > MaxTTL {
		return uuid.Nil, errUnauthorized
	}
	// Only the canonical 36-byte form, which Issue writes; uuid.Parse alone
	// would also take the urn:, braced and unhyphenated forms.
	if len(claims.Subject) != 36 {
		return uuid.Nil, errUnauthorized
	}
	userID, err := uuid.Parse(claims.Subject)
	if err != nil || userID == uuid.Nil {
		return uuid.Nil, errUnauthorized
	}
	t.verified.Add(raw, verifiedToken{user: userID, exp: claims.ExpiresAt.Add(t.leeway)})
	return userID, nil
}

// bearerToken returns the token of a "Bearer <token>" header value, the
// scheme matched case-insensitively (RFC 9110 section 11.1).
func bearerToken(authorization []byte) (string, bool) {
	const scheme = "Bearer"
	h := bytes.TrimSpace(authorization)
	if len(h) <= len(scheme) || h[len(scheme)] != ' ' || !bytes.EqualFold(h[:len(scheme)], []byte(scheme)) {
		return "", false
	}
	raw := bytes.TrimLeft(h[len(scheme):], " ")
	if len(raw) == 0 {
		return "", false
	}
	return string(raw), true
}

// Package auth holds the two halves of authentication: a Hasher for
// passwords and Tokens for the access tokens handed out after a login.
//
// Register and login go through the Hasher. bcrypt is slow on purpose (cost
// 10 is tens of milliseconds of one core), so the Hasher runs it on a fixed
// number of slots, lets a bounded number of callers wait a bounded time for
// one, and sheds everything beyond that with docket.CodeOverloaded, which the
// HTTP layer turns into 503 with Retry-After. A login for an unknown user
// calls Compare with an empty hash: the Hasher then compares against a dummy
// hash of the same cost, so an unknown user costs the same time (and the same
// slot) as a wrong password.
//
// A successful login calls Tokens.Issue for an HS256 JWT signed with
// JWT_SECRET_KEY. Every authenticated request calls Tokens.Verify with its
// Authorization header; Verify accepts HS256 only, requires exp, iat (at
// most MaxTTL before exp), iss, a uuid sub and a jti, and answers every
// failure with the same docket.CodeUnauthorized error so a client cannot
// tell which check failed.
package auth

package auth

import (
	"testing"

	"github.com/google/uuid"
)

// BenchmarkTokensVerify is what every authenticated API request pays for its
// token, on one goroutine: the baseline to compare a change against with
// benchstat. BenchmarkVerify (tokens_test.go) measures the throughput of
// all CPUs instead, and BenchmarkIssue the cost of a login's Issue.
func BenchmarkTokensVerify(b *testing.B) {
	tokens := newTestTokens(b)
	userID := uuid.New()
	token, _, err := tokens.Issue(userID)
	if err != nil {
		b.Fatalf("Issue: %v", err)
	}
	// As the service passes it: the header's bytes from fasthttp.
	header := []byte("Bearer " + token)
	if got, err := tokens.Verify(header); err != nil || got != userID {
		b.Fatalf("Verify = %v, %v; want %v, nil", got, err, userID)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tokens.Verify(header); err != nil {
			b.Fatalf("Verify: %v", err)
		}
	}
}

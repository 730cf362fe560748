package auth

import (
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// BenchmarkBcryptCompare times one bcrypt comparison at the default cost:
// the login route's unit of work, from which its capacity on n cores is
// about n / (this time).
func BenchmarkBcryptCompare(b *testing.B) {
	hash, err := bcrypt.GenerateFromPassword([]byte("correct horse battery staple"), bcrypt.DefaultCost)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := bcrypt.CompareHashAndPassword(hash, []byte("correct horse battery staple")); err != nil {
			b.Fatal(err)
		}
	}
}

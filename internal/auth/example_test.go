package auth_test

import (
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/docket/docket/internal/auth"
	"github.com/docket/docket/internal/docket"
)

func ExampleTokens() {
	tokens, err := auth.NewTokens(auth.TokenConfig{
		Secret: []byte("an example secret of at least 32 bytes"),
		TTL:    15 * time.Minute,
	})
	if err != nil {
		panic(err)
	}
	userID := uuid.MustParse("7d444840-9dc0-11d1-b245-5ffdce74fad2")

	token, ttl, err := tokens.Issue(userID)
	if err != nil {
		panic(err)
	}
	fmt.Println("expires_in:", ttl.Seconds())

	got, err := tokens.Verify([]byte("Bearer " + token))
	fmt.Println("user:", got, err)

	_, err = tokens.Verify([]byte("Bearer " + token + "x"))
	fmt.Println("tampered:", docket.ErrorCode(err))
	// Output:
	// expires_in: 900
	// user: 7d444840-9dc0-11d1-b245-5ffdce74fad2 <nil>
	// tampered: unauthorized
}

package docket_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/docket/docket/internal/docket"
)

func TestErrorf(t *testing.T) {
	t.Parallel()
	err := docket.Errorf(docket.CodeNotFound, "request %d of %s was not found.", 3, "alice")
	if err.Code != docket.CodeNotFound || err.Message != "request 3 of alice was not found." {
		t.Errorf("Errorf = %+v", err)
	}
	if got, want := err.Error(), "not_found: request 3 of alice was not found."; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestErrorCodeAndMessage(t *testing.T) {
	t.Parallel()
	client := docket.Errorf(docket.CodeOverloaded, "Too many requests are queued; retry later.")
	const secret = "dial tcp 10.0.0.7:5432: password authentication failed for user xq_admin"
	internal := errors.New(secret)
	tests := []struct {
		name        string
		err         error
		wantCode    docket.Code
		wantMessage string
	}{
		{"an *Error", client, docket.CodeOverloaded, client.Message},
		{"wrapped with %w", fmt.Errorf("accept request: %w", client), docket.CodeOverloaded, client.Message},
		{"wrapped twice", fmt.Errorf("handler: %w", fmt.Errorf("accept: %w", client)), docket.CodeOverloaded, client.Message},
		{"joined after an internal error", errors.Join(internal, client), docket.CodeOverloaded, client.Message},
		{"joined, wrapped", fmt.Errorf("flush: %w", errors.Join(internal, fmt.Errorf("x: %w", client))), docket.CodeOverloaded, client.Message},
		{"the first *Error wins", errors.Join(client, docket.Errorf(docket.CodeUnavailable, "Down.")), docket.CodeOverloaded, client.Message},
		{"a plain error", internal, docket.CodeInternal, ""},
		{"a wrapped plain error", fmt.Errorf("query: %w", internal), docket.CodeInternal, ""},
		{"wrapped with %v loses the code", fmt.Errorf("accept: %v", client), docket.CodeInternal, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := docket.ErrorCode(tt.err); got != tt.wantCode {
				t.Errorf("ErrorCode = %q, want %q", got, tt.wantCode)
			}
			msg := docket.ErrorMessage(tt.err)
			if tt.wantMessage != "" && msg != tt.wantMessage {
				t.Errorf("ErrorMessage = %q, want %q", msg, tt.wantMessage)
			}
			if tt.wantCode == docket.CodeInternal {
				if msg == "" || strings.Contains(msg, "xq_admin") || strings.Contains(msg, "10.0.0.7") || strings.Contains(msg, "accept") {
					t.Errorf("ErrorMessage = %q: want a generic sentence without the error's text", msg)
				}
			}
		})
	}
}

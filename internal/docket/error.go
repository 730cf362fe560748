package docket

import (
	"errors"
	"fmt"
)

// Code is a machine-readable error code of the HTTP contract (API.md).
type Code string

// The error codes of API.md, and nothing else.
const (
	CodeInvalidRequest   Code = "invalid_request"
	CodePayloadTooLarge  Code = "payload_too_large"
	CodeUsernameTaken    Code = "username_taken"
	CodeInvalidCreds     Code = "invalid_credentials"
	CodeUnauthorized     Code = "unauthorized"
	CodeNotFound         Code = "not_found"
	CodeMethodNotAllowed Code = "method_not_allowed"
	CodeOverloaded       Code = "overloaded"
	CodeUnavailable      Code = "unavailable"
	CodeInternal         Code = "internal"
)

// Error is an error a client may see: its Message is written for the client
// and never carries internal detail.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// Errorf returns an *Error with a formatted client-facing message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, and
// CodeInternal for any other error.
func ErrorCode(err error) Code {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	return CodeInternal
}

// ErrorMessage returns the client-facing message of err: the *Error's own
// message, or a generic sentence for internal errors, whose text may hold
// details a client must not see.
func ErrorMessage(err error) string {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Message
	}
	return "An internal error occurred."
}

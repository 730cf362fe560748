package docket_test

import (
	"fmt"
	"time"

	"github.com/docket/docket/internal/docket"
)

func ExampleParseSubmission() {
	s, err := docket.ParseSubmission([]byte(`{"type": "sleep", "payload": {"ms": 250}}`))
	if err != nil {
		fmt.Println(docket.ErrorCode(err), docket.ErrorMessage(err))
		return
	}
	fmt.Println(s.Type, string(s.Payload))

	s, _ = docket.ParseSubmission([]byte(`{"payload": [1, 2, 3]}`))
	fmt.Println(s.Type, string(s.Payload))

	_, err = docket.ParseSubmission([]byte(`{"type": "sleep", "payload": {"ms": 20000}}`))
	fmt.Println(docket.ErrorCode(err), docket.ErrorMessage(err))
	// Output:
	// sleep {"ms":250}
	// echo [1,2,3]
	// invalid_request payload.ms must be an integer from 0 to 10000.
}

func ExampleFormatTime() {
	paris := time.FixedZone("CET", 3600)
	fmt.Println(docket.FormatTime(time.Date(2026, 11, 29, 8, 1, 24, 123400000, paris)))
	// Output: 2026-11-29T07:01:24.123400Z
}

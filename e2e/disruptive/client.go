package disruptive

import (
	"net/http"
	"time"
)

func testenvHTTPClient() *http.Client { return &http.Client{Timeout: 2 * time.Second} }

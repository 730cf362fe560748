package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/readyz":
			w.Write([]byte(`{"status":"ok"}`))
		case "/slow":
			time.Sleep(200 * time.Millisecond)
		default:
			http.Error(w, `{"error":{"code":"unavailable"}}`, http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(srv.Close)
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	tests := []struct {
		name    string
		args    []string
		code    int
		wantErr string
	}{
		{"2xx", []string{srv.URL + "/readyz"}, 0, ""},
		{"503", []string{srv.URL + "/down"}, 1, "503 Service Unavailable"},
		{"refused", []string{closedURL + "/readyz"}, 1, "connection refused"},
		{"timeout", []string{"-timeout", "20ms", srv.URL + "/slow"}, 1, "deadline exceeded"},
		{"no url", nil, 2, "usage"},
		{"bad url", []string{"http://[::1"}, 1, "url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stderr strings.Builder
			if code := run(tt.args, &stderr); code != tt.code {
				t.Fatalf("run(%q) = %d, want %d; stderr: %s", tt.args, code, tt.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.wantErr) {
				t.Errorf("stderr %q does not mention %q", stderr.String(), tt.wantErr)
			}
		})
	}
}

package testenv

import (
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
)

// Logger returns a logger that writes to the test's log, at level and
// above, until the test's cleanups are done (a log line after the test
// ends would panic).
func Logger(t testing.TB, level slog.Level) *slog.Logger {
	t.Helper()
	w := &testWriter{t: t}
	t.Cleanup(func() { w.done.Store(true) }) // registered first, runs last
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

type testWriter struct {
	t    testing.TB
	done atomic.Bool
}

func (w *testWriter) Write(b []byte) (int, error) {
	if !w.done.Load() {
		w.t.Log(strings.TrimSuffix(string(b), "\n"))
	}
	return len(b), nil
}

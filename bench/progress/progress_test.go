package progress_test

import (
	"bytes"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docket/docket/bench/progress"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// In a log, each status is a line of its own; the final status always
// prints.
func TestLogLines(t *testing.T) {
	t.Parallel()
	var out syncBuffer
	var n atomic.Int64
	l := progress.Start(&out, false, 10*time.Millisecond, func() string { return "done " + string(rune('0'+n.Add(1)%10)) })
	time.Sleep(35 * time.Millisecond)
	l.Stop()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) < 2 || strings.Contains(out.String(), "\r") {
		t.Fatalf("output %q: want several plain lines", out.String())
	}
	l.Stop() // twice is harmless
}

// On a terminal the line is redrawn in place and ends with a newline.
func TestTerminalRedraws(t *testing.T) {
	t.Parallel()
	var out syncBuffer
	l := progress.Start(&out, true, time.Hour, func() string { return "attack 1s/2s" })
	l.Stop()
	if got := out.String(); got != "\rattack 1s/2s\n" {
		t.Fatalf("output %q", got)
	}
}

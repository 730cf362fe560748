package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/docket/docket/internal/docket"
)

func TestRunHandlerEcho(t *testing.T) {
	t.Parallel()
	for _, payload := range []string{`null`, `"text"`, `42`, `[1,{"a":null}]`, `{"nested":{"deep":[true,false]}}`} {
		got, err := runHandler(t.Context(), docket.TypeEcho, []byte(payload), 1)
		if err != nil || string(got) != payload {
			t.Errorf("echo %s = %s, %v", payload, got, err)
		}
	}
}

func TestRunHandlerSleep(t *testing.T) {
	t.Parallel()

	// In a synctest bubble the clock is fake: the waits are exact and instant.
	for _, ms := range []int{0, 1, 250, 10000} {
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			got, err := runHandler(t.Context(), docket.TypeSleep, []byte(`{"ms":`+strconv.Itoa(ms)+`}`), 1)
			if err != nil {
				t.Fatalf("sleep %d: %v", ms, err)
			}
			if slept := time.Since(start); slept != time.Duration(ms)*time.Millisecond {
				t.Errorf("sleep %d took %s", ms, slept)
			}
			if want := `{"slept_ms":` + strconv.Itoa(ms) + `}`; string(got) != want {
				t.Errorf("sleep %d = %s, want %s", ms, got, want)
			}
		})
	}

	t.Run("ends at the context's deadline", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
			defer cancel()
			start := time.Now()
			got, err := runHandler(ctx, docket.TypeSleep, []byte(`{"ms":10000}`), 1)
			if !errors.Is(err, context.DeadlineExceeded) || got != nil {
				t.Errorf("sleep past the deadline = %s, %v; want context.DeadlineExceeded", got, err)
			}
			if waited := time.Since(start); waited != 3*time.Second {
				t.Errorf("returned after %s, want 3s", waited)
			}
			var perm permanentError
			if errors.As(err, &perm) {
				t.Error("a cancelled sleep is a permanent error; it must be retried")
			}
		})
	})

	t.Run("returns promptly when cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		errc := make(chan error, 1)
		start := time.Now()
		go func() {
			_, err := runHandler(ctx, docket.TypeSleep, []byte(`{"ms":10000}`), 1)
			errc <- err
		}()
		cancel()
		if err := receive(t, "cancelled sleep returns", errc); !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled sleep: err = %v, want context.Canceled", err)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("cancelled sleep returned after %s", took)
		}
	})
}

func TestRunHandlerCPU(t *testing.T) {
	t.Parallel()
	digest := func(t *testing.T, payload string) string {
		t.Helper()
		got, err := runHandler(t.Context(), docket.TypeCPU, []byte(payload), 1)
		if err != nil {
			t.Fatalf("cpu %s: %v", payload, err)
		}
		var out struct {
			Digest string `json:"digest"`
		}
		if err := json.Unmarshal(got, &out); err != nil || len(out.Digest) != 64 {
			t.Fatalf("cpu %s = %s, want {\"digest\": <64 hex digits>}", payload, got)
		}
		return out.Digest
	}
	// iterations hashes in a chain, the first over the payload itself.
	chain := func(payload string, iterations int) string {
		sum := sha256.Sum256([]byte(payload))
		for range iterations - 1 {
			sum = sha256.Sum256(sum[:])
		}
		return hex.EncodeToString(sum[:])
	}

	for _, payload := range []string{`{"iterations":1}`, `{"iterations":2}`, `{"iterations":100000}`} {
		var p docket.CPUPayload
		_ = json.Unmarshal([]byte(payload), &p)
		if got, want := digest(t, payload), chain(payload, p.Iterations); got != want {
			t.Errorf("cpu %s = %s, want %s", payload, got, want)
		}
	}
	if a, b := digest(t, `{"iterations":1000}`), digest(t, `{"iterations":1000}`); a != b {
		t.Errorf("cpu is not deterministic: %s then %s", a, b)
	}
	if a, b := digest(t, `{"iterations":1000}`), digest(t, `{"iterations":1001}`); a == b {
		t.Errorf("cpu gave %s for 1000 and 1001 iterations", a)
	}

	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		start := time.Now()
		got, err := runHandler(ctx, docket.TypeCPU, []byte(`{"iterations":10000000}`), 1)
		if !errors.Is(err, context.Canceled) || got != nil {
			t.Errorf("cancelled cpu = %s, %v; want no result and context.Canceled", got, err)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("cancelled cpu returned after %s", took)
		}
	})
}

func TestRunHandlerFail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		times, attempt int
		fails          bool
	}{
		{0, 1, false},
		{1, 1, true},
		{1, 2, false},
		{3, 1, true},
		{3, 3, true},
		{3, 4, false},
		{10, 10, true},
		{10, 11, false},
	}
	for _, tt := range tests {
		payload := `{"times":` + strconv.Itoa(tt.times) + `}`
		got, err := runHandler(t.Context(), docket.TypeFail, []byte(payload), tt.attempt)
		if !tt.fails {
			if want := `{"failed_attempts":` + strconv.Itoa(tt.times) + `}`; err != nil || string(got) != want {
				t.Errorf("fail %s, attempt %d = %s, %v; want %s", payload, tt.attempt, got, err, want)
			}
			continue
		}
		if err == nil {
			t.Errorf("fail %s, attempt %d = %s, want an error", payload, tt.attempt, got)
			continue
		}
		if !strings.Contains(err.Error(), "attempt "+strconv.Itoa(tt.attempt)) {
			t.Errorf("fail %s, attempt %d: error %q does not name the attempt", payload, tt.attempt, err)
		}
		var perm permanentError
		if errors.As(err, &perm) {
			t.Errorf("fail %s, attempt %d: %v is permanent, want a retryable error", payload, tt.attempt, err)
		}
	}
}

func TestRunHandlerPermanentErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		typ     docket.Type
		payload string
	}{
		{docket.Type("xq_unknown"), `null`},
		{docket.Type(""), `null`},
		{docket.Type("ECHO"), `null`},
		{docket.TypeSleep, `not json`},
		{docket.TypeSleep, `{"ms":"5"}`},
		{docket.TypeSleep, `[1]`},
		{docket.TypeCPU, `{"iterations":1.5}`},
		{docket.TypeCPU, `{`},
		{docket.TypeFail, `{"times":true}`},
		{docket.TypeFail, ``},
	}
	for _, tt := range tests {
		got, err := runHandler(t.Context(), tt.typ, []byte(tt.payload), 1)
		var perm permanentError
		if !errors.As(err, &perm) {
			t.Errorf("%q %s = %s, %v; want a permanent error", tt.typ, tt.payload, got, err)
		}
	}

	// Wrapping keeps both the mark and the cause.
	err := permanent(io.ErrUnexpectedEOF)
	var perm permanentError
	if !errors.As(fmt.Errorf("attempt: %w", errors.Join(errors.New("other"), err)), &perm) || !errors.Is(err, io.ErrUnexpectedEOF) || err.Error() != io.ErrUnexpectedEOF.Error() {
		t.Errorf("permanent(%v) = %v: want it found through wrapping, and its cause kept", io.ErrUnexpectedEOF, err)
	}
}

func TestRetryBackoff(t *testing.T) {
	t.Parallel()
	w := &worker{cfg: config{RetryBackoff: 100 * time.Millisecond, RetryBackoffMax: time.Second}}
	for _, tt := range []struct {
		attempt int
		base    time.Duration // before jitter
	}{
		{1, 100 * time.Millisecond},
		{2, 200 * time.Millisecond},
		{3, 400 * time.Millisecond},
		{4, 800 * time.Millisecond},
		{5, time.Second},
		{6, time.Second},
		{30, time.Second},
		{101, time.Second},
		{1 << 20, time.Second},
	} {
		for range 200 {
			if d := w.retryBackoff(tt.attempt); d < tt.base/2 || d > tt.base {
				t.Fatalf("retryBackoff(%d) = %s, want %s to %s", tt.attempt, d, tt.base/2, tt.base)
			}
		}
	}

	// The shift is bounded: a long first wait does not overflow into a negative one.
	w = &worker{cfg: config{RetryBackoff: time.Hour, RetryBackoffMax: 24 * time.Hour}}
	if d := w.retryBackoff(100); d < 12*time.Hour || d > 24*time.Hour {
		t.Errorf("retryBackoff(100) with 1h to 24h = %s", d)
	}
}

func TestDBBackoff(t *testing.T) {
	t.Parallel()
	w := &worker{}
	for _, tt := range []struct {
		attempt int
		base    time.Duration
	}{
		{1, 50 * time.Millisecond},
		{2, 100 * time.Millisecond},
		{5, 800 * time.Millisecond},
		{6, 1600 * time.Millisecond},
		{7, 2 * time.Second},
		{1000, 2 * time.Second},
	} {
		for range 200 {
			if d := w.dbBackoff(tt.attempt); d < tt.base/2 || d > tt.base {
				t.Fatalf("dbBackoff(%d) = %s, want %s to %s", tt.attempt, d, tt.base/2, tt.base)
			}
		}
	}
}

func TestJitter(t *testing.T) {
	t.Parallel()
	for _, d := range []time.Duration{0, 1, 2, 3, time.Microsecond, 50 * time.Millisecond, time.Second, time.Hour, 1<<63 - 1} {
		for range 1000 {
			if got := jitter(d); got < d/2 || got > d {
				t.Fatalf("jitter(%d) = %d, want %d to %d", d, got, d/2, d)
			}
		}
	}
	// It spreads over the whole range, not just one end of it.
	lo, hi := time.Second, time.Duration(0)
	for range 1000 {
		d := jitter(time.Second)
		lo, hi = min(lo, d), max(hi, d)
	}
	if lo > 600*time.Millisecond || hi < 900*time.Millisecond {
		t.Errorf("1000 jitters of 1s span only %s to %s", lo, hi)
	}
}

package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/docket/docket/internal/docket"
)

// runHandler does the work of one attempt of a request and returns its
// result as JSON. attempt counts from 1.
func runHandler(ctx context.Context, t docket.Type, payload []byte, attempt int) ([]byte, error) {
	switch t {
	case docket.TypeEcho:
		return payload, nil
	case docket.TypeSleep:
		var p docket.SleepPayload
		if err := json.Unmarshal(payload, &p); err != nil {
			return nil, permanent(fmt.Errorf("sleep payload: %w", err))
		}
		timer := time.NewTimer(time.Duration(p.MS) * time.Millisecond)
		defer timer.Stop()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-timer.C:
		}
		return json.Marshal(map[string]int{"slept_ms": p.MS})
	case docket.TypeCPU:
		var p docket.CPUPayload
		if err := json.Unmarshal(payload, &p); err != nil {
			return nil, permanent(fmt.Errorf("cpu payload: %w", err))
		}
		digest := burn(ctx, payload, p.Iterations)
		if err := ctx.Err(); err != nil {
			return nil, err // burn stopped early: its digest is no result
		}
		return json.Marshal(map[string]string{"digest": digest})
	case docket.TypeFail:
		var p docket.FailPayload
		if err := json.Unmarshal(payload, &p); err != nil {
			return nil, permanent(fmt.Errorf("fail payload: %w", err))
		}
		if attempt <= p.Times {
			return nil, fmt.Errorf("attempt %d failed as asked (%d failures requested)", attempt, p.Times)
		}
		return json.Marshal(map[string]int{"failed_attempts": p.Times})
	default:
		return nil, permanent(fmt.Errorf("unknown request type %q", t))
	}
}

// burn hashes seed iterations times, checking ctx now and then.
func burn(ctx context.Context, seed []byte, iterations int) string {
	sum := sha256.Sum256(seed)
	for i := 1; i < iterations; i++ {
		if i%65536 == 0 && ctx.Err() != nil {
			break
		}
		sum = sha256.Sum256(sum[:])
	}
	return hex.EncodeToString(sum[:])
}

// permanentError is a failure that retrying cannot mend.
type permanentError struct{ error }

func permanent(err error) error { return permanentError{err} }

func (e permanentError) Unwrap() error { return e.error }

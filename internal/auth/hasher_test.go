package auth

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/docket/docket/internal/docket"
)

func newTestHasher(t *testing.T, cfg HasherConfig) *Hasher {
	t.Helper()
	h, err := NewHasher(cfg)
	if err != nil {
		t.Fatalf("NewHasher(%+v): %v", cfg, err)
	}
	return h
}

// holdSlot takes one slot of h until the test ends or the returned func runs.
func holdSlot(t *testing.T, h *Hasher) (release func()) {
	t.Helper()
	if err := h.acquire(t.Context()); err != nil {
		t.Fatalf("acquire: %v", err)
	}
	var once sync.Once
	release = func() { once.Do(h.release) }
	t.Cleanup(release)
	return release
}

// waitFor polls cond until it holds, failing the test after a generous
// deadline: it waits for a condition, not for a guessed duration.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestHasherHashCompare(t *testing.T) {
	t.Parallel()
	h := newTestHasher(t, HasherConfig{Cost: 4, Workers: 2, Queue: -1})
	ctx := t.Context()

	hash, err := h.Hash(ctx, "correct horse")
	if err != nil {
		t.Fatalf("Hash: %v", err)
	}
	if cost, err := bcrypt.Cost([]byte(hash)); err != nil || cost != 4 {
		t.Errorf("hash cost = %d (%v), want 4", cost, err)
	}
	if strings.Contains(hash, "correct horse") {
		t.Errorf("hash %q contains the password", hash)
	}

	cases := []struct {
		name     string
		hash     string
		password string
		want     bool
	}{
		{"right password", hash, "correct horse", true},
		{"wrong password", hash, "correct horsE", false},
		{"unknown user", "", "correct horse", false},
		{"unknown user empty password", "", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := h.Compare(ctx, tc.hash, tc.password)
			if err != nil {
				t.Fatalf("Compare: %v", err)
			}
			if got != tc.want {
				t.Errorf("Compare = %v, want %v", got, tc.want)
			}
		})
	}

	t.Run("malformed hash", func(t *testing.T) {
		t.Parallel()
		ok, err := h.Compare(ctx, "not a bcrypt hash", "correct horse")
		if err == nil || ok {
			t.Fatalf("Compare = %v, %v; want false and an error", ok, err)
		}
		if code := docket.ErrorCode(err); code != docket.CodeInternal {
			t.Errorf("code = %q, want internal", code)
		}
	})
	t.Run("password over 72 bytes", func(t *testing.T) {
		t.Parallel()
		if _, err := h.Hash(ctx, strings.Repeat("p", 73)); err == nil {
			t.Error("Hash of 73 bytes succeeded; bcrypt must refuse rather than truncate")
		}
	})
}

// TestHasherUnknownUserTiming checks that the unknown-user path really runs
// bcrypt: its compare must cost about what a wrong password costs. Not
// parallel, so the two sides share the machine fairly.
func TestHasherUnknownUserTiming(t *testing.T) {
	const cost, runs = 8, 5
	h := newTestHasher(t, HasherConfig{Cost: cost, Workers: 1, Queue: 0})
	ctx := t.Context()
	hash, err := h.Hash(ctx, "the real password")
	if err != nil {
		t.Fatalf("Hash: %v", err)
	}

	timeCompare := func(hash string) time.Duration {
		start := time.Now()
		ok, err := h.Compare(ctx, hash, "a wrong password")
		d := time.Since(start)
		if err != nil || ok {
			t.Fatalf("Compare(%q) = %v, %v; want false, nil", hash, ok, err)
		}
		return d
	}
	var wrong, unknown []time.Duration
	for range runs { // interleaved, so drift in machine load hits both
		wrong = append(wrong, timeCompare(hash))
		unknown = append(unknown, timeCompare(""))
	}
	median := func(ds []time.Duration) time.Duration {
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	mw, mu := median(wrong), median(unknown)
	ratio := float64(mu) / float64(mw)
	t.Logf("cost %d: median wrong password %s, unknown user %s, ratio %.2f", cost, mw, mu, ratio)
	if ratio < 0.5 || ratio > 2 {
		t.Errorf("unknown-user compare takes %.2f× a wrong-password compare (%s vs %s), want 0.5 to 2", ratio, mu, mw)
	}
}

func TestHasherShedsAtOnceWithoutQueue(t *testing.T) {
	t.Parallel()
	// Wait is long: a refusal well before it proves the caller did not wait.
	h := newTestHasher(t, HasherConfig{Cost: 4, Workers: 1, Queue: 0, Wait: 5 * time.Second})
	release := holdSlot(t, h)
	rejectedBefore := bcryptRejected.Get()

	start := time.Now()
	_, err := h.Hash(t.Context(), "password1")
	if code := docket.ErrorCode(err); code != docket.CodeOverloaded {
		t.Fatalf("Hash with the only slot taken: err = %v, want overloaded", err)
	}
	_, err = h.Compare(t.Context(), "", "password1")
	if code := docket.ErrorCode(err); code != docket.CodeOverloaded {
		t.Fatalf("Compare with the only slot taken: err = %v, want overloaded", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("two refusals took %s, want at once", d)
	}
	if got := bcryptRejected.Get() - rejectedBefore; got < 2 {
		t.Errorf("docket_bcrypt_rejected_total grew by %d, want at least 2", got)
	}

	release()
	if _, err := h.Hash(t.Context(), "password1"); err != nil {
		t.Errorf("Hash after the slot freed: %v", err)
	}
}

func TestHasherWaiterGetsSlot(t *testing.T) {
	t.Parallel()
	h := newTestHasher(t, HasherConfig{Cost: 4, Workers: 1, Queue: 1, Wait: 10 * time.Second})
	release := holdSlot(t, h)

	type result struct {
		hash string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		hash, err := h.Hash(context.Background(), "password1")
		done <- result{hash, err}
	}()
	waitFor(t, "one caller waiting", func() bool { return h.waiting.Load() == 1 })

	// The queue of one is full: the next caller is refused at once.
	start := time.Now()
	if _, err := h.Compare(t.Context(), "", "password1"); docket.ErrorCode(err) != docket.CodeOverloaded {
		t.Fatalf("Compare with the queue full: err = %v, want overloaded", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("refusal with the queue full took %s, want at once", d)
	}

	release()
	r := <-done
	if r.err != nil {
		t.Fatalf("waiting Hash: %v", r.err)
	}
	if ok, err := h.Compare(t.Context(), r.hash, "password1"); err != nil || !ok {
		t.Errorf("Compare of the waiter's hash = %v, %v; want true", ok, err)
	}
	if n := h.waiting.Load(); n != 0 {
		t.Errorf("waiting = %d after all calls returned, want 0", n)
	}
}

func TestHasherWaitTimesOut(t *testing.T) {
	t.Parallel()
	const wait = 50 * time.Millisecond
	h := newTestHasher(t, HasherConfig{Cost: 4, Workers: 1, Queue: 1, Wait: wait})
	holdSlot(t, h)

	start := time.Now()
	_, err := h.Hash(t.Context(), "password1")
	d := time.Since(start)
	if code := docket.ErrorCode(err); code != docket.CodeOverloaded {
		t.Fatalf("Hash with the slot held past Wait: err = %v, want overloaded", err)
	}
	if d < wait {
		t.Errorf("refused after %s, want after waiting %s", d, wait)
	}
	if n := h.waiting.Load(); n != 0 {
		t.Errorf("waiting = %d after the timeout, want 0", n)
	}
}

func TestHasherContextCanceled(t *testing.T) {
	t.Parallel()
	h := newTestHasher(t, HasherConfig{Cost: 4, Workers: 1, Queue: 1, Wait: 10 * time.Second})

	t.Run("before", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := h.Hash(ctx, "password1"); !errors.Is(err, context.Canceled) {
			t.Errorf("Hash with a canceled context: err = %v, want context.Canceled", err)
		}
	})
	t.Run("while waiting", func(t *testing.T) {
		holdSlot(t, h)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		done := make(chan error, 1)
		go func() {
			_, err := h.Compare(ctx, "", "password1")
			done <- err
		}()
		waitFor(t, "one caller waiting", func() bool { return h.waiting.Load() == 1 })
		cancel()
		err := <-done
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Compare canceled while waiting: err = %v, want context.Canceled", err)
		}
		if code := docket.ErrorCode(err); code == docket.CodeOverloaded {
			t.Errorf("a canceled caller was counted as overloaded")
		}
	})
}

func TestHasherConcurrentWithinBounds(t *testing.T) {
	t.Parallel()
	const workers, callers = 2, 10
	// Queue is exactly callers-workers: every caller fits.
	h := newTestHasher(t, HasherConfig{Cost: 4, Workers: workers, Queue: callers - workers, Wait: 30 * time.Second})
	hash, err := h.Hash(t.Context(), "password1")
	if err != nil {
		t.Fatalf("Hash: %v", err)
	}

	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Go(func() {
			ok, err := h.Compare(t.Context(), hash, "password1")
			if err == nil && !ok {
				err = errors.New("right password did not match")
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Compare: %v", err)
	}
	if n := len(h.slots); n != 0 {
		t.Errorf("%d slots still taken after every call returned", n)
	}
}

func TestHasherConfig(t *testing.T) {
	t.Parallel()
	t.Run("defaults", func(t *testing.T) {
		t.Parallel()
		got := HasherConfig{}.WithDefaults()
		want := HasherConfig{Cost: 10, Workers: runtime.NumCPU(), Queue: 0, Wait: time.Second}
		if got != want {
			t.Errorf("HasherConfig{}.WithDefaults() = %+v, want %+v", got, want)
		}
		got = HasherConfig{Workers: 3, Queue: -1}.WithDefaults()
		if got.Queue != 12 {
			t.Errorf("Queue -1 with 3 workers defaults to %d, want 12", got.Queue)
		}
		if again := got.WithDefaults(); again != got {
			t.Errorf("WithDefaults is not idempotent: %+v then %+v", got, again)
		}
	})

	bad := []struct {
		name string
		cfg  HasherConfig
		want string
	}{
		{"cost below bcrypt minimum", HasherConfig{Cost: 3}, "Cost=3"},
		{"cost above bcrypt maximum", HasherConfig{Cost: 32}, "Cost=32"},
		{"negative workers", HasherConfig{Workers: -1}, "Workers=-1"},
		{"negative wait", HasherConfig{Wait: -time.Second}, "Wait=-1s"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewHasher(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewHasher(%+v): err = %v, want one containing %q", tc.cfg, err, tc.want)
			}
		})
	}
	t.Run("negative queue without defaults", func(t *testing.T) {
		t.Parallel()
		err := HasherConfig{Cost: 4, Workers: 1, Queue: -1, Wait: time.Second}.Validate()
		if err == nil || !strings.Contains(err.Error(), "Queue=-1") {
			t.Errorf("Validate: err = %v, want one containing Queue=-1", err)
		}
	})
}

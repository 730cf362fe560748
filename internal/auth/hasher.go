package auth

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"golang.org/x/crypto/bcrypt"

	"github.com/docket/docket/internal/docket"
)

// Metrics of the bcrypt pool. They are shared by every Hasher of the process
// (there is one in production); GetOrCreate keeps tests that build several
// Hashers from panicking on a duplicate name.
var (
	bcryptWait = metrics.GetOrCreatePrometheusHistogramExt("docket_bcrypt_wait_seconds",
		[]float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5})
	bcryptDuration = metrics.GetOrCreatePrometheusHistogramExt("docket_bcrypt_duration_seconds",
		[]float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5})
	bcryptRejected = metrics.GetOrCreateCounter("docket_bcrypt_rejected_total")
	bcryptInUse    = metrics.GetOrCreateGauge("docket_bcrypt_in_use", nil)
	bcryptWaiting  = metrics.GetOrCreateGauge("docket_bcrypt_waiting", nil)
)

// errOverloaded is returned when the pool sheds a caller. It is shared: the
// message is the same every time and nothing mutates it.
var errOverloaded = docket.Errorf(docket.CodeOverloaded,
	"Too many sign-ins are in progress; retry shortly.")

// HasherConfig configures the bcrypt pool.
type HasherConfig struct {
	// Cost is the bcrypt cost of new hashes (BCRYPT_COST), 4 to 31.
	// Zero selects 10. Each step doubles the time of a hash.
	Cost int

	// Workers is how many hashes run at once. Zero selects runtime.NumCPU():
	// bcrypt is CPU-bound, so more workers than cores only adds latency.
	Workers int

	// Queue is how many callers may wait for a slot beyond Workers; the next
	// one is refused at once. Zero means no waiting at all (a caller that
	// finds every slot busy is refused at once); a negative value selects
	// the default, 4*Workers.
	Queue int

	// Wait is the longest a caller waits for a slot before it is refused.
	// Zero selects 1s.
	Wait time.Duration
}

// WithDefaults returns c with the documented defaults filled in.
func (c HasherConfig) WithDefaults() HasherConfig {
	if c.Cost == 0 {
		c.Cost = bcrypt.DefaultCost
	}
	if c.Workers == 0 {
		c.Workers = runtime.NumCPU()
	}
	if c.Queue < 0 {
		c.Queue = 4 * c.Workers
	}
	if c.Wait == 0 {
		c.Wait = time.Second
	}
	return c
}

// Validate reports the first field of c that is out of range.
func (c HasherConfig) Validate() error {
	switch {
	case c.Cost < bcrypt.MinCost || c.Cost > bcrypt.MaxCost:
		return fmt.Errorf("bcrypt Cost=%d: want %d to %d (BCRYPT_COST)", c.Cost, bcrypt.MinCost, bcrypt.MaxCost)
	case c.Workers < 1:
		return fmt.Errorf("bcrypt Workers=%d: want at least 1", c.Workers)
	case c.Queue < 0:
		return fmt.Errorf("bcrypt Queue=%d: want 0 or more (a negative Queue selects the default only through WithDefaults)", c.Queue)
	case c.Wait <= 0:
		return fmt.Errorf("bcrypt Wait=%s: want more than 0", c.Wait)
	}
	return nil
}

// Hasher hashes and compares passwords with bcrypt on a bounded pool.
// It is safe for concurrent use.
type Hasher struct {
	cost  int
	wait  time.Duration
	queue int64

	slots   chan struct{} // a send takes a slot, a receive frees it
	waiting atomic.Int64  // callers waiting for a slot now

	dummy []byte // hash of a random password, compared for unknown users
}

// NewHasher returns a Hasher for cfg with defaults applied. It hashes one
// random password at the configured cost for the unknown-user comparison.
func NewHasher(cfg HasherConfig) (*Hasher, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dummy, err := bcrypt.GenerateFromPassword([]byte(rand.Text()), cfg.Cost)
	if err != nil {
		return nil, fmt.Errorf("bcrypt dummy hash at cost %d: %w", cfg.Cost, err)
	}
	return &Hasher{
		cost:  cfg.Cost,
		wait:  cfg.Wait,
		queue: int64(cfg.Queue),
		slots: make(chan struct{}, cfg.Workers),
		dummy: dummy,
	}, nil
}

// Hash returns the bcrypt hash of password. The caller has already enforced
// 8 to 72 bytes. When no slot frees in time it returns a
// docket.CodeOverloaded error.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()

	start := time.Now()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), h.cost)
	bcryptDuration.UpdateDuration(start)
	if err != nil {
		return "", fmt.Errorf("bcrypt hash: %w", err)
	}
	return string(hash), nil
}

// Compare reports whether password matches hash. An empty hash stands for
// an unknown user: the password is compared against the dummy hash, which
// takes as long as a wrong password, and the answer is false. When no slot
// frees in time it returns a docket.CodeOverloaded error.
func (h *Hasher) Compare(ctx context.Context, hash, password string) (bool, error) {
	stored := h.dummy
	if hash != "" {
		stored = []byte(hash)
	}
	if err := h.acquire(ctx); err != nil {
		return false, err
	}
	defer h.release()

	start := time.Now()
	err := bcrypt.CompareHashAndPassword(stored, []byte(password))
	bcryptDuration.UpdateDuration(start)
	switch {
	case err == nil:
		return hash != "", nil
	case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
		return false, nil
	default:
		return false, fmt.Errorf("bcrypt compare: %w", err)
	}
}

// acquire takes a slot, waiting at most h.wait and only while fewer than
// h.queue others wait. It sheds rather than queue without bound: a login
// storm must not pile up goroutines and memory behind a CPU-bound pool.
func (h *Hasher) acquire(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("wait for a bcrypt slot: %w", context.Cause(ctx))
	}
	start := time.Now()
	select {
	case h.slots <- struct{}{}:
		bcryptWait.Update(0)
		bcryptInUse.Inc()
		return nil
	default:
	}

	if h.waiting.Add(1) > h.queue {
		h.waiting.Add(-1)
		bcryptRejected.Inc()
		return errOverloaded
	}
	bcryptWaiting.Inc()
	defer func() {
		h.waiting.Add(-1)
		bcryptWaiting.Dec()
	}()

	timer := time.NewTimer(h.wait)
	defer timer.Stop()
	select {
	case h.slots <- struct{}{}:
		bcryptWait.UpdateDuration(start)
		bcryptInUse.Inc()
		return nil
	case <-timer.C:
		bcryptRejected.Inc()
		return errOverloaded
	case <-ctx.Done():
		return fmt.Errorf("wait for a bcrypt slot: %w", context.Cause(ctx))
	}
}

func (h *Hasher) release() {
	bcryptInUse.Dec()
	<-h.slots
}

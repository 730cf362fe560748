package postgres

import (
	"context"
	"errors"
	"sync"
	"time"
)

// errClosed answers items submitted after Close.
var errClosed = errors.New("batcher closed")

// batcher is group commit: items go to one of n shards by key, and each
// shard's goroutine flushes whatever has gathered (up to max items) as one
// statement while the next batch gathers behind it. Under heavy load a
// batch fills while the previous flush runs; with a gather window, a batch
// that is not full also waits up to that long for more items, trading that
// much latency for fewer, larger statements. A key always maps to the same
// shard, so one user's items keep their order and no two shards lock the
// same rows.
type batcher[T any] struct {
	shards []chan T
	max    int
	gather time.Duration
	flush  func(ctx context.Context, batch []T)
	wg     sync.WaitGroup
	mu     sync.RWMutex
	closed bool
}

// newBatcher starts n shard goroutines with a gather window (0: none).
// flush must answer every item of its batch (each item carries its own
// reply channel).
func newBatcher[T any](n, max int, gather time.Duration, flush func(context.Context, []T)) *batcher[T] {
	b := &batcher[T]{max: max, gather: gather, flush: flush}
	for range n {
		in := make(chan T, max)
		b.shards = append(b.shards, in)
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			b.run(in)
		}()
	}
	return b
}

func (b *batcher[T]) run(in <-chan T) {
	buf := make([]T, 0, b.max)
	var window *time.Timer
	if b.gather > 0 {
		window = time.NewTimer(b.gather)
		window.Stop()
	}
	for v := range in {
		buf = append(buf[:0], v)
		open := true
	fill:
		for len(buf) < b.max {
			select {
			case v, ok := <-in:
				if !ok {
					open = false
					break fill
				}
				buf = append(buf, v)
			default:
				break fill
			}
		}
		if window != nil && open && len(buf) < b.max {
			window.Reset(b.gather)
		gather:
			for len(buf) < b.max {
				select {
				case v, ok := <-in:
					if !ok {
						break gather
					}
					buf = append(buf, v)
				case <-window.C:
					break gather
				}
			}
			window.Stop()
		}
		// The flush has its own deadline: a caller that gave up must not
		// cancel its neighbours' statement.
		b.flush(context.Background(), buf)
		clear(buf)
	}
}

// submit hands item to the shard of key.
func (b *batcher[T]) submit(ctx context.Context, key uint32, item T) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return errClosed
	}
	select {
	case b.shards[key%uint32(len(b.shards))] <- item:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close flushes what was submitted and stops the shards.
func (b *batcher[T]) close() {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		for _, in := range b.shards {
			close(in)
		}
	}
	b.mu.Unlock()
	b.wg.Wait()
}

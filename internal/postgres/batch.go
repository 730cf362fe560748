package postgres

import (
	"context"
	"errors"
	"sync"
)

// errClosed answers items submitted after Close.
var errClosed = errors.New("batcher closed")

// batcher is group commit: items go to one of n shards by key, and each
// shard's goroutine flushes whatever has gathered (up to max items) as one
// statement while the next batch gathers behind it. A batch waits for no
// timer: under light load it holds one item, under heavy load it fills
// while the previous flush runs. A key always maps to the same shard, so one
// user's items keep their order and no two shards lock the same rows.
type batcher[T any] struct {
	shards []chan T
	max    int
	flush  func(ctx context.Context, batch []T)
	wg     sync.WaitGroup
	mu     sync.RWMutex
	closed bool
}

// newBatcher starts n shard goroutines. flush must answer every item of its
// batch (each item carries its own reply channel).
func newBatcher[T any](n, max int, flush func(context.Context, []T)) *batcher[T] {
	b := &batcher[T]{max: max, flush: flush}
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
	for v := range in {
		buf = append(buf[:0], v)
	fill:
		for len(buf) < b.max {
			select {
			case v, ok := <-in:
				if !ok {
					break fill
				}
				buf = append(buf, v)
			default:
				break fill
			}
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

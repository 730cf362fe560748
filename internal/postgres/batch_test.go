package postgres

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

// batchSizes runs a one-shard batcher with the gather window, submits
// items spaced apart, and returns the sizes of the batches flushed.
func batchSizes(t *testing.T, gather time.Duration, spacing time.Duration, n int) []int {
	t.Helper()
	var (
		mu    sync.Mutex
		sizes []int
	)
	b := newBatcher(1, 64, gather, func(_ context.Context, batch []int) {
		mu.Lock()
		sizes = append(sizes, len(batch))
		mu.Unlock()
	})
	for i := range n {
		if err := b.submit(context.Background(), 0, i); err != nil {
			t.Fatal(err)
		}
		time.Sleep(spacing)
	}
	b.close()
	mu.Lock()
	defer mu.Unlock()
	return sizes
}

// Without a window a batch takes what is ready; with one, items that come
// within the window share a statement, and the window ends a batch that
// does not fill.
func TestBatcherGatherWindow(t *testing.T) {
	t.Parallel()
	if got := batchSizes(t, 0, 20*time.Millisecond, 3); !slices.Equal(got, []int{1, 1, 1}) {
		t.Errorf("no window, items 20ms apart: batches %v, want [1 1 1]", got)
	}
	if got := batchSizes(t, 500*time.Millisecond, 5*time.Millisecond, 3); !slices.Equal(got, []int{3}) {
		t.Errorf("500ms window, items 5ms apart: batches %v, want [3]", got)
	}
	if got := batchSizes(t, 5*time.Millisecond, 100*time.Millisecond, 2); !slices.Equal(got, []int{1, 1}) {
		t.Errorf("5ms window, items 100ms apart: batches %v, want [1 1]", got)
	}
}

// A full batch is flushed at once, without waiting out the window.
func TestBatcherFullBatchSkipsWindow(t *testing.T) {
	t.Parallel()
	flushed := make(chan int, 4)
	b := newBatcher(1, 4, time.Hour, func(_ context.Context, batch []int) { flushed <- len(batch) })
	defer b.close()
	for i := range 4 {
		if err := b.submit(context.Background(), 0, i); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case n := <-flushed:
		if n != 4 {
			t.Errorf("batch of %d, want 4", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a full batch waited for the window")
	}
}

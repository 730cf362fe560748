package postgres

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/docket/docket/internal/docket"
	"github.com/docket/docket/internal/testenv"
)

// The group-commit paths against the real database: b.N requests from 64
// concurrent callers over 200 users, as the service and the worker run
// them. ns/op is the wall time per request at that concurrency (the
// batches form from the callers waiting together), so compare runs on an
// otherwise idle machine.

func openBenchDB(b *testing.B) (*DB, []uuid.UUID) {
	b.Helper()
	db, err := Open(context.Background(), Config{URL: testenv.Database(b)}, 5*time.Second,
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatalf("open: %v", err)
	}
	b.Cleanup(db.Close)
	users := make([]uuid.UUID, 200)
	for i := range users {
		users[i] = uuid.New()
		if err := db.CreateUser(context.Background(), users[i], fmt.Sprintf("bench-%d", i), "hash"); err != nil {
			b.Fatal(err)
		}
	}
	return db, users
}

func BenchmarkIntakeAccept(b *testing.B) {
	db, users := openBenchDB(b)
	in := NewIntake(db, nil)
	defer in.Close()
	var next atomic.Int64
	b.SetParallelism(32) // x GOMAXPROCS callers
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			u := users[next.Add(1)%int64(len(users))]
			if _, err := in.Accept(context.Background(), u, echo, ""); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkFinishUnclaimed(b *testing.B) {
	db, users := openBenchDB(b)
	in := NewIntake(db, nil)
	queued := make([][]docket.Message, len(users))
	for i := range b.N {
		u := i % len(users)
		a, err := in.Accept(context.Background(), users[u], echo, "")
		if err != nil {
			b.Fatal(err)
		}
		queued[u] = append(queued[u], a.Message())
	}
	in.Close()
	// A user is in one lane at a time: take it, finish its next request,
	// hand it back.
	turns := make(chan int, len(users))
	for u := range users {
		turns <- u
	}
	p := NewProcessing(db)
	defer p.Close()
	b.SetParallelism(32)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			u := <-turns
			m := queued[u][0]
			queued[u] = queued[u][1:]
			f, err := p.Finish(context.Background(), Finish{ID: m.ID, UserID: m.UserID, Seq: m.Seq,
				Status: docket.StatusDone, Result: m.Payload, Unclaimed: true})
			if err != nil || !f.Applied {
				b.Errorf("finish: %+v %v", f, err)
			}
			if len(queued[u]) > 0 {
				turns <- u
			}
		}
	})
}

package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/docket/docket/internal/docket"
)

const requestColumns = `id, user_id, seq, type, status, payload, result, coalesce(error, ''), attempts, accepted_at, processed_at`

func scanRequest(row pgx.CollectableRow) (docket.Request, error) {
	var (
		r           docket.Request
		typ, status string
		processedAt *time.Time
	)
	err := row.Scan(&r.ID, &r.UserID, &r.Seq, &typ, &status, &r.Payload, &r.Result, &r.Error, &r.Attempts, &r.AcceptedAt, &processedAt)
	r.Type, r.Status = docket.Type(typ), docket.Status(status)
	if processedAt != nil {
		r.ProcessedAt = *processedAt
	}
	return r, err
}

// errNotFound is what a client sees for an unknown id and for another
// user's request alike.
var errNotFound = docket.Errorf(docket.CodeNotFound, "No such request.")

// GetRequest returns the user's request with the given id.
func (db *DB) GetRequest(ctx context.Context, userID, id uuid.UUID) (docket.Request, error) {
	ctx, cancel := context.WithTimeout(ctx, db.cfg.QueryTimeout)
	defer cancel()
	rows, _ := db.Pool.Query(ctx, `SELECT `+requestColumns+` FROM requests WHERE id = $1 AND user_id = $2`, id, userID)
	r, err := pgx.CollectExactlyOneRow(rows, scanRequest)
	if errors.Is(err, pgx.ErrNoRows) {
		return docket.Request{}, errNotFound
	}
	if err != nil {
		return docket.Request{}, unavailable(err)
	}
	return r, nil
}

// maxListBytes bounds the payloads and results one page carries: a page of
// 1,000 requests with 64 KiB payloads and as large results would otherwise
// build a response of about 128 MiB. A page cut short says more follow.
const maxListBytes = 4 << 20

// ListRequests returns up to limit of the user's requests with seq above
// afterSeq, in seq order, and whether more follow. A page stops early, but
// after at least one request, once its payloads and results pass
// maxListBytes.
func (db *DB) ListRequests(ctx context.Context, userID uuid.UUID, afterSeq int64, limit int) ([]docket.Request, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, db.cfg.QueryTimeout)
	defer cancel()
	rows, _ := db.Pool.Query(ctx, `SELECT `+requestColumns+` FROM requests
		WHERE user_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`, userID, afterSeq, limit+1)
	list, err := pgx.CollectRows(rows, scanRequest)
	if err != nil {
		return nil, false, unavailable(err)
	}
	size := 0
	for i, r := range list {
		size += len(r.Payload) + len(r.Result)
		if i > 0 && size > maxListBytes {
			return list[:i], true, nil
		}
	}
	if len(list) > limit {
		return list[:limit], true, nil
	}
	return list, false, nil
}

// Backlog counts the requests accepted and not yet finished, from the
// per-user counters (cheap: one row per user, not per request).
func (db *DB) Backlog(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, db.cfg.QueryTimeout)
	defer cancel()
	var n int64
	err := db.Pool.QueryRow(ctx, `SELECT coalesce(sum(u.next_seq - p.finished_seq), 0)::bigint
		FROM users u JOIN user_progress p ON p.user_id = u.id`).Scan(&n)
	return n, err
}

// Stalled returns, for each user whose newest request was accepted more
// than olderThan ago and whose progress has not moved for as long, the
// message of that newest unfinished request. Republishing it is enough to
// finish the user's whole backlog: the worker fills gaps before it from the
// database, in order.
func (db *DB) Stalled(ctx context.Context, olderThan time.Duration, limit int) ([]docket.Message, error) {
	ctx, cancel := context.WithTimeout(ctx, db.cfg.QueryTimeout)
	defer cancel()
	// The users with a backlog first (one pass over two small tables), and
	// only then their newest rows: left to itself the planner probed the
	// requests index once for every user, backlog or not, which at 11,600
	// users took 200 ms a second.
	rows, _ := db.Pool.Query(ctx, `WITH behind AS MATERIALIZED (
			SELECT u.id, u.next_seq FROM users u JOIN user_progress p ON p.user_id = u.id
			WHERE u.next_seq > p.finished_seq AND p.updated_at < now() - $1::interval
		)
		SELECT r.id, r.user_id, r.seq, r.type
		FROM behind b JOIN requests r ON r.user_id = b.id AND r.seq = b.next_seq
		WHERE r.accepted_at < now() - $1::interval
		LIMIT $2`, olderThan, limit)
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (docket.Message, error) {
		var (
			m   docket.Message
			typ string
		)
		err := row.Scan(&m.ID, &m.UserID, &m.Seq, &typ)
		m.Type = docket.Type(typ)
		return m, err
	})
}

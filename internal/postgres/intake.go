package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/docket/docket/internal/docket"
)

// Accepted is the outcome of taking a request in.
type Accepted struct {
	ID         uuid.UUID
	UserID     uuid.UUID
	Seq        int64
	Type       docket.Type
	Payload    []byte // compact JSON
	AcceptedAt time.Time
	// Replayed is true when an idempotency key matched an earlier request:
	// nothing new was written and ID and Seq are the earlier request's.
	Replayed bool
}

// Message returns the broker message for the accepted request.
func (a Accepted) Message() docket.Message {
	return docket.Message{ID: a.ID, UserID: a.UserID, Seq: a.Seq, Type: a.Type}.WithPayload(a.Payload)
}

// errUnknownUser answers a token whose user no longer exists.
var errUnknownUser = docket.Errorf(docket.CodeUnauthorized, "The token's user does not exist.")

// acceptBatchSQL takes a batch of requests in with one statement: each
// user's counter moves by its number of requests in the batch, and they get
// consecutive seqs in arrival order. The counter and the rows change in one
// transaction, so seqs never have gaps.
const acceptBatchSQL = `WITH r AS (
	SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[]) WITH ORDINALITY AS r(id, user_id, type, payload, ord)
), c AS (
	SELECT user_id, count(*) AS n FROM r GROUP BY user_id
), u AS (
	UPDATE users SET next_seq = users.next_seq + c.n FROM c
	WHERE users.id = c.user_id
	RETURNING users.id, users.next_seq - c.n AS base
)
INSERT INTO requests (id, user_id, seq, type, payload)
SELECT r.id, r.user_id, u.base + row_number() OVER (PARTITION BY r.user_id ORDER BY r.ord), r.type, r.payload::jsonb
FROM r JOIN u ON u.id = r.user_id
RETURNING id, seq, accepted_at`

type intakeItem struct {
	userID  uuid.UUID
	id      uuid.UUID
	typ     docket.Type
	payload []byte
	reply   chan intakeReply

	done bool // the batch statement returned its row
	r    intakeReply
}

type intakeReply struct {
	seq        int64
	acceptedAt time.Time
	err        error
}

// Announce is handed each batch of newly accepted requests, in arrival
// order, after they commit and before their callers get their answers: the
// service publishes them there, one broker batch per database batch.
type Announce func(ctx context.Context, batch []Accepted)

// Intake takes requests into the database through batching writers.
type Intake struct {
	db       *DB
	b        *batcher[*intakeItem]
	announce Announce
}

// NewIntake starts the intake writers; Close stops them. announce may be
// nil.
func NewIntake(db *DB, announce Announce) *Intake {
	in := &Intake{db: db, announce: announce}
	in.b = newBatcher(db.cfg.Writers, db.cfg.MaxBatch, db.cfg.BatchWait, in.flush)
	return in
}

// Close answers what was submitted and stops the writers.
func (in *Intake) Close() { in.b.close() }

// Accept records the request durably and returns its id and seq. With an
// idempotency key, a key the user used before returns the earlier request
// (Replayed) and writes nothing.
func (in *Intake) Accept(ctx context.Context, userID uuid.UUID, sub docket.Submission, idemKey string) (Accepted, error) {
	if idemKey != "" {
		return in.acceptKeyed(ctx, userID, sub, idemKey)
	}
	item := &intakeItem{userID: userID, id: uuid.New(), typ: sub.Type, payload: sub.Payload, reply: make(chan intakeReply, 1)}
	start := time.Now()
	if err := in.b.submit(ctx, userKey(userID), item); err != nil {
		return Accepted{}, unavailable(err)
	}
	r := <-item.reply // the writer answers every item, within its query and publish timeouts
	intakeWait.UpdateDuration(start)
	if r.err != nil {
		return Accepted{}, r.err
	}
	return Accepted{ID: item.id, UserID: userID, Seq: r.seq, Type: sub.Type, Payload: sub.Payload, AcceptedAt: r.acceptedAt}, nil
}

func (in *Intake) flush(ctx context.Context, batch []*intakeItem) {
	qctx, cancel := context.WithTimeout(ctx, in.db.cfg.QueryTimeout)
	defer cancel()
	ids := make([][16]byte, len(batch))
	users := make([][16]byte, len(batch))
	types := make([]string, len(batch))
	payloads := make([]string, len(batch))
	byID := make(map[uuid.UUID]*intakeItem, len(batch))
	for i, it := range batch {
		ids[i], users[i], types[i], payloads[i] = it.id, it.userID, string(it.typ), string(it.payload)
		byID[it.id] = it
	}
	start := time.Now()
	rows, _ := in.db.Pool.Query(qctx, acceptBatchSQL, ids, users, types, payloads)
	var (
		id uuid.UUID
		r  intakeReply
	)
	_, err := pgx.ForEachRow(rows, []any{&id, &r.seq, &r.acceptedAt}, func() error {
		if it := byID[id]; it != nil {
			it.r, it.done = r, true
		}
		return nil
	})
	intakeBatchSeconds.UpdateDuration(start)
	intakeBatchSize.Update(float64(len(batch)))
	if err == nil && in.announce != nil {
		accepted := make([]Accepted, 0, len(batch))
		for _, it := range batch {
			if it.done {
				accepted = append(accepted, it.accepted())
			}
		}
		if len(accepted) > 0 {
			in.announce(ctx, accepted)
		}
	}
	for _, it := range batch {
		switch {
		case err != nil:
			it.reply <- intakeReply{err: unavailable(fmt.Errorf("accept batch: %w", err))}
		case !it.done:
			it.reply <- intakeReply{err: errUnknownUser}
		default:
			it.reply <- it.r
		}
	}
}

func (it *intakeItem) accepted() Accepted {
	return Accepted{ID: it.id, UserID: it.userID, Seq: it.r.seq, Type: it.typ, Payload: it.payload, AcceptedAt: it.r.acceptedAt}
}

// acceptKeyed takes a request with an idempotency key in its own
// transaction. It locks the user's counter row first, so that concurrent
// requests with the same key queue behind each other and the later ones see
// the first one's row.
func (in *Intake) acceptKeyed(ctx context.Context, userID uuid.UUID, sub docket.Submission, key string) (Accepted, error) {
	ctx, cancel := context.WithTimeout(ctx, in.db.cfg.QueryTimeout)
	defer cancel()
	a := Accepted{UserID: userID, Type: sub.Type, Payload: sub.Payload}
	err := pgx.BeginFunc(ctx, in.db.Pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `UPDATE users SET next_seq = next_seq + 1 WHERE id = $1 RETURNING next_seq`, userID).Scan(&a.Seq)
		if errors.Is(err, pgx.ErrNoRows) {
			return errUnknownUser
		}
		if err != nil {
			return err
		}
		var typ string
		err = tx.QueryRow(ctx, `SELECT id, seq, type, accepted_at FROM requests WHERE user_id = $1 AND idempotency_key = $2`,
			userID, key).Scan(&a.ID, &a.Seq, &typ, &a.AcceptedAt)
		if err == nil {
			a.Type, a.Payload, a.Replayed = docket.Type(typ), nil, true
			return errReplay // roll the counter back
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		a.ID = uuid.New()
		return tx.QueryRow(ctx, `INSERT INTO requests (id, user_id, seq, type, payload, idempotency_key)
			VALUES ($1, $2, $3, $4, $5::text::jsonb, $6) RETURNING accepted_at`,
			a.ID, userID, a.Seq, string(sub.Type), string(sub.Payload), key).Scan(&a.AcceptedAt)
	})
	switch {
	case errors.Is(err, errReplay):
		return a, nil
	case errors.Is(err, errUnknownUser):
		return Accepted{}, err
	case err != nil:
		return Accepted{}, unavailable(err)
	}
	if in.announce != nil {
		in.announce(context.WithoutCancel(ctx), []Accepted{a})
	}
	return a, nil
}

var errReplay = errors.New("idempotency key replay")

// A uuid.UUID parameter goes through its text form (it is a
// driver.Valuer); batch parameters are [16]byte, which pgx sends in binary.

// userKey maps a user to a writer shard.
func userKey(id uuid.UUID) uint32 {
	h := fnv.New32a()
	_, _ = h.Write(id[:])
	return h.Sum32()
}

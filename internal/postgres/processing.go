package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/docket/docket/internal/docket"
)

// Claimed is a request a worker may run now: it is its user's next one.
type Claimed struct {
	docket.Message
	Payload    []byte
	Attempts   int // including this one
	AcceptedAt time.Time
}

// Finish is the outcome of a run, written with the user's counter.
type Finish struct {
	ID     uuid.UUID
	UserID uuid.UUID
	Seq    int64
	Status docket.Status // done or failed
	Result []byte        // JSON, for done
	Error  string        // for failed
	// Unclaimed marks a request run without a claim: the finish counts
	// its attempt.
	Unclaimed bool
}

// Finished is what a finish did.
type Finished struct {
	// Applied is false when the counter did not stand right before the
	// request: nothing was written.
	Applied    bool
	AcceptedAt time.Time // when Applied
}

// claimSQL marks requests processing and counts the attempt, but only a
// request that is its user's next (the counter stands right before it) and
// is not finished. The claim is bookkeeping, not a promise: it commits
// without waiting for the WAL flush, since a claim lost in a crash only
// undercounts attempts.
const claimSQL = `UPDATE requests r SET status = 'processing', attempts = r.attempts + 1
FROM user_progress p
WHERE r.id = ANY($1::uuid[]) AND p.user_id = r.user_id AND p.finished_seq = r.seq - 1
  AND r.status IN ('queued', 'processing')
RETURNING r.id, r.payload, r.attempts, r.accepted_at`

// finishSQL writes outcomes and moves each user's counter by one, only
// where the counter stands right before the request: a request finished
// by someone else already (a redelivery) or out of turn changes nothing. A
// batch holds at most one request per user. processed_at strictly rises per
// user, even when the clock does not.
const finishSQL = `WITH f AS (
	SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::int[])
	AS f(id, user_id, seq, status, result, error, attempt)
), p AS (
	UPDATE user_progress up SET finished_seq = f.seq, updated_at = now(),
		last_processed_at = greatest(clock_timestamp(), up.last_processed_at + interval '1 microsecond')
	FROM f WHERE up.user_id = f.user_id AND up.finished_seq = f.seq - 1
	RETURNING up.user_id, up.last_processed_at
)
UPDATE requests r SET status = f.status, result = f.result::jsonb, error = nullif(f.error, ''),
	processed_at = p.last_processed_at, attempts = r.attempts + f.attempt
FROM f JOIN p ON p.user_id = f.user_id
WHERE r.id = f.id
RETURNING r.id, r.accepted_at`

type claimItem struct {
	msg   docket.Message
	reply chan claimReply
}

type claimReply struct {
	claimed Claimed
	ok      bool
	err     error
}

type finishItem struct {
	f     Finish
	reply chan finishReply
}

type finishReply struct {
	finished Finished
	err      error
}

// Processing is the worker's side of the database: batched claims and
// finishes, and the reads that fill gaps.
type Processing struct {
	db       *DB
	claims   *batcher[*claimItem]
	finishes *batcher[*finishItem]
}

// NewProcessing starts the claim and finish writers; Close stops them.
func NewProcessing(db *DB) *Processing {
	p := &Processing{db: db}
	p.claims = newBatcher(db.cfg.Writers, db.cfg.MaxBatch, db.cfg.BatchWait, p.flushClaims)
	p.finishes = newBatcher(db.cfg.Writers, db.cfg.MaxBatch, db.cfg.BatchWait, p.flushFinishes)
	return p
}

// Close answers what was submitted and stops the writers.
func (p *Processing) Close() {
	p.claims.close()
	p.finishes.close()
}

// Claim claims m if it is its user's next unfinished request. ok is false
// when it is not (finished already, or earlier requests are unfinished).
func (p *Processing) Claim(ctx context.Context, m docket.Message) (c Claimed, ok bool, err error) {
	it := &claimItem{msg: m, reply: make(chan claimReply, 1)}
	if err := p.claims.submit(ctx, userKey(m.UserID), it); err != nil {
		return Claimed{}, false, err
	}
	r := <-it.reply
	return r.claimed, r.ok, r.err
}

func (p *Processing) flushClaims(ctx context.Context, batch []*claimItem) {
	ctx, cancel := context.WithTimeout(ctx, p.db.cfg.QueryTimeout)
	defer cancel()
	ids := make([][16]byte, len(batch))
	byID := make(map[uuid.UUID]*claimItem, len(batch))
	for i, it := range batch {
		ids[i] = it.msg.ID
		byID[it.msg.ID] = it
	}
	start := time.Now()
	var b pgx.Batch
	b.Queue("BEGIN")
	b.Queue("SET LOCAL synchronous_commit TO off")
	b.Queue(claimSQL, ids).Query(func(rows pgx.Rows) error {
		var (
			id uuid.UUID
			c  Claimed
		)
		_, err := pgx.ForEachRow(rows, []any{&id, &c.Payload, &c.Attempts, &c.AcceptedAt}, func() error {
			if it := byID[id]; it != nil {
				c.Message = it.msg
				c.Payload = append([]byte(nil), c.Payload...)
				it.reply <- claimReply{claimed: c, ok: true}
				delete(byID, id)
			}
			return nil
		})
		return err
	})
	b.Queue("COMMIT")
	err := p.db.Pool.SendBatch(ctx, &b).Close()
	claimBatchSeconds.UpdateDuration(start)
	for _, it := range byID {
		if err != nil {
			it.reply <- claimReply{err: fmt.Errorf("claim batch: %w", err)}
		} else {
			it.reply <- claimReply{}
		}
	}
}

// Finish writes f and advances its user's counter, if the counter stands
// right before f.Seq; otherwise it writes nothing.
func (p *Processing) Finish(ctx context.Context, f Finish) (Finished, error) {
	it := &finishItem{f: f, reply: make(chan finishReply, 1)}
	if err := p.finishes.submit(ctx, userKey(f.UserID), it); err != nil {
		return Finished{}, err
	}
	r := <-it.reply
	return r.finished, r.err
}

func (p *Processing) flushFinishes(ctx context.Context, batch []*finishItem) {
	ctx, cancel := context.WithTimeout(ctx, p.db.cfg.QueryTimeout)
	defer cancel()
	// One statement holds at most one finish per user; a lane has one
	// finish in flight at a time, but a redelivery elsewhere may add one.
	var now, later []*finishItem
	seen := make(map[uuid.UUID]bool, len(batch))
	for _, it := range batch {
		if seen[it.f.UserID] {
			later = append(later, it)
			continue
		}
		seen[it.f.UserID] = true
		now = append(now, it)
	}
	p.finishOnce(ctx, now)
	if len(later) > 0 {
		p.flushFinishes(ctx, later)
	}
}

func (p *Processing) finishOnce(ctx context.Context, batch []*finishItem) {
	n := len(batch)
	ids, users := make([][16]byte, n), make([][16]byte, n)
	seqs := make([]int64, n)
	statuses, results, errs := make([]string, n), make([]*string, n), make([]string, n)
	attempts := make([]int32, n)
	byID := make(map[uuid.UUID]*finishItem, n)
	for i, it := range batch {
		f := it.f
		ids[i], users[i], seqs[i], statuses[i] = f.ID, f.UserID, f.Seq, string(f.Status)
		if f.Unclaimed {
			attempts[i] = 1
		}
		if f.Status == docket.StatusFailed {
			errs[i] = f.Error
		} else if f.Result != nil {
			s := string(f.Result)
			results[i] = &s
		}
		byID[f.ID] = it
	}
	start := time.Now()
	rows, _ := p.db.Pool.Query(ctx, finishSQL, ids, users, seqs, statuses, results, errs, attempts)
	var (
		id         uuid.UUID
		acceptedAt time.Time
	)
	_, err := pgx.ForEachRow(rows, []any{&id, &acceptedAt}, func() error {
		if it := byID[id]; it != nil {
			it.reply <- finishReply{finished: Finished{Applied: true, AcceptedAt: acceptedAt}}
			delete(byID, id)
		}
		return nil
	})
	finishBatchSeconds.UpdateDuration(start)
	finishBatchSize.Update(float64(n))
	for _, it := range byID {
		if err != nil {
			it.reply <- finishReply{err: fmt.Errorf("finish batch: %w", err)}
		} else {
			it.reply <- finishReply{}
		}
	}
}

// State is where a request stands against its user's counter.
type State struct {
	Seq         int64
	FinishedSeq int64 // the user's counter
	Status      docket.Status
}

// ErrNoRequest means a message names a request the database does not have.
var ErrNoRequest = errors.New("no such request")

// State reads the request's seq and status and its user's counter.
func (p *Processing) State(ctx context.Context, id uuid.UUID) (State, error) {
	ctx, cancel := context.WithTimeout(ctx, p.db.cfg.QueryTimeout)
	defer cancel()
	var (
		s      State
		status string
	)
	err := p.db.Pool.QueryRow(ctx, `SELECT r.seq, p.finished_seq, r.status
		FROM requests r JOIN user_progress p ON p.user_id = r.user_id WHERE r.id = $1`, id).
		Scan(&s.Seq, &s.FinishedSeq, &status)
	if errors.Is(err, pgx.ErrNoRows) {
		return State{}, ErrNoRequest
	}
	s.Status = docket.Status(status)
	return s, err
}

// Unfinished returns the messages of the user's requests with seq in
// (after, before), in seq order: the gap to fill before request `before`.
func (p *Processing) Unfinished(ctx context.Context, userID uuid.UUID, after, before int64) ([]docket.Message, error) {
	ctx, cancel := context.WithTimeout(ctx, p.db.cfg.QueryTimeout)
	defer cancel()
	rows, _ := p.db.Pool.Query(ctx, `SELECT id, seq, type FROM requests
		WHERE user_id = $1 AND seq > $2 AND seq < $3 ORDER BY seq`, userID, after, before)
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (docket.Message, error) {
		m := docket.Message{UserID: userID}
		var typ string
		err := row.Scan(&m.ID, &m.Seq, &typ)
		m.Type = docket.Type(typ)
		return m, err
	})
}

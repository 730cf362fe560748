-- Users, their per-user order counters, and their requests.
--
-- users.next_seq is the last seq handed out (the API moves it in the same
-- transaction as the request insert, so seqs have no gaps); the worker's
-- counter lives in its own table, user_progress, so that intake and
-- processing never lock the same row.
CREATE TABLE users (
	id            uuid PRIMARY KEY,
	username      text NOT NULL,
	password_hash text NOT NULL,
	next_seq      bigint NOT NULL DEFAULT 0,
	created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_username_key ON users (lower(username));

CREATE TABLE user_progress (
	user_id           uuid PRIMARY KEY REFERENCES users (id),
	finished_seq      bigint NOT NULL DEFAULT 0,
	last_processed_at timestamptz NOT NULL DEFAULT '-infinity',
	updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE requests (
	id              uuid PRIMARY KEY,
	user_id         uuid NOT NULL REFERENCES users (id),
	seq             bigint NOT NULL,
	type            text NOT NULL,
	payload         jsonb NOT NULL,
	status          text NOT NULL DEFAULT 'queued'
	                CHECK (status IN ('queued', 'processing', 'done', 'failed')),
	result          jsonb,
	error           text,
	attempts        integer NOT NULL DEFAULT 0,
	idempotency_key text,
	accepted_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
	processed_at    timestamptz,
	UNIQUE (user_id, seq)
);
CREATE UNIQUE INDEX requests_idempotency_key ON requests (user_id, idempotency_key)
	WHERE idempotency_key IS NOT NULL;

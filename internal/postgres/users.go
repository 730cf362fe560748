package postgres

import (
	"context"
	"errors"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/docket/docket/internal/docket"
)

// CreateUser stores a new user and its progress row. A username taken in any
// letter case gets docket.CodeUsernameTaken.
func (db *DB) CreateUser(ctx context.Context, id uuid.UUID, username, passwordHash string) error {
	ctx, cancel := context.WithTimeout(ctx, db.cfg.QueryTimeout)
	defer cancel()
	_, err := db.Pool.Exec(ctx, `WITH u AS (
		INSERT INTO users (id, username, password_hash) VALUES ($1, $2, $3) RETURNING id)
		INSERT INTO user_progress (user_id) SELECT id FROM u`, id, username, passwordHash)
	if pe, ok := errors.AsType[*pgconn.PgError](err); ok && pe.Code == "23505" { // unique_violation
		return docket.Errorf(docket.CodeUsernameTaken, "That username is taken.")
	}
	if err != nil {
		return unavailable(err)
	}
	return nil
}

// UserByName returns the id and password hash of the user whose name
// matches case-insensitively; found is false for an unknown name.
func (db *DB) UserByName(ctx context.Context, username string) (id uuid.UUID, hash string, found bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, db.cfg.QueryTimeout)
	defer cancel()
	err = db.Pool.QueryRow(ctx, `SELECT id, password_hash FROM users WHERE lower(username) = lower($1)`,
		username).Scan(&id, &hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return uuid.Nil, "", false, nil
	}
	if err != nil {
		return uuid.Nil, "", false, unavailable(err)
	}
	return id, hash, true, nil
}

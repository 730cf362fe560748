package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/docket/docket/internal/docket"
)

// Config configures the database connection.
type Config struct {
	// URL is the database's connection string. The database is created on
	// start when it does not exist yet.
	URL string
	// MaxConns caps the pool. Batched writers hold one connection each
	// while they flush.
	MaxConns int
	// Writers is the number of batching writers for each batched statement
	// (intake, claim, finish). A user always maps to the same writer.
	Writers int
	// MaxBatch is the most rows one batched statement carries.
	MaxBatch int
	// BatchWait is how long a batch that is not full waits for more rows
	// (0 to 10ms); 0 takes what is ready.
	BatchWait time.Duration
	// QueryTimeout bounds each query that answers a client.
	QueryTimeout time.Duration
}

// DefaultURL serves a machine with PostgreSQL on localhost. TLS is off: on
// the loopback it costs CPU and protects nothing.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/docket?sslmode=disable"

// WithDefaults fills unset fields.
func (c Config) WithDefaults() Config {
	if c.URL == "" {
		c.URL = DefaultURL
	}
	if c.MaxConns == 0 {
		c.MaxConns = 16
	}
	if c.Writers == 0 {
		c.Writers = 2
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = 64
	}
	if c.QueryTimeout == 0 {
		c.QueryTimeout = 5 * time.Second
	}
	return c
}

// Validate reports the first bad field.
func (c Config) Validate() error {
	if _, err := pgxpool.ParseConfig(c.URL); err != nil {
		return fmt.Errorf("DATABASE_URL: cannot parse: %w", err)
	}
	switch {
	case c.MaxConns < 2:
		return fmt.Errorf("DB_MAX_CONNS=%d: must be at least 2", c.MaxConns)
	case c.Writers < 1 || c.Writers > c.MaxConns:
		return fmt.Errorf("DB_WRITERS=%d: must be from 1 to DB_MAX_CONNS (%d)", c.Writers, c.MaxConns)
	case c.MaxBatch < 1 || c.MaxBatch > 10000:
		return fmt.Errorf("DB_MAX_BATCH=%d: must be from 1 to 10000", c.MaxBatch)
	case c.BatchWait < 0 || c.BatchWait > 10*time.Millisecond:
		return fmt.Errorf("DB_BATCH_WAIT=%s: must be from 0 to 10ms", c.BatchWait)
	case c.QueryTimeout <= 0:
		return fmt.Errorf("DB_QUERY_TIMEOUT=%s: must be positive", c.QueryTimeout)
	}
	return nil
}

// DB is the docket database: a pgx pool on a migrated schema.
type DB struct {
	Pool *pgxpool.Pool
	cfg  Config
	log  *slog.Logger
}

// Open creates the database if needed, connects, and migrates the schema.
// It retries the first connection for up to wait, so that a process started
// together with PostgreSQL does not fail for being early.
func Open(ctx context.Context, cfg Config, wait time.Duration, log *slog.Logger) (*DB, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("parse DATABASE_URL: %w", err)
	}
	pc.MaxConns = int32(cfg.MaxConns)
	pc.MinConns = int32(min(cfg.Writers, cfg.MaxConns))
	pc.HealthCheckPeriod = 5 * time.Second

	deadline := time.Now().Add(wait)
	for {
		err = createDatabase(ctx, pc.ConnConfig)
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		log.Warn("database not reachable yet; retrying", "err", err)
		time.Sleep(500 * time.Millisecond)
	}
	if err != nil {
		return nil, fmt.Errorf("connect to database %q: %w", pc.ConnConfig.Database, err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("open pool: %w", err)
	}
	db := &DB{Pool: pool, cfg: cfg, log: log}
	if err := db.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	registerPoolMetrics(pool)
	return db, nil
}

// Close closes the pool.
func (db *DB) Close() { db.Pool.Close() }

// Ping reports whether the database answers within a short time.
func (db *DB) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return db.Pool.Ping(ctx)
}

// createDatabase creates cc.Database through the server's postgres database
// when it does not exist.
func createDatabase(ctx context.Context, cc *pgx.ConnConfig) error {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, cc)
	if err == nil {
		return conn.Close(ctx)
	}
	if pe, ok := errors.AsType[*pgconn.PgError](err); !ok || pe.Code != "3D000" { // invalid_catalog_name
		return err
	}
	admin := cc.Copy()
	admin.Database = "postgres"
	conn, err = pgx.ConnectConfig(cctx, admin)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(cctx, "CREATE DATABASE "+pgx.Identifier{cc.Database}.Sanitize())
	// Created meanwhile by a process that started with this one: 42P04
	// (duplicate_database), or 23505 when the two inserts race in the
	// catalog itself.
	if pe, ok := errors.AsType[*pgconn.PgError](err); ok && (pe.Code == "42P04" || pe.Code == "23505") {
		return nil
	}
	return err
}

//go:embed migrations/*.sql
var migrations embed.FS

// migrationLock serializes migrations of processes that start together.
const migrationLock = 0x646f636b6574 // "docket"

// migrate applies the embedded migrations that the database has not seen,
// each in its own transaction, under an advisory lock.
func (db *DB) migrate(ctx context.Context) error {
	conn, err := db.Pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrationLock); err != nil {
		return fmt.Errorf("migrate: lock: %w", err)
	}
	defer conn.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", migrationLock) //nolint:errcheck
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer PRIMARY KEY,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		version, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil {
			return fmt.Errorf("migration %s: name must start with a number", base)
		}
		sql, err := migrations.ReadFile(name)
		if err != nil {
			return err
		}
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			var done bool
			if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)", version).Scan(&done); err != nil || done {
				return err
			}
			if _, err := tx.Exec(ctx, string(sql)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version) VALUES ($1)", version)
			if err == nil {
				db.log.Info("applied migration", "version", version, "file", base)
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %s: %w", base, err)
		}
	}
	return nil
}

// unavailable wraps a database failure for the client: the request was not
// taken, and may be tried again.
func unavailable(err error) error {
	return errors.Join(docket.Errorf(docket.CodeUnavailable, "The database is unavailable; try again shortly."), err)
}

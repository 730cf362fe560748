package postgres

import (
	"flag"
	"time"
)

// RegisterFlags defines the database flags on fs, filling c. Each flag is
// also read from the environment variable of its name (DATABASE_URL for
// database-url) by the binaries' flag parsing.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.URL, "database-url", DefaultURL, "PostgreSQL URL; the database is created and migrated at start")
	fs.IntVar(&c.MaxConns, "db-max-conns", 16, "database pool size")
	fs.IntVar(&c.Writers, "db-writers", 2, "batching writers per batched statement (intake; claim and finish)")
	fs.IntVar(&c.MaxBatch, "db-max-batch", 64, "most rows in one batched statement")
	fs.DurationVar(&c.BatchWait, "db-batch-wait", time.Millisecond, "how long a batch that is not full waits for more rows (0: it takes what is ready)")
	fs.DurationVar(&c.QueryTimeout, "db-query-timeout", 5*time.Second, "longest database statement")
}

// Package e2e runs docket's real service and workers, as separate processes
// built with the race detector, against the local PostgreSQL and RabbitMQ,
// and proves the ordering and durability promises of API.md from the
// database's own audit trail. Tests that restart the servers themselves
// live in e2e/disruptive and run alone.
package e2e

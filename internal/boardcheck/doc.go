// Package boardcheck holds the tests that keep prometheus/ and grafana/
// honest: every rule file, rule unit test and board is checked on every
// make test, and every board is shown to display something real.
//
//   - promtool checks prometheus.yml and the rule files, and runs the rule
//     unit tests in prometheus/tests (promtool_test.go);
//   - each board in grafana/dashboards is read as Grafana 10/11 reads it:
//     unique ids, a grid position, a title, a unit and the Prometheus
//     datasource on every panel, a query on every target, only known
//     variables and jobs, and every metric it names listed in
//     docs/metrics.md (boards_test.go);
//   - the live test starts the real service and two workers (e2e/harness),
//     its own Prometheus on a free port with the project's rules and the
//     jobs of prometheus.yml pointed at those processes and at RabbitMQ's
//     rabbitmq_prometheus plugin, drives a bench run against them, then
//     evaluates every panel query, annotation, variable and recording rule
//     through Prometheus's HTTP API and fails on any that errors or returns
//     no series (live_test.go).
//
// The package has no code of its own. The tests need the prometheus and
// promtool binaries (Debian's prometheus package; .ci/run installs it),
// PostgreSQL, and RabbitMQ with the rabbitmq_prometheus plugin; a missing
// one fails the tests, never skips them.
package boardcheck

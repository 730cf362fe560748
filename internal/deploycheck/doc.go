// Package deploycheck holds the tests that keep the Docker stack honest on
// machines without a Docker engine. They read docker-compose.yaml with the
// compose-go loader that docker compose itself uses (schema, interpolation,
// .env handling), build the binaries with the Dockerfile's own go build
// command, and check the parts against each other:
//
//   - the Dockerfile's go build is the Makefile's GOBUILD, word for word, and
//     stamps the version into the binaries the stack runs; the final image
//     runs them as a non-root user, and .dockerignore keeps every file the
//     build reads;
//   - every variable compose sets is one the binary reads (from its -h), the
//     required ones are set, and the URLs name the stack's own services;
//   - Prometheus scrapes the host names and ports the compose file serves, and
//     Grafana's provisioning reads the paths the compose file mounts;
//   - every bind-mounted path exists in the repository, the services that
//     others wait for have healthchecks, restart policies are set, and no
//     secret is written in the compose file.
//
// The package has no code of its own.
package deploycheck

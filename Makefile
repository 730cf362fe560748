# docket: make help lists the targets.
SHELL := /bin/bash
GO ?= go
SCENARIO ?= steady
TARGET ?=
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# The one build command, shared with the Dockerfile.
GOBUILD = CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)"
# Tests that restart PostgreSQL or RabbitMQ run alone, after the others.
DISRUPTIVE = ./e2e/disruptive/...

.PHONY: help build run test test-disruptive lint bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

build: ## build bin/service, bin/worker and bin/bench
	$(GOBUILD) -o bin/service ./service
	$(GOBUILD) -o bin/worker ./worker
	@if [ -d bench ]; then $(GOBUILD) -o bin/bench ./bench; fi

.env: ## create a local .env with a random JWT secret (never committed)
	@printf 'JWT_SECRET_KEY=%s\n' "$$(head -c 48 /dev/urandom | base64 | tr -d '\n/+=')" > .env
	@echo "wrote .env with a new JWT_SECRET_KEY"

run: build .env ## run service and worker against local PostgreSQL and RabbitMQ (Ctrl-C stops both)
	@set -a; . ./.env; set +a; \
	trap 'kill $$svc $$wrk 2>/dev/null; wait' INT TERM EXIT; \
	bin/service & svc=$$!; bin/worker & wrk=$$!; \
	wait -n $$svc $$wrk

test: services ## run every test on the local PostgreSQL and RabbitMQ, with -race
	$(GO) test -race -count=1 -timeout 20m $$($(GO) list ./... | grep -v '/e2e/disruptive')
	$(MAKE) fuzz FUZZTIME=5s
	$(MAKE) test-disruptive

test-disruptive: ## the tests that restart PostgreSQL and RabbitMQ (run alone)
	$(GO) test -race -count=1 -p 1 -timeout 20m $(DISRUPTIVE)

lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Each fuzz target as package:Target; go test fuzzes one target per run.
FUZZTIME ?= 30s
FUZZ_TARGETS = ./internal/auth:FuzzVerify \
	./internal/docket:FuzzParseSubmission ./internal/docket:FuzzParseCredentials \
	./internal/docket:FuzzDecodeMessage ./internal/docket:FuzzValidateIdempotencyKey \
	./bench/scenario:FuzzParseScenario ./bench/attack:FuzzParseAccepted ./service:FuzzListArgs

.PHONY: fuzz
fuzz: ## run each fuzz target for FUZZTIME (default 30s), one after another (make test runs their seeds)
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "$(GO) test -run '^$$' -fuzz '^$${t#*:}$$' -fuzztime $(FUZZTIME) $${t%%:*}"; \
		$(GO) test -run '^$$' -fuzz "^$${t#*:}\$$" -fuzztime $(FUZZTIME) $${t%%:*}; \
	done

bench: build services ## run a bench scenario (SCENARIO=steady, TARGET=url for a running stack)
	bin/bench run --scenario scenarios/$(SCENARIO).yaml $(if $(TARGET),--target $(TARGET))

clean: ## remove build output
	rm -rf bin

# --- The Docker stack (docker-compose.yaml, Dockerfile) ---
.PHONY: up down logs services
COMPOSE ?= docker compose
# SERVICE=worker narrows make logs to one of the stack's services.
SERVICE ?=
# bench against a running API (TARGET) needs no local PostgreSQL or RabbitMQ,
# and serves its /metrics where the stack's Prometheus reaches the host
# (host.docker.internal:9102 is the host's bridge address, not its 127.0.0.1).
NEED_SERVICES ?= yes
ifneq ($(TARGET),)
bench: NEED_SERVICES =
bench: export BENCH_METRICS_ADDR ?= :9102
endif

up: .env ## build the image and start the whole stack, waiting until it is healthy
	DOCKET_VERSION=$(VERSION) $(COMPOSE) up -d --build --wait
	@echo "API http://localhost:3001  Prometheus http://localhost:9090  Grafana http://localhost:3000"
	@echo "load it: make bench TARGET=http://localhost:3001"

down: ## stop the stack (its volumes stay; docker compose down -v removes them)
	$(COMPOSE) down

logs: ## follow the stack's logs (SERVICE=worker for one of them)
	$(COMPOSE) logs -f --tail=100 $(SERVICE)

# PostgreSQL and RabbitMQ for make test and make bench: the ones answering on
# 127.0.0.1 when they do, and nothing Docker is touched; else, where a Docker
# engine runs, the missing ones from docker-compose.yaml (left running; make
# down stops them). Compose wants JWT_SECRET_KEY to read the file, though these
# two never use it: a stand-in spares a .env. No $(MAKE) here, so make -n stays dry.
services: ## make sure PostgreSQL (5432) and RabbitMQ (5672) answer on 127.0.0.1, from docker compose if need be
	@if [ "$(NEED_SERVICES)" != yes ]; then exit 0; fi; \
	start=""; \
	if command -v pg_isready >/dev/null 2>&1; then pg_isready -q -t 3 -h 127.0.0.1 -p 5432 || start="postgres"; \
	else timeout 3 bash -c 'exec 3<>/dev/tcp/127.0.0.1/5432' 2>/dev/null || start="postgres"; fi; \
	timeout 3 bash -c 'exec 3<>/dev/tcp/127.0.0.1/5672' 2>/dev/null || start="$$start rabbitmq"; \
	start=$${start# }; \
	if [ -z "$$start" ]; then exit 0; fi; \
	if ! docker info >/dev/null 2>&1 || ! $(COMPOSE) version >/dev/null 2>&1; then \
		echo "not answering on 127.0.0.1: $$start (PostgreSQL on 5432, RabbitMQ on 5672), and no Docker engine with compose to start them." >&2; \
		echo "Start them locally (bash .ci/run shows how, with RabbitMQ's management plugin), or install Docker and run make again." >&2; \
		exit 1; \
	fi; \
	echo "not answering on 127.0.0.1: $$start; starting from docker-compose.yaml: $(COMPOSE) up -d --wait $$start"; \
	JWT_SECRET_KEY="$${JWT_SECRET_KEY:-unused-by-postgres-and-rabbitmq}" $(COMPOSE) up -d --wait $$start

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

test: ## run every test on the local PostgreSQL and RabbitMQ, with -race
	$(GO) test -race -count=1 -timeout 20m $$($(GO) list ./... | grep -v '/e2e/disruptive')
	$(MAKE) test-disruptive

test-disruptive: ## the tests that restart PostgreSQL and RabbitMQ (run alone)
	$(GO) test -race -count=1 -p 1 -timeout 20m $(DISRUPTIVE)

lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

bench: build ## run a bench scenario (SCENARIO=steady, TARGET=url for a running stack)
	bin/bench run --scenario scenarios/$(SCENARIO).yaml $(if $(TARGET),--target $(TARGET))

clean: ## remove build output
	rm -rf bin

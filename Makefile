# cachegen — development and CI entry points. `make test` is what CI runs.

SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -ec

GO ?= go

# Servers the tests and the demo use (CI-friendly defaults; override freely).
REDIS_ADDR ?= 127.0.0.1:6379
DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
export REDIS_ADDR DATABASE_URL

# -race: the runtime is concurrent. -count=1: never reuse cached results of
# tests that talk to servers.
GOTESTFLAGS ?= -race -count=1 -timeout 30m

GOFILES = find . -name '*.go' -not -path './.git/*' -not -path '*/testdata/*' -not -path '*/vendor/*'

.PHONY: all services generate check-generated vet fmt-check test demo bench screenshot

all: test

## services: make sure Redis and PostgreSQL answer on loopback (installs/starts them if needed)
services:
	@bash scripts/services.sh

## generate: regenerate the committed *_cache.go files
generate:
	$(GO) generate ./...

## check-generated: fail when a committed generated file is out of date
check-generated:
	$(GO) tool cachegen -check ./...
	cd bench && $(GO) run github.com/cachegen/cachegen/cmd/cachegen -check ./...

vet:
	$(GO) vet ./...

fmt-check:
	@out="$$($(GOFILES) -exec gofmt -l {} +)"; \
	if [ -n "$$out" ]; then echo "gofmt -l reports unformatted files:"; echo "$$out"; exit 1; fi; \
	echo "gofmt: ok"

## test: vet, gofmt, generated-code check, then every test (race detector on) against real servers
test: services vet fmt-check check-generated
	$(GO) test $(GOTESTFLAGS) -json ./... 2>&1 | $(GO) run ./scripts/testsum

## demo: the news-site example (embedded Redis and in-memory source when no servers answer)
demo:
	$(GO) run ./example/cmd/newsdemo

## screenshot: the health page in headless Chromium (installed with apt-get if missing): checks the rendered page, writes docs/health.png
screenshot:
	bash scripts/health-screenshot.sh

## bench: benchmarks of the bench/ module, then a table with ratios against hand-written
## (BenchmarkMemory separately, once per -count: one iteration is a whole measurement)
BENCHFLAGS ?= -count=1
bench:
	cd bench && { $(GO) test -v -run '^$$' -bench . -skip '^BenchmarkMemory$$' -benchmem -timeout 60m $(BENCHFLAGS) ./... && \
		$(GO) test -v -run '^$$' -bench '^BenchmarkMemory$$' -benchtime=1x -timeout 30m $(BENCHFLAGS) . ; } | $(GO) run ./cmd/report

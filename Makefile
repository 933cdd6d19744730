# Stampede: the two commands a newcomer needs are `make run` and `make test`.
SHELL := /usr/bin/env bash
.DEFAULT_GOAL := help

GO            ?= go
DDB_LOCAL_DIR  = $(shell scripts/dynamodb-local.sh)
# Runs a command with one DynamoDB Local shared by every test package
# ($STAMPEDE_TEST_DYNAMODB_ENDPOINT); start-up budget
# STAMPEDE_DYNAMODB_LOCAL_START_TIMEOUT (default 180s). Instances that the
# programs under test start themselves (stampede serve) start fast too.
WITH_DDB       = STAMPEDE_DYNAMODB_LOCAL_DIR="$(DDB_LOCAL_DIR)" $(GO) run ./internal/dynamolocal/cmd/withdynamodb --
TEST_ENV       = STAMPEDE_DYNAMODB_LOCAL_FAST_START=1
STATICCHECK   := $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.7.0

.PHONY: help
help: ## List the targets.
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '!seen[$$1]++ {printf "  %-20s %s\n", $$1, $$2}'

.PHONY: dynamodb-local
dynamodb-local: ## Fetch DynamoDB Local (pinned, checksummed) into the user cache.
	@scripts/dynamodb-local.sh >/dev/null

.PHONY: run
run: ## Start the local API on 127.0.0.1:8080 (STAMPEDE_ADDR=…) backed by DynamoDB Local.
	@GO="$(GO)" scripts/run-local.sh

.PHONY: test
test: dynamodb-local test-go test-infra ## Run every test (race detector on).

.PHONY: test-go
test-go: dynamodb-local ## The root module's tests (race detector on), all packages on one DynamoDB Local.
	$(TEST_ENV) $(WITH_DDB) $(GO) test -race -count=1 ./...

.PHONY: bench
bench: dynamodb-local ## Benchmarks of each operation against DynamoDB Local.
	$(WITH_DDB) $(GO) test -run '^$$' -bench . -benchmem ./...

.PHONY: lint
lint: lint-infra ## gofmt, go vet and staticcheck (infra too).
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(STATICCHECK) ./...

-include mk/*.mk

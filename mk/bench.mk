# The end-to-end benchmark (cmd/stampede-bench, internal/benchmark). Included
# by the root Makefile.
#
#   make bench-e2e                                  everything, about 5-10 min
#   make bench-e2e BENCH_FLAGS="-sections herd"     one section (see -help)
#
# It rewrites docs/performance.md, the charts under docs/performance/ and the
# raw figures in docs/performance/results.json; docs/performance/before.json,
# when present, is shown as the "before" columns.

BENCH_FLAGS ?=

.PHONY: bench-e2e
bench-e2e: dynamodb-local ## Measure server vs raw DynamoDB, herds, fixed-rate gets, a hot key and Lambda init into docs/performance.md (BENCH_FLAGS=...).
	STAMPEDE_DYNAMODB_LOCAL_DIR="$(DDB_LOCAL_DIR)" $(GO) run ./cmd/stampede-bench $(BENCH_FLAGS)

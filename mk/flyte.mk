# Flyte's cache service (docs/flyte.md): the Go code in internal/flyte/gen
# is generated from the .proto files in proto/ by buf, protoc-gen-go and
# protoc-gen-connect-go, pinned in proto/tools/go.mod. Included by the root
# Makefile. internal/flyte's TestGeneratedCodeIsCurrent fails when the
# committed code differs from what `make generate` writes.

FLYTE_TOOL := $(GO) tool -modfile=proto/tools/go.mod

.PHONY: generate
generate: ## Regenerate internal/flyte/gen from proto/ with the pinned generators.
	rm -rf internal/flyte/gen
	$(FLYTE_TOOL) buf generate proto --template proto/buf.gen.yaml

# The first build of buf takes minutes on a small machine; go tool caches
# the binaries, so the drift test that runs them stays well inside go
# test's timeout.
.PHONY: flyte-tools
flyte-tools: ## Build the pinned code generators once (go tool caches them).
	$(FLYTE_TOOL) buf --version
	$(FLYTE_TOOL) protoc-gen-go --version
	$(FLYTE_TOOL) protoc-gen-connect-go --version

test-go: flyte-tools

# Infrastructure: the functions' Lambda build, the CDK app in infra/ (its
# own Go module, so CDK stays out of the functions' dependency graph), and
# the LocalStack path. Included by the root Makefile.
#
#   make build                      compile the functions into build/<name>/bootstrap
#   make synth ENV=dev              offline: infra/cdk.out/Stampede-dev.template.json
#   make deploy ENV=dev             cdk deploy Stampede-dev (AWS credentials)
#   make test-infra                 assertions over the synthesized templates
#
# Context switches: API=rest, EXAMPLE=true, or any CDK context with
# CDK_CONTEXT="key=value ...", e.g. CDK_CONTEXT="outputsExpirationDays=7".
# See docs/deploy.md.

GO           ?= go
ENV          ?= dev
# Lambda architecture of the functions: arm64 (Graviton, the default) or x86_64.
ARCH         ?= arm64
API          ?=
EXAMPLE      ?=
CDK_CONTEXT  ?=
# Extra flags for cdk deploy/diff/destroy, e.g. CDK_FLAGS="--require-approval never".
CDK_FLAGS    ?=

INFRA_DIR      := infra
BUILD_DIR      ?= build
# Every folder under functions/ with a main.go is one Lambda function: the
# five of the HTTP API and flyte (Flyte's cache service).
FUNCTIONS      := $(patsubst functions/%/main.go,%,$(wildcard functions/*/main.go))
GOARCH_arm64   := arm64
GOARCH_x86_64  := amd64
HOST_ARCH      := $(if $(filter aarch64 arm64,$(shell uname -m)),arm64,x86_64)
LAMBDA_GOARCH   = $(or $(GOARCH_$(ARCH)),$(error ARCH must be arm64 or x86_64, not "$(ARCH)"))

# Node 20 is past its end of life: jsii prints a banner on every run. Node 22
# is recommended; the CDK works on 20 still.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION ?= 20

CDK_CONTEXT_ARGS = -c env=$(ENV) -c arch=$(ARCH) -c assetDir=$(abspath $(BUILD_DIR)) \
	$(if $(API),-c api=$(API)) $(if $(EXAMPLE),-c example=$(EXAMPLE)) \
	$(addprefix -c ,$(CDK_CONTEXT))

NPM_STAMP := $(INFRA_DIR)/node_modules/.stampede-installed
CDK       := node_modules/.bin/cdk
CDKLOCAL  := node_modules/.bin/cdklocal

.PHONY: build
build: ## Compile the functions (functions/*) for Lambda (linux/arm64; ARCH=x86_64) into build/<name>/bootstrap.
	@set -e; for fn in $(FUNCTIONS); do \
	  echo "build $(BUILD_DIR)/$$fn/bootstrap (linux/$(LAMBDA_GOARCH))"; \
	  GOOS=linux GOARCH=$(LAMBDA_GOARCH) CGO_ENABLED=0 $(GO) build -tags lambda.norpc -trimpath \
	    -ldflags "-s -w" -o $(BUILD_DIR)/$$fn/bootstrap ./functions/$$fn; \
	done

.PHONY: synth
synth: build ## Synthesize Stampede-<ENV> (default dev) offline (no AWS account) into infra/cdk.out/.
	rm -rf $(INFRA_DIR)/cdk.out/asset.*
	cd $(INFRA_DIR) && CDK_OUTDIR=cdk.out $(GO) run . $(CDK_CONTEXT_ARGS)
	@echo "wrote $(INFRA_DIR)/cdk.out/Stampede-$(ENV).template.json"

$(NPM_STAMP): $(INFRA_DIR)/package.json $(INFRA_DIR)/package-lock.json
	npm ci --prefix $(INFRA_DIR) --no-audit --no-fund
	@touch $@

.PHONY: cdk-cli
cdk-cli: $(NPM_STAMP) ## Install the pinned CDK CLI, cdklocal and the test-time ASL interpreter into infra/node_modules.

.PHONY: bootstrap
bootstrap: build $(NPM_STAMP) ## Once per account and region: cdk bootstrap (the asset bucket).
	cd $(INFRA_DIR) && $(CDK) bootstrap $(CDK_CONTEXT_ARGS) $(CDK_FLAGS)

.PHONY: deploy
deploy: build $(NPM_STAMP) ## Deploy Stampede-<ENV> with the CDK CLI (AWS credentials needed).
	cd $(INFRA_DIR) && $(CDK) deploy Stampede-$(ENV) $(CDK_CONTEXT_ARGS) \
	  --outputs-file cdk.out/Stampede-$(ENV).outputs.json $(CDK_FLAGS)

.PHONY: diff
diff: build $(NPM_STAMP) ## Show what deploying Stampede-<ENV> would change.
	cd $(INFRA_DIR) && $(CDK) diff Stampede-$(ENV) $(CDK_CONTEXT_ARGS) $(CDK_FLAGS)

.PHONY: destroy
destroy: build $(NPM_STAMP) ## Delete Stampede-<ENV> (prod keeps its table and bucket).
	cd $(INFRA_DIR) && $(CDK) destroy Stampede-$(ENV) $(CDK_CONTEXT_ARGS) $(CDK_FLAGS)

.PHONY: measure-memory
measure-memory: dynamodb-local ## Init time, peak RSS and CPU per request of each function under a local Lambda runtime API.
	$(MAKE) --no-print-directory build ARCH=$(HOST_ARCH) BUILD_DIR=$(BUILD_DIR)/host
	$(WITH_DDB) $(GO) run ./internal/memprobe -build $(BUILD_DIR)/host -n $(or $(N),1000)

.PHONY: test-infra
test-infra: $(NPM_STAMP) ## Assertions over the synthesized templates, and the Step Functions protocol simulated (no AWS, no Docker).
	cd $(INFRA_DIR) && $(GO) test -count=1 ./...

.PHONY: lint-infra
lint-infra: ## gofmt, go vet and staticcheck over infra/ (its own module).
	@test -z "$$(cd $(INFRA_DIR) && gofmt -l $$(git ls-files '*.go'))" || { cd $(INFRA_DIR) && gofmt -l $$(git ls-files '*.go'); exit 1; }
	cd $(INFRA_DIR) && $(GO) vet ./...
	cd $(INFRA_DIR) && $(STATICCHECK) ./...

# --- LocalStack (needs a Docker engine) -------------------------------------

LOCALSTACK_COMPOSE := localstack/docker-compose.yml
LOCALSTACK_REGION  ?= us-east-1
# LocalStack runs the functions in containers of the host's architecture.
LOCALSTACK_ARCH    ?= $(HOST_ARCH)
# The free edition has API Gateway's REST APIs only (localstack/README.md).
LOCALSTACK_API     ?= rest
LOCALSTACK_ENV      = AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
	AWS_REGION=$(LOCALSTACK_REGION) AWS_DEFAULT_REGION=$(LOCALSTACK_REGION) \
	AWS_ENVAR_ALLOWLIST=AWS_REGION,AWS_DEFAULT_REGION

.PHONY: localstack-up
localstack-up: ## Start LocalStack (pinned image) on localhost:4566 and wait until healthy.
	docker compose -f $(LOCALSTACK_COMPOSE) up -d --wait

.PHONY: localstack-deploy
localstack-deploy: $(NPM_STAMP) ## Deploy Stampede-<ENV> with the REST API into LocalStack (cdklocal).
	$(MAKE) --no-print-directory build ARCH=$(LOCALSTACK_ARCH)
	cd $(INFRA_DIR) && $(LOCALSTACK_ENV) $(CDKLOCAL) bootstrap -c env=$(ENV) -c arch=$(LOCALSTACK_ARCH) -c api=$(LOCALSTACK_API)
	cd $(INFRA_DIR) && $(LOCALSTACK_ENV) $(CDKLOCAL) deploy Stampede-$(ENV) \
	  -c env=$(ENV) -c arch=$(LOCALSTACK_ARCH) -c api=$(LOCALSTACK_API) $(if $(EXAMPLE),-c example=$(EXAMPLE)) $(addprefix -c ,$(CDK_CONTEXT)) \
	  --require-approval never --outputs-file cdk.out/localstack-outputs.json
	@node localstack/e2e-url.js $(INFRA_DIR)/cdk.out/localstack-outputs.json Stampede-$(ENV)

.PHONY: localstack-down
localstack-down: ## Stop LocalStack and drop its state.
	docker compose -f $(LOCALSTACK_COMPOSE) down -v

# The end-to-end suite (e2e/) and the client's targets. Included by the root
# Makefile.

# STAMPEDE_API_URL picks the API under test: unset, an in-process local
# server over DynamoDB Local; else a LocalStack or real deployment (signed
# with SigV4 unless it is a loopback address; STAMPEDE_SIGV4=1/0 forces it).
STAMPEDE_API_URL ?=
STAMPEDE_SIGV4   ?=

.PHONY: e2e
ifeq ($(strip $(STAMPEDE_API_URL)),)
e2e: dynamodb-local ## End-to-end suite; against a deployment with STAMPEDE_API_URL=https://… (default: in-process local server).
	STAMPEDE_DYNAMODB_LOCAL_DIR="$(DDB_LOCAL_DIR)" $(GO) test -count=1 -v ./e2e/
else
e2e: ## End-to-end suite; against a deployment with STAMPEDE_API_URL=https://… (default: in-process local server).
	STAMPEDE_API_URL="$(STAMPEDE_API_URL)" STAMPEDE_SIGV4="$(STAMPEDE_SIGV4)" $(GO) test -count=1 -v ./e2e/
endif

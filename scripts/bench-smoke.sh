#!/usr/bin/env bash
# workspace-bench end to end, briefly (one round of 1 s): on SQLite, and on
# PostgreSQL beside the FastAPI stack of bench/fastapi (its requirements in
# a virtual environment of their own). Every measurement must succeed: at
# least one call, no error. The figures mean nothing at this length; what
# is checked is that the benchmark, its ceilings and the comparison stack
# still run against the service's schema (a migration the FastAPI app's
# models do not follow shows here as errors).
#
#   scripts/bench-smoke.sh path/to/workspace-service postgres://user@host:port
set -euo pipefail

cd "$(dirname "$0")/.."
SERVER=$1
POSTGRES=$2
PGBENCH=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)/pgbench
VENV=${XDG_CACHE_HOME:-$HOME/.cache}/workspace-service-ci/fastapi-$(sha256sum bench/fastapi/requirements.txt | cut -c1-12)
if [ ! -x "$VENV/bin/uvicorn" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r bench/fastapi/requirements.txt
fi
cargo build --quiet -p workspace-bench

DB=wsbench_smoke_$$
psql "$POSTGRES/postgres" -qc "create database $DB"
trap 'psql "$POSTGRES/postgres" -qc "drop database if exists $DB with (force)"' EXIT

# Every measurement line ("… ok N errors {…}"): N > 0 and no error; at
# least `want` of them.
check() {
  python3 -c '
import re, sys
want, text = int(sys.argv[1]), sys.stdin.read()
runs = re.findall(r"^(.*?)\s+\d+/s .* ok\s+(\d+)\s+errors (.*)$", text, re.M)
bad = [r for r in runs if int(r[1]) == 0 or r[2] != "{}"]
if len(runs) < want or bad:
    sys.exit(f"bench-smoke: {len(runs)} measurements (want {want}); failed: {bad}")
print(f"bench-smoke: {len(runs)} measurements, each with calls and no error")
' "$1"
}

common=(--server "$SERVER" --rounds 1 --seconds 1 --warmup 1)
sqlite_out=$(target/debug/workspace-bench --database sqlite "${common[@]}")
echo "$sqlite_out"
# Per case: gRPC, HTTP, two ceilings; then the empty call.
echo "$sqlite_out" | check 9
postgres_out=$(target/debug/workspace-bench --database "$POSTGRES/$DB" "${common[@]}" \
  --pgbench "$PGBENCH" --fastapi "$VENV/bin/python")
echo "$postgres_out"
# Per case: gRPC, HTTP, two ceilings, FastAPI; then the empty call.
echo "$postgres_out" | check 11

#!/usr/bin/env bash
# Issue 29, deletes by index: DeleteWorkspace's statements on PostgreSQL
# with 8k and with 1M idempotency records, with and without the index on
# idempotency_records (workspace_id). Loads by SQL into a scratch database
# of its own (dropped at the end): 10,100 workspaces of one organization,
# one record for each of 8,000 of them (the ones deleted), and for 1M the
# other records on 100 other workspaces. Prints EXPLAIN (ANALYZE, BUFFERS)
# of the delete (its cascade triggers' times) and, before the index, of
# the explicit DELETE the service used to run too; then pgbench p50/p99 of
# the delete's transaction (the organization's row, the counter, the
# delete; rolled back so every run sees the same rows) at 1 and 4 clients
# (all in one organization, so they queue on its row as deletes do).
#
# Usage: scripts/deletes-growth.sh [postgres://postgres@127.0.0.1:5432]
# Needs createdb, dropdb, psql, pgbench, python3 and a built
# target/debug/workspace-service (for the schema).
set -euo pipefail
server=${1:-postgres://postgres@127.0.0.1:5432}
db=deletes_growth_$$
work=$(mktemp -d)
binary=$(dirname "$0")/../target/debug/workspace-service
createdb --maintenance-db="$server/postgres" "$db"
trap 'dropdb --maintenance-db="$server/postgres" "$db"; rm -rf "$work"' EXIT
url=$server/$db
DATABASE_URL=$url "$binary" migrate >/dev/null 2>&1
ORG=00000000-0000-0000-0000-0000000000b1
USER_ID=00000000-0000-0000-0000-0000000000c1
sql() { psql "$url" -q -v ON_ERROR_STOP=1 "$@"; }

records() { # FROM TO WORKSPACE-EXPRESSION(g)
    sql -c "INSERT INTO idempotency_records (id, user_id, request_id, request_fingerprint, workspace_id, created_at)
        SELECT gen_random_uuid(), '$USER_ID', 'r' || g, md5('f' || g) || md5('g' || g), $3, now() - (g || ' seconds')::interval
        FROM generate_series($1, $2) g"
}
sql <<SQL
INSERT INTO plans (id, name, creation_allowed, workspace_limit, created_at) VALUES ('00000000-0000-0000-0000-0000000000a1', 'growth', true, NULL, now());
INSERT INTO organizations (id, name, slug, plan_id, workspace_creation, workspace_count, created_at, updated_at) VALUES ('$ORG', 'Growth', 'growth', '00000000-0000-0000-0000-0000000000a1', 'ADMINS_AND_OWNERS', 10100, now(), now());
INSERT INTO users (id, email, display_name, validated, created_at) VALUES ('$USER_ID', 'owner@growth.test', 'Owner', true, now());
INSERT INTO workspaces (id, organization_id, name, normalized_name, description, workspace_type, document_upload_method, billing_account_email, created_by, created_at, updated_at)
SELECT md5('w' || g)::uuid, '$ORG', 'W ' || g, 'w ' || g, '', 'T', 'M', '', '$USER_ID', now(), now() FROM generate_series(1, 10100) g;
INSERT INTO workspace_memberships (id, workspace_id, user_id, role, created_at, updated_at, organization_id, workspace_created_at)
SELECT gen_random_uuid(), w.id, '$USER_ID', 'OWNER', now(), now(), w.organization_id, w.created_at
  FROM generate_series(1, 10000) g JOIN workspaces w ON w.id = md5('w' || g)::uuid;
SQL
records 1 8000 "md5('w' || g)::uuid"
sql -c "VACUUM ANALYZE"

delete_tx="UPDATE organizations SET event_sequence = event_sequence + 1 WHERE id = '$ORG';
UPDATE organizations SET workspace_count = workspace_count - 1 WHERE id = '$ORG';
DELETE FROM workspaces WHERE id = md5('w' || :n)::uuid AND organization_id = '$ORG';"
explicit="DELETE FROM idempotency_records WHERE workspace_id = md5('w' || :n)::uuid;"
printf '\\set n random(1, 8000)\nBEGIN;\n%s\nROLLBACK;\n' "$delete_tx" >"$work/new.sql"
printf '\\set n random(1, 8000)\nBEGIN;\n%s\n%s\nROLLBACK;\n' "$delete_tx" "$explicit" >"$work/old.sql"

explain() { # STATEMENTS...
    { echo "BEGIN;"; for s in "$@"; do echo "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) ${s//:n/5000}"; done; echo "ROLLBACK;"; } |
        psql "$url" -q | grep -E "Trigger for|Execution Time|Seq Scan|Index Scan|Rows Removed|Delete on"
}
bench() { # LABEL SCRIPT
    for clients in 1 4; do
        rm -f "$work"/log.*
        pgbench "$url" -n -f "$2" -c "$clients" -j "$clients" -T 10 -l --log-prefix="$work/log" >/dev/null 2>&1
        python3 - "$1" "$clients" "$work" <<'PY'
import glob, sys
label, clients, work = sys.argv[1:]
lat = sorted(int(line.split()[2]) / 1000 for f in glob.glob(work + "/log.*") for line in open(f))
print(f"  {label}, {clients} in flight: n={len(lat)} p50={lat[len(lat)//2]:.2f} ms p99={lat[int(len(lat)*.99)]:.2f} ms")
PY
    done
}
measure() { # SIZE
    echo "== $1 records, with ix_idempotency_records_workspace_id (the delete alone)"
    explain "DELETE FROM workspaces WHERE id = md5('w' || :n)::uuid AND organization_id = '$ORG';" | sed 's/^/  /'
    bench "$1, index" "$work/new.sql"
    sql -c "DROP INDEX ix_idempotency_records_workspace_id"
    echo "== $1 records, without the index (the delete, then the explicit DELETE it used to run)"
    explain "DELETE FROM workspaces WHERE id = md5('w' || :n)::uuid AND organization_id = '$ORG';" "$explicit" | sed 's/^/  /'
    bench "$1, no index, both statements" "$work/old.sql"
    echo "  building the index:"
    sql -c '\timing on' -c "CREATE INDEX ix_idempotency_records_workspace_id ON idempotency_records (workspace_id)" | sed 's/^/  /'
    sql -c "ANALYZE idempotency_records"
}
measure 8k
records 8001 1000000 "md5('w' || (10001 + g % 100))::uuid"
sql -c "VACUUM ANALYZE"
measure 1M
echo "== 1M records: one purge batch of 100 (records older than 8000 s)"
explain "DELETE FROM idempotency_records WHERE id IN (SELECT id FROM idempotency_records WHERE created_at < now() - interval '8000 seconds' ORDER BY created_at LIMIT 100);" | sed 's/^/  /'

#!/bin/bash
# What each part of a create's PostgreSQL statement costs PostgreSQL:
# pgbench runs each script given, one after the other, and prints its
# transactions, the workspaces it wrote and PostgreSQL's CPU per
# transaction (every postgres process, plus the postmaster's reaped
# backends, from /proc). Alternate the scripts over several rounds: the
# machine is shared and noisy.
#
#   bench/statement-parts/run.sh DB SECONDS SCRIPT...
#   e.g. for r in 1 2 3 4; do bench/statement-parts/run.sh bench1 4 \
#          cheapest before now no-recheck no-idempotency; done
#
# DB is a database workspace-bench has run on (256 organizations x 1 user:
# `workspace-bench --database postgres://…/DB --organizations 256
# --users-per-organization 1 --seconds 1 --rounds 1 --creates-only`), which
# leaves bench_callers filled. Each script first reads one caller
# (`\gset`, the same lookup in every script), then runs its statement with
# the caller's ids as parameters, as the service binds them:
#   cheapest         the cheapest form (bench/create_workspace.cheapest.pgbench.sql)
#   before           the service's statement before f64a03c (kept caller, no request id)
#   now              the service's statement since f64a03c
#   no-recheck       `before` without the kept caller's recheck
#   no-idempotency   `before` without the idempotency INSERT
#   lookup-only      the caller lookup alone, then SELECT 1
#   recheck-before   the recheck alone, as before f64a03c (`<>`)
#   recheck-now      the recheck alone, as since f64a03c (two ranges)
#   cheapest-caller  the cheapest form's caller join alone
set -euo pipefail
DB=$1
SECONDS_EACH=$2
shift 2
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
PSQL=(psql -h 127.0.0.1 -U postgres "$DB" -Atc)

# PostgreSQL's CPU so far, in clock ticks.
postgres_ticks() {
    local total=0 line comm rest parent own children parent_comm
    for stat in /proc/[0-9]*/stat; do
        read -r line 2>/dev/null <"$stat" || continue
        comm=${line#*(}
        comm=${comm%%)*}
        [ "$comm" = postgres ] || continue
        rest=${line##*) }
        # shellcheck disable=SC2086
        set -- $rest
        parent=$2
        own=$((${12} + ${13}))
        children=$((${14} + ${15}))
        parent_comm=$(sed 's/^[0-9]* (\(.*\)) .*/\1/' "/proc/$parent/stat" 2>/dev/null || true)
        # The postmaster: its reaped backends count too.
        [ "$parent_comm" = postgres ] || own=$((own + children))
        total=$((total + own))
    done
    echo "$total"
}

HZ=$(getconf CLK_TCK)
for script in "$@"; do
    before_rows=$("${PSQL[@]}" "SELECT count(*) FROM workspaces")
    before=$(postgres_ticks)
    out=$("$BIN/pgbench" -h 127.0.0.1 -U postgres -n -M prepared -c 32 -j 2 -T "$SECONDS_EACH" \
        -D callers=256 -D offset=0 -D clients=32 -D spread=8 -f "$HERE/$script.sql" "$DB" 2>&1)
    # pgbench's backends are still exiting as it ends; one reaped while
    # /proc is read is in neither sum (up to a third of a run's CPU went
    # missing so): read once they are gone.
    sleep 0.5
    after=$(postgres_ticks)
    after_rows=$("${PSQL[@]}" "SELECT count(*) FROM workspaces")
    transactions=$(echo "$out" | sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p')
    errors=$(echo "$out" | grep -c -i "error" || true)
    echo "$script transactions=$transactions written=$((after_rows - before_rows)) errors=$errors" \
        "postgres_cpu_us_per_transaction=$(((after - before) * 1000000 / HZ / (transactions > 0 ? transactions : 1)))"
done

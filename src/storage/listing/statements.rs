//! The List's statements: the first, from the caller's organizations; the
//! later ones, from a VALUES list of ranges to read on.

use chrono::{DateTime, Utc};
use sea_orm::{DbBackend, Statement, Value};
use uuid::Uuid;

use crate::domain::Cursor;

/// Keys the first statement reads over all the caller's ranges on
/// PostgreSQL (at least one per range): enough for a caller of up to 40
/// organizations to have a page of 50 in one stage. A range's keys after
/// its first are the next entries of the same index leaf there.
pub(super) const FIRST_READ: u64 = 2048;

/// The same on SQLite, where each key is two probes (one per column): an
/// OWNER of 1,000 organizations reads one key of each, as the single
/// statement before the stages did (two read 2.1 times as long at 1M
/// workspaces as at 1k, against 1.96 for one).
pub(super) const SQLITE_FIRST_READ: u64 = 1024;

/// A range to read on: after `after`, `take` keys.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Wanted {
    pub organization: Uuid,
    pub runs: bool,
    pub after: (DateTime<Utc>, Uuid),
    pub take: u64,
}

/// The first statement, with `$n` parameters: $1 the caller, $2 the limit,
/// then the cursor's created_at and id (when `after`), then the
/// organization (when `organization`). Its rows: `org`, `runs`, `take`
/// and the workspace's columns.
pub fn first_sql(backend: DbBackend, after: bool, organization: bool) -> String {
    let mut next = 3;
    let mut parameter = || {
        let n = next;
        next += 1;
        format!("${n}")
    };
    let position = after.then(|| (parameter(), parameter()));
    let of_organization = if organization {
        format!("AND organization_id = {}", parameter())
    } else {
        String::new()
    };
    let (greatest, least, first_read) = match backend {
        DbBackend::Postgres => ("GREATEST", "LEAST", FIRST_READ),
        _ => ("max", "min", SQLITE_FIRST_READ),
    };
    let ranges = format!(
        "orgs AS MATERIALIZED ( \
           SELECT organization_id AS org, role IN ('OWNER', 'ADMIN') AS runs \
             FROM organization_memberships WHERE user_id = $1 {of_organization} \
         ), s AS MATERIALIZED ( \
           SELECT orgs.org, orgs.runs, \
                  {greatest}(1, {least}($2, {first_read} / {greatest}((SELECT count(*) FROM orgs), 1))) AS take \
             FROM orgs \
         )"
    );
    keys_sql(backend, &ranges, position, true)
}

/// The later statements' SQL for `ranges` ranges (a power of two): $1 the
/// caller, $2 the limit, then per range its organization, whether the
/// caller runs it, the key to read after and how many keys to read.
fn next_sql(backend: DbBackend, ranges: usize) -> String {
    let rows: Vec<String> = (0..ranges)
        .map(|i| {
            let n = 3 + 5 * i;
            match backend {
                DbBackend::Postgres => format!(
                    "(${}::uuid, ${}::boolean, ${}::timestamptz, ${}::uuid, ${}::bigint)",
                    n,
                    n + 1,
                    n + 2,
                    n + 3,
                    n + 4
                ),
                _ => format!("(${}, ${}, ${}, ${}, ${})", n, n + 1, n + 2, n + 3, n + 4),
            }
        })
        .collect();
    let ranges = format!(
        "s (org, runs, at, id, take) AS (VALUES {})",
        rows.join(", ")
    );
    keys_sql(
        backend,
        &ranges,
        Some(("s.at".into(), "s.id".into())),
        false,
    )
}

/// The first $2 (the limit) of the keys of the ranges of the CTE `s`
/// (org, runs, take[, at, id]), each range's first `take` after
/// `position`, in order, with their workspaces' columns when `rows`.
fn keys_sql(
    backend: DbBackend,
    ranges: &str,
    position: Option<(String, String)>,
    rows: bool,
) -> String {
    let (workspaces_after, memberships_after) = match &position {
        Some(position) => (
            after("w.created_at, w.id", position),
            after("m.workspace_created_at, m.workspace_id", position),
        ),
        None => (String::new(), String::new()),
    };
    // The keys, in order, with their workspaces when `rows`.
    let select = if rows {
        "SELECT keys.org, keys.runs, keys.take, w.* FROM keys \
         JOIN workspaces w ON w.id = keys.id ORDER BY w.created_at, w.id"
    } else {
        "SELECT * FROM keys ORDER BY created_at, id"
    };
    match backend {
        DbBackend::Postgres => postgres_keys(ranges, &workspaces_after, &memberships_after, select),
        _ => sqlite_keys(ranges, &workspaces_after, &memberships_after, select),
    }
}

/// PostgreSQL: one LATERAL read of `take` keys per range; only the branch
/// `runs` picks is read.
fn postgres_keys(
    ranges: &str,
    workspaces_after: &str,
    memberships_after: &str,
    select: &str,
) -> String {
    format!(
        "WITH {ranges}, keys AS ( \
         SELECT s.org, s.runs, s.take, next.created_at, next.id FROM s \
         CROSS JOIN LATERAL (({}) UNION ALL ({})) AS next (created_at, id) \
         ORDER BY next.created_at, next.id LIMIT $2 \
         ) {select}",
        of_workspaces(
            "w.created_at, w.id",
            "s",
            "AND s.runs",
            workspaces_after,
            "LIMIT s.take"
        ),
        of_memberships(
            "m.workspace_created_at, m.workspace_id",
            "s",
            "AND NOT s.runs",
            memberships_after,
            "LIMIT s.take"
        ),
    )
}

/// SQLite, which has no LATERAL: a walk, a key at a time, two correlated
/// subqueries (one per column) a key.
fn sqlite_keys(
    ranges: &str,
    workspaces_after: &str,
    memberships_after: &str,
    select: &str,
) -> String {
    let walked = ("walk.created_at".to_owned(), "walk.id".to_owned());
    format!(
        "WITH RECURSIVE {ranges}, \
         walk (org, runs, take, left, created_at, id) AS ( \
           SELECT s.org, s.runs, s.take, s.take - 1, {} FROM s WHERE s.org IS NOT NULL \
           UNION ALL \
           SELECT walk.org, walk.runs, walk.take, walk.left - 1, {} FROM walk \
            WHERE walk.left > 0 AND walk.id IS NOT NULL \
         ), keys AS ( \
           SELECT org, runs, take, created_at, id FROM walk \
            WHERE id IS NOT NULL ORDER BY created_at, id LIMIT $2 \
         ) {select}",
        first_after("s", workspaces_after, memberships_after),
        first_after(
            "walk",
            &after("w.created_at, w.id", &walked),
            &after("m.workspace_created_at, m.workspace_id", &walked),
        ),
    )
}

/// SQLite: the first key of `of`'s range after the conditions, as two
/// columns (created_at, id), each a correlated subquery.
fn first_after(of: &str, workspaces_after: &str, memberships_after: &str) -> String {
    let column = |workspace_column: &str, membership_column: &str| {
        format!(
            "CASE WHEN {of}.runs THEN ({}) ELSE ({}) END",
            of_workspaces(
                &format!("w.{workspace_column}"),
                of,
                "",
                workspaces_after,
                "LIMIT 1"
            ),
            of_memberships(
                &format!("m.{membership_column}"),
                of,
                "",
                memberships_after,
                "LIMIT 1"
            ),
        )
    };
    format!(
        "{}, {}",
        column("created_at", "workspace_created_at"),
        column("id", "workspace_id")
    )
}

/// Keys after (`at`, `id`) in the order of `columns`.
fn after(columns: &str, (at, id): &(String, String)) -> String {
    format!("AND ({columns}) > ({at}, {id})")
}

/// `columns` of an OWNER's or ADMIN's range of `of`.org: the
/// organization's workspaces, `only` if, `after` a key, in order, `limit`.
fn of_workspaces(columns: &str, of: &str, only: &str, after: &str, limit: &str) -> String {
    format!(
        "SELECT {columns} FROM workspaces w WHERE w.organization_id = {of}.org {only} {after} \
         ORDER BY w.created_at, w.id {limit}"
    )
}

/// `columns` of anyone else's range of `of`.org: the caller's memberships
/// of its workspaces, `only` if, `after` a key, in order, `limit`.
fn of_memberships(columns: &str, of: &str, only: &str, after: &str, limit: &str) -> String {
    format!(
        "SELECT {columns} FROM workspace_memberships m \
         WHERE m.user_id = $1 AND m.organization_id = {of}.org {only} {after} \
         ORDER BY m.workspace_created_at, m.workspace_id {limit}"
    )
}

/// `$n` parameters as the backend numbers them (SQLite: `?NNN`).
fn numbered(backend: DbBackend, sql: String, values: Vec<Value>) -> Statement {
    let sql = match backend {
        DbBackend::Postgres => sql,
        _ => sql.replace('$', "?"),
    };
    Statement::from_sql_and_values(backend, sql, values)
}

pub(super) fn first_statement(
    backend: DbBackend,
    caller: Uuid,
    organization_id: Option<Uuid>,
    after: Option<Cursor>,
    limit: u64,
) -> Statement {
    let sql = first_sql(backend, after.is_some(), organization_id.is_some());
    let mut values: Vec<Value> = vec![caller.into(), (limit as i64).into()];
    if let Some(after) = after {
        values.push(after.created_at.into());
        values.push(after.id.into());
    }
    if let Some(organization_id) = organization_id {
        values.push(organization_id.into());
    }
    numbered(backend, sql, values)
}

pub(super) fn next_statement(
    backend: DbBackend,
    caller: Uuid,
    limit: u64,
    wanted: &[Wanted],
) -> Statement {
    let ranges = wanted.len().next_power_of_two();
    let mut values: Vec<Value> = vec![caller.into(), (limit as i64).into()];
    for i in 0..ranges {
        match wanted.get(i) {
            Some(w) => values.extend([
                w.organization.into(),
                w.runs.into(),
                w.after.0.into(),
                w.after.1.into(),
                (w.take as i64).into(),
            ]),
            // Padding: no organization, no keys.
            None => values.extend([
                Value::Uuid(None),
                Value::Bool(None),
                Value::ChronoDateTimeUtc(None),
                Value::Uuid(None),
                Value::BigInt(None),
            ]),
        }
    }
    numbered(backend, next_sql(backend, ranges), values)
}

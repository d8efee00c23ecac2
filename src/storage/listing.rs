//! ListWorkspaces' page: one statement whose cost is the page's, not what
//! the caller can see.
//!
//! What a caller sees of each of its organizations is one ordered range of
//! an index: all the organization's workspaces for an OWNER or ADMIN
//! (`workspaces (organization_id, created_at, id)`), else the caller's own
//! (`workspace_memberships (user_id, organization_id, workspace_created_at,
//! workspace_id)`, migration m20261204_000001). The page is the first
//! `limit` of their merge, found without reading the ranges through:
//!
//! 1. each organization's first workspace after the cursor (its head), an
//!    index probe each; the first `limit` heads by (created_at, id), ranked
//!    (a top-`limit` sort, not a sort of every head);
//! 2. an organization whose head ranks r holds at most `limit - r + 1` of
//!    the page (the r - 1 heads before its own are in the page too), and
//!    nothing after the head ranked `limit` (those `limit` heads come
//!    first): each range is walked that far, an index probe per row;
//! 3. the first `limit` of what was walked, joined to their rows.
//!
//! So a page reads an index entry per organization of the caller's, plus
//! about a page's entries (at most `limit²/2` when many organizations'
//! ranges interleave tightly just after the cursor), and `limit` rows.
//! Every value is a parameter of a fixed statement (one per combination of
//! cursor and organization filter), no list of ids: PostgreSQL's generic
//! plan, used from the sixth execution, is the same walk. The walk is a
//! recursive CTE; a probe is a LATERAL subquery with `LIMIT 1` on
//! PostgreSQL, and on SQLite, which has no LATERAL, two correlated
//! subqueries (one per column, so two probes).

use sea_orm::{DbBackend, Statement, Value};
use uuid::Uuid;

use crate::domain::Cursor;

/// The statement for `backend`, with `$n` parameters: $1 the caller, $2
/// the limit, then the cursor's created_at and id (when `after`), then the
/// organization (when `organization`).
pub fn page_sql(backend: DbBackend, after: bool, organization: bool) -> String {
    let mut next = 3;
    let mut parameter = || {
        let n = next;
        next += 1;
        format!("${n}")
    };
    let (workspaces_after, memberships_after) = if after {
        let (at, id) = (parameter(), parameter());
        (
            format!("AND (w.created_at, w.id) > ({at}, {id})"),
            format!("AND (m.workspace_created_at, m.workspace_id) > ({at}, {id})"),
        )
    } else {
        (String::new(), String::new())
    };
    let of_organization = if organization {
        format!("AND organization_id = {}", parameter())
    } else {
        String::new()
    };
    let probe = match backend {
        DbBackend::Postgres => Probe::Lateral,
        _ => Probe::TwoColumns,
    };
    let head = probe.first_after("orgs", &workspaces_after, &memberships_after);
    let following = probe.first_after(
        "walk",
        "AND (w.created_at, w.id) > (walk.created_at, walk.id)",
        "AND (m.workspace_created_at, m.workspace_id) > (walk.created_at, walk.id)",
    );
    // `walk` holds, per organization, its range from the head on; the walk
    // ends where its range does (no next row: no row, or a NULL id) or
    // past the bound.
    format!(
        "WITH RECURSIVE orgs AS MATERIALIZED ( \
           SELECT organization_id AS org, role IN ('OWNER', 'ADMIN') AS runs \
             FROM organization_memberships WHERE user_id = $1 {of_organization} \
         ), heads AS MATERIALIZED ( \
           SELECT orgs.org, orgs.runs, {head_columns} FROM orgs {head_join} \
         ), ranked AS MATERIALIZED ( \
           SELECT top.org, top.runs, top.created_at, top.id, \
                  row_number() OVER (ORDER BY top.created_at, top.id) AS rank \
             FROM (SELECT heads.org, heads.runs, heads.created_at, heads.id FROM heads \
                    WHERE heads.id IS NOT NULL ORDER BY heads.created_at, heads.id LIMIT $2) AS top \
         ), walk (org, runs, more, created_at, id, last_at, last_id) AS ( \
           SELECT ranked.org, ranked.runs, $2 - ranked.rank, ranked.created_at, ranked.id, \
                  (SELECT bound.created_at FROM ranked bound WHERE bound.rank = $2), \
                  (SELECT bound.id FROM ranked bound WHERE bound.rank = $2) \
             FROM ranked \
           UNION ALL \
           SELECT walk.org, walk.runs, walk.more - 1, {next_columns}, walk.last_at, walk.last_id \
             FROM walk {next_join} \
            WHERE walk.more > 0 AND walk.id IS NOT NULL \
              AND (walk.last_at IS NULL OR (walk.created_at, walk.id) < (walk.last_at, walk.last_id)) \
         ), page AS MATERIALIZED ( \
           SELECT walk.id FROM walk WHERE walk.id IS NOT NULL \
            ORDER BY walk.created_at, walk.id LIMIT $2 \
         ) \
         SELECT w.* FROM page JOIN workspaces w ON w.id = page.id ORDER BY w.created_at, w.id",
        head_columns = head.columns,
        head_join = head.join,
        next_columns = following.columns,
        next_join = following.join,
    )
}

/// How a range's first row after a point is read: its `created_at` and
/// `id` as `columns`, from what `join` adds to the row of `orgs` or `walk`.
enum Probe {
    /// PostgreSQL: one index probe, in a LATERAL subquery.
    Lateral,
    /// SQLite, which has no LATERAL: one correlated subquery per column,
    /// each an index probe (a probe and a join instead, a planner may turn
    /// into a hash join over every workspace).
    TwoColumns,
}

struct Read {
    columns: String,
    join: String,
}

impl Probe {
    /// The first row of `of`'s range after `workspaces_after` (an OWNER's
    /// or ADMIN's range, `runs`) or `memberships_after` (anyone else's).
    fn first_after(&self, of: &str, workspaces_after: &str, memberships_after: &str) -> Read {
        // `only`: a condition on `of`'s row alone (PostgreSQL reads it as
        // a one-time filter).
        let of_workspaces = |columns: &str, only: &str| {
            format!(
                "SELECT {columns} FROM workspaces w WHERE w.organization_id = {of}.org {only} {workspaces_after} \
                 ORDER BY w.created_at, w.id LIMIT 1"
            )
        };
        let of_memberships = |columns: &str, only: &str| {
            format!(
                "SELECT {columns} FROM workspace_memberships m \
                 WHERE m.user_id = $1 AND m.organization_id = {of}.org {only} {memberships_after} \
                 ORDER BY m.workspace_created_at, m.workspace_id LIMIT 1"
            )
        };
        match self {
            // Only the branch `runs` picks is read; CROSS JOIN: no row
            // where the range ends.
            Probe::Lateral => Read {
                columns: "next.created_at, next.id".to_owned(),
                join: format!(
                    "CROSS JOIN LATERAL (({}) UNION ALL ({})) AS next (created_at, id)",
                    of_workspaces("w.created_at, w.id", &format!("AND {of}.runs")),
                    of_memberships(
                        "m.workspace_created_at, m.workspace_id",
                        &format!("AND NOT {of}.runs")
                    ),
                ),
            },
            Probe::TwoColumns => {
                let column = |workspace_column: &str, membership_column: &str| {
                    format!(
                        "CASE WHEN {of}.runs THEN ({}) ELSE ({}) END",
                        of_workspaces(&format!("w.{workspace_column}"), ""),
                        of_memberships(&format!("m.{membership_column}"), ""),
                    )
                };
                Read {
                    columns: format!(
                        "{} AS created_at, {} AS id",
                        column("created_at", "workspace_created_at"),
                        column("id", "workspace_id"),
                    ),
                    join: String::new(),
                }
            }
        }
    }
}

/// The statement for `backend` with its values.
pub(super) fn page_statement(
    backend: DbBackend,
    caller: Uuid,
    organization_id: Option<Uuid>,
    after: Option<Cursor>,
    limit: u64,
) -> Statement {
    let sql = page_sql(backend, after.is_some(), organization_id.is_some());
    // SQLite numbers its parameters `?NNN`.
    let sql = match backend {
        DbBackend::Postgres => sql,
        _ => sql.replace('$', "?"),
    };
    let mut values: Vec<Value> = vec![caller.into(), (limit as i64).into()];
    if let Some(after) = after {
        values.push(after.created_at.into());
        values.push(after.id.into());
    }
    if let Some(organization_id) = organization_id {
        values.push(organization_id.into());
    }
    Statement::from_sql_and_values(backend, sql, values)
}

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
//! 1. each organization's first workspace after the cursor (its head), two
//!    index probes each, ranked by (created_at, id);
//! 2. an organization whose head ranks r holds at most `limit - r + 1` of
//!    the page (the r - 1 heads before its own are in the page too), and
//!    nothing after the head ranked `limit` (those `limit` heads come
//!    first): each range is walked that far, two index probes per row;
//! 3. the first `limit` of what was walked, joined to their rows.
//!
//! So a page reads two index entries per organization of the caller's, plus
//! about a page's entries (at most `limit²/2` when many organizations'
//! ranges interleave tightly just after the cursor), and `limit` rows.
//! Every value is a parameter of a fixed statement (one per combination of
//! cursor and organization filter), no list of ids: PostgreSQL's generic
//! plan, used from the sixth execution, is the same walk. The statement
//! has no LATERAL (SQLite has none): each probe is a correlated subquery
//! with `LIMIT 1`, and the walk a recursive CTE.

use sea_orm::{DbBackend, Statement, Value};
use uuid::Uuid;

use crate::domain::Cursor;

/// The statement, with `$n` parameters: $1 the caller, $2 the limit, then
/// the cursor's created_at and id (when `after`), then the organization
/// (when `organization`).
pub fn page_sql(after: bool, organization: bool) -> String {
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
    // A range's first row after a point, one column of it (`created_at` or
    // `id`): an index probe. Two probes rather than a probe and a join,
    // which a planner may turn into a hash join over every workspace.
    let next = |column: &str, of: &str, workspaces_after: &str, memberships_after: &str| {
        let membership_column = match column {
            "created_at" => "workspace_created_at",
            _ => "workspace_id",
        };
        format!(
            "CASE WHEN {of}.runs THEN \
               (SELECT w.{column} FROM workspaces w WHERE w.organization_id = {of}.org {workspaces_after} \
                 ORDER BY w.created_at, w.id LIMIT 1) \
             ELSE \
               (SELECT m.{membership_column} FROM workspace_memberships m \
                 WHERE m.user_id = $1 AND m.organization_id = {of}.org {memberships_after} \
                 ORDER BY m.workspace_created_at, m.workspace_id LIMIT 1) \
             END"
        )
    };
    let head = |column| next(column, "orgs", &workspaces_after, &memberships_after);
    let following = |column| {
        next(
            column,
            "walk",
            "AND (w.created_at, w.id) > (walk.created_at, walk.id)",
            "AND (m.workspace_created_at, m.workspace_id) > (walk.created_at, walk.id)",
        )
    };
    let (head_at, head_id) = (head("created_at"), head("id"));
    let (next_at, next_id) = (following("created_at"), following("id"));
    // `walk` holds, per organization, its range from the head on; a row
    // whose id is NULL (the range ended) or past the bound ends its walk.
    format!(
        "WITH RECURSIVE orgs AS MATERIALIZED ( \
           SELECT organization_id AS org, role IN ('OWNER', 'ADMIN') AS runs \
             FROM organization_memberships WHERE user_id = $1 {of_organization} \
         ), heads AS MATERIALIZED ( \
           SELECT orgs.org, orgs.runs, {head_at} AS created_at, {head_id} AS id FROM orgs \
         ), ranked AS MATERIALIZED ( \
           SELECT heads.org, heads.runs, heads.created_at, heads.id, \
                  row_number() OVER (ORDER BY heads.created_at, heads.id) AS rank \
             FROM heads WHERE heads.id IS NOT NULL \
         ), walk (org, runs, more, created_at, id, last_at, last_id) AS ( \
           SELECT ranked.org, ranked.runs, $2 - ranked.rank, ranked.created_at, ranked.id, \
                  bound.created_at, bound.id \
             FROM ranked LEFT JOIN ranked bound ON bound.rank = $2 \
            WHERE ranked.rank <= $2 \
           UNION ALL \
           SELECT walk.org, walk.runs, walk.more - 1, {next_at}, {next_id}, walk.last_at, walk.last_id \
             FROM walk \
            WHERE walk.more > 0 AND walk.id IS NOT NULL \
              AND (walk.last_at IS NULL OR (walk.created_at, walk.id) < (walk.last_at, walk.last_id)) \
         ), page AS MATERIALIZED ( \
           SELECT walk.id FROM walk WHERE walk.id IS NOT NULL \
            ORDER BY walk.created_at, walk.id LIMIT $2 \
         ) \
         SELECT w.* FROM page JOIN workspaces w ON w.id = page.id ORDER BY w.created_at, w.id"
    )
}

/// The statement for `backend` with its values.
pub(super) fn page_statement(
    backend: DbBackend,
    caller: Uuid,
    organization_id: Option<Uuid>,
    after: Option<Cursor>,
    limit: u64,
) -> Statement {
    let sql = page_sql(after.is_some(), organization_id.is_some());
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

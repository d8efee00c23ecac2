//! ListWorkspaces' page: statements whose cost is the page's, not what
//! the caller can see.
//!
//! What a caller sees of each of its organizations is one ordered range of
//! an index: all the organization's workspaces for an OWNER or ADMIN
//! (`workspaces (organization_id, created_at, id)`), else the caller's own
//! (`workspace_memberships (user_id, organization_id, workspace_created_at,
//! workspace_id)`, migration m20261204_000001). The page is the first
//! `limit` of their merge by (created_at, id), read in stages:
//!
//! 1. the first statement reads the first few keys (created_at, id) of
//!    every range after the cursor: `max(1, min(limit, 2048 / n))` each
//!    for a caller of n organizations (1,024 on SQLite), one index descent
//!    per range, and returns the first `limit` of them with their
//!    workspaces;
//! 2. the keys read so far are merged: the `limit`-th is a bound, and a
//!    range still matters only if it may hold more (its last read came
//!    back full) and its last key is before the bound (or there is no
//!    bound yet). If none does, the first `limit` keys are the page's
//!    (most pages: one statement in all); else one statement reads the
//!    next keys of just those ranges, twice as many as each last read
//!    (the first `limit` of them, keys only), and the merge is done again;
//! 3. the page's workspaces the first statement did not return are read by
//!    id.
//!
//! Each range that still matters after a stage has its last key among the
//! first `limit`, so a stage reads at most `limit` ranges, and a range's
//! reads double: a page costs a descent per organization, then about
//! `limit` keys per stage over at most log2(limit) stages, whether the
//! ranges interleave or each holds a long run of the page (a single
//! recursive walk bounded by the ranks of the heads read those runs nearly
//! through: 1.4 s for a page of 1,000 of an OWNER of 1,000 organizations
//! at 1M workspaces). Every statement has a fixed text for its shape (the
//! later stages' ranges are a VALUES list padded to a power of two), so
//! PostgreSQL's generic plans, used from the sixth execution, are the same
//! walks. PostgreSQL reads a range's keys with a LATERAL subquery; SQLite,
//! which has no LATERAL, walks them a key at a time (a recursive CTE of
//! correlated subqueries, one index probe per key and column).
//!
//! The keys are merged in Rust in the databases' own order: (created_at,
//! id), timestamps as times (PostgreSQL `timestamptz`; SQLite's RFC 3339
//! texts, whose order is their times'), ids by their bytes (`uuid` on
//! PostgreSQL, a 16-byte BLOB on SQLite, `Uuid`'s `Ord` in Rust).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, FromQueryResult, QueryFilter, QueryResult,
    Statement,
};
use uuid::Uuid;

use super::entities::workspace;
use crate::domain::Cursor;

mod statements;

pub use statements::first_sql;
use statements::{Wanted, first_statement, next_statement};

/// A position in the list: (created_at, id).
type Key = (DateTime<Utc>, Uuid);

/// Up to `limit` workspaces `caller` may see after `after`, optionally of
/// one organization, in (created_at, id) order. A workspace deleted while
/// the page is read makes it read again (at most three times), so that a
/// short page still means the end of the list.
pub(super) async fn page<C: ConnectionTrait>(
    conn: &C,
    caller: Uuid,
    organization_id: Option<Uuid>,
    after: Option<Cursor>,
    limit: u64,
) -> Result<Vec<workspace::Model>, DbErr> {
    let backend = conn.get_database_backend();
    let mut tries = 0;
    loop {
        tries += 1;
        let first = first_statement(backend, caller, organization_id, after, limit);
        let mut merge = Merge::new(limit as usize, read_keys(conn, first, true).await?);
        while let Some(wanted) = merge.wanted() {
            let next = next_statement(backend, caller, limit, &wanted);
            merge.add(read_keys(conn, next, false).await?);
        }
        // The first statement's rows where it read the page's keys; the
        // others by id.
        let (mut rows, missing) = merge.page();
        let expected = rows.len() + missing.len();
        if !missing.is_empty() {
            rows.extend(
                workspace::Entity::find()
                    .filter(workspace::Column::Id.is_in(missing))
                    .all(conn)
                    .await?,
            );
            rows.sort_unstable_by_key(|row| (row.created_at, row.id));
        }
        if rows.len() == expected || tries == 3 {
            return Ok(rows);
        }
    }
}

/// A key as a statement read it: one of the first `limit` of what the
/// statement read, in order.
#[derive(Debug, Clone, PartialEq)]
struct Read {
    organization: Uuid,
    runs: bool,
    /// How many keys of the range the statement asked.
    take: u64,
    key: Key,
    /// The range's last key read, and the read came back with all it asked
    /// (the range may hold more).
    more: bool,
    /// The workspace, from the first statement.
    row: Option<workspace::Model>,
}

/// A statement's keys, with their workspaces when it has them (`rows`).
async fn read_keys<C: ConnectionTrait>(
    conn: &C,
    statement: Statement,
    rows: bool,
) -> Result<Vec<Read>, DbErr> {
    let mut reads = conn
        .query_all_raw(statement)
        .await?
        .iter()
        .map(|row: &QueryResult| {
            Ok(Read {
                organization: row.try_get("", "org")?,
                runs: row.try_get("", "runs")?,
                take: row.try_get::<i64>("", "take")?.max(1) as u64,
                key: (row.try_get("", "created_at")?, row.try_get("", "id")?),
                more: false,
                row: if rows {
                    Some(workspace::Model::from_query_result(row, "")?)
                } else {
                    None
                },
            })
        })
        .collect::<Result<Vec<_>, DbErr>>()?;
    mark_more(&mut reads);
    Ok(reads)
}

/// Marks `more` on each range's `take`-th key of `reads`, the first
/// `limit` keys a statement read, in order: a range's `take`-th key is
/// there only with all the range's keys before it, so it is the key where
/// the range's count reaches `take`; the range gave all it was asked and
/// may hold more.
fn mark_more(reads: &mut [Read]) {
    let mut counts: HashMap<Uuid, u64> = HashMap::new();
    for read in reads {
        let count = counts.entry(read.organization).or_default();
        *count += 1;
        read.more = *count == read.take;
    }
}

/// The first `limit` keys read so far, and what is still to read.
struct Merge {
    limit: usize,
    first: Vec<Read>,
}

impl Merge {
    fn new(limit: usize, first: Vec<Read>) -> Self {
        let mut merge = Merge {
            limit,
            first: Vec::new(),
        };
        merge.add(first);
        merge
    }

    /// A statement's keys (the first `limit` of what it read). A key that
    /// is not among the first `limit` of a part is not among the first
    /// `limit` of the whole, so only those are kept.
    fn add(&mut self, reads: Vec<Read>) {
        self.first.extend(reads);
        self.first.sort_unstable_by_key(|read| read.key);
        self.first.truncate(self.limit);
    }

    /// The ranges that may still hold one of the first `limit` keys (their
    /// last key read is before the `limit`-th, or there are fewer keys,
    /// and the read was full), with the keys to read of each (twice the
    /// last read, at most `limit`), in a fixed order; None when the page is
    /// known. A range whose last key is not kept ends after the
    /// `limit`-th key.
    fn wanted(&mut self) -> Option<Vec<Wanted>> {
        let before_bound = if self.first.len() == self.limit {
            self.limit - 1
        } else {
            self.first.len()
        };
        let mut wanted: Vec<Wanted> = self.first[..before_bound]
            .iter_mut()
            .filter(|read| read.more)
            .map(|read| {
                // Read on from here: this key is no longer its range's last.
                read.more = false;
                Wanted {
                    organization: read.organization,
                    runs: read.runs,
                    after: read.key,
                    take: (read.take * 2).min(self.limit as u64),
                }
            })
            .collect();
        wanted.sort_by_key(|w| w.organization);
        (!wanted.is_empty()).then_some(wanted)
    }

    /// The page's workspaces read with their keys, in order, and the ids
    /// of the others.
    fn page(self) -> (Vec<workspace::Model>, Vec<Uuid>) {
        let mut rows = Vec::new();
        let mut missing = Vec::new();
        for read in self.first {
            match read.row {
                Some(row) => rows.push(row),
                None => missing.push(read.key.1),
            }
        }
        (rows, missing)
    }
}

#[cfg(test)]
mod tests;

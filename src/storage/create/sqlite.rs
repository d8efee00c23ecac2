//! The create on SQLite: one transaction of two trips to SQLite's thread,
//! the counter's UPDATE first.
//!
//! sqlx runs each SQLite connection on a thread of its own, and every
//! statement sent is a hand-over to that thread and back: on two cores
//! the scheduler's work for those hand-overs was the largest cost of a
//! create (a profile of the server under `workspace-bench --database
//! sqlite`). So the create sends the counter's UPDATE, then every insert
//! as one batch of statements, which SQLite's thread runs in one go.

use std::sync::LazyLock;

use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, EntityTrait, IntoActiveModel, Iterable,
    ModelTrait, QueryTrait, Statement, Value, Values,
    sea_query::{Expr, Query, SqliteQueryBuilder},
};

use super::rows::{BELOW_LIMIT, Counted, CreateRows, still_allowed};
use crate::storage::{Storage, deadline, entities::*};

/// The create on SQLite: one transaction, the counter's UPDATE first, so
/// the transaction takes the write lock at once (waiting up to the busy
/// timeout) rather than failing to upgrade a read lock later; the event is
/// numbered by the same UPDATE. A kept caller's decision is checked again
/// in the same UPDATE, under the write lock (`Recheck`).
pub(super) async fn write_in_transaction(
    storage: &Storage,
    rows: &CreateRows,
) -> Result<Counted, DbErr> {
    let _turn = storage.write_turn().await;
    let txn = storage.db.begin().await?;
    let written = write_rows(&txn, rows).await;
    match written {
        Ok(Counted::Written(_)) => deadline::commit(txn).await?,
        // Nothing to keep, or the transaction is dead; report the first
        // error.
        Ok(_) | Err(_) => {
            let _ = txn.rollback().await;
        }
    }
    written
}

async fn write_rows(txn: &DatabaseTransaction, rows: &CreateRows) -> Result<Counted, DbErr> {
    let Some(sequence) = count(txn, rows).await? else {
        // For a kept caller, the limit or a changed caller: either way the
        // create is decided again on a fresh read of the caller, which
        // tells the two apart (`Workspaces::create`).
        return Ok(match rows.recheck {
            Some(_) => Counted::CallerChanged,
            None => Counted::LimitReached,
        });
    };
    let batch = insert_batch(rows, sequence);
    let written = txn.query_all_raw(batch).await?;
    let number = written
        .last()
        .ok_or_else(|| DbErr::RecordNotFound("workspace_numbers".into()))?
        .try_get::<i64>("", "last")?;
    Ok(Counted::Written(number))
}

/// The counter's UPDATE under the plan's limit (check 9), for a kept
/// caller only if its decision still holds: the organization's next event
/// number, or None when it did not count.
async fn count(txn: &DatabaseTransaction, rows: &CreateRows) -> Result<Option<i64>, DbErr> {
    let w = &rows.workspace;
    let mut values = vec![w.created_at.into(), w.organization_id.into()];
    let sql = if rows.recheck.is_some() {
        values.extend(recheck_values(rows));
        COUNT_CHECKED.as_str()
    } else {
        COUNT.as_str()
    };
    let counted = txn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Sqlite,
            sql,
            values,
        ))
        .await?;
    counted
        .map(|row| row.try_get::<i64>("", "event_sequence"))
        .transpose()
}

/// The counter's UPDATE: the create's time ?1, the organization ?2.
static COUNT: LazyLock<String> = LazyLock::new(|| count_statement(""));

/// The counter's UPDATE for a kept caller, its decision checked again.
static COUNT_CHECKED: LazyLock<String> = LazyLock::new(|| {
    let checked = still_allowed(RECHECK_PARAMETERS);
    count_statement(&format!(" AND {checked}"))
});

fn count_statement(condition: &str) -> String {
    format!(
        "UPDATE organizations SET workspace_count = workspace_count + 1, \
         event_sequence = event_sequence + 1, updated_at = ?1 WHERE id = ?2 AND {BELOW_LIMIT}\
         {condition} RETURNING event_sequence"
    )
}

/// `still_allowed`'s parameters in `count`: the create's time is ?1, the
/// organization ?2.
const RECHECK_PARAMETERS: [&str; 7] = ["?3", "?4", "?2", "?5", "?6", "?1", "?7"];

/// ?3 to ?7 of `RECHECK_PARAMETERS`.
fn recheck_values(rows: &CreateRows) -> Vec<Value> {
    let Some(recheck) = &rows.recheck else {
        return Vec::new();
    };
    vec![
        recheck.token_hash.as_str().into(),
        rows.workspace.created_by.into(),
        recheck.role.into(),
        recheck.policy.into(),
        recheck.only_organization.into(),
    ]
}

/// Every insert of the create as one batch of statements: the next
/// workspace number (migration m20261203_000006) given to the workspace,
/// its memberships, the idempotency record, the event numbered `sequence`;
/// its one row is the workspace's number.
fn insert_batch(rows: &CreateRows, sequence: i64) -> Statement {
    let mut statements = vec![Statement::from_string(
        DbBackend::Sqlite,
        "UPDATE workspace_numbers SET last = last + 1",
    )];
    statements.push(insert_workspace(&rows.workspace));
    if !rows.memberships.is_empty() {
        statements.push(
            workspace_membership::Entity::insert_many(
                rows.memberships
                    .iter()
                    .cloned()
                    .map(IntoActiveModel::into_active_model),
            )
            .build(DbBackend::Sqlite),
        );
    }
    if let Some(record) = &rows.record {
        statements.push(
            idempotency_record::Entity::insert(record.clone().into_active_model())
                .build(DbBackend::Sqlite),
        );
    }
    let event = event::Model {
        sequence,
        ..rows.event.clone()
    };
    statements.push(event::Entity::insert(event.into_active_model()).build(DbBackend::Sqlite));
    statements.push(Statement::from_string(
        DbBackend::Sqlite,
        "SELECT last FROM workspace_numbers",
    ));
    one_batch(statements)
}

/// The workspace's INSERT, its number the one just taken.
fn insert_workspace(w: &workspace::Model) -> Statement {
    let columns: Vec<workspace::Column> = workspace::Column::iter().collect();
    let values = columns.iter().map(|&column| match column {
        workspace::Column::Number => Expr::cust("(SELECT last FROM workspace_numbers)"),
        column => Expr::val(w.get(column)),
    });
    let (sql, values) = Query::insert()
        .into_table(workspace::Entity)
        .columns(columns.iter().copied())
        .values_panic(values)
        .build(SqliteQueryBuilder);
    Statement::from_sql_and_values(DbBackend::Sqlite, sql, values)
}

/// `statements` as one: their texts in turn, their parameters in the same
/// order. sqlx binds a batch's `?` in order across its statements, so
/// none may use numbered parameters (`?1`): sea-query writes `?`.
fn one_batch(statements: Vec<Statement>) -> Statement {
    let mut sql = String::new();
    let mut values = Vec::new();
    for statement in statements {
        sql.push_str(&statement.sql);
        sql.push_str(";\n");
        values.extend(statement.values.map(|Values(v)| v).unwrap_or_default());
    }
    Statement::from_sql_and_values(DbBackend::Sqlite, sql, values)
}

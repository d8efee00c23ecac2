//! The create on SQLite: one transaction in two trips to SQLite's
//! thread, on a connection kept for creates.
//!
//! sqlx runs each SQLite connection on a thread of its own, and every
//! command sent is a hand-over to that thread and back: on two cores the
//! scheduler's work for those hand-overs was the largest cost of a create
//! (a profile of the server under `workspace-bench --database sqlite`).
//! A pooled connection in a sqlx transaction costs six: BEGIN and COMMIT
//! (each answered by a rendezvous with the calling task), the statements,
//! and, given back to the pool, the look at its transaction state
//! (`sqlite_connection_is_clean`) and sqlx's ping. So creates write on a
//! connection of their own, kept in the process's write turn
//! (`storage::writer`), and send two: BEGIN IMMEDIATE with the counter's
//! UPDATE, then every insert and COMMIT as one batch of statements, which
//! SQLite's thread runs in one go.

use std::sync::LazyLock;

use sea_orm::{
    DbBackend, DbErr, EntityTrait, IntoActiveModel, Iterable, ModelTrait, QueryTrait, Statement,
    Value, Values,
    sea_query::{Expr, Query, SqliteQueryBuilder},
    sqlx::{self, Row, SqliteConnection},
};
use sea_query_sqlx::SqlxValues;

use super::rows::{BELOW_LIMIT, Counted, CreateRows, still_allowed};
use crate::storage::{
    Storage, connection::from_sqlx, deadline, entities::*, errors::sql_state,
    open::sqlite_connection_is_clean, writer::Writer,
};

/// The create on SQLite: one transaction, begun IMMEDIATE (it takes the
/// write lock at once, waiting up to the busy timeout, rather than
/// failing to upgrade a read lock later), the counter's UPDATE first; the
/// event is numbered by the same UPDATE. A kept caller's decision is
/// checked again in the same UPDATE, under the write lock (`Recheck`).
///
/// The connection is taken out of the write turn for the create and put
/// back only when it is outside any transaction. A call dropped on the
/// way (its deadline) drops it, and closing a connection rolls back what
/// its transaction wrote: its commands run in the order sent, so the
/// close comes after the trip in flight, on a transaction that either
/// committed (the call was marked, `deadline::committing`) or never will.
pub(super) async fn write_in_transaction(
    storage: &Storage,
    rows: &CreateRows,
) -> Result<Counted, DbErr> {
    let Some(mut turn) = storage.write_turn().await else {
        return Err(DbErr::Custom("SQLite's create on another database".into()));
    };
    let mut conn = match turn.conn.take() {
        Some(conn) => conn,
        // Boxed: needed once per connection, kept out of every create's
        // future.
        None => Box::pin(Writer::open(storage.db.pool())).await?,
    };
    let written = write(&mut conn, rows).await;
    let whole = match &written {
        Ok(_) => true,
        // The database's refusal: undone, on a connection still usable.
        Err(err) if sql_state(err).is_some() => end_transaction(&mut conn).await,
        Err(_) => false,
    };
    if whole {
        turn.conn = Some(conn);
    }
    written
}

/// Rolls back what a refused trip left of its transaction: whether the
/// connection is then outside any.
async fn end_transaction(conn: &mut SqliteConnection) -> bool {
    // SQLite may have rolled back by itself (SQLITE_FULL): then this
    // fails, and the connection is clean all the same.
    let _ = rollback(conn).await;
    sqlite_connection_is_clean(conn).await
}

async fn rollback(conn: &mut SqliteConnection) -> Result<(), DbErr> {
    sqlx::raw_sql("ROLLBACK")
        .execute(&mut *conn)
        .await
        .map(|_| ())
        .map_err(from_sqlx)
}

async fn write(conn: &mut SqliteConnection, rows: &CreateRows) -> Result<Counted, DbErr> {
    let Some(sequence) = count(conn, rows).await? else {
        rollback(conn).await?;
        // For a kept caller, the limit or a changed caller: either way the
        // create is decided again on a fresh read of the caller, which
        // tells the two apart (`Workspaces::create`).
        return Ok(match rows.recheck {
            Some(_) => Counted::CallerChanged,
            None => Counted::LimitReached,
        });
    };
    let batch = insert_batch(rows, sequence);
    let number = deadline::committing(deadline::current().as_ref(), async {
        // Every statement's rows: a fetch of one would stop the batch at
        // its first row, before the COMMIT.
        let written = query(batch)
            .fetch_all(&mut *conn)
            .await
            .map_err(from_sqlx)?;
        let [row] = written.as_slice() else {
            return Err(DbErr::RecordNotFound("workspace_numbers".into()));
        };
        row.try_get::<i64, _>("last").map_err(from_sqlx)
    })
    .await?;
    Ok(Counted::Written(number))
}

/// `statement` for sqlx, its text and values moved in (not copied), the
/// values bound as sea-orm binds them.
fn query(statement: Statement) -> sqlx::query::Query<'static, sqlx::Sqlite, SqlxValues> {
    let values = statement.values.unwrap_or(Values(Vec::new()));
    sqlx::query_with(sqlx::AssertSqlSafe(statement.sql), SqlxValues(values))
}

/// BEGIN IMMEDIATE, then the counter's UPDATE under the plan's limit
/// (check 9), for a kept caller only if its decision still holds: the
/// organization's next event number, or None when it did not count (the
/// transaction is then still open).
async fn count(conn: &mut SqliteConnection, rows: &CreateRows) -> Result<Option<i64>, DbErr> {
    let w = &rows.workspace;
    let mut values = vec![w.created_at.into(), w.organization_id.into()];
    let sql = if rows.recheck.is_some() {
        values.extend(recheck_values(rows));
        COUNT_CHECKED.as_str()
    } else {
        COUNT.as_str()
    };
    // Every statement's rows (a fetch of one stops at the first). The
    // text is static: sqlx keeps it without a copy.
    let counted = sqlx::query_with(sql, SqlxValues(Values(values)))
        .fetch_all(&mut *conn)
        .await
        .map_err(from_sqlx)?;
    counted
        .first()
        .map(|row| row.try_get::<i64, _>("event_sequence"))
        .transpose()
        .map_err(from_sqlx)
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
        "BEGIN IMMEDIATE;\nUPDATE organizations SET workspace_count = workspace_count + 1, \
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

/// Every insert of the create and its COMMIT as one batch of statements:
/// the next workspace number (migration m20261203_000006) given to the
/// workspace, its memberships, the idempotency record, the event numbered
/// `sequence`; its one row is the workspace's number. A statement refused
/// (the name's unique index) ends the batch there, before the COMMIT.
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
    statements.push(Statement::from_string(DbBackend::Sqlite, "COMMIT"));
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

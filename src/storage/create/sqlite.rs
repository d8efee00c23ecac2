//! The create on SQLite: one transaction, the counter's UPDATE first.

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, EntityTrait,
    IntoActiveModel, QueryFilter, Statement,
    sea_query::{Expr, ExprTrait},
};

use super::rows::{BELOW_LIMIT, Counted, CreateRows, still_allowed};
use crate::storage::{
    Storage, deadline,
    entities::*,
    events::{self},
};

/// The create on SQLite: one transaction, the counter's UPDATE first, so
/// the transaction takes the write lock at once (waiting up to the busy
/// timeout) rather than failing to upgrade a read lock later; the event is
/// numbered by the same UPDATE. A kept caller's decision is checked again
/// under the write lock (`Recheck`).
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
    let w = &rows.workspace;
    let counted = organization::Entity::update_many()
        .col_expr(
            organization::Column::WorkspaceCount,
            Expr::col(organization::Column::WorkspaceCount).add(1),
        )
        .col_expr(
            organization::Column::EventSequence,
            Expr::col(organization::Column::EventSequence).add(1),
        )
        .col_expr(organization::Column::UpdatedAt, Expr::value(w.created_at))
        .filter(organization::Column::Id.eq(w.organization_id))
        .filter(Expr::cust(BELOW_LIMIT))
        .exec_with_returning(txn)
        .await?;
    let Some(sequence) = counted.first().map(|org| org.event_sequence) else {
        return Ok(Counted::LimitReached);
    };
    if !still_allowed_here(txn, rows).await? {
        return Ok(Counted::CallerChanged);
    }
    // The next number (migration m20261203_000006), under the write lock.
    let number = txn
        .query_one_raw(Statement::from_string(
            DbBackend::Sqlite,
            "UPDATE workspace_numbers SET last = last + 1 RETURNING last",
        ))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("workspace_numbers".into()))?
        .try_get::<i64>("", "last")?;
    let w = workspace::Model {
        number,
        ..w.clone()
    };
    workspace::Entity::insert(w.clone().into_active_model())
        .exec_without_returning(txn)
        .await?;
    workspace_membership::Entity::insert_many(
        rows.memberships
            .iter()
            .cloned()
            .map(IntoActiveModel::into_active_model),
    )
    .exec_without_returning(txn)
    .await?;
    if let Some(record) = &rows.record {
        idempotency_record::Entity::insert(record.clone().into_active_model())
            .exec_without_returning(txn)
            .await?;
    }
    events::insert(
        txn,
        event::Model {
            sequence,
            ..rows.event.clone()
        },
    )
    .await?;
    Ok(Counted::Written(number))
}

/// Whether a kept caller's decision still holds (`Recheck`), read under
/// the write lock the counter's UPDATE took; true for a caller read for
/// this call.
async fn still_allowed_here(txn: &DatabaseTransaction, rows: &CreateRows) -> Result<bool, DbErr> {
    let Some(recheck) = &rows.recheck else {
        return Ok(true);
    };
    let sql = format!(
        "SELECT {} AS allowed",
        still_allowed(["?1", "?2", "?3", "?4", "?5", "?6", "?7"])
    );
    let w = &rows.workspace;
    let row = txn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Sqlite,
            sql,
            [
                recheck.token_hash.as_str().into(),
                w.created_by.into(),
                w.organization_id.into(),
                recheck.role.into(),
                recheck.policy.into(),
                w.created_at.into(),
                recheck.only_organization.into(),
            ],
        ))
        .await?;
    Ok(match row {
        Some(row) => row.try_get::<bool>("", "allowed")?,
        None => false,
    })
}

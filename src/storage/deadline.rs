//! The call's deadline, as the statements that run for it see it.
//!
//! A create is one statement on PostgreSQL: once sent, it runs to its end
//! whatever becomes of the call, and it may wait on its organization's row
//! lock behind other creates. So that a call answered DEADLINE_EXCEEDED
//! has written nothing, the statement carries the time the call has left
//! and writes only if the lock came in time (see `write_in_one_statement`).
//! The gRPC layer sets the deadline for the call's task (`within`); work
//! outside a call (the admin CLI, tests of storage) has none.

use std::{future::Future, time::Duration};

use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, DbErr};
use tokio::time::Instant;

tokio::task_local! {
    static DEADLINE: Instant;
}

/// Runs `call` with `deadline` as its deadline.
pub async fn within<F: Future>(deadline: Instant, call: F) -> F::Output {
    DEADLINE.scope(deadline, call).await
}

/// The current call's deadline, if it has one.
pub(super) fn current() -> Option<Instant> {
    DEADLINE.try_with(|deadline| *deadline).ok()
}

/// The time the current call has left, if it has a deadline.
pub(super) fn time_left() -> Option<Duration> {
    current().map(|at| at.saturating_duration_since(Instant::now()))
}

/// On PostgreSQL, limits every statement of transaction `txn` to the time
/// the call has left, as both its `lock_timeout` and its
/// `statement_timeout` (SET LOCAL: for this transaction only, which also
/// holds behind a transaction pooler). A statement waiting on a row lock
/// past the call's deadline then fails (55P03 or 57014, read as
/// DEADLINE_EXCEEDED), rolling back what the transaction wrote, and its
/// connection goes back to the pool instead of waiting on for the lock.
/// Outside a call, and on SQLite, nothing changes.
pub(super) async fn limit_statements(txn: &DatabaseTransaction) -> Result<(), DbErr> {
    if txn.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    let Some(left) = time_left() else {
        return Ok(());
    };
    // 0 would mean no limit.
    let ms = left.as_millis().max(1);
    txn.execute_unprepared(&format!(
        "SET LOCAL lock_timeout = '{ms}ms'; SET LOCAL statement_timeout = '{ms}ms'"
    ))
    .await
    .map(|_| ())
}

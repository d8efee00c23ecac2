//! The call's deadline, as the statements that run for it see it, and
//! what its writes may have left when it passes.
//!
//! A create is one statement on PostgreSQL: once sent, it runs to its end
//! whatever becomes of the call, and it may wait on its organization's row
//! lock behind other creates. The statement carries the time the call has
//! left and writes only if the lock came in time (see
//! `write_in_one_statement`); every transaction's statements carry it as
//! their lock and statement timeouts (`limit_statements`).
//!
//! That bounds the waits, not the commit: a commit sent just before the
//! deadline may land after it. So each call keeps a `Writes` mark, set
//! before a commit is sent (or a statement that commits itself) and
//! cleared when the database refuses it. When the call's time runs out
//! the mark says which answer is true: nothing can have been written
//! (DEADLINE_EXCEEDED), or it may have been (an outcome-unknown answer).
//! The gRPC layer sets both for the call's task (`within`); work outside a
//! call (the admin CLI, tests of storage) has neither.

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, DbErr};
use tokio::time::Instant;

use super::errors::sql_state;

/// Whether a call's commit may have been written: set as a commit (or a
/// statement that commits itself) is sent, cleared when the database
/// refuses it. Shared between the call and a task it hands its write to.
#[derive(Clone, Debug, Default)]
pub struct Writes(Arc<AtomicBool>);

impl Writes {
    /// Whether a commit was sent and not refused: a call cut now may have
    /// written.
    pub fn may_have_written(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// A call's deadline and its `Writes`, as the tasks writing for it see
/// them.
#[derive(Clone, Debug)]
pub(super) struct CallClock {
    pub at: Instant,
    pub writes: Writes,
}

tokio::task_local! {
    static CALL: CallClock;
}

/// Runs `call` with `deadline` as its deadline, its commits marked in
/// `writes`.
pub async fn within<F: Future>(deadline: Instant, writes: Writes, call: F) -> F::Output {
    let clock = CallClock {
        at: deadline,
        writes,
    };
    CALL.scope(clock, call).await
}

/// The current call's clock, if it has a deadline.
pub(super) fn current() -> Option<CallClock> {
    CALL.try_with(CallClock::clone).ok()
}

/// The time the current call has left, if it has a deadline.
pub(super) fn time_left() -> Option<Duration> {
    current().map(|clock| clock.at.saturating_duration_since(Instant::now()))
}

/// Marks that the call `clock` belongs to may write from now on: before a
/// commit (or a statement that commits itself) is sent, and before the
/// time left is looked at for it. In that order, a call whose timer
/// finds no mark has not sent its commit, and if it sends one later it
/// finds no time left (the statement then refuses to write, the commit
/// is not sent): so DEADLINE_EXCEEDED stays true even when the writing
/// task is paused between the two.
pub(super) fn may_write(clock: Option<&CallClock>) {
    if let Some(clock) = clock {
        clock.writes.0.store(true, Ordering::SeqCst);
    }
}

/// A mark set by `may_write` that turned out false: the database refused
/// the commit or the statement matched nothing, or the commit was never
/// sent.
pub(super) fn wrote_nothing(clock: Option<&CallClock>) {
    if let Some(clock) = clock {
        clock.writes.0.store(false, Ordering::SeqCst);
    }
}

/// Sends the commit `commit` (or a statement that commits itself) for the
/// call `clock` belongs to, marked (`may_write`) until the database refuses
/// it. A refusal (an error the database answered: a constraint, a
/// timeout, the deadline check) undid everything; a lost connection
/// leaves the outcome unknown, and the mark set.
pub(super) async fn committing<T>(
    clock: Option<&CallClock>,
    commit: impl Future<Output = Result<T, DbErr>>,
) -> Result<T, DbErr> {
    may_write(clock);
    let result = commit.await;
    if let Err(err) = &result
        && sql_state(err).is_some()
    {
        wrote_nothing(clock);
    }
    result
}

/// Commits `txn` for the current call (see `committing`).
pub(super) async fn commit(txn: DatabaseTransaction) -> Result<(), DbErr> {
    committing(current().as_ref(), txn.commit()).await
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

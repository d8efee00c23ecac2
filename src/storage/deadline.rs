//! The call's deadline, as the statements that run for it see it.
//!
//! A create is one statement on PostgreSQL: once sent, it runs to its end
//! whatever becomes of the call, and it may wait on its organization's row
//! lock behind other creates. So that a call answered DEADLINE_EXCEEDED
//! has written nothing, the statement carries the time the call has left
//! and writes only if the lock came in time (see `write_in_one_statement`).
//! The gRPC layer sets the deadline for the call's task (`within`); work
//! outside a call (the admin CLI, tests of storage) has none.

use std::future::Future;

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

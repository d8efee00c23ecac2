//! Database errors as the domain reads them.

use sea_orm::{
    DbErr, RuntimeErr,
    sqlx::{self},
};

use super::connection::is_prepared_statement_clash;
use crate::domain::DomainError;

/// Database errors as the domain sees them: the database is away
/// (UNAVAILABLE, worth a retry) or something else went wrong (INTERNAL).
impl From<DbErr> for DomainError {
    fn from(err: DbErr) -> Self {
        if sql_state(&err).is_some_and(|code| is_deadline(&code)) || is_deadline_passed(&err) {
            return DomainError::DeadlineExceeded;
        }
        if is_prepared_statement_clash(&err) {
            // The logs say what to change, not only what PostgreSQL saw.
            return DomainError::Internal(anyhow::Error::new(err).context(
                "a prepared statement clashed: is the database behind a transaction-mode \
                 pooler with DATABASE_POOLER not set to transaction?",
            ));
        }
        if is_unavailable(&err) {
            DomainError::Unavailable(err.into())
        } else {
            DomainError::Internal(err.into())
        }
    }
}

/// The SQLSTATE `workspace_call_in_time` raises (migration
/// m20261129_000004): the call's deadline passed while its statement
/// waited, and the statement wrote nothing.
pub(crate) const DEADLINE_PASSED: &str = "WS504";

/// PostgreSQL's lock_not_available (`lock_timeout`) and query_canceled
/// (`statement_timeout`): every write runs with the call's time left as
/// both (see `deadline::limit_statements`), so the call's deadline passed
/// and the statement, rolled back, wrote nothing.
const LOCK_TIMED_OUT: &str = "55P03";
const STATEMENT_TIMED_OUT: &str = "57014";

/// The service's own verdict that a write stopped at the call's deadline
/// before it committed (so it wrote nothing), where no statement of the
/// database's said so.
pub(super) fn deadline_passed() -> DbErr {
    DbErr::Custom(DEADLINE_PASSED_MESSAGE.to_owned())
}

const DEADLINE_PASSED_MESSAGE: &str =
    "the call's deadline passed before the commit; rolled back, nothing written";

fn is_deadline_passed(err: &DbErr) -> bool {
    matches!(err, DbErr::Custom(message) if message == DEADLINE_PASSED_MESSAGE)
}

/// Whether SQLSTATE `code` says the call's deadline stopped a statement.
pub(super) fn is_deadline(code: &str) -> bool {
    [DEADLINE_PASSED, LOCK_TIMED_OUT, STATEMENT_TIMED_OUT].contains(&code)
}

/// The SQLSTATE of a database error, if `err` is one.
pub(super) fn sql_state(err: &DbErr) -> Option<String> {
    match err {
        DbErr::Exec(RuntimeErr::SqlxError(inner)) | DbErr::Query(RuntimeErr::SqlxError(inner)) => {
            match inner.as_ref() {
                sqlx::Error::Database(db) => db.code().map(|code| code.into_owned()),
                _ => None,
            }
        }
        _ => None,
    }
}

pub(super) fn is_unavailable(err: &DbErr) -> bool {
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(inner)) | DbErr::Query(RuntimeErr::SqlxError(inner)) => {
            matches!(
                inner.as_ref(),
                sqlx::Error::Io(_)
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::WorkerCrashed
                    | sqlx::Error::Tls(_)
            ) || is_connection_lost(inner.as_ref())
        }
        _ => false,
    }
}

/// PostgreSQL reports a server going away (shutdown, admin termination) as
/// a database error of class 57 or 08 (but 57014, a statement timeout, is
/// the call's deadline: the server stays).
pub(super) fn is_connection_lost(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            (code.starts_with("57") && code != STATEMENT_TIMED_OUT) || code.starts_with("08")
        }),
        _ => false,
    }
}

/// Whether `err` is a unique-constraint violation mentioning `table`.
pub(super) fn violates_unique(err: &DbErr, table: &str) -> bool {
    matches!(err.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(message)) if message.contains(table))
}

#[cfg(test)]
mod tests {
    use std::{borrow::Cow, error::Error as StdError, fmt, sync::Arc};

    use super::*;

    /// A database error with a SQLSTATE, as PostgreSQL sends one.
    #[derive(Debug)]
    struct Coded(&'static str);

    impl fmt::Display for Coded {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "error {}", self.0)
        }
    }

    impl StdError for Coded {}

    impl sqlx::error::DatabaseError for Coded {
        fn message(&self) -> &str {
            "the call's deadline passed while it waited"
        }
        fn code(&self) -> Option<Cow<'_, str>> {
            Some(Cow::Borrowed(self.0))
        }
        fn as_error(&self) -> &(dyn StdError + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn StdError + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn StdError + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::Other
        }
    }

    fn database_error(code: &'static str) -> DbErr {
        DbErr::Query(RuntimeErr::SqlxError(Arc::new(sqlx::Error::Database(
            Box::new(Coded(code)),
        ))))
    }

    #[test]
    fn a_statement_stopped_at_the_deadline_is_deadline_exceeded() {
        let error = DomainError::from(database_error(DEADLINE_PASSED));
        assert_eq!(error.reason(), crate::domain::Reason::DeadlineExceeded);
        let status = tonic::Status::from(error);
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded);
        // The timeouts every write runs with are the call's deadline.
        for code in [LOCK_TIMED_OUT, STATEMENT_TIMED_OUT] {
            let status = tonic::Status::from(DomainError::from(database_error(code)));
            assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{code}");
        }
        // Other class 57 is a server going away; anything else stays
        // internal.
        assert!(matches!(
            DomainError::from(database_error("57P01")),
            DomainError::Unavailable(_)
        ));
        assert!(matches!(
            DomainError::from(database_error("XX000")),
            DomainError::Internal(_)
        ));
    }
}

//! The database: connection, migrations, entities and the queries the
//! service runs. Speaks domain types; knows nothing of status codes.

mod admin;
mod availability;
mod connection;
pub mod deadline;
mod directory;
pub mod entities;
mod events;
mod lifecycle;
pub mod migrations;
mod workspaces;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, RuntimeErr,
    sqlx::{
        self,
        postgres::{PgConnectOptions, PgConnection},
        sqlite::{SqliteJournalMode, SqliteSynchronous},
    },
};
use sea_orm_migration::MigratorTrait;

use crate::domain::DomainError;
use connection::{
    Db, is_prepared_statement_clash, pooler_safe, shares_server_connections,
    transaction_pooler_mismatch,
};

pub use admin::NewApiToken;
pub use availability::Availability;
pub use connection::{Pooler, mask_url, redact};
pub use directory::{CallerOrganizations, OrganizationContext};
pub use events::{PendingEvent, RelayRound, all_events};
pub use lifecycle::{Changed, MemberChange, OwnersProtected, WorkspaceAccess};
pub use workspaces::{CreateOutcome, EarlierCreate, IdempotencyKey, NewWorkspace};

/// How long a SQLite writer waits for the write lock before giving up.
/// Concurrent creates queue on it (SQLite has one writer at a time).
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The PostgreSQL advisory lock key that serializes migrations
/// ("wsmigrat" in ASCII).
const MIGRATION_LOCK: i64 = 0x7773_6d69_6772_6174;

/// How long a pooled connection may sit idle before it is pinged on
/// checkout.
const IDLE_BEFORE_PING: Duration = Duration::from_secs(10);

/// How long connecting may take, at start and when the pool opens one.
const CONNECT_LIMIT: Duration = Duration::from_secs(5);

/// How long a probe may take before the database counts as away.
const PROBE_LIMIT: Duration = Duration::from_secs(1);

/// The service's database: SQLite (embedded default) or PostgreSQL.
#[derive(Clone, Debug)]
pub struct Storage {
    db: Db,
    /// PostgreSQL's health check: a connection of its own, outside the pool.
    probe: Option<Arc<Probe>>,
    availability: Availability,
    /// Where the database is, for the spans' attributes.
    server: Arc<Server>,
    /// SQLite's writers take turns here (`write_turn`).
    writer: Arc<tokio::sync::Mutex<()>>,
    /// What the last look at the pooler in front of PostgreSQL found.
    pooler_check: Arc<PoolerCheck>,
}

/// How often the health monitor looks again for a transaction pooler the
/// settings do not name, while none was found.
const POOLER_RECHECK: Duration = Duration::from_secs(30);

/// How soon after one look a failing call may have the pooler looked at
/// again.
const POOLER_RECHECK_ON_FAILURE: Duration = Duration::from_secs(5);

/// A transaction-mode pooler in front of PostgreSQL with
/// `DATABASE_POOLER` saying otherwise (see `Storage::check_pooler`).
#[derive(Debug, Default)]
struct PoolerCheck {
    /// The diagnosis while the mismatch is seen.
    mismatch: std::sync::Mutex<Option<String>>,
    /// When the pooler was last looked at.
    last: std::sync::Mutex<Option<Instant>>,
    /// One look at a time.
    running: tokio::sync::Mutex<()>,
}

/// The PostgreSQL server and database (`server.address`, `server.port`,
/// `db.namespace`); empty for SQLite.
#[derive(Debug, Default)]
struct Server {
    address: Option<String>,
    port: Option<u16>,
    database: Option<String>,
}

/// The health check's own PostgreSQL connection, opened on the first probe
/// and again after one fails. It is one of DATABASE_MAX_CONNECTIONS (the
/// pool holds one fewer), so that behind a pooler sized to that number it
/// never waits in the pooler's queue behind the pool's connections, and a
/// busy pool is never taken for an outage.
#[derive(Debug)]
struct Probe {
    /// For redacting errors.
    url: String,
    options: PgConnectOptions,
    connection: tokio::sync::Mutex<Option<PgConnection>>,
    /// Why the last attempt failed, for the logs.
    last_failure: std::sync::Mutex<Option<String>>,
}

impl Probe {
    /// Pings the kept connection, or a new one when there is none or it
    /// stopped answering.
    async fn ping(&self) -> Result<(), sqlx::Error> {
        use sqlx::Connection;
        let mut kept = self.connection.lock().await;
        if let Some(mut conn) = kept.take()
            && conn.ping().await.is_ok()
        {
            *kept = Some(conn);
            return Ok(());
        }
        let mut conn = PgConnection::connect_with(&self.options).await?;
        conn.ping().await?;
        *kept = Some(conn);
        Ok(())
    }

    fn record(&self, failure: Option<String>) {
        *self.last_failure.lock().expect("not poisoned") = failure;
    }

    fn last_failure(&self) -> Option<String> {
        self.last_failure.lock().expect("not poisoned").clone()
    }
}

/// Whether a SQLite connection is outside any transaction, both as sqlx
/// counts (its nesting depth) and as SQLite says (autocommit mode). After
/// SQLITE_FULL SQLite rolls back by itself, the driver's COMMIT or
/// ROLLBACK then fails and its depth stays 1: its next "transaction" would
/// be a SAVEPOINT inside nothing, and what it "commits" could be lost, or a
/// transaction left open would hold the write lock ("database is locked").
async fn sqlite_connection_is_clean(conn: &mut sqlx::SqliteConnection) -> bool {
    use sqlx::Connection;
    if conn.is_in_transaction() {
        return false;
    }
    let Ok(mut handle) = conn.lock_handle().await else {
        return false;
    };
    // SAFETY: the handle is locked for us: no other thread uses the
    // connection during this call, which only reads a flag.
    let autocommit =
        unsafe { libsqlite3_sys::sqlite3_get_autocommit(handle.as_raw_handle().as_ptr()) };
    autocommit != 0
}

impl Storage {
    /// Connects to `url` (`sqlite://…` or `postgres://…`) directly, with
    /// no pooler in between.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, DbErr> {
        Self::connect_through(url, max_connections, Pooler::None).await
    }

    /// Connects to `url`, with statements sent as `pooler` needs. A SQLite
    /// file is created when missing and runs in WAL mode with a busy
    /// timeout. On PostgreSQL the health check's connection is opened
    /// first: a database that cannot be reached is reported with the
    /// reason (refused, authentication, TLS), not as a pool timeout.
    /// Errors never carry the URL's password.
    pub async fn connect_through(
        url: &str,
        max_connections: u32,
        pooler: Pooler,
    ) -> Result<Self, DbErr> {
        let backend = connection::backend_of(url).ok_or_else(|| {
            DbErr::Custom(format!(
                "unsupported database URL {}: use sqlite://FILE or postgres://USER@HOST/DATABASE",
                mask_url(url)
            ))
        })?;
        let mut server = Server::default();
        let probe = match backend {
            DbBackend::Postgres => {
                let options = url
                    .parse::<PgConnectOptions>()
                    .map_err(|err| DbErr::Custom(redact(&err.to_string(), url)))?;
                server = Server {
                    address: Some(options.get_host().to_owned()),
                    port: Some(options.get_port()),
                    database: options.get_database().map(str::to_owned),
                };
                let probe = Arc::new(Probe {
                    url: url.to_owned(),
                    options: pooler_safe(options),
                    connection: Default::default(),
                    last_failure: Default::default(),
                });
                tokio::time::timeout(CONNECT_LIMIT, probe.ping())
                    .await
                    .map_err(|_| {
                        DbErr::Custom(format!(
                            "{} did not answer within {CONNECT_LIMIT:?}",
                            mask_url(url)
                        ))
                    })?
                    .map_err(|err| {
                        DbErr::Custom(format!(
                            "connecting to {}: {}",
                            mask_url(url),
                            redact(&err.to_string(), url)
                        ))
                    })?;
                Some(probe)
            }
            _ => None,
        };
        // The health check's connection counts toward the maximum.
        let pool_size = if probe.is_some() {
            max_connections.saturating_sub(1).max(1)
        } else {
            max_connections
        };
        let mut options = ConnectOptions::new(url.to_owned());
        options
            .max_connections(pool_size)
            .min_connections(1)
            .connect_timeout(CONNECT_LIMIT)
            .acquire_timeout(CONNECT_LIMIT)
            // sqlx pings a connection on every checkout by default: one
            // more round trip per query. Only connections idle long enough
            // to have been dropped by the server or a proxy are pinged, and
            // connections opened before the database was last found or
            // suspected away are replaced (below).
            .test_before_acquire_if_idle_for(IDLE_BEFORE_PING)
            .sqlx_logging(false)
            .map_sqlx_postgres_opts(move |postgres| {
                let postgres = pooler_safe(postgres);
                if pooler.keeps_statements() {
                    postgres
                } else {
                    postgres.statement_cache_capacity(0)
                }
            })
            .map_sqlx_sqlite_opts(|sqlite| {
                sqlite
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(SQLITE_BUSY_TIMEOUT)
                    .foreign_keys(true)
            })
            // A connection whose transaction state is not clean never goes
            // back to the pool (see `sqlite_connection_is_clean`).
            .map_sqlx_sqlite_pool_opts(|pool| {
                pool.after_release(|conn, _| {
                    Box::pin(async move {
                        let clean = sqlite_connection_is_clean(conn).await;
                        if !clean {
                            tracing::warn!("closing a SQLite connection left inside a transaction");
                        }
                        Ok(clean)
                    })
                })
            });
        let availability = Availability::default();
        let trust = availability.clone();
        options.map_sqlx_postgres_before_acquire(move |_, meta| {
            // After an outage, a connection from before it is dead, though
            // it has not been idle long: replace it rather than let a call
            // find out.
            let trusted = Instant::now()
                .checked_sub(meta.age)
                .is_some_and(|opened| trust.trusts_connection_opened(opened));
            Box::pin(async move { Ok(trusted) })
        });
        let pool = Database::connect(options).await.map_err(|err| {
            let mut message = redact(&err.to_string(), url);
            if let Some(failure) = probe.as_ref().and_then(|probe| probe.last_failure()) {
                message.push_str(&format!(" (the last connection attempt: {failure})"));
            }
            DbErr::Custom(message)
        })?;
        Ok(Self {
            db: Db::new(pool, pooler),
            probe,
            availability,
            server: Arc::new(server),
            writer: Arc::default(),
            pooler_check: Arc::default(),
        })
    }

    /// Looks for a transaction-mode pooler between the service and
    /// PostgreSQL (`shares_server_connections`, over the health check's
    /// connection and one of the pool's) and compares it with
    /// `DATABASE_POOLER`:
    /// - `none` or `session` behind one: sqlx's named statements clash
    ///   there ("prepared statement … already exists"). Logged as an error
    ///   naming the setting, and `pooler_mismatch` holds the diagnosis
    ///   (readiness NOT_SERVING) until a later look finds it fixed;
    /// - `transaction` with none seen (`at_start` only): a warning, as a
    ///   busy pooler may hide itself; the service works, paying three
    ///   round trips a statement it may not need.
    ///
    /// At start it waits for a pool connection; later it only takes an
    /// idle one (a busy pool is no reason to queue). SQLite: nothing to do.
    pub async fn check_pooler(&self, at_start: bool) -> Option<String> {
        let Some(probe) = &self.probe else {
            return None;
        };
        let check = &self.pooler_check;
        let _turn = check.running.lock().await;
        *check.last.lock().expect("not poisoned") = Some(Instant::now());
        let pool = self.db.pool().get_postgres_connection_pool();
        let pooled = if at_start {
            tokio::time::timeout(CONNECT_LIMIT, pool.acquire())
                .await
                .ok()
                .and_then(Result::ok)
        } else {
            pool.try_acquire()
        };
        let Some(mut pooled) = pooled else {
            return self.pooler_mismatch();
        };
        let shared = {
            use sqlx::Connection;
            let mut kept = probe.connection.lock().await;
            if kept.is_none() {
                let connect = PgConnection::connect_with(&probe.options);
                *kept = tokio::time::timeout(CONNECT_LIMIT, connect)
                    .await
                    .ok()
                    .and_then(Result::ok);
            }
            let Some(own) = kept.as_mut() else {
                return self.pooler_mismatch();
            };
            let looked =
                tokio::time::timeout(PROBE_LIMIT * 3, shares_server_connections(own, &mut pooled))
                    .await;
            match looked {
                Ok(Ok(shared)) => shared,
                failed => {
                    // Either connection may be mid-statement: neither is
                    // used again.
                    *kept = None;
                    pooled.close_on_drop();
                    if let Ok(Err(err)) = failed {
                        tracing::debug!(error = %redact(&err.to_string(), &probe.url), "looking for a connection pooler");
                    }
                    return self.pooler_mismatch();
                }
            }
        };
        let configured = self.db.pooler();
        if configured == Pooler::Transaction {
            if !shared && at_start {
                tracing::warn!(
                    "DATABASE_POOLER=transaction but no transaction-mode pooler was seen in front \
                     of the database (two client connections kept a server connection each): \
                     with none, or with one in session mode, set DATABASE_POOLER=none or \
                     session; transaction costs three more round trips a statement"
                );
            }
            return None;
        }
        let found = shared.then(|| transaction_pooler_mismatch(configured));
        let mut mismatch = check.mismatch.lock().expect("not poisoned");
        if *mismatch != found {
            match &found {
                Some(diagnosis) => tracing::error!("{diagnosis}"),
                None => tracing::info!(
                    pooler = configured.name(),
                    "no transaction-mode pooler in front of the database any more: DATABASE_POOLER fits"
                ),
            }
            mismatch.clone_from(&found);
        }
        found
    }

    /// What `check_pooler` last found wrong with `DATABASE_POOLER`, while
    /// it stays so.
    pub fn pooler_mismatch(&self) -> Option<String> {
        self.pooler_check
            .mismatch
            .lock()
            .expect("not poisoned")
            .clone()
    }

    /// Whether the pooler is due another look: `DATABASE_POOLER` is not
    /// `transaction` (only that mismatch breaks calls) and the last look
    /// is older than `gap` (none while a mismatch is known).
    fn pooler_check_due(&self, gap: Duration) -> bool {
        if self.probe.is_none() || self.db.pooler() == Pooler::Transaction {
            return false;
        }
        if self.pooler_mismatch().is_some() {
            return true;
        }
        self.pooler_check
            .last
            .lock()
            .expect("not poisoned")
            .is_none_or(|last| last.elapsed() >= gap)
    }

    /// The health monitor's round: the pooler is looked at again every
    /// round while a mismatch is known (readiness follows a fix), else
    /// every half minute (a pooler put in front while the service runs).
    pub async fn recheck_pooler(&self) -> Option<String> {
        if self.pooler_check_due(POOLER_RECHECK) {
            self.check_pooler(false).await
        } else {
            self.pooler_mismatch()
        }
    }

    /// A call failed inside the service: if the cause may be a transaction
    /// pooler the settings do not name, have it looked at now (at most
    /// every few seconds), so that readiness reports it at once.
    pub fn suspect_pooler(&self) {
        if !self.pooler_check_due(POOLER_RECHECK_ON_FAILURE) || self.pooler_mismatch().is_some() {
            return;
        }
        let storage = self.clone();
        tokio::spawn(async move {
            storage.check_pooler(false).await;
        });
    }

    /// On SQLite, a turn to write: the process's writers wait here, in the
    /// order they came, rather than in SQLite's busy handler, which sleeps
    /// between tries (1 ms growing to 100 ms) and so answers a burst late
    /// and out of order. Taken before the write transaction begins, held
    /// until it ends. On PostgreSQL none: its row locks queue writers.
    pub(super) async fn write_turn(&self) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        if self.db.get_database_backend() != DbBackend::Sqlite {
            return None;
        }
        Some(self.writer.clone().lock_owned().await)
    }

    /// Brings the schema up to date. On PostgreSQL, replicas that start
    /// together queue on an advisory lock: one migrates, inside one
    /// transaction, and the others then find nothing left to do. (SQLite
    /// has one process per file.)
    pub async fn migrate(&self) -> Result<(), DbErr> {
        if self.db.get_database_backend() != DbBackend::Postgres {
            return migrations::Migrator::up(self.db.pool(), None).await;
        }
        let txn = self.db.begin().await?;
        txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
            .await?;
        migrations::Migrator::up(&txn, None).await?;
        txn.commit().await
    }

    /// The database's reachability as last probed.
    pub fn availability(&self) -> &Availability {
        &self.availability
    }

    /// Whether the database answers within a second, recorded in
    /// `availability`. PostgreSQL is asked over a connection of its own:
    /// a busy pool is not an outage, and a pool would keep retrying a
    /// refused connection. SQLite is a file of this process; a slow answer
    /// there is contention, so it never marks the database away.
    pub async fn probe(&self) -> bool {
        if self.db.get_database_backend() != DbBackend::Postgres {
            return tokio::time::timeout(PROBE_LIMIT, self.db.pool().ping())
                .await
                .is_ok_and(|pinged| pinged.is_ok());
        }
        let Some(probe) = &self.probe else {
            return true;
        };
        let answers = match tokio::time::timeout(PROBE_LIMIT, probe.ping()).await {
            Ok(Ok(())) => {
                probe.record(None);
                true
            }
            Ok(Err(err)) => {
                probe.record(Some(redact(&err.to_string(), &probe.url)));
                false
            }
            Err(_) => {
                probe.record(Some(format!("no answer within {PROBE_LIMIT:?}")));
                false
            }
        };
        self.availability.set(answers);
        answers
    }

    /// Why the last health check failed, when it did (PostgreSQL).
    pub fn last_probe_failure(&self) -> Option<String> {
        self.probe.as_ref().and_then(|probe| probe.last_failure())
    }

    /// A call failed as if the database were away: probe it now (one
    /// probe at a time), so that a real outage fails the other calls at
    /// once rather than at their deadlines.
    pub fn suspect_outage(&self) {
        if self.db.get_database_backend() != DbBackend::Postgres {
            return;
        }
        // Even if the probe finds the database back (a restart quicker
        // than the probe), the pool's older connections died with it.
        self.availability.distrust_connections();
        if !self.availability.start_probe() {
            return;
        }
        let storage = self.clone();
        tokio::spawn(async move {
            storage.probe().await;
            storage.availability.end_probe();
        });
    }

    /// Stops using the database; in-flight queries finish first.
    pub async fn close(self) -> Result<(), DbErr> {
        if let Some(probe) = &self.probe
            && let Some(conn) = probe.connection.lock().await.take()
        {
            use sqlx::Connection;
            let _ = conn.close().await;
        }
        self.db.pool().clone().close().await
    }

    /// A client span for one statement on `collection`: a child of the
    /// current span (the call's), with the semantic conventions'
    /// attributes. For reads made of several statements, each gets its
    /// own, so that no database span holds another.
    pub(super) fn db_span(
        &self,
        operation: &'static str,
        collection: &'static str,
    ) -> tracing::Span {
        tracing::debug_span!(
            "db.statement",
            otel.kind = "client",
            otel.name = %format_args!("{operation} {collection}"),
            db.system.name = self.system(),
            db.operation.name = operation,
            db.collection.name = collection,
            db.namespace = self.namespace(),
            server.address = self.server_address(),
            server.port = self.server_port(),
        )
    }

    /// The database system, as OpenTelemetry names it (`db.system.name`).
    pub fn system(&self) -> &'static str {
        match self.db.get_database_backend() {
            DbBackend::Postgres => "postgresql",
            DbBackend::Sqlite => "sqlite",
            _ => "other_sql",
        }
    }

    /// `db.namespace`: the PostgreSQL database's name.
    pub fn namespace(&self) -> Option<&str> {
        self.server.database.as_deref()
    }

    /// `server.address`: the PostgreSQL server's host (or socket).
    pub fn server_address(&self) -> Option<&str> {
        self.server.address.as_deref()
    }

    /// `server.port`: the PostgreSQL server's port.
    pub fn server_port(&self) -> Option<i64> {
        self.server.port.map(i64::from)
    }

    /// How the connection pool is used right now.
    pub fn pool_stats(&self) -> PoolStats {
        let (size, idle, max) = match self.db.get_database_backend() {
            DbBackend::Postgres => {
                let pool = self.db.pool().get_postgres_connection_pool();
                (
                    pool.size(),
                    pool.num_idle(),
                    pool.options().get_max_connections(),
                )
            }
            _ => {
                let pool = self.db.pool().get_sqlite_connection_pool();
                (
                    pool.size(),
                    pool.num_idle(),
                    pool.options().get_max_connections(),
                )
            }
        };
        let idle = u32::try_from(idle).unwrap_or(u32::MAX).min(size);
        PoolStats {
            idle,
            used: size - idle,
            max,
        }
    }

    /// The sea-orm connection, for tests and tools that need raw access.
    pub fn connection(&self) -> &DatabaseConnection {
        self.db.pool()
    }
}

/// `storage`'s span for a statement on `collection`; none when the caller
/// has no storage at hand (a statement inside a change's transaction,
/// part of the call's own span).
pub(super) fn db_span_of(
    storage: Option<&Storage>,
    operation: &'static str,
    collection: &'static str,
) -> tracing::Span {
    storage.map_or_else(tracing::Span::none, |storage| {
        storage.db_span(operation, collection)
    })
}

/// Connections of the pool: open and idle, open and in use, the most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    pub idle: u32,
    pub used: u32,
    pub max: u32,
}

/// Database errors as the domain sees them: the database is away
/// (UNAVAILABLE, worth a retry) or something else went wrong (INTERNAL).
impl From<DbErr> for DomainError {
    fn from(err: DbErr) -> Self {
        if sql_state(&err).as_deref() == Some(DEADLINE_PASSED) {
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

/// The SQLSTATE of a database error, if `err` is one.
fn sql_state(err: &DbErr) -> Option<String> {
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

fn is_unavailable(err: &DbErr) -> bool {
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
/// a database error of class 57 or 08.
fn is_connection_lost(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| code.starts_with("57") || code.starts_with("08")),
        _ => false,
    }
}

/// Whether `err` is a unique-constraint violation mentioning `table`.
fn violates_unique(err: &DbErr, table: &str) -> bool {
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
        // Class 57 is a server going away; anything else stays internal.
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

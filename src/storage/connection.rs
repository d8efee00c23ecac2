//! The connection pool, and how statements reach PostgreSQL through a
//! connection pooler in front of it.
//!
//! A pooler in transaction mode (pgbouncer `pool_mode = transaction`, RDS
//! Proxy, Supavisor, PgCat) hands a client's statements to whichever server
//! connection is free, and takes it back at the end of every transaction,
//! or after every statement outside one. Two things sqlx does by default
//! are wrong there:
//! - it names every prepared statement `sqlx_s_N`, counting per client
//!   connection: another client's `sqlx_s_1` may already exist on the
//!   server connection it is handed ("already exists"), or its own may be
//!   on another one ("does not exist");
//! - it sends a statement in two exchanges (Parse, Describe, Sync; then
//!   Bind, Execute, Sync). Between the two, the pooler may hand the server
//!   connection to another client: one client's parameters then bind to
//!   another client's statement ("incorrect binary data format", or, when
//!   the types happen to match, the wrong statement runs).
//!
//! So under `DATABASE_POOLER=transaction` every statement runs inside a
//! transaction (the pooler keeps one server connection for a transaction
//! from BEGIN to its end), and every transaction starts with
//! `DEALLOCATE ALL`: whatever a client left on that server connection (a
//! transaction that failed before its end) is gone before this one
//! prepares anything, and sqlx's statement cache is off, so nothing is
//! assumed to survive a transaction. Each statement costs three more round
//! trips than without a pooler (BEGIN, DEALLOCATE ALL, COMMIT); work that
//! already runs in a transaction pays one.

use std::sync::Arc;

use super::{
    availability::Availability,
    handoff::{CreateConnection, Handoff},
};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, ExecResult,
    QueryResult, RuntimeErr, Statement, TransactionTrait,
    sqlx::{self, PgConnection, Postgres},
};

/// What sits between the service and PostgreSQL (`DATABASE_POOLER`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Pooler {
    /// Nothing: the service's connections are the server's.
    #[default]
    None,
    /// A pooler that gives each client connection a server connection of
    /// its own for as long as it stays open (pgbouncer `session`): prepared
    /// statements work as without one. Its pool must hold
    /// DATABASE_MAX_CONNECTIONS per replica.
    Session,
    /// A pooler that shares server connections between transactions
    /// (pgbouncer `transaction`): see the module documentation.
    Transaction,
}

impl Pooler {
    /// The setting's value, as `DATABASE_POOLER` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Pooler::None => "none",
            Pooler::Session => "session",
            Pooler::Transaction => "transaction",
        }
    }

    /// Whether named statements may outlive a transaction.
    pub fn keeps_statements(self) -> bool {
        self != Pooler::Transaction
    }
}

/// The pool, with statements sent the way `pooler` needs.
#[derive(Clone, Debug)]
pub(crate) struct Db {
    pool: DatabaseConnection,
    pooler: Pooler,
    /// Creates' connections passed to the next create.
    handoff: Arc<Handoff>,
}

impl Db {
    pub(crate) fn new(
        pool: DatabaseConnection,
        pooler: Pooler,
        availability: Availability,
    ) -> Self {
        Self {
            pool,
            pooler,
            handoff: Arc::new(Handoff::new(availability)),
        }
    }

    /// What `DATABASE_POOLER` says sits in front of the database.
    pub(crate) fn pooler(&self) -> Pooler {
        self.pooler
    }

    /// The sea-orm pool itself: for its backend, pings and statistics.
    pub(crate) fn pool(&self) -> &DatabaseConnection {
        &self.pool
    }

    /// Whether each statement must be wrapped in a transaction of its own.
    pub(crate) fn isolates_statements(&self) -> bool {
        !self.pooler.keeps_statements() && self.pool.get_database_backend() == DbBackend::Postgres
    }

    /// Starts a transaction; behind a transaction pooler, on a server
    /// connection cleared of prepared statements.
    ///
    /// In a task of its own: a call dropped at its deadline after BEGIN was
    /// sent, but before its answer came, would leave a connection inside a
    /// transaction its pool does not know of (the next call's statements
    /// would run in it). The task finishes the BEGIN, and drops (rolls
    /// back) a transaction nobody awaits any more.
    pub(crate) async fn begin(&self) -> Result<DatabaseTransaction, DbErr> {
        let _waiting = self.handoff.other_work();
        let pool = self.pool.clone();
        let isolates = self.isolates_statements();
        tokio::spawn(async move {
            let txn = pool.begin().await?;
            if isolates {
                txn.execute_unprepared("DEALLOCATE ALL").await?;
            }
            Ok(txn)
        })
        .await
        .map_err(|err| DbErr::Custom(format!("starting a transaction failed: {err}")))?
    }

    /// A PostgreSQL connection for a create's statement, sent with sqlx
    /// itself (one that must know when it is sent: see
    /// `create::postgres::write_in_one_statement`): the pool's, or one an
    /// earlier create handed over (`handoff`; behind a transaction pooler,
    /// creates never hand theirs over).
    pub(crate) async fn create_connection(&self) -> Result<CreateConnection, DbErr> {
        let pool = self.pool.get_postgres_connection_pool();
        let conn = if self.isolates_statements() {
            // Nothing is handed over there: no place in the handoff's queue.
            Box::pin(pool.acquire())
                .await
                .map(CreateConnection::vetted_now)
        } else {
            self.handoff.take(pool).await
        };
        conn.map_err(from_sqlx)
    }

    /// A create's connection whose statement came back whole (rows, or
    /// the database's error): to the next create waiting, or to the pool.
    pub(crate) fn create_done(&self, conn: CreateConnection) {
        if self.isolates_statements() {
            return;
        }
        self.handoff.give(conn);
    }

    /// `begin` on a connection from `postgres_connection`.
    pub(crate) async fn begin_on<'c>(
        &self,
        conn: &'c mut PgConnection,
    ) -> Result<sqlx::Transaction<'c, Postgres>, DbErr> {
        let mut txn = sqlx::Connection::begin(conn).await.map_err(from_sqlx)?;
        if self.isolates_statements() {
            sqlx::raw_sql("DEALLOCATE ALL")
                .execute(&mut *txn)
                .await
                .map_err(from_sqlx)?;
        }
        Ok(txn)
    }

    /// Runs one statement: as is, or in a transaction of its own behind a
    /// transaction pooler.
    async fn single<T, F>(&self, run: F) -> Result<T, DbErr>
    where
        F: for<'c> FnOnce(
                &'c DatabaseTransaction,
            ) -> std::pin::Pin<
                Box<dyn std::future::Future<Output = Result<T, DbErr>> + Send + 'c>,
            > + Send,
        T: Send,
    {
        let txn = self.begin().await?;
        let result = run(&txn).await?;
        txn.commit().await?;
        Ok(result)
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for Db {
    fn get_database_backend(&self) -> DbBackend {
        self.pool.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        let _waiting = self.handoff.other_work();
        if !self.isolates_statements() {
            return self.pool.execute_raw(stmt).await;
        }
        self.single(|txn| Box::pin(txn.execute_raw(stmt))).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        let _waiting = self.handoff.other_work();
        // One simple-protocol message: a pooler cannot split it.
        self.pool.execute_unprepared(sql).await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        let _waiting = self.handoff.other_work();
        if !self.isolates_statements() {
            return self.pool.query_one_raw(stmt).await;
        }
        self.single(|txn| Box::pin(txn.query_one_raw(stmt))).await
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        let _waiting = self.handoff.other_work();
        if !self.isolates_statements() {
            return self.pool.query_all_raw(stmt).await;
        }
        self.single(|txn| Box::pin(txn.query_all_raw(stmt))).await
    }

    fn support_returning(&self) -> bool {
        self.pool.support_returning()
    }
}

/// PostgreSQL's SQLSTATE for "prepared statement … already exists"
/// (42P05) or "… does not exist" (26000): what sqlx's named statements
/// meet behind a transaction pooler it was not told of.
pub(crate) fn is_prepared_statement_clash(err: &DbErr) -> bool {
    let (DbErr::Exec(RuntimeErr::SqlxError(inner)) | DbErr::Query(RuntimeErr::SqlxError(inner))) =
        err
    else {
        return false;
    };
    match inner.as_ref() {
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| code == "42P05" || code == "26000"),
        _ => false,
    }
}

/// A statement sqlx sent itself failed: as sea-orm reports a query's
/// failure, so the rest of storage reads it the same.
pub(crate) fn from_sqlx(err: sqlx::Error) -> DbErr {
    DbErr::Query(RuntimeErr::SqlxError(Arc::new(err)))
}

/// The database a URL names, when the service speaks it.
pub(super) fn backend_of(url: &str) -> Option<DbBackend> {
    let scheme = url.split_once(':')?.0;
    match scheme {
        "sqlite" => Some(DbBackend::Sqlite),
        "postgres" | "postgresql" => Some(DbBackend::Postgres),
        _ => None,
    }
}

/// Connection options no pooler refuses: sqlx asks for
/// `extra_float_digits=2` at startup, a parameter pgbouncer rejects
/// ("unsupported startup parameter") unless told to ignore it. The service
/// reads no floating-point column, and PostgreSQL 12 and later print floats
/// exactly by default. The application name shows in `pg_stat_activity`
/// and the pooler's `SHOW CLIENTS`.
pub(super) fn pooler_safe(
    options: sea_orm::sqlx::postgres::PgConnectOptions,
) -> sea_orm::sqlx::postgres::PgConnectOptions {
    options
        .extra_float_digits(None)
        .application_name(env!("CARGO_PKG_NAME"))
}

/// `scheme://user:password@host/…?password=…` with the password masked.
pub fn mask_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (rest, query) = rest
        .split_once('?')
        .map_or((rest, None), |(r, q)| (r, Some(q)));
    let rest = match rest.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => rest.to_owned(),
        },
        None => rest.to_owned(),
    };
    let Some(query) = query else {
        return format!("{scheme}://{rest}");
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{scheme}://{rest}?{}", query.join("&"))
}

/// `text` with every appearance of `url`'s password (as written, and
/// percent-decoded) masked: for errors from drivers that quote the URL.
pub fn redact(text: &str, url: &str) -> String {
    let mut text = text.replace(url, &mask_url(url));
    for password in passwords(url) {
        if !password.is_empty() {
            text = text.replace(&password, "***");
        }
    }
    text
}

/// The passwords written in `url`: in its user information and in a
/// `password=` query parameter, each as written and percent-decoded.
fn passwords(url: &str) -> Vec<String> {
    let Some((_, rest)) = url.split_once("://") else {
        return Vec::new();
    };
    let (rest, query) = rest.split_once('?').map_or((rest, ""), |(r, q)| (r, q));
    let mut found = Vec::new();
    if let Some((userinfo, _)) = rest.rsplit_once('@')
        && let Some((_, password)) = userinfo.split_once(':')
    {
        found.push(password.to_owned());
    }
    for pair in query.split('&') {
        if let Some((key, value)) = pair.split_once('=')
            && key.eq_ignore_ascii_case("password")
        {
            found.push(value.to_owned());
        }
    }
    let decoded: Vec<String> = found
        .iter()
        .filter_map(|p| percent_decode(p))
        .filter(|d| !found.contains(d))
        .collect();
    found.extend(decoded);
    found
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked_wherever_they_are_written() {
        assert_eq!(
            mask_url("mysql://u:S3cretPW@db:3306/x"),
            "mysql://u:***@db:3306/x"
        );
        assert_eq!(
            mask_url("postgres://u@db/x?sslmode=require&password=S3cret"),
            "postgres://u@db/x?sslmode=require&password=***"
        );
        let url = "postgres://u:p%40ss@db/x";
        assert_eq!(
            redact(&format!("bad {url}; password p@ss or p%40ss"), url),
            "bad postgres://u:***@db/x; password *** or ***"
        );
        assert_eq!(mask_url("sqlite://file.db"), "sqlite://file.db");
    }

    #[test]
    fn only_sqlite_and_postgres_urls_are_spoken() {
        assert_eq!(backend_of("sqlite://x.db"), Some(DbBackend::Sqlite));
        assert_eq!(backend_of("postgresql://h/d"), Some(DbBackend::Postgres));
        assert_eq!(backend_of("mysql://u:p@h/d"), None);
        assert_eq!(backend_of("no scheme"), None);
    }
}

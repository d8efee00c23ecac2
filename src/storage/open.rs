//! Opening the database: the health check's connection first, then the
//! pool with the settings each backend needs.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DbErr,
    sqlx::{
        self,
        postgres::PgConnectOptions,
        sqlite::{SqliteJournalMode, SqliteSynchronous},
    },
};

use super::{
    availability::Availability,
    connection::{Pooler, mask_url, pooler_safe, redact},
    health::Probe,
    observe::Server,
};

/// How long a SQLite writer waits for the write lock before giving up.
/// Concurrent creates queue on it (SQLite has one writer at a time).
pub(super) const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a pooled connection may sit idle before it is pinged on
/// checkout.
pub(super) const IDLE_BEFORE_PING: Duration = Duration::from_secs(10);

/// How long connecting may take, at start and when the pool opens one.
pub(super) const CONNECT_LIMIT: Duration = Duration::from_secs(5);

/// Whether a SQLite connection is outside any transaction, both as sqlx
/// counts (its nesting depth) and as SQLite says (autocommit mode). After
/// SQLITE_FULL SQLite rolls back by itself, the driver's COMMIT or
/// ROLLBACK then fails and its depth stays 1: its next "transaction" would
/// be a SAVEPOINT inside nothing, and what it "commits" could be lost, or a
/// transaction left open would hold the write lock ("database is locked").
pub(super) async fn sqlite_connection_is_clean(conn: &mut sqlx::SqliteConnection) -> bool {
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

/// The PostgreSQL server `url` names, and the health check's connection
/// to it, opened now: a database that cannot be reached is reported with
/// the reason (refused, authentication, TLS), not as a pool timeout.
pub(super) async fn open_probe(url: &str) -> Result<(Server, Arc<Probe>), DbErr> {
    let options = url
        .parse::<PgConnectOptions>()
        .map_err(|err| DbErr::Custom(redact(&err.to_string(), url)))?;
    let server = Server {
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
    Ok((server, probe))
}

/// The pool's options: SQLite files created when missing, in WAL mode with
/// a busy timeout; PostgreSQL statements as `pooler` needs; connections
/// from before an outage (as `availability` tells) replaced.
pub(super) fn pool_options(
    url: &str,
    pool_size: u32,
    pooler: Pooler,
    availability: &Availability,
) -> ConnectOptions {
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
    postgres_session_hooks(&mut options, pooler);
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
    options
}

/// What PostgreSQL's pool does with a connection it opens or gets back.
fn postgres_session_hooks(options: &mut ConnectOptions, pooler: Pooler) {
    // A call dropped at its deadline in the middle of a statement drops
    // its transaction while the statement still holds the connection, and
    // the rollback may not be queued: such a connection (still in a
    // transaction, possibly an aborted one) is closed, never handed to the
    // next call.
    //
    // PostgreSQL's JIT compiles a plan whose estimated cost passes
    // `jit_above_cost`: 20 to 36 ms on each of the first executions of a
    // List page on every connection (BENCHMARKS.md, "Growth"), for
    // statements that run in milliseconds. The service runs only short
    // statements, so its sessions run without JIT; not behind a transaction
    // pooler, where a session's setting would stay on whichever server
    // connection ran it (and pgbouncer refuses it at startup).
    let sessions_are_ours = pooler != Pooler::Transaction;
    options.map_sqlx_postgres_pool_opts(move |pool| {
        let pool = pool.after_release(|conn, _| {
            Box::pin(async move {
                let clean = !sqlx::Connection::is_in_transaction(conn);
                if !clean {
                    tracing::warn!("closing a PostgreSQL connection left inside a transaction");
                }
                Ok(clean)
            })
        });
        if !sessions_are_ours {
            return pool;
        }
        pool.after_connect(|conn, _| {
            Box::pin(async move {
                sqlx::Executor::execute(conn, "SET jit = off")
                    .await
                    .map(|_| ())
            })
        })
    });
}

/// Opens the pool; a failure says what the probe last saw.
pub(super) async fn open_pool(
    options: ConnectOptions,
    url: &str,
    probe: Option<&Probe>,
) -> Result<DatabaseConnection, DbErr> {
    Database::connect(options).await.map_err(|err| {
        let mut message = redact(&err.to_string(), url);
        if let Some(failure) = probe.and_then(Probe::last_failure) {
            message.push_str(&format!(" (the last connection attempt: {failure})"));
        }
        DbErr::Custom(message)
    })
}

#[cfg(test)]
pub(super) mod tests {
    use std::time::Duration;

    use sea_orm::sqlx::{Executor, postgres::PgPool};

    use super::*;

    /// `TEST_DATABASE_URL`; `None` (skip) when it is not set, unless
    /// `REQUIRE_TEST_DATABASE` is.
    pub(in crate::storage) fn test_database_url() -> Option<String> {
        let url = std::env::var("TEST_DATABASE_URL").ok();
        assert!(
            url.is_some() || std::env::var_os("REQUIRE_TEST_DATABASE").is_none(),
            "REQUIRE_TEST_DATABASE is set but TEST_DATABASE_URL is not"
        );
        url
    }

    /// Whether every connection the pool has is back in it, idle, within
    /// `limit`.
    async fn all_back(pool: &PgPool, limit: Duration) -> bool {
        let until = Instant::now() + limit;
        while Instant::now() < until {
            if pool.num_idle() == pool.size() as usize {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    /// A call cut in the middle of a statement drops its connection with
    /// the statement's answer still to come. The pool pings it on release;
    /// when the answer is an error the connection is closed there, and the
    /// close must end. sqlx 0.9.0's TLS close waited for the server to
    /// speak (it never does): the connection stayed counted in the pool
    /// and never came back, one slot lost for good per such call, until
    /// no call got a connection (tests/row_locks.rs starved one call in
    /// three). The machine's PostgreSQL speaks TLS, which this needs.
    #[tokio::test]
    async fn a_connection_cut_mid_statement_does_not_take_a_pool_slot_for_good() {
        let Some(url) = test_database_url() else {
            return;
        };
        let options = pool_options(&url, 2, Pooler::None, &Availability::default());
        let pool = open_pool(options, &url, None).await.unwrap();
        let pool = pool.get_postgres_connection_pool();
        for _ in 0..3 {
            let mut conn = pool.acquire().await.unwrap();
            let tls: Option<bool> =
                sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                    .fetch_one(&mut *conn)
                    .await
                    .unwrap();
            eprintln!("TLS to PostgreSQL: {tls:?}");
            // Fails after 300 ms (void as text is '', not a number); cut
            // after 50 ms, before its error comes back.
            let cut = tokio::time::timeout(
                Duration::from_millis(50),
                conn.execute("SELECT pg_sleep(0.3)::text::int"),
            )
            .await;
            assert!(cut.is_err(), "the statement was cut");
            drop(conn);
            assert!(
                all_back(pool, Duration::from_secs(3)).await,
                "a connection never came back: {} in the pool, {} idle",
                pool.size(),
                pool.num_idle()
            );
        }
        // The pool's two connections, both at once.
        let both = async { (pool.acquire().await, pool.acquire().await) };
        let (a, b) = tokio::time::timeout(Duration::from_secs(5), both)
            .await
            .expect("both slots are there");
        a.unwrap();
        b.unwrap();
    }
}

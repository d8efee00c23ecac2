//! Whether a transaction-mode pooler sits in front of PostgreSQL that
//! `DATABASE_POOLER` does not name.

use std::{
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use sea_orm::sqlx::{self, postgres::PgConnection};

use super::{
    connection::{Db, Pooler, redact},
    health::{PROBE_LIMIT, Probe},
    open::CONNECT_LIMIT,
};

/// How often the health monitor looks again for a transaction pooler the
/// settings do not name, while none was found.
pub(super) const POOLER_RECHECK: Duration = Duration::from_secs(30);

/// How soon after one look a failing call may have the pooler looked at
/// again.
pub(super) const POOLER_RECHECK_ON_FAILURE: Duration = Duration::from_secs(5);

/// A transaction-mode pooler in front of PostgreSQL with
/// `DATABASE_POOLER` saying otherwise (see `Storage::check_pooler`).
#[derive(Debug, Default)]
pub(super) struct PoolerCheck {
    /// The diagnosis while the mismatch is seen.
    pub(super) mismatch: std::sync::Mutex<Option<String>>,
    /// When the pooler was last looked at.
    pub(super) last: std::sync::Mutex<Option<Instant>>,
    /// One look at a time.
    pub(super) running: tokio::sync::Mutex<()>,
    /// Whether the last look got no answer (no pool connection free, the
    /// health check's connection did not open, the statements failed or
    /// took too long): the next is due sooner.
    pub(super) unanswered: std::sync::atomic::AtomicBool,
}

impl PoolerCheck {
    /// Looks for a transaction-mode pooler between the service and
    /// PostgreSQL (`shares_server_connections`, over the health check's
    /// connection and one of the pool's) and compares it with
    /// `DATABASE_POOLER`:
    /// - `none` or `session` behind one: sqlx's named statements clash
    ///   there ("prepared statement … already exists"). Logged as an error
    ///   naming the setting, and `mismatch` holds the diagnosis
    ///   (readiness NOT_SERVING) until a later look finds it fixed;
    /// - `transaction` with none seen (`at_start` only): a warning, as a
    ///   busy pooler may hide itself; the service works, paying three
    ///   round trips a statement it may not need.
    ///
    /// At start it waits for a pool connection; later it only takes an
    /// idle one (a busy pool is no reason to queue). SQLite: nothing to do.
    pub(super) async fn look(&self, db: &Db, probe: &Probe, at_start: bool) -> Option<String> {
        let check = self;
        let _turn = check.running.lock().await;
        *check.last.lock().expect("not poisoned") = Some(Instant::now());
        let pool = db.pool().get_postgres_connection_pool();
        let pooled = if at_start {
            tokio::time::timeout(CONNECT_LIMIT, pool.acquire())
                .await
                .ok()
                .and_then(Result::ok)
        } else {
            pool.try_acquire()
        };
        let Some(mut pooled) = pooled else {
            return self.unanswered();
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
                return self.unanswered();
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
                    return self.unanswered();
                }
            }
        };
        self.unanswered.store(false, Ordering::Relaxed);
        let configured = db.pooler();
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

    /// What `look` last found wrong with `DATABASE_POOLER`, while it
    /// stays so.
    pub(super) fn mismatch(&self) -> Option<String> {
        self.mismatch.lock().expect("not poisoned").clone()
    }

    /// A look that got no answer: what is known stays, and the next look
    /// is due `POOLER_RECHECK_ON_FAILURE` on.
    fn unanswered(&self) -> Option<String> {
        self.unanswered.store(true, Ordering::Relaxed);
        self.mismatch()
    }

    /// Whether the pooler is due another look: `DATABASE_POOLER` is not
    /// `transaction` (only that mismatch breaks calls) and the last look
    /// is older than `gap`, or than `POOLER_RECHECK_ON_FAILURE` when it got
    /// no answer (no wait while a mismatch is known).
    pub(super) fn due(&self, pooler: Pooler, gap: Duration) -> bool {
        if pooler == Pooler::Transaction {
            return false;
        }
        if self.mismatch().is_some() {
            return true;
        }
        let gap = if self.unanswered.load(Ordering::Relaxed) {
            gap.min(POOLER_RECHECK_ON_FAILURE)
        } else {
            gap
        };
        self.last
            .lock()
            .expect("not poisoned")
            .is_none_or(|last| last.elapsed() >= gap)
    }
}

/// Whether the server connections behind two client connections are shared
/// between them, as a transaction-mode (or statement-mode) pooler shares
/// them. Each asks `pg_backend_pid()`, in simple-protocol statements
/// (nothing a pooler can split or a prepared statement can clash on):
/// twice each in turn, each in a transaction of its own; then `a` holds a
/// transaction open while `b` asks, ends it, and `b` asks again. Without a
/// pooler, or behind one in session mode, each client connection keeps
/// one server process: `a`'s answers are all one pid, `b`'s all another.
/// Behind a transaction pooler `b`'s last statement is handed the server
/// connection `a` just freed (pgbouncer hands out the most recently used
/// one), or another client's statements move them around: a pid changes,
/// or both see one. `false` is no proof of no such pooler (one that hands
/// out its server connections in turn may by chance give each client the
/// same one every time). A pooler with a single server connection blocks
/// `b` while `a` holds it: the caller's timeout ends that.
async fn shares_server_connections(
    a: &mut PgConnection,
    b: &mut PgConnection,
) -> Result<bool, sqlx::Error> {
    let (mut seen_a, mut seen_b) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        seen_a.push(backend_pid(&mut *a).await?);
        seen_b.push(backend_pid(&mut *b).await?);
    }
    sqlx::raw_sql("BEGIN").execute(&mut *a).await?;
    seen_a.push(backend_pid(&mut *a).await?);
    seen_b.push(backend_pid(&mut *b).await?);
    sqlx::raw_sql("COMMIT").execute(&mut *a).await?;
    seen_b.push(backend_pid(&mut *b).await?);
    seen_a.push(backend_pid(&mut *a).await?);
    tracing::debug!(?seen_a, ?seen_b, "server processes behind two connections");
    Ok(seen_pids_share(&seen_a, &seen_b))
}

/// See `shares_server_connections`.
fn seen_pids_share(a: &[i32], b: &[i32]) -> bool {
    let moved = |pids: &[i32]| pids.windows(2).any(|w| w[0] != w[1]);
    moved(a) || moved(b) || a.iter().any(|pid| b.contains(pid))
}

async fn backend_pid(conn: &mut PgConnection) -> Result<i32, sqlx::Error> {
    use sqlx::Row;
    sqlx::raw_sql("SELECT pg_backend_pid()")
        .fetch_one(conn)
        .await?
        .try_get(0)
}

/// What the service says when it finds `configured` wrong: server
/// connections are shared between transactions.
fn transaction_pooler_mismatch(configured: Pooler) -> String {
    format!(
        "DATABASE_POOLER={} but the database is reached through a transaction-mode pooler \
         (two client connections were served by one server connection); set \
         DATABASE_POOLER=transaction, or the pooler's pool_mode to session",
        configured.name()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_look_that_got_no_answer_is_due_again_sooner() {
        let check = PoolerCheck::default();
        *check.last.lock().unwrap() = Instant::now().checked_sub(Duration::from_secs(6));
        assert!(!check.due(Pooler::None, POOLER_RECHECK), "answered 6 s ago");
        assert!(check.unanswered().is_none());
        assert!(
            check.due(Pooler::None, POOLER_RECHECK),
            "unanswered 6 s ago"
        );
        assert!(!check.due(Pooler::Transaction, POOLER_RECHECK));
        *check.last.lock().unwrap() = Some(Instant::now());
        assert!(
            !check.due(Pooler::None, POOLER_RECHECK),
            "unanswered just now"
        );
    }

    #[test]
    fn shared_server_connections_are_told_from_kept_ones() {
        // No pooler, or a session pooler: each keeps its own.
        assert!(!seen_pids_share(&[7, 7, 7], &[9, 9, 9]));
        // A transaction pooler handing the same one to both, or moving one.
        assert!(seen_pids_share(&[7, 7, 7], &[7, 7, 7]));
        assert!(seen_pids_share(&[7, 8, 7], &[9, 9, 9]));
        assert!(seen_pids_share(&[7, 7, 7], &[9, 9, 7]));
        assert!(transaction_pooler_mismatch(Pooler::None).starts_with(
            "DATABASE_POOLER=none but the database is reached through a transaction-mode pooler"
        ));
    }
}

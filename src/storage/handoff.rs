//! PostgreSQL connections passed from one create to the next.
//!
//! sqlx pings every connection given back to its pool (a Sync, answered by
//! ReadyForQuery: a round trip and a wake of the server's backend) before
//! anyone may take it again. Under a steady load of creates that is one
//! more round trip per create, for a connection whose statement has just
//! come back whole. So a create's connection, when its statement came back
//! (rows or an error of the database's), goes straight to the next create
//! waiting for one, unpinged, but only while no other work is waiting on
//! the pool or running on it: other calls' statements keep their place in
//! the pool's queue, and a create never overtakes them. With no create
//! waiting, the connection goes back to the pool as before.
//!
//! What the pool checks holds for a handed connection too: one the pool
//! gave out before the service last distrusted its connections (a call met
//! the database away, `Availability::distrust_connections`) goes back to
//! the pool, whose check replaces it, never to the next create; and one
//! handed from create to create for `HANDED_AT_MOST` goes back through the
//! pool, meeting its release and acquire checks (its lifetime among them).

use std::{
    collections::VecDeque,
    ops::{Deref, DerefMut},
    sync::{
        Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use sea_orm::sqlx::{self, PgConnection, Pool, Postgres, pool::PoolConnection};
use tokio::sync::oneshot;

use super::availability::Availability;

type Waiting = oneshot::Sender<CreateConnection>;

/// The longest a connection goes from create to create without passing
/// through the pool.
const HANDED_AT_MOST: Duration = Duration::from_secs(10);

/// A create's connection, with when the pool last checked it.
#[derive(Debug)]
pub(crate) struct CreateConnection {
    conn: PoolConnection<Postgres>,
    /// When the pool gave it out, having checked it (its `before_acquire`
    /// trusts only connections opened since the last distrust).
    vetted: Instant,
}

impl CreateConnection {
    /// `conn`, just given out (and so checked) by the pool.
    pub(super) fn vetted_now(conn: PoolConnection<Postgres>) -> Self {
        Self {
            conn,
            vetted: Instant::now(),
        }
    }
}

impl Deref for CreateConnection {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        &self.conn
    }
}

impl DerefMut for CreateConnection {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.conn
    }
}

/// The creates waiting for a connection, and how much other work is.
#[derive(Debug)]
pub(crate) struct Handoff {
    waiting: Mutex<VecDeque<Waiting>>,
    /// Statements of other work waiting on the pool or running on it.
    others: AtomicUsize,
    /// Which connections the service still trusts.
    availability: Availability,
}

/// Counts one statement of other work while it lives.
pub(crate) struct OtherWork<'a>(&'a Handoff);

impl Drop for OtherWork<'_> {
    fn drop(&mut self) {
        self.0.others.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Handoff {
    pub(crate) fn new(availability: Availability) -> Self {
        Self {
            waiting: Mutex::default(),
            others: AtomicUsize::new(0),
            availability,
        }
    }

    /// A statement of work other than a create, from now until the guard
    /// is dropped: while one is, creates give their connections back to
    /// the pool.
    pub(crate) fn other_work(&self) -> OtherWork<'_> {
        self.others.fetch_add(1, Ordering::AcqRel);
        OtherWork(self)
    }

    /// A connection for a create: the first to come of one handed over by
    /// a create that ended and one of the pool's, checked by it (never
    /// `try_acquire`, which skips the pool's checks).
    pub(crate) async fn take(
        &self,
        pool: &Pool<Postgres>,
    ) -> Result<CreateConnection, sqlx::Error> {
        let (handed, received) = oneshot::channel();
        {
            let mut waiting = self.waiting.lock().expect("not poisoned");
            // Creates that got theirs from the pool, or were dropped.
            waiting.retain(|w| !w.is_closed());
            waiting.push_back(handed);
        }
        tokio::select! {
            biased;
            Ok(conn) = received => Ok(conn),
            // Boxed: sqlx's acquire (which may open a connection) is a
            // 13 KB future, which would make every create's as large.
            pooled = Box::pin(pool.acquire()) => pooled.map(CreateConnection::vetted_now),
        }
    }

    /// `conn`, whose statement came back whole, to the next create waiting,
    /// or back to the pool (pinged there) when none is, other work is
    /// waiting, or the connection is no longer trusted or was handed on
    /// for long enough.
    pub(crate) fn give(&self, mut conn: CreateConnection) {
        if self.others.load(Ordering::Acquire) > 0
            || conn.vetted.elapsed() > HANDED_AT_MOST
            || !self.availability.trusts_connection_opened(conn.vetted)
        {
            return;
        }
        loop {
            let next = self.waiting.lock().expect("not poisoned").pop_front();
            let Some(create) = next else {
                return;
            };
            match create.send(conn) {
                Ok(()) => return,
                // That create got one from the pool meanwhile.
                Err(back) => conn = back,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{sync::Arc, time::Duration};

    use sea_orm::sqlx::{Executor, postgres::PgPoolOptions};

    use super::*;

    /// A pool of one connection on `TEST_DATABASE_URL`, counting the
    /// connections given back to it; `None` (skip) when it is not set,
    /// unless `REQUIRE_TEST_DATABASE` is.
    async fn pool_of_one() -> Option<(Pool<Postgres>, Arc<AtomicUsize>)> {
        let url = super::super::open::tests::test_database_url()?;
        let returned = Arc::new(AtomicUsize::new(0));
        let counted = returned.clone();
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(5))
            .after_release(move |_, _| {
                counted.fetch_add(1, Ordering::SeqCst);
                Box::pin(async { Ok(true) })
            })
            .connect(&url)
            .await
            .unwrap();
        Some((pool, returned))
    }

    async fn backend(conn: &mut PgConnection) -> i32 {
        sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(conn)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_create_waiting_gets_the_connection_of_the_one_that_ended() {
        let Some((pool, returned)) = pool_of_one().await else {
            return;
        };
        let handoff = Arc::new(Handoff::new(Availability::default()));
        let mut first = handoff.take(&pool).await.unwrap();
        let pid = backend(&mut first).await;
        let waiter = tokio::spawn({
            let (handoff, pool) = (handoff.clone(), pool.clone());
            async move { handoff.take(&pool).await.unwrap() }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        handoff.give(first);
        let mut second = tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("handed over at once")
            .unwrap();
        // The same backend, usable as it is, never given back to the pool
        // meanwhile (which would have pinged it first).
        assert_eq!(backend(&mut second).await, pid);
        assert_eq!(returned.load(Ordering::SeqCst), 0);
        (&mut *second).execute("SELECT 1").await.unwrap();
        // With no create waiting, back to the pool.
        handoff.give(second);
        let mut third = pool.acquire().await.unwrap();
        assert_eq!(returned.load(Ordering::SeqCst), 1);
        assert_eq!(backend(&mut third).await, pid);
    }

    #[tokio::test]
    async fn a_connection_distrusted_since_it_was_vetted_goes_back_to_the_pool() {
        let Some((pool, returned)) = pool_of_one().await else {
            return;
        };
        let availability = Availability::default();
        let handoff = Arc::new(Handoff::new(availability.clone()));
        let first = handoff.take(&pool).await.unwrap();
        let waiter = tokio::spawn({
            let (handoff, pool) = (handoff.clone(), pool.clone());
            async move { handoff.take(&pool).await.unwrap() }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        // A call met the database away meanwhile.
        availability.distrust_connections();
        handoff.give(first);
        let _second = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("served by the pool")
            .unwrap();
        assert_eq!(returned.load(Ordering::SeqCst), 1, "went through the pool");
    }

    #[tokio::test]
    async fn other_work_is_not_overtaken_by_a_stream_of_creates() {
        let Some((pool, _)) = pool_of_one().await else {
            return;
        };
        let handoff = Arc::new(Handoff::new(Availability::default()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut creates = Vec::new();
        for _ in 0..4 {
            let (handoff, pool, stop) = (handoff.clone(), pool.clone(), stop.clone());
            creates.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let mut conn = handoff.take(&pool).await.unwrap();
                    (&mut *conn)
                        .execute("SELECT pg_sleep(0.005)")
                        .await
                        .unwrap();
                    handoff.give(conn);
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        // A read, as `Db` runs one: counted while it waits.
        let read = async {
            let _waiting = handoff.other_work();
            let mut conn = pool.acquire().await.unwrap();
            conn.execute("SELECT 1").await.unwrap();
        };
        let served = tokio::time::timeout(Duration::from_secs(1), read).await;
        stop.store(true, Ordering::Relaxed);
        for create in creates {
            create.await.unwrap();
        }
        served.expect("the read got a connection while creates kept coming");
    }
}

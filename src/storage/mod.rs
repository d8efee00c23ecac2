//! The database: connection, migrations, entities and the queries the
//! service runs. Speaks domain types; knows nothing of status codes.

mod admin;
mod availability;
mod callers;
mod change;
mod connection;
mod create;
pub mod deadline;
mod directory;
pub mod entities;
mod errors;
mod event_changes;
mod events;
mod handoff;
mod health;
mod idempotency;
mod listing;
mod members;
pub mod migrations;
mod observe;
mod open;
mod pooler_check;
mod statistics;
mod tokens;
mod views;
mod visibility;
mod workspace_changes;
mod writer;

use std::{sync::Arc, time::Duration};

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr};
use sea_orm_migration::MigratorTrait;

use connection::Db;
use health::{PROBE_LIMIT, Probe};
use observe::Server;
use pooler_check::{POOLER_RECHECK, POOLER_RECHECK_ON_FAILURE, PoolerCheck};

pub use admin::NewApiToken;
pub use availability::Availability;
pub use callers::{CallerOrganizations, OrganizationContext};
pub use change::Changed;
pub use connection::{Pooler, mask_url, redact};
pub use create::{CreateOutcome, EarlierCreate, IdempotencyKey, NewWorkspace, Recheck};
pub use deadline::Writes;
use errors::violates_unique;
pub use event_changes::EVENTS_CHANGED_BEFORE_ANALYZE;
pub use events::{Backlog, PendingEvent, RelayRound, UnreadableEvent, all_events};
pub use listing::first_sql;
pub use members::{MemberChange, OwnersProtected};
pub use observe::PoolStats;
pub use statistics::STATISTICS_EVERY;
pub use visibility::WorkspaceAccess;

/// SQLite's turn to write (`Storage::write_turn`).
pub(crate) type WriteTurn = tokio::sync::OwnedMutexGuard<writer::Writer>;

/// The PostgreSQL advisory lock key that serializes migrations
/// ("wsmigrat" in ASCII).
const MIGRATION_LOCK: i64 = 0x7773_6d69_6772_6174;

/// The service's database: SQLite (embedded default) or PostgreSQL.
#[derive(Clone, Debug)]
pub struct Storage {
    db: Db,
    /// PostgreSQL's health check: a connection of its own, outside the pool.
    probe: Option<Arc<Probe>>,
    availability: Availability,
    /// Where the database is, for the spans' attributes.
    server: Arc<Server>,
    /// SQLite's writers take turns here (`write_turn`); it keeps the
    /// creates' connection.
    writer: Arc<tokio::sync::Mutex<writer::Writer>>,
    /// What the last look at the pooler in front of PostgreSQL found.
    pooler_check: Arc<PoolerCheck>,
    /// CreateWorkspace's API-token callers, kept for a while.
    callers: Arc<callers::Callers>,
    /// Events marked sent or deleted since their table was analyzed.
    event_changes: Arc<event_changes::EventChanges>,
}

impl Storage {
    /// Connects to `url` (`sqlite://…` or `postgres://…`) directly, with
    /// no pooler in between.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, DbErr> {
        Self::connect_through(url, max_connections, Pooler::None).await
    }

    /// A SQLite file of its own in a temporary directory (unit tests): the
    /// storage, and the directory that must outlive it.
    #[cfg(test)]
    pub(crate) async fn temporary(max_connections: u32) -> (Self, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("unit.db").display());
        let storage = Self::connect(&url, max_connections).await.unwrap();
        (storage, dir)
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
        let (server, probe) = match backend {
            DbBackend::Postgres => {
                let (server, probe) = open::open_probe(url).await?;
                (server, Some(probe))
            }
            _ => (Server::default(), None),
        };
        // The health check's connection (PostgreSQL) and the creates'
        // (SQLite, `writer::Writer`) count toward the maximum.
        let pool_size = if probe.is_some() || backend == DbBackend::Sqlite {
            max_connections.saturating_sub(1).max(1)
        } else {
            max_connections
        };
        let availability = Availability::default();
        let options = open::pool_options(url, pool_size, pooler, &availability);
        let pool = open::open_pool(options, url, probe.as_deref()).await?;
        Ok(Self {
            db: Db::new(pool, pooler, availability.clone()),
            probe,
            availability,
            server: Arc::new(server),
            writer: Arc::default(),
            pooler_check: Arc::default(),
            callers: Arc::default(),
            event_changes: Arc::default(),
        })
    }

    /// Looks for a transaction-mode pooler between the service and
    /// PostgreSQL and compares it with `DATABASE_POOLER`
    /// (`PoolerCheck::look`). SQLite: nothing to do.
    pub async fn check_pooler(&self, at_start: bool) -> Option<String> {
        let probe = self.probe.as_ref()?;
        self.pooler_check.look(&self.db, probe, at_start).await
    }

    /// What `check_pooler` last found wrong with `DATABASE_POOLER`, while
    /// it stays so.
    pub fn pooler_mismatch(&self) -> Option<String> {
        self.pooler_check.mismatch()
    }

    /// Whether the pooler is due another look (`PoolerCheck::due`).
    fn pooler_check_due(&self, gap: Duration) -> bool {
        self.probe.is_some() && self.pooler_check.due(self.db.pooler(), gap)
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
    pub(super) async fn write_turn(&self) -> Option<WriteTurn> {
        if self.db.get_database_backend() != DbBackend::Sqlite {
            return None;
        }
        Some(self.writer.clone().lock_owned().await)
    }

    /// Brings the schema up to date. On PostgreSQL, replicas that start
    /// together queue on an advisory lock: one migrates, inside one
    /// transaction, and the others then find nothing left to do. (SQLite
    /// has one process per file; its statistics are brought up to date
    /// after, `keep_statistics`.)
    pub async fn migrate(&self) -> Result<(), DbErr> {
        if self.db.get_database_backend() != DbBackend::Postgres {
            migrations::Migrator::up(self.db.pool(), None).await?;
            return self.keep_statistics().await;
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
        let answers = probe.answers().await;
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
        if let Some(probe) = &self.probe {
            probe.close().await;
        }
        self.writer.lock().await.close().await;
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
        observe::pool_stats(&self.db)
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

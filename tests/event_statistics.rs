//! The events table's planner statistics follow the outbox: once enough
//! events were marked sent or deleted, the service analyzes the table
//! (`Storage::keep_event_statistics`). Without it PostgreSQL, planning
//! with statistics from when every event was unsent, found the waiting
//! organizations through the full index and drained a 1M backlog ever
//! slower (BENCHMARKS.md, "Relay": 9,340 to 722 events/s).

mod common;

use common::{Backend, FreshPostgres};
use sea_orm::{ConnectionTrait, DbBackend, EntityTrait, QuerySelect, Statement};
use uuid::Uuid;
use workspace_service::storage::{EVENTS_CHANGED_BEFORE_ANALYZE, Storage, entities::event};

on_both_databases!(
    deleting_enough_events_has_their_table_analyzed,
    marking_enough_events_sent_has_their_table_analyzed
);

/// `count` events that happened long ago, written by SQL: sent then too
/// (`sent`), or unsent.
fn old_events(backend: DbBackend, count: u64, sent: bool) -> String {
    let (id, org, at, series) = match backend {
        DbBackend::Postgres => (
            "gen_random_uuid()",
            "'00000000-0000-4000-8000-000000000001'::uuid",
            "timestamptz '2020-01-01 00:00:00+00'",
            format!("generate_series(1, {count}) AS s(n)"),
        ),
        _ => (
            "randomblob(16)",
            "x'00000000000040008000000000000001'",
            "'2020-01-01T00:00:00.000000+00:00'",
            format!(
                "(WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {count}) SELECT n FROM s) AS s"
            ),
        ),
    };
    let sent_at = if sent { at } else { "NULL" };
    format!(
        "INSERT INTO events (id, organization_id, sequence, workspace_id, event_type, payload, \
         occurred_at, sent_at) SELECT {id}, {org}, s.n, {org}, 'workspace.updated', x'00', {at}, {sent_at} \
         FROM {series}"
    )
    .replace("x'00'", if backend == DbBackend::Postgres { "'\\x00'::bytea" } else { "x'00'" })
}

/// Whether the events table has been analyzed: PostgreSQL's
/// `last_analyze` (a manual ANALYZE only, not autovacuum's), SQLite's
/// `sqlite_stat1` rows for it.
async fn analyzed(storage: &Storage) -> bool {
    let db = storage.connection();
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "SELECT count(*) AS n FROM pg_stat_user_tables WHERE relname = 'events' AND last_analyze IS NOT NULL"
        }
        _ => "SELECT count(*) AS n FROM sqlite_stat1 WHERE tbl = 'events'",
    };
    let row = db
        .query_one_raw(Statement::from_string(backend, sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap() > 0
}

/// What keeps a test's database: dropped, it goes.
type Kept = (Option<FreshPostgres>, Option<tempfile::TempDir>);

/// A migrated database of its own on `backend`, and what keeps it.
async fn fresh_storage(backend: Backend) -> Option<(Storage, Kept)> {
    let (postgres, dir, url) = match backend {
        Backend::Postgres => {
            let postgres = FreshPostgres::create().await?;
            let url = postgres.url.clone();
            (Some(postgres), None, url)
        }
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}", dir.path().join("stats.db").display());
            (None, Some(dir), url)
        }
    };
    let storage = Storage::connect(&url, 4).await.unwrap();
    storage.migrate().await.unwrap();
    Some((storage, (postgres, dir)))
}

async fn deleting_enough_events_has_their_table_analyzed(backend: Backend) {
    let Some((storage, _kept)) = fresh_storage(backend).await else {
        return;
    };
    let db = storage.connection();
    let backend = db.get_database_backend();
    let half = EVENTS_CHANGED_BEFORE_ANALYZE / 2 + 1;
    db.execute_unprepared(&old_events(backend, 2 * half, true))
        .await
        .unwrap();
    assert!(!analyzed(&storage).await, "not analyzed before");
    let now = chrono::Utc::now();

    // Half the threshold deleted: not yet.
    assert_eq!(storage.purge_sent_events(now, half).await.unwrap(), half);
    assert!(!storage.keep_event_statistics().await.unwrap());
    assert!(!analyzed(&storage).await);

    // The rest: analyzed, once.
    assert_eq!(storage.purge_sent_events(now, half).await.unwrap(), half);
    assert!(storage.keep_event_statistics().await.unwrap());
    assert!(analyzed(&storage).await, "analyzed once enough changed");
    assert!(
        !storage.keep_event_statistics().await.unwrap(),
        "counting again"
    );
}

async fn marking_enough_events_sent_has_their_table_analyzed(backend: Backend) {
    let Some((storage, _kept)) = fresh_storage(backend).await else {
        return;
    };
    let db = storage.connection();
    let backend = db.get_database_backend();
    db.execute_unprepared(&old_events(backend, EVENTS_CHANGED_BEFORE_ANALYZE, false))
        .await
        .unwrap();
    let ids: Vec<Uuid> = event::Entity::find()
        .select_only()
        .column(event::Column::Id)
        .into_tuple()
        .all(db)
        .await
        .unwrap();
    // Marked sent as the relay does, a batch of 1,000 a round.
    let (most, last) = ids.split_at(ids.len() - 1_000);
    for batch in most.chunks(1_000) {
        let round = storage.begin_relay().await.unwrap().unwrap();
        storage.mark_sent(&round, batch.to_vec()).await.unwrap();
        round.finish().await.unwrap();
    }
    assert!(!storage.keep_event_statistics().await.unwrap());
    assert!(!analyzed(&storage).await, "not yet");
    let round = storage.begin_relay().await.unwrap().unwrap();
    storage.mark_sent(&round, last.to_vec()).await.unwrap();
    round.finish().await.unwrap();
    assert!(storage.keep_event_statistics().await.unwrap());
    assert!(analyzed(&storage).await, "analyzed once enough were sent");
}

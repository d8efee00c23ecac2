//! The events table's planner statistics follow the outbox: once enough
//! events were marked sent or deleted, the service analyzes the table
//! (`Storage::keep_event_statistics`). Without it PostgreSQL, planning
//! with statistics from when every event was unsent, found the waiting
//! organizations through the full index and drained a 1M backlog ever
//! slower (BENCHMARKS.md, "Relay": 9,340 to 722 events/s).

mod common;

use common::{Backend, FreshPostgres};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use workspace_service::storage::{EVENTS_CHANGED_BEFORE_ANALYZE, Storage};

on_both_databases!(deleting_enough_events_has_their_table_analyzed);

/// `count` events sent long ago, written by SQL.
fn old_sent_events(backend: DbBackend, count: u64) -> String {
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
    format!(
        "INSERT INTO events (id, organization_id, sequence, workspace_id, event_type, payload, \
         occurred_at, sent_at) SELECT {id}, {org}, s.n, {org}, 'workspace.updated', x'00', {at}, {at} \
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

async fn deleting_enough_events_has_their_table_analyzed(backend: Backend) {
    let (_postgres, _dir, url) = match backend {
        Backend::Postgres => {
            let Some(postgres) = FreshPostgres::create().await else {
                return;
            };
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
    let db = storage.connection();
    let backend = db.get_database_backend();
    let half = EVENTS_CHANGED_BEFORE_ANALYZE / 2 + 1;
    db.execute_unprepared(&old_sent_events(backend, 2 * half))
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

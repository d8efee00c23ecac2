//! The purge of idempotency records past their retry window
//! (`IDEMPOTENCY_RETENTION`): every `IDEMPOTENCY_PURGE_INTERVAL`, batches
//! of at most `IDEMPOTENCY_PURGE_BATCH` records, oldest first, until a
//! batch comes back short. Each batch is one statement that takes its
//! turn like any writer, so a backlog (the first start after an upgrade,
//! a database restored from an old backup) never holds SQLite's write lock
//! for more than a batch, and creates go between two batches.
//!
//! Every replica purges; two purges at once delete a batch once between
//! them (the second finds the rows gone). Counted in
//! `workspace_service.idempotency.purged`.

use chrono::Utc;
use opentelemetry::metrics::Counter;

use crate::{config::IdempotencySettings, storage::Storage, telemetry::Metrics};

/// Runs until the task is dropped (at shutdown, with the relay).
pub(super) async fn purge_idempotency_records(
    storage: Storage,
    settings: IdempotencySettings,
    metrics: Metrics,
) {
    let purged = metrics
        .meter()
        .u64_counter("workspace_service.idempotency.purged")
        .with_unit("{record}")
        .with_description("Idempotency records deleted past IDEMPOTENCY_RETENTION.")
        .build();
    let mut every = tokio::time::interval(settings.purge_interval());
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if let Err(err) = purge_round(&storage, &settings, &purged).await {
            tracing::warn!(%err, "purging idempotency records");
        }
    }
}

/// One purge: the records made before now minus the window, a batch at a
/// time, each batch counted as it commits.
async fn purge_round(
    storage: &Storage,
    settings: &IdempotencySettings,
    purged: &Counter<u64>,
) -> Result<(), sea_orm::DbErr> {
    let before = Utc::now() - settings.retention();
    let batch = settings.purge_batch.max(1);
    loop {
        let deleted = storage.purge_idempotency_batch(before, batch).await?;
        purged.add(deleted, &[]);
        if deleted < batch {
            return Ok(());
        }
        // Whoever waits for the database goes first.
        tokio::task::yield_now().await;
    }
}

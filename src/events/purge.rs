//! Deleting old events, in batches: sent events past
//! `EVENTS_RETENTION_HOURS`, and, without `NATS_URL` (nothing publishes
//! them), unsent events past it too, counted by `events.expired`: the
//! outbox is bounded either way.

use std::time::Duration;

use chrono::Utc;
use sea_orm::DbErr;

use super::metrics::RelayMetrics;
use crate::{config::EventSettings, storage::Storage};

/// How often old events are deleted.
const PURGE_EVERY: Duration = Duration::from_secs(60);

/// Most events one statement deletes: a few milliseconds of SQLite's
/// write lock (measured 6 to 10 ms median for 100 on a loaded machine,
/// 43 ms for 500).
pub(super) const PURGE_BATCH: u64 = 100;

/// The pause between two batches, in which other writers take their turn.
const BETWEEN_BATCHES: Duration = Duration::from_millis(10);

/// What is deleted, and when.
#[derive(Debug, Clone, Copy)]
pub(super) struct Retention {
    keep: chrono::Duration,
    /// Whether unsent events expire too (no `NATS_URL`).
    unsent: bool,
}

impl Retention {
    pub(super) fn of(settings: &EventSettings) -> Self {
        Self {
            keep: chrono::Duration::hours(i64::try_from(settings.retention_hours).unwrap_or(24)),
            unsent: settings.nats_url.is_none(),
        }
    }
}

/// Purges every `PURGE_EVERY`, from the start.
pub(super) async fn purge(storage: &Storage, retention: Retention, metrics: &RelayMetrics) {
    let mut every = tokio::time::interval(PURGE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if let Err(err) = purge_once(storage, retention, metrics).await {
            tracing::warn!(%err, "purging old events");
        }
        keep_statistics(storage).await;
    }
}

/// Deletes what is past `retention`, a batch at a time.
async fn purge_once(
    storage: &Storage,
    retention: Retention,
    metrics: &RelayMetrics,
) -> Result<(), DbErr> {
    let before = Utc::now() - retention.keep;
    while storage.purge_sent_events(before, PURGE_BATCH).await? == PURGE_BATCH {
        tokio::time::sleep(BETWEEN_BATCHES).await;
    }
    if !retention.unsent {
        return Ok(());
    }
    let mut expired = 0;
    loop {
        let deleted = storage.purge_unsent_events(before, PURGE_BATCH).await?;
        metrics.expired.add(deleted, &[]);
        expired += deleted;
        if deleted < PURGE_BATCH {
            break;
        }
        tokio::time::sleep(BETWEEN_BATCHES).await;
    }
    if expired > 0 {
        tracing::warn!(
            expired,
            "events deleted unpublished: NATS_URL is unset and they are older than \
             EVENTS_RETENTION_HOURS"
        );
    }
    Ok(())
}

/// The events table's statistics brought up to date when enough events
/// were marked sent or deleted (`Storage::keep_event_statistics`): after a
/// relay round and after a purge.
pub(super) async fn keep_statistics(storage: &Storage) {
    match storage.keep_event_statistics().await {
        Ok(true) => tracing::debug!("events table analyzed"),
        Ok(false) => {}
        Err(err) => tracing::warn!(%err, "analyzing the events table"),
    }
}

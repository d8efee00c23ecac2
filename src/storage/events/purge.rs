//! Deleting old events in batches: each statement deletes at most a batch
//! through an index range, so it holds SQLite's write lock (PostgreSQL's
//! row locks) for milliseconds, and other writers take their turn between
//! batches.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement, Value};

use crate::storage::Storage;

impl Storage {
    /// Deletes at most `batch` events sent before `before` (the oldest
    /// sent first, through `ix_events_sent`); how many it deleted.
    pub async fn purge_sent_events(&self, before: DateTime<Utc>, batch: u64) -> Result<u64, DbErr> {
        self.delete_batch(
            "SELECT id FROM events WHERE sent_at < $1 ORDER BY sent_at LIMIT $2",
            before,
            batch,
        )
        .await
    }

    /// Deletes at most `batch` unsent events that happened before `before`
    /// (only when nothing publishes them: without `NATS_URL`); how many it
    /// deleted, the oldest first (through `ix_events_unsent_occurred_at`).
    pub async fn purge_unsent_events(
        &self,
        before: DateTime<Utc>,
        batch: u64,
    ) -> Result<u64, DbErr> {
        self.delete_batch(
            "SELECT id FROM events WHERE sent_at IS NULL AND occurred_at < $1 \
             ORDER BY occurred_at LIMIT $2",
            before,
            batch,
        )
        .await
    }

    /// `DELETE FROM events WHERE id IN (<chosen>)`, `chosen` taking the
    /// cut-off as `$1` and the batch as `$2`.
    async fn delete_batch(
        &self,
        chosen: &str,
        before: DateTime<Utc>,
        batch: u64,
    ) -> Result<u64, DbErr> {
        let backend = self.db.get_database_backend();
        let mut sql = format!("DELETE FROM events WHERE id IN ({chosen})");
        if backend == DbBackend::Sqlite {
            sql = sql.replace('$', "?");
        }
        let values: [Value; 2] = [
            before.into(),
            i64::try_from(batch).unwrap_or(i64::MAX).into(),
        ];
        let deleted = self
            .db
            .execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?
            .rows_affected();
        self.event_changes.add(deleted);
        Ok(deleted)
    }
}

//! SQLite's planner statistics. SQLite keeps none unless asked (ANALYZE),
//! and a planner without them may pick a worse index as tables grow; the
//! service asks at start and then every `STATISTICS_EVERY`, with
//! `PRAGMA optimize`, which analyzes only the tables whose size changed
//! enough since, each within `analysis_limit` rows of every index (so it
//! stays milliseconds at any size). PostgreSQL's autovacuum keeps its own,
//! when it runs.
//!
//! The outbox changes faster than either keeps up with: a backlog drained
//! at 10,000 events a second turns "unsent" from every row to none in
//! minutes. With statistics from when every event was unsent, PostgreSQL
//! finds the next waiting organization through the full
//! `(organization_id, sequence)` index, stepping over every sent event,
//! instead of the partial index of unsent ones: measured on 1M events
//! with autovacuum off, the drain fell from 9,340 to 722 events/s as it
//! went, and came back to 12,000/s at once after an ANALYZE. So the relay
//! counts the events it marks sent (and the purge those it deletes), and
//! after `EVENTS_CHANGED_BEFORE_ANALYZE` of them (`event_changes`) has the
//! events table analyzed (`keep_event_statistics`).

use std::time::Duration;

use sea_orm::{ConnectionTrait, DbBackend, DbErr};

use super::Storage;

/// How often the statistics are brought up to date while the service runs.
pub const STATISTICS_EVERY: Duration = Duration::from_secs(3600);

impl Storage {
    /// SQLite: `PRAGMA optimize` over every table (0x10002), each index
    /// sampled on at most 400 rows. It writes `sqlite_stat1`: the process's
    /// turn to write first. PostgreSQL: nothing.
    pub async fn keep_statistics(&self) -> Result<(), DbErr> {
        if self.db.get_database_backend() != DbBackend::Sqlite {
            return Ok(());
        }
        self.sqlite_analyze("PRAGMA optimize = 0x10002").await
    }

    /// The events table analyzed when `EVENTS_CHANGED_BEFORE_ANALYZE` of
    /// its rows were marked sent or deleted here since the last time
    /// (PostgreSQL: `ANALYZE events`; SQLite: the same within
    /// `analysis_limit`, on the process's turn to write). Whether it ran.
    pub async fn keep_event_statistics(&self) -> Result<bool, DbErr> {
        if !self.event_changes.due() {
            return Ok(false);
        }
        if self.db.get_database_backend() != DbBackend::Sqlite {
            self.db.execute_unprepared("ANALYZE events").await?;
        } else {
            self.sqlite_analyze("ANALYZE events").await?;
        }
        Ok(true)
    }

    /// SQLite: `analyze` (ANALYZE or PRAGMA optimize), each index sampled
    /// on at most 400 rows, on the process's turn to write (it writes
    /// `sqlite_stat1`).
    async fn sqlite_analyze(&self, analyze: &str) -> Result<(), DbErr> {
        let _turn = self.write_turn().await;
        let txn = self.db.begin().await?;
        txn.execute_unprepared("PRAGMA analysis_limit = 400")
            .await?;
        txn.execute_unprepared(analyze).await?;
        txn.commit().await
    }
}

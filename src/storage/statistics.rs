//! SQLite's planner statistics. SQLite keeps none unless asked (ANALYZE),
//! and a planner without them may pick a worse index as tables grow; the
//! service asks at start and then every `STATISTICS_EVERY`, with
//! `PRAGMA optimize`, which analyzes only the tables whose size changed
//! enough since, each within `analysis_limit` rows of every index (so it
//! stays milliseconds at any size). PostgreSQL's autovacuum keeps its own.

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
        let _turn = self.write_turn().await;
        let txn = self.db.begin().await?;
        txn.execute_unprepared("PRAGMA analysis_limit = 400")
            .await?;
        txn.execute_unprepared("PRAGMA optimize = 0x10002").await?;
        txn.commit().await
    }
}

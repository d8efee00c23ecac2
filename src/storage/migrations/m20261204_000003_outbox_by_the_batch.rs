//! The outbox by its partial indexes, so that what the relay and the
//! metrics read of it costs what waits, not what it holds:
//!
//! - `ix_events_sent` holds only sent events (`WHERE sent_at IS NOT
//!   NULL`), in place of `ix_events_sent_at`, which held every event: the
//!   purge's range is all it serves, and
//!   SQLite's planner chose it, with its block of unsent events, for the
//!   relay's walk over the unsent (every unsent event read and sorted for
//!   each organization that waits, each round) instead of
//!   `ix_events_unsent`.
//! - `ix_events_unsent_occurred_at`: the unsent events by when they
//!   happened (partial, like `ix_events_unsent`), so the oldest unsent
//!   event, which the `events.lag` metric reports, is one index entry
//!   whatever the outbox holds, and unsent events past their retention
//!   (without `NATS_URL`) are deleted oldest first by an index range.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Partial indexes: the same statements on PostgreSQL and SQLite.
        let db = manager.get_connection();
        db.execute_unprepared("DROP INDEX ix_events_sent_at")
            .await?;
        db.execute_unprepared(
            "CREATE INDEX ix_events_sent ON events (sent_at) WHERE sent_at IS NOT NULL",
        )
        .await?;
        db.execute_unprepared(
            "CREATE INDEX ix_events_unsent_occurred_at ON events (occurred_at) \
             WHERE sent_at IS NULL",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DROP INDEX ix_events_unsent_occurred_at")
            .await?;
        db.execute_unprepared("DROP INDEX ix_events_sent").await?;
        db.execute_unprepared("CREATE INDEX ix_events_sent_at ON events (sent_at)")
            .await?;
        Ok(())
    }
}

//! The outbox's age by an index: `ix_events_unsent_occurred_at`, the
//! unsent events by when they happened (partial, like `ix_events_unsent`:
//! sent events are not in it), so the oldest unsent event, which the
//! `events.lag` metric reports, is one index entry whatever the outbox
//! holds, and unsent events past their retention (without `NATS_URL`) are
//! deleted oldest first by an index range.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // A partial index: the same statement on PostgreSQL and SQLite.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX ix_events_unsent_occurred_at ON events (occurred_at) \
                 WHERE sent_at IS NULL",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX ix_events_unsent_occurred_at")
            .await?;
        Ok(())
    }
}

//! Parked events and the relay's fair walk of the outbox.
//!
//! - `events.parked_at`, `events.parked_reason`: an event NATS refuses for
//!   good (larger than its `max_payload`, than the stream's
//!   `max_msg_size`) is parked with the reason instead of being retried
//!   every round; `workspace-service admin events` lists, retries and
//!   drops parked events.
//! - `ix_events_unsent`: the unsent events, by organization and sequence
//!   (partial: sent events kept for `EVENTS_RETENTION_HOURS` are not in
//!   it), so each round reads a few events of each waiting organization.
//! - `ix_events_parked`: the organizations with a parked event, whose
//!   later events wait.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("events")
                    .add_column(timestamp_with_time_zone_null("parked_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("events")
                    .add_column(text_null("parked_reason"))
                    .to_owned(),
            )
            .await?;
        // Partial indexes: the same statement on PostgreSQL and SQLite.
        let db = manager.get_connection();
        db.execute_unprepared(
            "CREATE INDEX ix_events_unsent ON events (organization_id, sequence) \
             WHERE sent_at IS NULL",
        )
        .await?;
        db.execute_unprepared(
            "CREATE INDEX ix_events_parked ON events (organization_id) \
             WHERE parked_at IS NOT NULL",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DROP INDEX ix_events_parked").await?;
        db.execute_unprepared("DROP INDEX ix_events_unsent").await?;
        for column in ["parked_reason", "parked_at"] {
            manager
                .alter_table(
                    Table::alter()
                        .table("events")
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

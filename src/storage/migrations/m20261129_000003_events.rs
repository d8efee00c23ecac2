//! The transactional outbox: each change to a workspace writes its event in
//! the transaction that makes the change; the relay publishes them to NATS
//! JetStream and marks them sent. `organizations.event_sequence` numbers an
//! organization's events in commit order (the row is locked by the change).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("organizations")
                    .add_column(big_integer("event_sequence").default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("events")
                    .col(pk_uuid("id"))
                    .col(uuid("organization_id"))
                    .col(big_integer("sequence"))
                    .col(uuid("workspace_id"))
                    .col(string("event_type"))
                    .col(blob("payload"))
                    .col(timestamp_with_time_zone("occurred_at"))
                    .col(timestamp_with_time_zone_null("sent_at"))
                    .to_owned(),
            )
            .await?;
        // The relay's walk: unsent events in each organization's order.
        manager
            .create_index(
                Index::create()
                    .name("ux_events_organization_id_sequence")
                    .table("events")
                    .col("organization_id")
                    .col("sequence")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_events_sent_at")
                    .table("events")
                    .col("sent_at")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("events").to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("organizations")
                    .drop_column("event_sequence")
                    .to_owned(),
            )
            .await
    }
}

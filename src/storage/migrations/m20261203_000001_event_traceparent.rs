//! `events.traceparent`: the W3C trace context (`traceparent`) of the call
//! that made the change, published with the event as a NATS header so a
//! consumer's work joins the caller's trace. Nullable: events written
//! before this migration, or outside any trace, have none.

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
                    .add_column(string_null("traceparent"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("events")
                    .drop_column("traceparent")
                    .to_owned(),
            )
            .await
    }
}

//! Deletes by index: every foreign key gets an index that leads with its
//! column, so that removing a parent row finds its children (a cascade) or
//! checks there are none (a restriction) by an index lookup, not by reading
//! the whole child table. PostgreSQL does not index the referencing side
//! of a foreign key by itself, and SQLite looks children up the same way.
//! Three had none:
//!
//! - `idempotency_records (workspace_id)`: DeleteWorkspace's cascade read
//!   every idempotency record while it held its organization's row lock
//!   (174 ms at 1M records, issue 29).
//! - `workspace_access_tokens (user_id)`: a user's removal.
//! - `organizations (plan_id)`: a plan's removal (`RESTRICT`).
//!
//! And `idempotency_records (created_at)`: the purge of records past
//! `IDEMPOTENCY_RETENTION` takes its oldest batch from one end of it.
//!
//! On PostgreSQL each index is built inside the migration's transaction
//! (not `CONCURRENTLY`): writes to its table wait while it is built (1.4 s
//! for `workspace_id` over a million idempotency records, issue 29's
//! measurement).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Each index: its name, its table, its column.
const INDEXES: [(&str, &str, &str); 4] = [
    (
        "ix_idempotency_records_workspace_id",
        "idempotency_records",
        "workspace_id",
    ),
    (
        "ix_idempotency_records_created_at",
        "idempotency_records",
        "created_at",
    ),
    (
        "ix_workspace_access_tokens_user_id",
        "workspace_access_tokens",
        "user_id",
    ),
    ("ix_organizations_plan_id", "organizations", "plan_id"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, table, column) in INDEXES {
            manager
                .create_index(
                    Index::create()
                        .if_not_exists()
                        .name(name)
                        .table(table)
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, table, _) in INDEXES.into_iter().rev() {
            manager
                .drop_index(Index::drop().if_exists().name(name).table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

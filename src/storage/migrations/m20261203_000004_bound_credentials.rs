//! `api_tokens.organization_id` and `sessions.organization_id`: the one
//! organization a credential is bound to. Nullable: tokens and sessions
//! made before (or without `--organization`) are bound to none and keep
//! working as they did. The admin checks the user belongs to the
//! organization when it binds one; a membership removed later makes the
//! credential's calls answer as a non-member's.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLES: [&str; 2] = ["api_tokens", "sessions"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in TABLES {
            manager
                .alter_table(
                    Table::alter()
                        .table(table)
                        .add_column(uuid_null("organization_id"))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in TABLES {
            manager
                .alter_table(
                    Table::alter()
                        .table(table)
                        .drop_column("organization_id")
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

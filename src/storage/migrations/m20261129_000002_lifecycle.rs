//! The rest of a workspace's life: a `revision` on each workspace (its
//! etag: UpdateWorkspace and DeleteWorkspace act only on the version the
//! caller read), and workspace access tokens (seed 001's `accessTokens`),
//! kept as hashes, removed with their workspace or their user.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("workspaces")
                    .add_column(big_integer("revision").default(1))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("workspace_access_tokens")
                    .col(pk_uuid("id"))
                    .col(uuid("workspace_id"))
                    .col(uuid("user_id"))
                    .col(string("name"))
                    .col(string("token_hash"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone_null("expires_at"))
                    .col(timestamp_with_time_zone_null("revoked_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_workspace_access_tokens_workspace_id")
                            .from("workspace_access_tokens", "workspace_id")
                            .to("workspaces", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_workspace_access_tokens_user_id")
                            .from("workspace_access_tokens", "user_id")
                            .to("users", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_workspace_access_tokens_token_hash")
                    .table("workspace_access_tokens")
                    .col("token_hash")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_workspace_access_tokens_workspace_id_id")
                    .table("workspace_access_tokens")
                    .col("workspace_id")
                    .col("id")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("workspace_access_tokens").to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("workspaces")
                    .drop_column("revision")
                    .to_owned(),
            )
            .await
    }
}

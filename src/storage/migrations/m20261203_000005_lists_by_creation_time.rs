//! New workspace and membership ids are random (UUIDv4, which seed 001's
//! clients require), so lists no longer follow id order: ListWorkspaces and
//! ListWorkspaceMembers are in (created_at, id) order. The index
//! `workspaces (organization_id, created_at, id)` replaces
//! `(organization_id, id)`: each organization's page is still one ordered
//! range of an index. Memberships are read per workspace (a few rows, by the
//! `(workspace_id, user_id)` unique index) and need none. Existing ids stay
//! as they are.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const BY_TIME: &str = "ix_workspaces_organization_id_created_at_id";
const BY_ID: &str = "ix_workspaces_organization_id_id";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(BY_TIME)
                    .table("workspaces")
                    .col("organization_id")
                    .col("created_at")
                    .col("id")
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(Index::drop().name(BY_ID).table("workspaces").to_owned())
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(BY_ID)
                    .table("workspaces")
                    .col("organization_id")
                    .col("id")
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(Index::drop().name(BY_TIME).table("workspaces").to_owned())
            .await
    }
}

//! ListWorkspaces by the page (issue 29): what a caller sees of an
//! organization is one ordered range of an index, whatever its role.
//!
//! - An OWNER or ADMIN sees the organization's workspaces: the range
//!   `workspaces (organization_id, created_at, id)` (m20261203_000005).
//! - Anyone else sees the workspaces they are a member of: each membership
//!   now carries its workspace's organization and creation time (neither
//!   ever changes), and `workspace_memberships (user_id, organization_id,
//!   workspace_created_at, workspace_id)` is the caller's range in each
//!   organization, in the List's order. Before, the caller's memberships
//!   were all read, joined and sorted to return a page.
//! - `organization_memberships (user_id, organization_id)`: the caller's
//!   organizations in id order, so that the API token's query reads its
//!   first few, not all of them. It replaces the index on `user_id`
//!   alone, as the new memberships index replaces
//!   `workspace_memberships (user_id)`.
//!
//! SQLite cannot add a NOT NULL column without a default: there the two
//! columns are nullable, and every insert fills them (as on PostgreSQL).

use sea_orm::{ConnectionTrait, DbBackend};
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const POSTGRES_UP: [&str; 3] = [
    "ALTER TABLE workspace_memberships ADD COLUMN organization_id uuid, \
     ADD COLUMN workspace_created_at timestamp with time zone",
    "UPDATE workspace_memberships m SET organization_id = w.organization_id, \
     workspace_created_at = w.created_at FROM workspaces w WHERE w.id = m.workspace_id",
    "ALTER TABLE workspace_memberships ALTER COLUMN organization_id SET NOT NULL, \
     ALTER COLUMN workspace_created_at SET NOT NULL",
];
const SQLITE_UP: [&str; 3] = [
    "ALTER TABLE workspace_memberships ADD COLUMN organization_id uuid_text",
    "ALTER TABLE workspace_memberships ADD COLUMN workspace_created_at timestamp_with_timezone_text",
    "UPDATE workspace_memberships SET \
     organization_id = (SELECT w.organization_id FROM workspaces w WHERE w.id = workspace_id), \
     workspace_created_at = (SELECT w.created_at FROM workspaces w WHERE w.id = workspace_id)",
];
const DOWN: [&str; 2] = [
    "ALTER TABLE workspace_memberships DROP COLUMN workspace_created_at",
    "ALTER TABLE workspace_memberships DROP COLUMN organization_id",
];

const BY_PAGE: &str = "ix_workspace_memberships_user_organization_time";
const MEMBERSHIPS_OF_USER: &str = "ix_workspace_memberships_user_id";
const ORGANIZATIONS_OF_USER: &str = "ix_organization_memberships_user_id_organization_id";
const ORGANIZATION_MEMBERSHIPS_OF_USER: &str = "ix_organization_memberships_user_id";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let statements: &[&str] = if db.get_database_backend() == DbBackend::Postgres {
            &POSTGRES_UP
        } else {
            &SQLITE_UP
        };
        for statement in statements {
            db.execute_unprepared(statement).await?;
        }
        create(
            manager,
            BY_PAGE,
            "workspace_memberships",
            &[
                "user_id",
                "organization_id",
                "workspace_created_at",
                "workspace_id",
            ],
        )
        .await?;
        drop(manager, MEMBERSHIPS_OF_USER, "workspace_memberships").await?;
        create(
            manager,
            ORGANIZATIONS_OF_USER,
            "organization_memberships",
            &["user_id", "organization_id"],
        )
        .await?;
        drop(
            manager,
            ORGANIZATION_MEMBERSHIPS_OF_USER,
            "organization_memberships",
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create(
            manager,
            ORGANIZATION_MEMBERSHIPS_OF_USER,
            "organization_memberships",
            &["user_id"],
        )
        .await?;
        drop(manager, ORGANIZATIONS_OF_USER, "organization_memberships").await?;
        create(
            manager,
            MEMBERSHIPS_OF_USER,
            "workspace_memberships",
            &["user_id"],
        )
        .await?;
        drop(manager, BY_PAGE, "workspace_memberships").await?;
        let db = manager.get_connection();
        for statement in DOWN {
            db.execute_unprepared(statement).await?;
        }
        Ok(())
    }
}

async fn create(
    manager: &SchemaManager<'_>,
    name: &str,
    table: &'static str,
    columns: &[&'static str],
) -> Result<(), DbErr> {
    let mut index = Index::create();
    index.name(name).table(table);
    for column in columns {
        index.col(*column);
    }
    manager.create_index(index).await
}

async fn drop(manager: &SchemaManager<'_>, name: &str, table: &'static str) -> Result<(), DbErr> {
    manager
        .drop_index(Index::drop().name(name).table(table).to_owned())
        .await
}

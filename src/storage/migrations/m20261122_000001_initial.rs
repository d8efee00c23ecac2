//! The first schema: organizations and what they own, workspaces and their
//! memberships, credentials of callers, idempotency records.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// A foreign key from `table.column` to `target.id`, removed with its parent.
fn references(
    table: &'static str,
    column: &'static str,
    target: &'static str,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(format!("fk_{table}_{column}"))
        .from(table, column)
        .to(target, "id")
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create_accounts(manager).await?;
        create_credentials(manager).await?;
        create_workspaces(manager).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "idempotency_records",
            "workspace_memberships",
            "workspaces",
            "sessions",
            "api_tokens",
            "storage_credentials",
            "organization_memberships",
            "users",
            "organizations",
            "plans",
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

async fn create_unique_index(
    manager: &SchemaManager<'_>,
    table: &'static str,
    columns: &[&'static str],
) -> Result<(), DbErr> {
    let mut index = Index::create();
    index
        .name(format!("ux_{table}_{}", columns.join("_")))
        .table(table)
        .unique();
    for column in columns {
        index.col(*column);
    }
    manager.create_index(index).await
}

async fn create_index(
    manager: &SchemaManager<'_>,
    table: &'static str,
    columns: &[&'static str],
) -> Result<(), DbErr> {
    let mut index = Index::create();
    index
        .name(format!("ix_{table}_{}", columns.join("_")))
        .table(table);
    for column in columns {
        index.col(*column);
    }
    manager.create_index(index).await
}

/// Plans, organizations, users and their memberships.
async fn create_accounts(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("plans")
                .col(pk_uuid("id"))
                .col(string_uniq("name"))
                .col(boolean("creation_allowed"))
                .col(integer_null("workspace_limit"))
                .col(timestamp_with_time_zone("created_at"))
                .to_owned(),
        )
        .await?;
    manager
        .create_table(
            Table::create()
                .table("organizations")
                .col(pk_uuid("id"))
                .col(string("name"))
                .col(string_uniq("slug"))
                .col(uuid("plan_id"))
                .col(string("workspace_creation"))
                .col(integer("workspace_count").default(0))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone("updated_at"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_organizations_plan_id")
                        .from("organizations", "plan_id")
                        .to("plans", "id")
                        .on_delete(ForeignKeyAction::Restrict),
                )
                .to_owned(),
        )
        .await?;
    manager
        .create_table(
            Table::create()
                .table("users")
                .col(pk_uuid("id"))
                .col(string_uniq("email"))
                .col(string("display_name"))
                .col(boolean("validated"))
                .col(timestamp_with_time_zone("created_at"))
                .to_owned(),
        )
        .await?;
    manager
        .create_table(
            Table::create()
                .table("organization_memberships")
                .col(pk_uuid("id"))
                .col(uuid("organization_id"))
                .col(uuid("user_id"))
                .col(string("role"))
                .col(timestamp_with_time_zone("created_at"))
                .foreign_key(&mut references(
                    "organization_memberships",
                    "organization_id",
                    "organizations",
                ))
                .foreign_key(&mut references(
                    "organization_memberships",
                    "user_id",
                    "users",
                ))
                .to_owned(),
        )
        .await?;
    create_unique_index(
        manager,
        "organization_memberships",
        &["organization_id", "user_id"],
    )
    .await?;
    create_index(manager, "organization_memberships", &["user_id"]).await?;
    Ok(())
}

/// API tokens, sessions, and the workspaces table with its name rule.
async fn create_credentials(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("storage_credentials")
                .col(pk_uuid("id"))
                .col(uuid("organization_id"))
                .col(string("kind"))
                .col(string("name"))
                .col(timestamp_with_time_zone("created_at"))
                .foreign_key(&mut references(
                    "storage_credentials",
                    "organization_id",
                    "organizations",
                ))
                .to_owned(),
        )
        .await?;
    create_unique_index(manager, "storage_credentials", &["organization_id", "name"]).await?;

    for table in ["api_tokens", "sessions"] {
        let mut create = Table::create();
        create
            .table(table)
            .col(pk_uuid("id"))
            .col(uuid("user_id"))
            .col(string_uniq("token_hash"))
            .col(timestamp_with_time_zone("created_at"))
            .foreign_key(&mut references(table, "user_id", "users"));
        if table == "api_tokens" {
            create
                .col(string("name"))
                .col(timestamp_with_time_zone_null("expires_at"));
        } else {
            create.col(timestamp_with_time_zone("expires_at"));
        }
        manager.create_table(create).await?;
        create_index(manager, table, &["user_id"]).await?;
    }

    manager
        .create_table(
            Table::create()
                .table("workspaces")
                .col(pk_uuid("id"))
                .col(uuid("organization_id"))
                .col(string("name"))
                .col(string("normalized_name"))
                .col(text("description"))
                .col(string("workspace_type"))
                .col(string("document_upload_method"))
                .col(string("billing_account_email"))
                .col(uuid_null("workspace_document_store_credentials_id"))
                .col(uuid_null("pipeline_document_store_credentials_id"))
                .col(uuid_null("file_store_credentials_id"))
                .col(double("used_storage").default(0.0))
                .col(integer("files_count").default(0))
                .col(uuid("created_by"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone("updated_at"))
                .foreign_key(&mut references(
                    "workspaces",
                    "organization_id",
                    "organizations",
                ))
                .to_owned(),
        )
        .await?;
    Ok(())
}

/// Workspace memberships, idempotency records and the indexes.
async fn create_workspaces(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    // Check 10 of CreateWorkspace: the database, not the code, keeps
    // names unique per organization, across any number of replicas.
    create_unique_index(
        manager,
        "workspaces",
        &["organization_id", "normalized_name"],
    )
    .await?;

    manager
        .create_table(
            Table::create()
                .table("workspace_memberships")
                .col(pk_uuid("id"))
                .col(uuid("workspace_id"))
                .col(uuid("user_id"))
                .col(string("role"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone("updated_at"))
                .foreign_key(&mut references(
                    "workspace_memberships",
                    "workspace_id",
                    "workspaces",
                ))
                .foreign_key(&mut references("workspace_memberships", "user_id", "users"))
                .to_owned(),
        )
        .await?;
    create_unique_index(
        manager,
        "workspace_memberships",
        &["workspace_id", "user_id"],
    )
    .await?;
    create_index(manager, "workspace_memberships", &["user_id"]).await?;

    manager
        .create_table(
            Table::create()
                .table("idempotency_records")
                .col(pk_uuid("id"))
                .col(uuid("user_id"))
                .col(string("request_id"))
                .col(string("request_fingerprint"))
                .col(uuid("workspace_id"))
                .col(timestamp_with_time_zone("created_at"))
                .foreign_key(&mut references("idempotency_records", "user_id", "users"))
                .foreign_key(&mut references(
                    "idempotency_records",
                    "workspace_id",
                    "workspaces",
                ))
                .to_owned(),
        )
        .await?;
    // Two concurrent retries with one request id: one insert wins.
    create_unique_index(manager, "idempotency_records", &["user_id", "request_id"]).await?;
    Ok(())
}

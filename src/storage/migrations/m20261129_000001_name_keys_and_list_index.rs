//! Names that look the same are the same name: every workspace's
//! `normalized_name` is recomputed with `domain::normalize_name` (NFKC, case
//! folding, confusable skeleton). Where two existing workspaces of one
//! organization now share a key, the older keeps it and the newer gets
//! `key#id`, so nothing is lost and the unique index holds.
//!
//! Also an index on `workspaces (organization_id, id)`: ListWorkspaces
//! walks the organizations the caller may see in id order, instead of the
//! whole table.

use std::collections::HashSet;

use sea_orm::{EntityTrait, QuerySelect};
use sea_orm_migration::prelude::*;
use uuid::Uuid;

use crate::{domain::normalize_name, storage::entities::workspace};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("ix_workspaces_organization_id_id")
                    .table("workspaces")
                    .col("organization_id")
                    .col("id")
                    .to_owned(),
            )
            .await?;

        let db = manager.get_connection();
        let rows: Vec<(Uuid, Uuid, String)> = workspace::Entity::find()
            .select_only()
            .column(workspace::Column::Id)
            .column(workspace::Column::OrganizationId)
            .column(workspace::Column::Name)
            .into_tuple()
            .all(db)
            .await?;
        let mut rows = rows;
        rows.sort_by_key(|(id, _, _)| *id);
        // First a key no name can have (ids are unique), so that no row's
        // new key meets another row's old one half-way through.
        for (id, _, _) in &rows {
            set_key(manager, *id, format!("#{id}")).await?;
        }
        let mut taken = HashSet::new();
        for (id, organization_id, name) in rows {
            let mut key = normalize_name(&name);
            if !taken.insert((organization_id, key.clone())) {
                key = format!("{key}#{id}");
            }
            set_key(manager, id, key).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("ix_workspaces_organization_id_id")
                    .table("workspaces")
                    .to_owned(),
            )
            .await
    }
}

async fn set_key(manager: &SchemaManager<'_>, id: Uuid, key: String) -> Result<(), DbErr> {
    manager
        .exec_stmt(
            Query::update()
                .table("workspaces")
                .value("normalized_name", key)
                .and_where(Expr::col("id").eq(id))
                .to_owned(),
        )
        .await
}

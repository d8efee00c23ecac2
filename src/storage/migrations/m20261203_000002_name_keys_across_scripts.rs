//! The name keys again, with `domain::normalize_name` as issue 27 made it:
//! invisible characters removed before words are split ("Team \u{200b}
//! One" is "Team One"), and look-alikes read only across scripts
//! (Cyrillic "ТЕАМ" is Latin "TEAM"; "Modem" and "Modern", "0ffice" and
//! "Office" are different names).
//!
//! Every workspace's key is recomputed, oldest first (creation time, then
//! id). Two names that the old keys took for one (the newer had
//! `key#id`) and that now differ each get their own key; two names that
//! now share a key keep both workspaces: the older keeps the key and the
//! newer gets `key#id`, as the first computation of the keys did, so the
//! unique index holds and nothing is lost.

use std::collections::HashSet;

use sea_orm::{EntityTrait, QueryOrder, QuerySelect};
use sea_orm_migration::prelude::*;
use uuid::Uuid;

use crate::{domain::normalize_name, storage::entities::workspace};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let rows: Vec<(Uuid, Uuid, String)> = workspace::Entity::find()
            .select_only()
            .column(workspace::Column::Id)
            .column(workspace::Column::OrganizationId)
            .column(workspace::Column::Name)
            .order_by_asc(workspace::Column::CreatedAt)
            .order_by_asc(workspace::Column::Id)
            .into_tuple()
            .all(db)
            .await?;
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

    /// The keys stay: the previous code reads them as it reads any key
    /// (names it would take for one another may both exist, as after any
    /// change of the rule).
    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        Ok(())
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

//! Updates and deletes of a workspace, guarded by its revision (the etag).
//! The organization's workspace counter moves with every delete in the
//! transaction that deletes, after locking the organization's row as a
//! create does, so creates and deletes racing under a limit stay exact.

use chrono::{SubsecRound, Utc};
use sea_orm::{
    ColumnTrait, DbErr, EntityTrait, QueryFilter,
    sea_query::{Expr, ExprTrait},
};
use uuid::Uuid;

use super::{
    Storage,
    change::{Change, Changed},
    entities::*,
    views::snapshot,
    violates_unique,
};
use crate::domain::{EventKind, WorkspaceUpdate, WorkspaceView};

impl Storage {
    /// Applies `update` to workspace `id` of `organization_id` if its
    /// revision is still the expected one; the revision moves on by one.
    /// Writes the event in the same transaction, and gives back the
    /// workspace as it now is (as its organization's OWNERs see it).
    pub async fn update_workspace(
        &self,
        id: Uuid,
        organization_id: Uuid,
        update: &WorkspaceUpdate,
        actor: Uuid,
    ) -> Result<Changed<Option<WorkspaceView>>, DbErr> {
        let change = Change::begin(self, organization_id, id, actor).await?;
        let now = Utc::now().trunc_subsecs(6);
        let mut query = workspace::Entity::update_many()
            .col_expr(workspace::Column::UpdatedAt, Expr::value(now))
            .col_expr(
                workspace::Column::Revision,
                Expr::col(workspace::Column::Revision).add(1),
            )
            .filter(workspace::Column::Id.eq(id))
            .filter(workspace::Column::OrganizationId.eq(organization_id));
        if let Some((name, key)) = &update.name {
            query = query
                .col_expr(workspace::Column::Name, Expr::value(name.clone()))
                .col_expr(workspace::Column::NormalizedName, Expr::value(key.clone()));
        }
        if let Some(description) = &update.description {
            query = query.col_expr(
                workspace::Column::Description,
                Expr::value(description.clone()),
            );
        }
        if let Some(revision) = update.expected_revision {
            query = query.filter(workspace::Column::Revision.eq(revision));
        }
        match query.exec(&change.txn).await {
            Ok(result) if result.rows_affected > 0 => {}
            Ok(_) => {
                change.txn.rollback().await?;
                return self.why_unchanged(id).await;
            }
            Err(err) => {
                let _ = change.txn.rollback().await;
                return if violates_unique(&err, "normalized_name") {
                    Ok(Changed::NameTaken)
                } else {
                    Err(err)
                };
            }
        }
        let workspace = change
            .finish(EventKind::WorkspaceUpdated, None, None)
            .await?;
        Ok(Changed::Done(workspace))
    }

    /// Deletes workspace `id` of `organization_id` if its revision is still
    /// the expected one, and gives its place under the limit back. Its
    /// memberships, access tokens and idempotency records go with it by
    /// their foreign keys' `ON DELETE CASCADE`, the one way they are
    /// removed: each table's rows found through an index that leads with
    /// `workspace_id` (the idempotency records' since the migration
    /// `deletes_by_index`), not by reading the whole table under the
    /// organization's row lock.
    pub async fn delete_workspace(
        &self,
        id: Uuid,
        organization_id: Uuid,
        expected_revision: Option<i64>,
        actor: Uuid,
    ) -> Result<Changed, DbErr> {
        let change = Change::begin(self, organization_id, id, actor).await?;
        // The counter moves with the rows, under the organization's row
        // lock a create takes too.
        organization::Entity::update_many()
            .col_expr(
                organization::Column::WorkspaceCount,
                Expr::col(organization::Column::WorkspaceCount).sub(1),
            )
            .filter(organization::Column::Id.eq(organization_id))
            .exec(&change.txn)
            .await?;
        // The event carries the workspace as it was.
        let last_state = snapshot(&change.txn, id).await?;
        let mut delete = workspace::Entity::delete_many()
            .filter(workspace::Column::Id.eq(id))
            .filter(workspace::Column::OrganizationId.eq(organization_id));
        if let Some(revision) = expected_revision {
            delete = delete.filter(workspace::Column::Revision.eq(revision));
        }
        let deleted = delete.exec(&change.txn).await?.rows_affected;
        if deleted == 0 {
            change.txn.rollback().await?;
            return self.why_unchanged(id).await;
        }
        change
            .finish_with(EventKind::WorkspaceDeleted, last_state.as_ref(), None, None)
            .await?;
        Ok(Changed::Done(()))
    }
}

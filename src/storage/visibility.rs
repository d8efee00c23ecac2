//! What a caller may see: one workspace, a page of them, a workspace as
//! the caller stands to it.

use sea_orm::{
    ColumnTrait, Condition, DbErr, EntityTrait, QueryFilter,
    sea_query::{Expr, ExprTrait},
};
use tracing::Instrument;
use uuid::Uuid;

use super::{Storage, entities::*, listing, views::views_in};
use crate::domain::{Cursor, OrganizationRole, WorkspaceRole, WorkspaceView};

/// What a caller may know about a workspace before acting on it.
#[derive(Debug, Clone)]
pub struct WorkspaceAccess {
    pub id: Uuid,
    pub organization_id: Uuid,
    /// The caller's organization role (the caller is a current member).
    pub organization_role: OrganizationRole,
    /// The caller's role in the workspace, if a member.
    pub workspace_role: Option<WorkspaceRole>,
}

impl Storage {
    /// The workspace `id` if `caller` may see it: a member of it, or an
    /// OWNER or ADMIN of its organization.
    /// Each statement has its span, children of the call's.
    pub async fn visible_workspace(
        &self,
        id: Uuid,
        caller: Uuid,
    ) -> Result<Option<WorkspaceView>, DbErr> {
        // One rule everywhere: only a current member of the organization
        // sees any of its workspaces; its OWNERs and ADMINs see them all,
        // everyone else those they are members of.
        let Some((model, role)) = self.workspace_with_role(id, caller).await? else {
            return Ok(None);
        };
        let Some(view) = self.views(vec![model], caller).await?.pop() else {
            return Ok(None);
        };
        Ok((view.user_role.is_some() || role.sees_all_workspaces()).then_some(view))
    }

    /// Workspace `id` and `caller`'s role in its organization, when the
    /// caller is a current member of it.
    pub(super) async fn workspace_with_role(
        &self,
        id: Uuid,
        caller: Uuid,
    ) -> Result<Option<(workspace::Model, OrganizationRole)>, DbErr> {
        let Some(model) = workspace::Entity::find_by_id(id)
            .one(&self.db)
            .instrument(self.db_span("SELECT", "workspaces"))
            .await?
        else {
            return Ok(None);
        };
        Ok(self
            .organization_role(model.organization_id, caller)
            .await?
            .map(|role| (model, role)))
    }

    /// Up to `limit` workspaces `caller` may see, in (created_at, id) order
    /// (ids are random UUIDv4; the id breaks ties) after `after`,
    /// optionally of one organization. Keyset paging: a workspace inserted
    /// meanwhile lands after the cursor or before it, never shifting a page.
    /// Statements whose cost is the page's (`listing`), then the views'.
    /// Each statement has its span, children of the call's.
    pub async fn visible_workspaces(
        &self,
        caller: Uuid,
        organization_id: Option<Uuid>,
        after: Option<Cursor>,
        limit: u64,
    ) -> Result<Vec<WorkspaceView>, DbErr> {
        let models = listing::page(&self.db, caller, organization_id, after, limit)
            .instrument(self.db_span("SELECT", "workspaces"))
            .await?;
        self.views(models, caller).await
    }

    /// Workspaces with their organization, memberships and the members'
    /// access tokens, as `caller` sees them; four queries whatever the
    /// number of workspaces.
    async fn views(
        &self,
        models: Vec<workspace::Model>,
        caller: Uuid,
    ) -> Result<Vec<WorkspaceView>, DbErr> {
        views_in(&self.db, Some(self), models, caller).await
    }
    /// The workspace `id` as `caller` stands to it, if the caller is a
    /// current member of its organization.
    pub async fn workspace_access(
        &self,
        id: Uuid,
        caller: Uuid,
    ) -> Result<Option<WorkspaceAccess>, DbErr> {
        let Some((workspace, organization_role)) = self.workspace_with_role(id, caller).await?
        else {
            return Ok(None);
        };
        let workspace_role = workspace_membership::Entity::find()
            .filter(workspace_membership::Column::WorkspaceId.eq(id))
            .filter(workspace_membership::Column::UserId.eq(caller))
            .one(&self.db)
            .await?
            .and_then(|m| m.role.parse().ok());
        Ok(Some(WorkspaceAccess {
            id,
            organization_id: workspace.organization_id,
            organization_role,
            workspace_role,
        }))
    }

    /// The organization workspace `id` belongs to.
    pub async fn workspace_organization(&self, id: Uuid) -> Result<Option<Uuid>, DbErr> {
        Ok(workspace::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .map(|w| w.organization_id))
    }
}

/// Rows after `after` in (`created_at`, `id`) order, as a row-value
/// comparison both databases read as a range of an index on those columns.
pub(super) fn after_cursor<C: ColumnTrait>(created_at: C, id: C, after: Cursor) -> Condition {
    let key = Expr::tuple([Expr::col(created_at), Expr::col(id)]);
    let cursor = Expr::tuple([Expr::value(after.created_at), Expr::value(after.id)]);
    Condition::all().add(key.gt(cursor))
}

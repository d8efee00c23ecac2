//! A workspace's members. Member changes lock the workspace's row first,
//! so two removals or demotions cannot both see "another OWNER is left".

use std::collections::HashMap;

use chrono::{SubsecRound, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, sea_query::Expr,
};
use uuid::Uuid;

use super::{
    Storage,
    change::Change,
    entities::*,
    views::{attach_access_tokens, member_of},
    violates_unique,
    visibility::after_cursor,
};
use crate::domain::{Cursor, EventKind, WorkspaceMember, WorkspaceRole};

/// How a member change ended.
#[derive(Debug, Clone, PartialEq)]
pub enum MemberChange {
    Done(Option<WorkspaceMember>),
    NotMember,
    AlreadyMember,
    NotInOrganization,
    LastOwner,
    /// The member is an OWNER, and the change was asked with
    /// `OwnersProtected`: only OWNERs change OWNERs.
    OwnerProtected,
}

/// Whether a member change may touch an OWNER: decided in the change's
/// transaction, on the target's role as the workspace's lock holds it (a
/// promotion that commits first is seen).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnersProtected {
    Yes,
    No,
}

impl Storage {
    /// Adds `user_id`, a member of `organization_id`, to workspace `id`.
    pub async fn add_member(
        &self,
        id: Uuid,
        organization_id: Uuid,
        user_id: Uuid,
        role: WorkspaceRole,
        actor: Uuid,
    ) -> Result<MemberChange, DbErr> {
        let Some(change) = Change::begin_on_workspace(self, organization_id, id, actor).await?
        else {
            return Ok(MemberChange::NotMember);
        };
        let txn = &change.txn;
        let in_organization = organization_membership::Entity::find()
            .filter(organization_membership::Column::OrganizationId.eq(organization_id))
            .filter(organization_membership::Column::UserId.eq(user_id))
            .count(txn)
            .await?
            > 0;
        if !in_organization {
            change.txn.rollback().await?;
            return Ok(MemberChange::NotInOrganization);
        }
        // The membership carries its workspace's organization and creation
        // time: the caller's List reads them in its index.
        let Some(workspace) = workspace::Entity::find_by_id(id).one(txn).await? else {
            change.txn.rollback().await?;
            return Ok(MemberChange::NotMember);
        };
        let now = Utc::now().trunc_subsecs(6);
        let membership = workspace_membership::Model {
            id: Uuid::new_v4(),
            workspace_id: id,
            user_id,
            role: role.as_str().to_owned(),
            created_at: now,
            updated_at: now,
            organization_id: workspace.organization_id,
            workspace_created_at: workspace.created_at,
        };
        let inserted = workspace_membership::Entity::insert(workspace_membership::ActiveModel {
            id: Set(membership.id),
            workspace_id: Set(id),
            user_id: Set(user_id),
            role: Set(membership.role.clone()),
            created_at: Set(now),
            updated_at: Set(now),
            organization_id: Set(membership.organization_id),
            workspace_created_at: Set(membership.workspace_created_at),
        })
        .exec_without_returning(txn)
        .await;
        match inserted {
            Ok(_) => {
                let member = member_of(membership)?;
                change
                    .finish(EventKind::MemberAdded, Some(&member), None)
                    .await?;
                Ok(MemberChange::Done(Some(member)))
            }
            Err(err) => {
                let _ = change.txn.rollback().await;
                if violates_unique(&err, "workspace_memberships") {
                    Ok(MemberChange::AlreadyMember)
                } else {
                    Err(err)
                }
            }
        }
    }

    /// Gives member `user_id` of workspace `id` the role `role`, or removes
    /// them (`None`, with their access tokens); never the last OWNER.
    pub async fn change_member(
        &self,
        id: Uuid,
        organization_id: Uuid,
        user_id: Uuid,
        role: Option<WorkspaceRole>,
        owners: OwnersProtected,
        actor: Uuid,
    ) -> Result<MemberChange, DbErr> {
        // Serializes every member change of this workspace: the OWNER
        // count read below stays true until commit.
        let Some(change) = Change::begin_on_workspace(self, organization_id, id, actor).await?
        else {
            return Ok(MemberChange::NotMember);
        };
        let txn = &change.txn;
        let Some(membership) = workspace_membership::Entity::find()
            .filter(workspace_membership::Column::WorkspaceId.eq(id))
            .filter(workspace_membership::Column::UserId.eq(user_id))
            .one(txn)
            .await?
        else {
            change.txn.rollback().await?;
            return Ok(MemberChange::NotMember);
        };
        let was_owner = membership.role == WorkspaceRole::Owner.as_str();
        if was_owner && owners == OwnersProtected::Yes {
            change.txn.rollback().await?;
            return Ok(MemberChange::OwnerProtected);
        }
        let stays_owner = role == Some(WorkspaceRole::Owner);
        if was_owner && !stays_owner {
            let owners = workspace_membership::Entity::find()
                .filter(workspace_membership::Column::WorkspaceId.eq(id))
                .filter(workspace_membership::Column::Role.eq(WorkspaceRole::Owner.as_str()))
                .count(txn)
                .await?;
            if owners <= 1 {
                change.txn.rollback().await?;
                return Ok(MemberChange::LastOwner);
            }
        }
        let before = member_of(membership.clone())?;
        let changed = apply_member_change(txn, membership, role).await?;
        let kind = if changed.is_some() {
            EventKind::MemberUpdated
        } else {
            EventKind::MemberRemoved
        };
        change
            .finish(kind, Some(changed.as_ref().unwrap_or(&before)), None)
            .await?;
        Ok(MemberChange::Done(changed))
    }

    /// Up to `limit` members of workspace `id` after `after`, oldest first
    /// (by `created_at`, then id: ids are random).
    pub async fn members(
        &self,
        id: Uuid,
        after: Option<Cursor>,
        limit: u64,
    ) -> Result<Vec<WorkspaceMember>, DbErr> {
        use workspace_membership::Column;
        let mut query = workspace_membership::Entity::find().filter(Column::WorkspaceId.eq(id));
        if let Some(after) = after {
            query = query.filter(after_cursor(Column::CreatedAt, Column::Id, after));
        }
        let rows = query
            .order_by_asc(Column::CreatedAt)
            .order_by_asc(Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?;
        let members = rows
            .into_iter()
            .map(member_of)
            .collect::<Result<Vec<_>, _>>()?;
        let mut by_workspace = HashMap::from([(id, members)]);
        attach_access_tokens(&self.db, Some(self), &mut by_workspace).await?;
        Ok(by_workspace.remove(&id).unwrap_or_default())
    }
}

/// Gives `membership` the role `role`, or deletes it with the member's
/// access tokens to the workspace (`None`); the member as they now are.
async fn apply_member_change(
    txn: &DatabaseTransaction,
    membership: workspace_membership::Model,
    role: Option<WorkspaceRole>,
) -> Result<Option<WorkspaceMember>, DbErr> {
    let now = Utc::now().trunc_subsecs(6);
    match role {
        Some(role) => {
            workspace_membership::Entity::update_many()
                .col_expr(
                    workspace_membership::Column::Role,
                    Expr::value(role.as_str()),
                )
                .col_expr(workspace_membership::Column::UpdatedAt, Expr::value(now))
                .filter(workspace_membership::Column::Id.eq(membership.id))
                .exec(txn)
                .await?;
            let mut updated = member_of(membership)?;
            updated.role = role;
            updated.updated_at = now;
            Ok(Some(updated))
        }
        None => {
            workspace_access_token::Entity::delete_many()
                .filter(workspace_access_token::Column::WorkspaceId.eq(membership.workspace_id))
                .filter(workspace_access_token::Column::UserId.eq(membership.user_id))
                .exec(txn)
                .await?;
            workspace_membership::Entity::delete_by_id(membership.id)
                .exec(txn)
                .await?;
            Ok(None)
        }
    }
}

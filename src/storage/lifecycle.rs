//! A workspace's life after its creation: updates and deletion (guarded by
//! its revision, the etag), members, access tokens. Each change is one
//! transaction; the invariants are the database's to keep:
//! - the organization's workspace counter moves with every delete in the
//!   transaction that deletes, after locking the organization's row as a
//!   create does, so creates and deletes racing under a limit stay exact;
//! - a stale revision changes nothing (a conditional UPDATE or DELETE);
//! - member changes lock the workspace's row first, so two removals or
//!   demotions cannot both see "another OWNER is left".

use std::collections::HashMap;

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait},
};
use tracing::Instrument;
use uuid::Uuid;

use super::{
    Storage,
    directory::caller,
    entities::*,
    events::{self, EventDraft},
    violates_unique,
    workspaces::{member_of, views_in},
};
use crate::domain::{
    AccessTokenView, Caller, EventKind, OrganizationRole, WorkspaceMember, WorkspaceRole,
    WorkspaceUpdate, WorkspaceView,
};

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

/// How a conditional change ended: done (with what it gives back), or why
/// not.
#[derive(Debug, Clone, PartialEq)]
pub enum Changed<T = ()> {
    Done(T),
    /// The workspace's revision is not the one expected.
    Stale,
    /// The workspace is gone.
    Missing,
    /// UpdateWorkspace only: another workspace of the organization has the
    /// name.
    NameTaken,
}

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

    /// Deletes workspace `id` of `organization_id` (its memberships, access
    /// tokens and idempotency records go with it) if its revision is still
    /// the expected one, and gives its place under the limit back.
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
        // The foreign keys would cascade; the statements say what goes.
        workspace_access_token::Entity::delete_many()
            .filter(workspace_access_token::Column::WorkspaceId.eq(id))
            .exec(&change.txn)
            .await?;
        workspace_membership::Entity::delete_many()
            .filter(workspace_membership::Column::WorkspaceId.eq(id))
            .exec(&change.txn)
            .await?;
        idempotency_record::Entity::delete_many()
            .filter(idempotency_record::Column::WorkspaceId.eq(id))
            .exec(&change.txn)
            .await?;
        change
            .finish_with(EventKind::WorkspaceDeleted, last_state.as_ref(), None, None)
            .await?;
        Ok(Changed::Done(()))
    }

    async fn why_unchanged<T>(&self, id: Uuid) -> Result<Changed<T>, DbErr> {
        Ok(
            match workspace::Entity::find_by_id(id).one(&self.db).await? {
                Some(_) => Changed::Stale,
                None => Changed::Missing,
            },
        )
    }

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
        let now = Utc::now().trunc_subsecs(6);
        let membership = workspace_membership::Model {
            id: Uuid::now_v7(),
            workspace_id: id,
            user_id,
            role: role.as_str().to_owned(),
            created_at: now,
            updated_at: now,
        };
        let inserted = workspace_membership::Entity::insert(workspace_membership::ActiveModel {
            id: Set(membership.id),
            workspace_id: Set(id),
            user_id: Set(user_id),
            role: Set(membership.role.clone()),
            created_at: Set(now),
            updated_at: Set(now),
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
        let now = Utc::now().trunc_subsecs(6);
        let before = member_of(membership.clone())?;
        let changed = match role {
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
                Some(updated)
            }
            None => {
                workspace_access_token::Entity::delete_many()
                    .filter(workspace_access_token::Column::WorkspaceId.eq(id))
                    .filter(workspace_access_token::Column::UserId.eq(user_id))
                    .exec(txn)
                    .await?;
                workspace_membership::Entity::delete_by_id(membership.id)
                    .exec(txn)
                    .await?;
                None
            }
        };
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

    /// Up to `limit` members of workspace `id` after `after`, oldest first.
    pub async fn members(
        &self,
        id: Uuid,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<WorkspaceMember>, DbErr> {
        let mut query = workspace_membership::Entity::find()
            .filter(workspace_membership::Column::WorkspaceId.eq(id));
        if let Some(after) = after {
            query = query.filter(workspace_membership::Column::Id.gt(after));
        }
        let rows = query
            .order_by_asc(workspace_membership::Column::Id)
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

    /// Stores a new access token of `user_id` for workspace `id`.
    pub async fn create_access_token(
        &self,
        id: Uuid,
        organization_id: Uuid,
        user_id: Uuid,
        name: &str,
        token_hash: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<AccessTokenView, DbErr> {
        let change = Change::begin(self, organization_id, id, user_id).await?;
        let now = Utc::now().trunc_subsecs(6);
        let token = workspace_access_token::Model {
            id: Uuid::now_v7(),
            workspace_id: id,
            user_id,
            name: name.to_owned(),
            token_hash: token_hash.to_owned(),
            created_at: now,
            expires_at: expires_at.map(|at| at.trunc_subsecs(6)),
            revoked_at: None,
        };
        workspace_access_token::Entity::insert(workspace_access_token::ActiveModel {
            id: Set(token.id),
            workspace_id: Set(token.workspace_id),
            user_id: Set(token.user_id),
            name: Set(token.name.clone()),
            token_hash: Set(token.token_hash.clone()),
            created_at: Set(token.created_at),
            expires_at: Set(token.expires_at),
            revoked_at: Set(None),
        })
        .exec_without_returning(&change.txn)
        .await?;
        let view = token_view(token);
        change
            .finish(EventKind::AccessTokenCreated, None, Some(&view))
            .await?;
        Ok(view)
    }

    /// Up to `limit` unrevoked access tokens of workspace `id` after
    /// `after`, oldest first.
    pub async fn access_tokens(
        &self,
        id: Uuid,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<AccessTokenView>, DbErr> {
        let mut query = workspace_access_token::Entity::find()
            .filter(workspace_access_token::Column::WorkspaceId.eq(id))
            .filter(workspace_access_token::Column::RevokedAt.is_null());
        if let Some(after) = after {
            query = query.filter(workspace_access_token::Column::Id.gt(after));
        }
        Ok(query
            .order_by_asc(workspace_access_token::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(token_view)
            .collect())
    }

    /// Revokes access token `token_id` of workspace `id` (of
    /// `organization_id`); false when there is no such unrevoked token.
    pub async fn revoke_access_token(
        &self,
        id: Uuid,
        organization_id: Uuid,
        token_id: Uuid,
        actor: Uuid,
    ) -> Result<bool, DbErr> {
        let change = Change::begin(self, organization_id, id, actor).await?;
        let revoked = workspace_access_token::Entity::update_many()
            .col_expr(
                workspace_access_token::Column::RevokedAt,
                Expr::value(Utc::now().trunc_subsecs(6)),
            )
            .filter(workspace_access_token::Column::Id.eq(token_id))
            .filter(workspace_access_token::Column::WorkspaceId.eq(id))
            .filter(workspace_access_token::Column::RevokedAt.is_null())
            .exec_with_returning(&change.txn)
            .await?;
        let Some(token) = revoked.into_iter().next() else {
            change.txn.rollback().await?;
            return Ok(false);
        };
        let view = token_view(token);
        change
            .finish(EventKind::AccessTokenRevoked, None, Some(&view))
            .await?;
        Ok(true)
    }

    /// The caller a workspace access token (by its hash) stands for: its
    /// user, limited to the token's workspace (a removed member's tokens go
    /// with the membership); `None` when revoked, expired or unknown. One
    /// query for the token and its user.
    #[tracing::instrument(level = "debug", name = "db.user_of_workspace_token", skip_all, fields(otel.kind = "client", otel.name = "SELECT workspace_access_tokens", db.system.name = self.system(), db.operation.name = "SELECT", db.collection.name = "workspace_access_tokens", db.namespace = self.namespace(), server.address = self.server_address(), server.port = self.server_port()))]
    pub async fn user_of_workspace_token(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Caller>, DbErr> {
        let found = workspace_access_token::Entity::find()
            .filter(workspace_access_token::Column::TokenHash.eq(token_hash))
            .filter(workspace_access_token::Column::RevokedAt.is_null())
            .find_also_related(user::Entity)
            .one(&self.db)
            .await?;
        Ok(found.and_then(|(token, user)| {
            let user = user?;
            let live = token.expires_at.is_none_or(|at| at > now);
            live.then(|| Caller {
                workspace_scope: Some(token.workspace_id),
                ..caller(&user)
            })
        }))
    }
}

/// Gives each member in `members` (by workspace) their unrevoked access
/// tokens, read on `conn` in one query.
pub(super) async fn attach_access_tokens<C: ConnectionTrait>(
    conn: &C,
    spans: Option<&Storage>,
    members: &mut HashMap<Uuid, Vec<WorkspaceMember>>,
) -> Result<(), DbErr> {
    let tokens = workspace_access_token::Entity::find()
        .filter(workspace_access_token::Column::WorkspaceId.is_in(members.keys().copied()))
        .filter(workspace_access_token::Column::RevokedAt.is_null())
        .order_by_asc(workspace_access_token::Column::Id)
        .all(conn)
        .instrument(super::db_span_of(
            spans,
            "SELECT",
            "workspace_access_tokens",
        ))
        .await?;
    for token in tokens {
        if let Some(member) = members
            .get_mut(&token.workspace_id)
            .and_then(|ms| ms.iter_mut().find(|m| m.user_id == token.user_id))
        {
            member.access_tokens.push(token_view(token));
        }
    }
    Ok(())
}

/// A change to a workspace in the making: its transaction, which holds the
/// organization's row from the start (every change takes the organization
/// first, then the workspace: one lock order), the number its event took,
/// and who makes it.
struct Change {
    txn: DatabaseTransaction,
    sequence: i64,
    organization_id: Uuid,
    workspace_id: Uuid,
    actor: Uuid,
    /// SQLite: this process's turn to write, until the change ends
    /// (dropped after the transaction).
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Change {
    async fn begin(
        storage: &Storage,
        organization_id: Uuid,
        workspace_id: Uuid,
        actor: Uuid,
    ) -> Result<Self, DbErr> {
        let turn = storage.write_turn().await;
        let txn = storage.db.begin().await?;
        let sequence = events::next_sequence(&txn, organization_id).await?;
        Ok(Self {
            txn,
            sequence,
            organization_id,
            workspace_id,
            actor,
            _turn: turn,
        })
    }

    /// `begin`, then workspace `id`'s row locked until the change ends;
    /// `None` (rolled back) when there is no such workspace.
    async fn begin_on_workspace(
        storage: &Storage,
        organization_id: Uuid,
        id: Uuid,
        actor: Uuid,
    ) -> Result<Option<Self>, DbErr> {
        let change = Self::begin(storage, organization_id, id, actor).await?;
        if !lock_workspace(&change.txn, id).await? {
            change.txn.rollback().await?;
            return Ok(None);
        }
        Ok(Some(change))
    }

    /// Writes the event, carrying the workspace as it now is, and commits;
    /// gives that workspace back.
    async fn finish(
        self,
        kind: EventKind,
        membership: Option<&WorkspaceMember>,
        access_token: Option<&AccessTokenView>,
    ) -> Result<Option<WorkspaceView>, DbErr> {
        let workspace = snapshot(&self.txn, self.workspace_id).await?;
        self.finish_with(kind, workspace.as_ref(), membership, access_token)
            .await?;
        Ok(workspace)
    }

    /// Writes the event with `workspace` as its state, and commits.
    async fn finish_with(
        self,
        kind: EventKind,
        workspace: Option<&WorkspaceView>,
        membership: Option<&WorkspaceMember>,
        access_token: Option<&AccessTokenView>,
    ) -> Result<(), DbErr> {
        let draft = EventDraft {
            kind,
            organization_id: self.organization_id,
            workspace_id: self.workspace_id,
            actor: self.actor,
            workspace,
            membership,
            access_token,
        };
        events::record(&self.txn, self.sequence, draft).await?;
        self.txn.commit().await
    }
}

/// Workspace `id` as its organization's OWNERs see it, read in `txn`:
/// what its event carries.
async fn snapshot(txn: &DatabaseTransaction, id: Uuid) -> Result<Option<WorkspaceView>, DbErr> {
    let Some(model) = workspace::Entity::find_by_id(id).one(txn).await? else {
        return Ok(None);
    };
    Ok(views_in(txn, None, vec![model], Uuid::nil()).await?.pop())
}

/// Locks workspace `id`'s row until the transaction ends (SQLite: takes
/// the write lock); false when there is no such workspace.
async fn lock_workspace(txn: &DatabaseTransaction, id: Uuid) -> Result<bool, DbErr> {
    let locked = workspace::Entity::update_many()
        .col_expr(
            workspace::Column::Revision,
            Expr::col(workspace::Column::Revision),
        )
        .filter(workspace::Column::Id.eq(id))
        .exec(txn)
        .await?;
    Ok(locked.rows_affected > 0)
}

fn token_view(t: workspace_access_token::Model) -> AccessTokenView {
    AccessTokenView {
        id: t.id,
        user_id: t.user_id,
        name: t.name,
        hash: t.token_hash,
        created_at: t.created_at,
        expires_at: t.expires_at,
    }
}

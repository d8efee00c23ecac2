//! Workspace access tokens: issued, listed, revoked, and the caller one
//! stands for.

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::Expr,
};
use uuid::Uuid;

use super::{Storage, change::Change, directory::caller, entities::*, views::token_view};
use crate::domain::{AccessTokenView, Caller, EventKind};

impl Storage {
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
                organization_scope: None,
                ..caller(&user)
            })
        }))
    }
}

//! The request path's reads of this service's copy of what other systems
//! own (organizations, users, memberships, plans, credentials, API tokens,
//! sessions): authentication and CreateWorkspace's checks. Everything
//! returned is a domain type. The admin's lookups and writes are in
//! `admin.rs`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use super::{Storage, entities::*};
use crate::domain::{
    Caller, CredentialsKind, OrganizationRole, OrganizationSummary, Plan, SignIn,
    WorkspaceCreationPolicy,
};

/// What CreateWorkspace needs to know about an organization, read at once.
#[derive(Debug, Clone)]
pub struct OrganizationContext {
    pub organization: OrganizationSummary,
    pub policy: WorkspaceCreationPolicy,
    pub plan: Plan,
    pub workspace_count: i32,
}

pub(super) fn caller(user: &user::Model) -> Caller {
    Caller {
        user_id: user.id,
        validated: user.validated,
        signin: None,
        workspace_scope: None,
    }
}

fn context(org: organization::Model, plan: plan::Model) -> Result<OrganizationContext, DbErr> {
    Ok(OrganizationContext {
        policy: org
            .workspace_creation
            .parse()
            .map_err(|_| corrupt("workspace creation policy", &org.workspace_creation))?,
        organization: OrganizationSummary {
            id: org.id,
            name: org.name,
            slug: org.slug,
        },
        plan: Plan {
            name: plan.name,
            creation_allowed: plan.creation_allowed,
            workspace_limit: plan.workspace_limit,
        },
        workspace_count: org.workspace_count,
    })
}

fn corrupt(what: &str, value: &str) -> DbErr {
    DbErr::Custom(format!("unexpected {what} in the database: {value:?}"))
}

impl Storage {
    // ---- reads -------------------------------------------------------

    /// The user with this id, if any.
    #[tracing::instrument(name = "db.user", skip_all, fields(otel.kind = "client", otel.name = "SELECT users", db.system.name = self.system(), db.operation.name = "SELECT", db.collection.name = "users", db.namespace = self.namespace(), server.address = self.server_address(), server.port = self.server_port()))]
    async fn user(&self, id: Uuid) -> Result<Option<user::Model>, DbErr> {
        user::Entity::find_by_id(id).one(&self.db).await
    }

    /// `user_id`'s role in `organization_id`, if it is a member.
    #[tracing::instrument(name = "db.organization_role", skip_all, fields(otel.kind = "client", otel.name = "SELECT organization_memberships", db.system.name = self.system(), db.operation.name = "SELECT", db.collection.name = "organization_memberships", db.namespace = self.namespace(), server.address = self.server_address(), server.port = self.server_port()))]
    pub async fn organization_role(
        &self,
        organization_id: Uuid,
        user_id: Uuid,
    ) -> Result<Option<OrganizationRole>, DbErr> {
        let membership = organization_membership::Entity::find()
            .filter(organization_membership::Column::OrganizationId.eq(organization_id))
            .filter(organization_membership::Column::UserId.eq(user_id))
            .one(&self.db)
            .await?;
        membership
            .map(|m| {
                m.role
                    .parse()
                    .map_err(|_| corrupt("organization role", &m.role))
            })
            .transpose()
    }

    /// The organizations `user_id` is a member of (only `organization_id`
    /// if given), with its role in each and each one's policy, plan and
    /// count: one query. At most `limit` of them, by organization id.
    #[tracing::instrument(name = "db.memberships", skip_all, fields(otel.kind = "client", otel.name = "SELECT organization_memberships", db.system.name = self.system(), db.operation.name = "SELECT", db.collection.name = "organization_memberships", db.namespace = self.namespace(), server.address = self.server_address(), server.port = self.server_port()))]
    pub async fn memberships(
        &self,
        user_id: Uuid,
        organization_id: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<(OrganizationRole, OrganizationContext)>, DbErr> {
        let mut query = organization_membership::Entity::find()
            .filter(organization_membership::Column::UserId.eq(user_id));
        if let Some(organization_id) = organization_id {
            query =
                query.filter(organization_membership::Column::OrganizationId.eq(organization_id));
        }
        query
            .order_by_asc(organization_membership::Column::OrganizationId)
            .limit(limit)
            .find_also_related(organization::Entity)
            .and_also_related(plan::Entity)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|(membership, org, plan)| {
                let role = membership
                    .role
                    .parse()
                    .map_err(|_| corrupt("organization role", &membership.role))?;
                let missing = || membership.organization_id.to_string();
                let org =
                    org.ok_or_else(|| corrupt("membership of no organization", &missing()))?;
                let plan =
                    plan.ok_or_else(|| corrupt("missing plan of organization", &missing()))?;
                Ok((role, context(org, plan)?))
            })
            .collect()
    }

    /// The kinds of those of `ids` that belong to `organization_id`; one
    /// query for all of them.
    #[tracing::instrument(name = "db.credentials_kinds", skip_all, fields(otel.kind = "client", otel.name = "SELECT storage_credentials", db.system.name = self.system(), db.operation.name = "SELECT", db.collection.name = "storage_credentials", db.namespace = self.namespace(), server.address = self.server_address(), server.port = self.server_port()))]
    pub async fn credentials_kinds(
        &self,
        organization_id: Uuid,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, CredentialsKind>, DbErr> {
        storage_credential::Entity::find()
            .filter(storage_credential::Column::OrganizationId.eq(organization_id))
            .filter(storage_credential::Column::Id.is_in(ids.iter().copied()))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|c| {
                let kind = c
                    .kind
                    .parse()
                    .map_err(|_| corrupt("credentials kind", &c.kind))?;
                Ok((c.id, kind))
            })
            .collect()
    }

    /// The user an unexpired API token (by its hash) belongs to; one query
    /// for the token and its user.
    #[tracing::instrument(name = "db.user_of_api_token", skip_all, fields(otel.kind = "client", otel.name = "SELECT api_tokens", db.system.name = self.system(), db.operation.name = "SELECT", db.collection.name = "api_tokens", db.namespace = self.namespace(), server.address = self.server_address(), server.port = self.server_port()))]
    pub async fn user_of_api_token(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Caller>, DbErr> {
        let found = api_token::Entity::find()
            .filter(api_token::Column::TokenHash.eq(token_hash))
            .find_also_related(user::Entity)
            .one(&self.db)
            .await?;
        Ok(found.and_then(|(token, user)| {
            let user = user?;
            token
                .expires_at
                .is_none_or(|expires| expires > now)
                .then(|| caller(&user))
        }))
    }

    /// The user an unexpired session (by its hash) belongs to; one query
    /// for the session and its user.
    #[tracing::instrument(name = "db.user_of_session", skip_all, fields(otel.kind = "client", otel.name = "SELECT sessions", db.system.name = self.system(), db.operation.name = "SELECT", db.collection.name = "sessions", db.namespace = self.namespace(), server.address = self.server_address(), server.port = self.server_port()))]
    pub async fn user_of_session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Caller>, DbErr> {
        let found = session::Entity::find()
            .filter(session::Column::TokenHash.eq(token_hash))
            .find_also_related(user::Entity)
            .one(&self.db)
            .await?;
        Ok(found.and_then(|(session, user)| {
            let user = user?;
            (session.expires_at > now).then(|| Caller {
                signin: Some(SignIn {
                    id: session.id,
                    created_at: session.created_at,
                }),
                ..caller(&user)
            })
        }))
    }

    /// The user a verified JWT names, if it exists here.
    pub async fn user_of_subject(&self, id: Uuid) -> Result<Option<Caller>, DbErr> {
        Ok(self.user(id).await?.as_ref().map(caller))
    }
}

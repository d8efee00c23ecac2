//! Organizations, users, memberships, plans, credentials, API tokens and
//! sessions: this service's copy of what other systems own, written by the
//! admin command line and read by authentication and CreateWorkspace.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::Expr,
};
use uuid::Uuid;

use super::{Storage, entities::*};
use crate::domain::{
    Caller, CredentialsKind, OrganizationRole, OrganizationSummary, Plan, WorkspaceCreationPolicy,
};

/// What CreateWorkspace needs to know about an organization, read at once.
#[derive(Debug, Clone)]
pub struct OrganizationContext {
    pub organization: OrganizationSummary,
    pub policy: WorkspaceCreationPolicy,
    pub plan: Plan,
    pub workspace_count: i32,
}

/// A freshly created API token. `token` is shown once and never stored.
#[derive(Debug, Clone)]
pub struct NewApiToken {
    pub id: Uuid,
    pub token: String,
}

fn caller(user: &user::Model) -> Caller {
    Caller {
        user_id: user.id,
        validated: user.validated,
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
    #[tracing::instrument(name = "db.user", skip_all, fields(otel.kind = "client", db.system.name = self.system()))]
    pub async fn user(&self, id: Uuid) -> Result<Option<user::Model>, DbErr> {
        user::Entity::find_by_id(id).one(&self.db).await
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<user::Model>, DbErr> {
        user::Entity::find()
            .filter(user::Column::Email.eq(email.trim().to_lowercase()))
            .one(&self.db)
            .await
    }

    /// `user_id`'s role in `organization_id`, if it is a member.
    #[tracing::instrument(name = "db.organization_role", skip_all, fields(otel.kind = "client", db.system.name = self.system()))]
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
    #[tracing::instrument(name = "db.memberships", skip_all, fields(otel.kind = "client", db.system.name = self.system()))]
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
    #[tracing::instrument(name = "db.credentials_kinds", skip_all, fields(otel.kind = "client", db.system.name = self.system()))]
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
    #[tracing::instrument(name = "db.user_of_api_token", skip_all, fields(otel.kind = "client", db.system.name = self.system()))]
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
    #[tracing::instrument(name = "db.user_of_session", skip_all, fields(otel.kind = "client", db.system.name = self.system()))]
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
            (session.expires_at > now).then(|| caller(&user))
        }))
    }

    /// The user a verified JWT names, if it exists here.
    #[tracing::instrument(name = "db.user_of_subject", skip_all, fields(otel.kind = "client", db.system.name = self.system()))]
    pub async fn user_of_subject(&self, id: Uuid) -> Result<Option<Caller>, DbErr> {
        Ok(self.user(id).await?.as_ref().map(caller))
    }

    pub async fn plan_by_name(&self, name: &str) -> Result<Option<plan::Model>, DbErr> {
        plan::Entity::find()
            .filter(plan::Column::Name.eq(name))
            .one(&self.db)
            .await
    }

    pub async fn organization_by_slug(
        &self,
        slug: &str,
    ) -> Result<Option<organization::Model>, DbErr> {
        organization::Entity::find()
            .filter(organization::Column::Slug.eq(slug))
            .one(&self.db)
            .await
    }

    pub async fn credentials_by_name(
        &self,
        organization_id: Uuid,
        name: &str,
    ) -> Result<Option<storage_credential::Model>, DbErr> {
        storage_credential::Entity::find()
            .filter(storage_credential::Column::OrganizationId.eq(organization_id))
            .filter(storage_credential::Column::Name.eq(name))
            .one(&self.db)
            .await
    }

    pub async fn api_token_by_name(
        &self,
        user_id: Uuid,
        name: &str,
    ) -> Result<Option<api_token::Model>, DbErr> {
        api_token::Entity::find()
            .filter(api_token::Column::UserId.eq(user_id))
            .filter(api_token::Column::Name.eq(name))
            .one(&self.db)
            .await
    }

    // ---- writes (admin command line and bootstrap) --------------------

    pub async fn create_plan(
        &self,
        name: &str,
        creation_allowed: bool,
        workspace_limit: Option<i32>,
    ) -> Result<Uuid, DbErr> {
        let id = Uuid::now_v7();
        plan::Entity::insert(plan::ActiveModel {
            id: Set(id),
            name: Set(name.to_owned()),
            creation_allowed: Set(creation_allowed),
            workspace_limit: Set(workspace_limit),
            created_at: Set(Utc::now()),
        })
        .exec_without_returning(&self.db)
        .await?;
        Ok(id)
    }

    pub async fn update_plan(
        &self,
        id: Uuid,
        creation_allowed: bool,
        workspace_limit: Option<i32>,
    ) -> Result<bool, DbErr> {
        let result = plan::Entity::update_many()
            .col_expr(plan::Column::CreationAllowed, Expr::value(creation_allowed))
            .col_expr(plan::Column::WorkspaceLimit, Expr::value(workspace_limit))
            .filter(plan::Column::Id.eq(id))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }

    pub async fn create_organization(
        &self,
        name: &str,
        slug: &str,
        plan_id: Uuid,
        policy: WorkspaceCreationPolicy,
    ) -> Result<Uuid, DbErr> {
        let id = Uuid::now_v7();
        let now = Utc::now();
        organization::Entity::insert(organization::ActiveModel {
            id: Set(id),
            name: Set(name.to_owned()),
            slug: Set(slug.to_owned()),
            plan_id: Set(plan_id),
            workspace_creation: Set(policy.as_str().to_owned()),
            workspace_count: Set(0),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec_without_returning(&self.db)
        .await?;
        Ok(id)
    }

    /// Sets who may create workspaces in the organization.
    pub async fn set_organization_policy(
        &self,
        id: Uuid,
        policy: WorkspaceCreationPolicy,
    ) -> Result<bool, DbErr> {
        let result = organization::Entity::update_many()
            .col_expr(
                organization::Column::WorkspaceCreation,
                Expr::value(policy.as_str()),
            )
            .col_expr(organization::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(organization::Column::Id.eq(id))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Moves the organization to another plan.
    pub async fn set_organization_plan(&self, id: Uuid, plan_id: Uuid) -> Result<bool, DbErr> {
        let result = organization::Entity::update_many()
            .col_expr(organization::Column::PlanId, Expr::value(plan_id))
            .col_expr(organization::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(organization::Column::Id.eq(id))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Creates a user; emails are kept lowercased.
    pub async fn create_user(
        &self,
        email: &str,
        display_name: &str,
        validated: bool,
    ) -> Result<Uuid, DbErr> {
        let id = Uuid::now_v7();
        user::Entity::insert(user::ActiveModel {
            id: Set(id),
            email: Set(email.trim().to_lowercase()),
            display_name: Set(display_name.to_owned()),
            validated: Set(validated),
            created_at: Set(Utc::now()),
        })
        .exec_without_returning(&self.db)
        .await?;
        Ok(id)
    }

    pub async fn set_user_validated(&self, id: Uuid, validated: bool) -> Result<bool, DbErr> {
        let result = user::Entity::update_many()
            .col_expr(user::Column::Validated, Expr::value(validated))
            .filter(user::Column::Id.eq(id))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Makes `user_id` a member of `organization_id` with `role`, or changes
    /// its role when it already is one. Returns the membership's id.
    pub async fn put_organization_member(
        &self,
        organization_id: Uuid,
        user_id: Uuid,
        role: OrganizationRole,
    ) -> Result<Uuid, DbErr> {
        let existing = organization_membership::Entity::find()
            .filter(organization_membership::Column::OrganizationId.eq(organization_id))
            .filter(organization_membership::Column::UserId.eq(user_id))
            .one(&self.db)
            .await?;
        if let Some(membership) = existing {
            organization_membership::Entity::update_many()
                .col_expr(
                    organization_membership::Column::Role,
                    Expr::value(role.as_str()),
                )
                .filter(organization_membership::Column::Id.eq(membership.id))
                .exec(&self.db)
                .await?;
            return Ok(membership.id);
        }
        let id = Uuid::now_v7();
        organization_membership::Entity::insert(organization_membership::ActiveModel {
            id: Set(id),
            organization_id: Set(organization_id),
            user_id: Set(user_id),
            role: Set(role.as_str().to_owned()),
            created_at: Set(Utc::now()),
        })
        .exec_without_returning(&self.db)
        .await?;
        Ok(id)
    }

    pub async fn create_credentials(
        &self,
        organization_id: Uuid,
        kind: CredentialsKind,
        name: &str,
    ) -> Result<Uuid, DbErr> {
        let id = Uuid::now_v7();
        storage_credential::Entity::insert(storage_credential::ActiveModel {
            id: Set(id),
            organization_id: Set(organization_id),
            kind: Set(kind.as_str().to_owned()),
            name: Set(name.to_owned()),
            created_at: Set(Utc::now()),
        })
        .exec_without_returning(&self.db)
        .await?;
        Ok(id)
    }

    /// Stores an API token by its hash.
    pub async fn create_api_token(
        &self,
        user_id: Uuid,
        name: &str,
        token_hash: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<Uuid, DbErr> {
        let id = Uuid::now_v7();
        api_token::Entity::insert(api_token::ActiveModel {
            id: Set(id),
            user_id: Set(user_id),
            name: Set(name.to_owned()),
            token_hash: Set(token_hash.to_owned()),
            expires_at: Set(expires_at),
            created_at: Set(Utc::now()),
        })
        .exec_without_returning(&self.db)
        .await?;
        Ok(id)
    }

    /// Deletes a user's API tokens of that name (rotation of the demo token).
    pub async fn delete_api_tokens_named(&self, user_id: Uuid, name: &str) -> Result<u64, DbErr> {
        let result = api_token::Entity::delete_many()
            .filter(api_token::Column::UserId.eq(user_id))
            .filter(api_token::Column::Name.eq(name))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected)
    }

    /// Stores a session by the hash of its cookie value.
    pub async fn create_session(
        &self,
        user_id: Uuid,
        token_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<Uuid, DbErr> {
        let id = Uuid::now_v7();
        session::Entity::insert(session::ActiveModel {
            id: Set(id),
            user_id: Set(user_id),
            token_hash: Set(token_hash.to_owned()),
            expires_at: Set(expires_at),
            created_at: Set(Utc::now()),
        })
        .exec_without_returning(&self.db)
        .await?;
        Ok(id)
    }
}

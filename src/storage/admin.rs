//! The admin command line's and the bootstrap file's side of storage:
//! lookups by natural key (answering ids) and the writes that keep this
//! service's copy of organizations, users, memberships, plans,
//! credentials, API tokens and sessions.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, DbErr, EntityTrait, QueryFilter, QuerySelect,
    sea_query::Expr,
};
use uuid::Uuid;

use super::{Storage, entities::*};
use crate::domain::{CredentialsKind, OrganizationRole, WorkspaceCreationPolicy};

/// A freshly created API token. `token` is shown once and never stored.
#[derive(Debug, Clone)]
pub struct NewApiToken {
    pub id: Uuid,
    pub token: String,
}

impl Storage {
    // ---- lookups by natural key ---------------------------------------

    /// The id of the user with this email (compared trimmed, lowercase).
    pub async fn user_id_by_email(&self, email: &str) -> Result<Option<Uuid>, DbErr> {
        self.id_where::<user::Entity>(
            user::Column::Id,
            Condition::all().add(user::Column::Email.eq(email.trim().to_lowercase())),
        )
        .await
    }

    pub async fn plan_id_by_name(&self, name: &str) -> Result<Option<Uuid>, DbErr> {
        self.id_where::<plan::Entity>(
            plan::Column::Id,
            Condition::all().add(plan::Column::Name.eq(name)),
        )
        .await
    }

    pub async fn organization_id_by_slug(&self, slug: &str) -> Result<Option<Uuid>, DbErr> {
        self.id_where::<organization::Entity>(
            organization::Column::Id,
            Condition::all().add(organization::Column::Slug.eq(slug)),
        )
        .await
    }

    pub async fn credentials_id_by_name(
        &self,
        organization_id: Uuid,
        name: &str,
    ) -> Result<Option<Uuid>, DbErr> {
        self.id_where::<storage_credential::Entity>(
            storage_credential::Column::Id,
            Condition::all()
                .add(storage_credential::Column::OrganizationId.eq(organization_id))
                .add(storage_credential::Column::Name.eq(name)),
        )
        .await
    }

    pub async fn api_token_id_by_name(
        &self,
        user_id: Uuid,
        name: &str,
    ) -> Result<Option<Uuid>, DbErr> {
        self.id_where::<api_token::Entity>(
            api_token::Column::Id,
            Condition::all()
                .add(api_token::Column::UserId.eq(user_id))
                .add(api_token::Column::Name.eq(name)),
        )
        .await
    }

    /// The id of the one row of `id`'s table that meets `condition`.
    async fn id_where<E: EntityTrait>(
        &self,
        id: E::Column,
        condition: Condition,
    ) -> Result<Option<Uuid>, DbErr> {
        E::find()
            .select_only()
            .column(id)
            .filter(condition)
            .into_tuple()
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
            // The column's default (0); older schemas do not have it yet.
            event_sequence: sea_orm::ActiveValue::NotSet,
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
        organization_id: Option<Uuid>,
    ) -> Result<Uuid, DbErr> {
        let id = Uuid::now_v7();
        api_token::Entity::insert(api_token::ActiveModel {
            id: Set(id),
            user_id: Set(user_id),
            name: Set(name.to_owned()),
            token_hash: Set(token_hash.to_owned()),
            expires_at: Set(expires_at),
            created_at: Set(Utc::now()),
            organization_id: Set(organization_id),
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
        organization_id: Option<Uuid>,
    ) -> Result<Uuid, DbErr> {
        let id = Uuid::now_v7();
        session::Entity::insert(session::ActiveModel {
            id: Set(id),
            user_id: Set(user_id),
            token_hash: Set(token_hash.to_owned()),
            expires_at: Set(expires_at),
            created_at: Set(Utc::now()),
            organization_id: Set(organization_id),
        })
        .exec_without_returning(&self.db)
        .await?;
        Ok(id)
    }
}

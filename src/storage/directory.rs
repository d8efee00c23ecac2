//! The request path's reads of this service's copy of what other systems
//! own (organizations, users, memberships, plans, credentials, API tokens,
//! sessions): authentication and CreateWorkspace's checks. Everything
//! returned is a domain type. The admin's lookups and writes are in
//! `admin.rs`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Statement,
};
use uuid::Uuid;

use super::{
    Storage,
    callers::{CallerOrganizations, OrganizationContext, TokenCaller},
    entities::*,
};
use crate::domain::{Caller, CredentialsKind, OrganizationRole, OrganizationSummary, Plan, SignIn};

pub(super) fn caller(user: &user::Model) -> Caller {
    caller_of(user.id, user.validated)
}

pub(super) fn caller_of(user_id: Uuid, validated: bool) -> Caller {
    Caller {
        user_id,
        validated,
        signin: None,
        workspace_scope: None,
        organization_scope: None,
    }
}

fn context(org: organization::Model, plan: plan::Model) -> Result<OrganizationContext, DbErr> {
    let organization = OrganizationSummary {
        id: org.id,
        name: org.name,
        slug: org.slug,
    };
    let plan = Plan {
        name: plan.name,
        creation_allowed: plan.creation_allowed,
        workspace_limit: plan.workspace_limit,
    };
    context_of(
        organization,
        &org.workspace_creation,
        org.workspace_count,
        plan,
    )
}

/// An organization's context from its parts as stored.
pub(super) fn context_of(
    organization: OrganizationSummary,
    policy: &str,
    workspace_count: i32,
    plan: Plan,
) -> Result<OrganizationContext, DbErr> {
    Ok(OrganizationContext {
        policy: policy
            .parse()
            .map_err(|_| corrupt("workspace creation policy", policy))?,
        organization,
        plan,
        workspace_count,
    })
}

/// A stored organization role.
pub(super) fn role_of(role: &str) -> Result<OrganizationRole, DbErr> {
    role.parse().map_err(|_| corrupt("organization role", role))
}

pub(super) fn corrupt(what: &str, value: &str) -> DbErr {
    DbErr::Custom(format!("unexpected {what} in the database: {value:?}"))
}

impl Storage {
    // ---- reads -------------------------------------------------------

    /// The user with this id, if any.
    #[tracing::instrument(level = "debug", name = "db.user", skip_all, fields(otel.kind = "client", otel.name = "SELECT users", db.system.name = self.system(), db.operation.name = "SELECT", db.collection.name = "users", db.namespace = self.namespace(), server.address = self.server_address(), server.port = self.server_port()))]
    async fn user(&self, id: Uuid) -> Result<Option<user::Model>, DbErr> {
        user::Entity::find_by_id(id).one(&self.db).await
    }

    /// `user_id`'s role in `organization_id`, if it is a member.
    #[tracing::instrument(level = "debug", name = "db.organization_role", skip_all, fields(otel.kind = "client", otel.name = "SELECT organization_memberships", db.system.name = self.system(), db.operation.name = "SELECT", db.collection.name = "organization_memberships", db.namespace = self.namespace(), server.address = self.server_address(), server.port = self.server_port()))]
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
        membership.map(|m| role_of(&m.role)).transpose()
    }

    /// The organizations `user_id` is a member of (only `organization_id`
    /// if given), with its role in each and each one's policy, plan and
    /// count: one query. At most `limit` of them, by organization id.
    #[tracing::instrument(level = "debug", name = "db.memberships", skip_all, fields(otel.kind = "client", otel.name = "SELECT organization_memberships", db.system.name = self.system(), db.operation.name = "SELECT", db.collection.name = "organization_memberships", db.namespace = self.namespace(), server.address = self.server_address(), server.port = self.server_port()))]
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
                let role = role_of(&membership.role)?;
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
    #[tracing::instrument(level = "debug", name = "db.credentials_kinds", skip_all, fields(otel.kind = "client", otel.name = "SELECT storage_credentials", db.system.name = self.system(), db.operation.name = "SELECT", db.collection.name = "storage_credentials", db.namespace = self.namespace(), server.address = self.server_address(), server.port = self.server_port()))]
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
    #[tracing::instrument(level = "debug", name = "db.user_of_api_token", skip_all, fields(otel.kind = "client", otel.name = "SELECT api_tokens", db.system.name = self.system(), db.operation.name = "SELECT", db.collection.name = "api_tokens", db.namespace = self.namespace(), server.address = self.server_address(), server.port = self.server_port()))]
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
                .then(|| Caller {
                    organization_scope: token.organization_id,
                    ..caller(&user)
                })
        }))
    }

    /// The user an unexpired session (by its hash) belongs to; one query
    /// for the session and its user.
    #[tracing::instrument(level = "debug", name = "db.user_of_session", skip_all, fields(otel.kind = "client", otel.name = "SELECT sessions", db.system.name = self.system(), db.operation.name = "SELECT", db.collection.name = "sessions", db.namespace = self.namespace(), server.address = self.server_address(), server.port = self.server_port()))]
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
                organization_scope: session.organization_id,
                ..caller(&user)
            })
        }))
    }

    /// The user a verified JWT names, if it exists here.
    pub async fn user_of_subject(&self, id: Uuid) -> Result<Option<Caller>, DbErr> {
        Ok(self.user(id).await?.as_ref().map(caller))
    }

    /// CreateWorkspace's authentication by API token (by its hash): the
    /// caller and its first organizations, or `None` for no such unexpired
    /// token. With `may_keep`, a caller kept from an earlier call (read
    /// less than `KEPT_FOR` ago, `callers.rs`) is answered without a round
    /// trip, marked as kept (`CallerOrganizations::kept_for`); otherwise,
    /// or when none is kept, it is read, and kept for the next calls.
    pub async fn creator_of_api_token(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
        may_keep: bool,
    ) -> Result<Option<(Caller, CallerOrganizations)>, DbErr> {
        if may_keep && let Some(kept) = self.callers.get(token_hash, now) {
            return Ok(Some((kept.caller, kept.organizations.kept(token_hash))));
        }
        let found = self.read_token_caller(token_hash).await?;
        let Some(found) = found.filter(|found| found.expires_at.is_none_or(|at| at > now)) else {
            self.callers.forget(token_hash);
            return Ok(None);
        };
        self.callers.keep(token_hash, found.clone());
        Ok(Some((found.caller, found.organizations)))
    }

    /// The user an API token (by its hash) belongs to, the token's expiry,
    /// and in the same query the user's first `CallerOrganizations::READ`
    /// memberships with their organizations and plans: authentication and
    /// CreateWorkspace's check 3 in one round trip (see
    /// `creator_of_api_token`).
    #[tracing::instrument(level = "debug", name = "db.user_of_api_token", skip_all, fields(otel.kind = "client", otel.name = "SELECT api_tokens", db.system.name = self.system(), db.operation.name = "SELECT", db.collection.name = "api_tokens", db.namespace = self.namespace(), server.address = self.server_address(), server.port = self.server_port()))]
    async fn read_token_caller(&self, token_hash: &str) -> Result<Option<TokenCaller>, DbErr> {
        let backend = self.db.get_database_backend();
        let sql = token_query_sql(backend);
        let limit = CallerOrganizations::READ as i64 + 1;
        let rows = self
            .db
            .query_all_raw(Statement::from_sql_and_values(
                backend,
                sql,
                [token_hash.into(), limit.into()],
            ))
            .await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let expires_at: Option<DateTime<Utc>> = first.try_get("", "expires_at")?;
        let caller = Caller {
            organization_scope: first.try_get("", "bound_to")?,
            ..caller_of(
                first.try_get("", "user_id")?,
                first.try_get("", "validated")?,
            )
        };
        let mut memberships = Vec::new();
        for row in &rows {
            let Some(organization_id) = row.try_get::<Option<Uuid>>("", "organization_id")? else {
                continue;
            };
            let organization = OrganizationSummary {
                id: organization_id,
                name: row.try_get("", "organization_name")?,
                slug: row.try_get("", "slug")?,
            };
            let plan = Plan {
                name: row.try_get("", "plan_name")?,
                creation_allowed: row.try_get("", "creation_allowed")?,
                workspace_limit: row.try_get("", "workspace_limit")?,
            };
            let policy: String = row.try_get("", "workspace_creation")?;
            let context = context_of(
                organization,
                &policy,
                row.try_get("", "workspace_count")?,
                plan,
            )?;
            let role: String = row.try_get("", "role")?;
            memberships.push((role_of(&role)?, context));
        }
        let complete = (rows.len() as i64) < limit;
        memberships.truncate(CallerOrganizations::READ as usize);
        Ok(Some(TokenCaller {
            caller,
            organizations: CallerOrganizations::read(memberships, complete),
            expires_at,
        }))
    }
}

/// The API token's query for `backend`: $1 the token's hash, $2 how many
/// memberships.
/// The user's first memberships by organization id, read as a range
/// of `organization_memberships (user_id, organization_id)`
/// (m20261204_000001), however many it has: on PostgreSQL in a
/// LATERAL with its own LIMIT (a LIMIT over the joins read and
/// sorted them all); SQLite, whose token and user are one row each,
/// walks the index in order and stops.
fn token_query_sql(backend: DbBackend) -> String {
    const COLUMNS: &str = "SELECT t.expires_at, t.organization_id AS bound_to, u.id AS user_id, u.validated, \
        m.role, o.id AS organization_id, o.name AS organization_name, o.slug, \
        o.workspace_creation, o.workspace_count, \
        p.name AS plan_name, p.creation_allowed, p.workspace_limit \
        FROM api_tokens t JOIN users u ON u.id = t.user_id";
    const REST: &str = "LEFT JOIN organizations o ON o.id = m.organization_id \
        LEFT JOIN plans p ON p.id = o.plan_id WHERE t.token_hash = $1";
    match backend {
        DbBackend::Postgres => format!(
            "{COLUMNS} LEFT JOIN LATERAL (SELECT organization_id, role FROM organization_memberships \
             WHERE user_id = u.id ORDER BY organization_id LIMIT $2) m ON true \
             {REST} ORDER BY m.organization_id"
        ),
        _ => format!(
            "{COLUMNS} LEFT JOIN organization_memberships m ON m.user_id = u.id \
             {REST} ORDER BY m.organization_id LIMIT $2"
        )
        .replace("$1", "?")
        .replace("$2", "?"),
    }
}

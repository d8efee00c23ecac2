//! The bootstrap file: applied again and again, it leaves the database
//! holding what it describes.

use chrono::{Duration, Utc};
use serde::Deserialize;

use super::resolve::{bound_to, check_limit, resolve_organization, resolve_plan, resolve_user};
use crate::{
    auth::issue::{create_bound_api_token, create_bound_session, hash_secret},
    domain::{CredentialsKind, OrganizationRole, WorkspaceCreationPolicy},
    storage::Storage,
};

/// The bootstrap file: the same things the admin commands create, named by
/// natural keys (plan name, organization slug, user email) so it can be
/// applied again and again.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootstrapFile {
    #[serde(default)]
    pub plans: Vec<BootstrapPlan>,
    #[serde(default)]
    pub organizations: Vec<BootstrapOrganization>,
    #[serde(default)]
    pub users: Vec<BootstrapUser>,
    #[serde(default)]
    pub memberships: Vec<BootstrapMembership>,
    #[serde(default)]
    pub credentials: Vec<BootstrapCredentials>,
    #[serde(default)]
    pub api_tokens: Vec<BootstrapApiToken>,
    #[serde(default)]
    pub sessions: Vec<BootstrapSession>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootstrapPlan {
    pub name: String,
    #[serde(default = "yes")]
    pub creation_allowed: bool,
    #[serde(default)]
    pub workspace_limit: Option<i32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootstrapOrganization {
    pub name: String,
    pub slug: String,
    /// Plan name.
    pub plan: String,
    #[serde(default)]
    pub workspace_creation: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootstrapUser {
    pub email: String,
    #[serde(default)]
    pub name: String,
    #[serde(default = "yes")]
    pub validated: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootstrapMembership {
    /// Organization slug.
    pub organization: String,
    /// User email.
    pub user: String,
    pub role: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootstrapCredentials {
    /// Organization slug.
    pub organization: String,
    pub kind: String,
    pub name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootstrapApiToken {
    /// User email.
    pub user: String,
    pub name: String,
    /// A fixed token; a random one is made (and printed) when absent.
    #[serde(default)]
    pub token: Option<String>,
    /// Organization slug (or id) the token is bound to, which the user
    /// must belong to; none: unbound.
    #[serde(default)]
    pub organization: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootstrapSession {
    /// User email.
    pub user: String,
    /// The cookie value.
    pub token: String,
    #[serde(default = "one_day")]
    pub ttl_hours: i64,
    /// Organization slug (or id) the session is bound to, which the user
    /// must belong to; none: unbound.
    #[serde(default)]
    pub organization: Option<String>,
}

fn yes() -> bool {
    true
}

fn one_day() -> i64 {
    24
}

/// Applies a bootstrap file: creates what is missing, brings settings
/// (plan limits, policy, validation, roles) to the file's values, leaves
/// existing tokens alone. Returns one line per entry, `kind key id`.
pub async fn apply_bootstrap(
    storage: &Storage,
    file: &BootstrapFile,
) -> anyhow::Result<Vec<String>> {
    let mut lines = Vec::new();
    for entry in &file.plans {
        lines.push(plan(storage, entry).await?);
    }
    for entry in &file.organizations {
        lines.push(organization(storage, entry).await?);
    }
    for entry in &file.users {
        lines.push(user(storage, entry).await?);
    }
    for entry in &file.memberships {
        lines.push(membership(storage, entry).await?);
    }
    for entry in &file.credentials {
        lines.push(credentials(storage, entry).await?);
    }
    for entry in &file.api_tokens {
        lines.push(api_token(storage, entry).await?);
    }
    for entry in &file.sessions {
        lines.push(session(storage, entry).await?);
    }
    Ok(lines)
}

async fn plan(storage: &Storage, plan: &BootstrapPlan) -> anyhow::Result<String> {
    let limit = check_limit(plan.workspace_limit)?;
    let id = match storage.plan_id_by_name(&plan.name).await? {
        Some(existing) => {
            storage
                .update_plan(existing, plan.creation_allowed, limit)
                .await?;
            existing
        }
        None => {
            storage
                .create_plan(&plan.name, plan.creation_allowed, limit)
                .await?
        }
    };
    Ok(format!("plan {} {id}", plan.name))
}

async fn organization(storage: &Storage, org: &BootstrapOrganization) -> anyhow::Result<String> {
    let policy: WorkspaceCreationPolicy = org
        .workspace_creation
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(anyhow::Error::msg)?
        .unwrap_or_default();
    let plan = resolve_plan(storage, &org.plan).await?;
    let id = match storage.organization_id_by_slug(&org.slug).await? {
        Some(existing) => {
            storage.set_organization_policy(existing, policy).await?;
            storage.set_organization_plan(existing, plan).await?;
            existing
        }
        None => {
            storage
                .create_organization(&org.name, &org.slug, plan, policy)
                .await?
        }
    };
    Ok(format!("organization {} {id}", org.slug))
}

async fn user(storage: &Storage, user: &BootstrapUser) -> anyhow::Result<String> {
    let id = match storage.user_id_by_email(&user.email).await? {
        Some(existing) => {
            storage.set_user_validated(existing, user.validated).await?;
            existing
        }
        None => {
            storage
                .create_user(&user.email, &user.name, user.validated)
                .await?
        }
    };
    Ok(format!("user {} {id}", user.email))
}

async fn membership(storage: &Storage, membership: &BootstrapMembership) -> anyhow::Result<String> {
    let role: OrganizationRole = membership.role.parse().map_err(anyhow::Error::msg)?;
    let org = resolve_organization(storage, &membership.organization).await?;
    let user = resolve_user(storage, &membership.user).await?;
    let id = storage.put_organization_member(org, user, role).await?;
    Ok(format!(
        "membership {}/{} {id}",
        membership.organization, membership.user
    ))
}

async fn credentials(
    storage: &Storage,
    credentials: &BootstrapCredentials,
) -> anyhow::Result<String> {
    let kind: CredentialsKind = credentials.kind.parse().map_err(anyhow::Error::msg)?;
    let org = resolve_organization(storage, &credentials.organization).await?;
    let id = match storage
        .credentials_id_by_name(org, &credentials.name)
        .await?
    {
        Some(existing) => existing,
        None => {
            storage
                .create_credentials(org, kind, &credentials.name)
                .await?
        }
    };
    Ok(format!(
        "credentials {}/{} {id}",
        credentials.organization, credentials.name
    ))
}

/// An API token, bound to its `organization` when given; one that exists
/// (by user and name) is left as it is.
async fn api_token(storage: &Storage, token: &BootstrapApiToken) -> anyhow::Result<String> {
    let user = resolve_user(storage, &token.user).await?;
    if let Some(existing) = storage.api_token_id_by_name(user, &token.name).await? {
        return Ok(format!(
            "api_token {}/{} {} (exists)",
            token.user, token.name, existing
        ));
    }
    let organization = bound_to(storage, token.organization.as_deref()).await?;
    let created = create_bound_api_token(
        storage,
        user,
        &token.name,
        token.token.as_deref(),
        None,
        organization,
    )
    .await?;
    Ok(format!(
        "api_token {}/{} {}",
        token.user, token.name, created.token
    ))
}

/// A session, bound to its `organization` when given; one that exists (by
/// cookie value) is left as it is.
async fn session(storage: &Storage, session: &BootstrapSession) -> anyhow::Result<String> {
    let user = resolve_user(storage, &session.user).await?;
    let hash = hash_secret(&session.token);
    if storage.user_of_session(&hash, Utc::now()).await?.is_some() {
        return Ok(format!("session {} (exists)", session.user));
    }
    let organization = bound_to(storage, session.organization.as_deref()).await?;
    create_bound_session(
        storage,
        user,
        Some(&session.token),
        Duration::hours(session.ttl_hours),
        organization,
    )
    .await?;
    Ok(format!("session {} created", session.user))
}

//! The admin command line (`workspace-service admin …`), the bootstrap
//! file and the demo seed: this service's copy of organizations, users,
//! memberships, plans, policy, credentials, API tokens and sessions.
//!
//! Every `create` prints the new id (or the secret) as the last line of its
//! stdout, so scripts can capture it; logs go to stderr.

use std::{fs, path::PathBuf};

use anyhow::{Context, bail};
use chrono::{Duration, Utc};
use clap::{Args, Subcommand};
use serde::Deserialize;
use uuid::Uuid;

use crate::{
    auth::{hash_secret, new_secret},
    domain::{CredentialsKind, OrganizationRole, WorkspaceCreationPolicy},
    storage::{NewApiToken, Storage},
};

/// Prefix of API tokens, so a leaked one is recognisable.
pub const API_TOKEN_PREFIX: &str = "wst_";
/// Prefix of session cookie values.
pub const SESSION_PREFIX: &str = "wss_";

#[derive(Debug, Args)]
#[command(arg_required_else_help = true)]
pub struct AdminArgs {
    /// Apply a JSON bootstrap file (plans, organizations, users,
    /// memberships, credentials, API tokens, sessions) idempotently.
    #[arg(long, value_name = "FILE")]
    pub bootstrap: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<AdminCommand>,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Plans: whether workspaces may be created, and how many.
    #[command(subcommand)]
    Plan(PlanCommand),
    /// Organizations and their workspace creation policy.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Users.
    #[command(subcommand)]
    User(UserCommand),
    /// Organization memberships and roles.
    #[command(subcommand)]
    Member(MemberCommand),
    /// Document store and file store credentials of an organization.
    #[command(subcommand)]
    Credentials(CredentialsCommand),
    /// API tokens (Bearer or Basic auth).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Sessions (the `session` cookie).
    #[command(subcommand)]
    Session(SessionCommand),
}

#[derive(Debug, Subcommand)]
pub enum PlanCommand {
    /// Create a plan; prints its id.
    Create {
        #[arg(long)]
        name: String,
        /// Most workspaces an organization on this plan may have; none: no limit.
        #[arg(long)]
        workspace_limit: Option<i32>,
        /// The plan does not allow creating workspaces (seed 000's 402).
        #[arg(long)]
        no_workspace_creation: bool,
    },
    /// Change a plan (by id or name).
    Update {
        #[arg(long)]
        plan: String,
        #[arg(long)]
        workspace_limit: Option<i32>,
        #[arg(long)]
        no_workspace_creation: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Create an organization; prints its id.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        slug: String,
        /// The plan, by id or name.
        #[arg(long)]
        plan: String,
        /// ROLE_BASED (default), ALL_MEMBERS or ADMINS_ONLY.
        #[arg(long, default_value = "ROLE_BASED")]
        workspace_creation: WorkspaceCreationPolicy,
    },
    /// Set who may create workspaces in an organization (by id or slug).
    SetPolicy {
        #[arg(long)]
        org: String,
        #[arg(long)]
        workspace_creation: WorkspaceCreationPolicy,
    },
    /// Move an organization (by id or slug) to a plan (by id or name).
    SetPlan {
        #[arg(long)]
        org: String,
        #[arg(long)]
        plan: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; prints its id.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "")]
        name: String,
        /// The account is not validated yet (seed 003's 400).
        #[arg(long)]
        unvalidated: bool,
    },
    /// Mark a user (by id or email) validated, or not with `--no`.
    Validate {
        #[arg(long)]
        user: String,
        #[arg(long)]
        no: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    /// Add a user to an organization with a role, or change its role;
    /// prints the membership's id.
    Add {
        #[arg(long)]
        org: String,
        #[arg(long)]
        user: String,
        /// OWNER, ADMIN, WORKSPACE_CREATOR or MEMBER.
        #[arg(long)]
        role: OrganizationRole,
    },
}

#[derive(Debug, Subcommand)]
pub enum CredentialsCommand {
    /// Register credentials of an organization; prints their id.
    Create {
        #[arg(long)]
        org: String,
        /// DOCUMENT_STORE or FILE_STORE.
        #[arg(long)]
        kind: CredentialsKind,
        #[arg(long)]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token for a user; prints the token (shown only once).
    Create {
        #[arg(long)]
        user: String,
        #[arg(long, default_value = "cli")]
        name: String,
        /// Days until the token stops working; none: never.
        #[arg(long)]
        expires_in_days: Option<i64>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SessionCommand {
    /// Create a session for a user; prints the `session` cookie value.
    Create {
        #[arg(long)]
        user: String,
        #[arg(long, default_value_t = 24)]
        ttl_hours: i64,
    },
}

/// Runs `workspace-service admin …`.
pub async fn run(storage: &Storage, args: AdminArgs) -> anyhow::Result<()> {
    if let Some(path) = &args.bootstrap {
        let text =
            fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let file: BootstrapFile = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a valid bootstrap file", path.display()))?;
        for line in apply_bootstrap(storage, &file).await? {
            println!("{line}");
        }
    }
    let Some(command) = args.command else {
        return Ok(());
    };
    let answer = match command {
        AdminCommand::Plan(PlanCommand::Create {
            name,
            workspace_limit,
            no_workspace_creation,
        }) => storage
            .create_plan(&name, !no_workspace_creation, check_limit(workspace_limit)?)
            .await?
            .to_string(),
        AdminCommand::Plan(PlanCommand::Update {
            plan,
            workspace_limit,
            no_workspace_creation,
        }) => {
            let id = resolve_plan(storage, &plan).await?;
            storage
                .update_plan(id, !no_workspace_creation, check_limit(workspace_limit)?)
                .await?;
            id.to_string()
        }
        AdminCommand::Org(OrgCommand::Create {
            name,
            slug,
            plan,
            workspace_creation,
        }) => {
            let plan = resolve_plan(storage, &plan).await?;
            storage
                .create_organization(&name, &slug, plan, workspace_creation)
                .await?
                .to_string()
        }
        AdminCommand::Org(OrgCommand::SetPolicy {
            org,
            workspace_creation,
        }) => {
            let id = resolve_organization(storage, &org).await?;
            storage
                .set_organization_policy(id, workspace_creation)
                .await?;
            id.to_string()
        }
        AdminCommand::Org(OrgCommand::SetPlan { org, plan }) => {
            let id = resolve_organization(storage, &org).await?;
            let plan = resolve_plan(storage, &plan).await?;
            storage.set_organization_plan(id, plan).await?;
            id.to_string()
        }
        AdminCommand::User(UserCommand::Create {
            email,
            name,
            unvalidated,
        }) => storage
            .create_user(&email, &name, !unvalidated)
            .await?
            .to_string(),
        AdminCommand::User(UserCommand::Validate { user, no }) => {
            let id = resolve_user(storage, &user).await?;
            storage.set_user_validated(id, !no).await?;
            id.to_string()
        }
        AdminCommand::Member(MemberCommand::Add { org, user, role }) => {
            let org = resolve_organization(storage, &org).await?;
            let user = resolve_user(storage, &user).await?;
            storage
                .put_organization_member(org, user, role)
                .await?
                .to_string()
        }
        AdminCommand::Credentials(CredentialsCommand::Create { org, kind, name }) => {
            let org = resolve_organization(storage, &org).await?;
            storage
                .create_credentials(org, kind, &name)
                .await?
                .to_string()
        }
        AdminCommand::Token(TokenCommand::Create {
            user,
            name,
            expires_in_days,
        }) => {
            let user = resolve_user(storage, &user).await?;
            let expires_at = expires_in_days.map(|days| Utc::now() + Duration::days(days));
            create_api_token(storage, user, &name, None, expires_at)
                .await?
                .token
        }
        AdminCommand::Session(SessionCommand::Create { user, ttl_hours }) => {
            let user = resolve_user(storage, &user).await?;
            create_session(storage, user, None, Duration::hours(ttl_hours)).await?
        }
    };
    println!("{answer}");
    Ok(())
}

fn check_limit(limit: Option<i32>) -> anyhow::Result<Option<i32>> {
    match limit {
        Some(n) if n < 0 => bail!("a workspace limit cannot be negative"),
        other => Ok(other),
    }
}

/// Creates an API token (random unless `token` is given); only its hash is
/// stored.
pub async fn create_api_token(
    storage: &Storage,
    user_id: Uuid,
    name: &str,
    token: Option<&str>,
    expires_at: Option<chrono::DateTime<Utc>>,
) -> anyhow::Result<NewApiToken> {
    let token = token.map_or_else(|| new_secret(API_TOKEN_PREFIX), str::to_owned);
    if token.len() < 16 || token.contains('.') || token.chars().any(char::is_whitespace) {
        bail!("an API token needs at least 16 characters, no dots and no spaces");
    }
    let id = storage
        .create_api_token(user_id, name, &hash_secret(&token), expires_at)
        .await?;
    Ok(NewApiToken { id, token })
}

/// Creates a session and returns its cookie value.
pub async fn create_session(
    storage: &Storage,
    user_id: Uuid,
    value: Option<&str>,
    ttl: Duration,
) -> anyhow::Result<String> {
    let value = value.map_or_else(|| new_secret(SESSION_PREFIX), str::to_owned);
    storage
        .create_session(user_id, &hash_secret(&value), Utc::now() + ttl)
        .await?;
    Ok(value)
}

async fn resolve_plan(storage: &Storage, plan: &str) -> anyhow::Result<Uuid> {
    if let Ok(id) = Uuid::try_parse(plan) {
        return Ok(id);
    }
    let found = storage.plan_by_name(plan).await?;
    found
        .map(|p| p.id)
        .with_context(|| format!("no plan named {plan:?}"))
}

async fn resolve_organization(storage: &Storage, org: &str) -> anyhow::Result<Uuid> {
    if let Ok(id) = Uuid::try_parse(org) {
        return Ok(id);
    }
    let found = storage.organization_by_slug(org).await?;
    found
        .map(|o| o.id)
        .with_context(|| format!("no organization with slug {org:?}"))
}

async fn resolve_user(storage: &Storage, user: &str) -> anyhow::Result<Uuid> {
    if let Ok(id) = Uuid::try_parse(user) {
        return Ok(id);
    }
    let found = storage.user_by_email(user).await?;
    found
        .map(|u| u.id)
        .with_context(|| format!("no user with email {user:?}"))
}

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
    for plan in &file.plans {
        let limit = check_limit(plan.workspace_limit)?;
        let id = match storage.plan_by_name(&plan.name).await? {
            Some(existing) => {
                storage
                    .update_plan(existing.id, plan.creation_allowed, limit)
                    .await?;
                existing.id
            }
            None => {
                storage
                    .create_plan(&plan.name, plan.creation_allowed, limit)
                    .await?
            }
        };
        lines.push(format!("plan {} {id}", plan.name));
    }
    for org in &file.organizations {
        let policy: WorkspaceCreationPolicy = org
            .workspace_creation
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(anyhow::Error::msg)?
            .unwrap_or_default();
        let plan = resolve_plan(storage, &org.plan).await?;
        let id = match storage.organization_by_slug(&org.slug).await? {
            Some(existing) => {
                storage.set_organization_policy(existing.id, policy).await?;
                storage.set_organization_plan(existing.id, plan).await?;
                existing.id
            }
            None => {
                storage
                    .create_organization(&org.name, &org.slug, plan, policy)
                    .await?
            }
        };
        lines.push(format!("organization {} {id}", org.slug));
    }
    for user in &file.users {
        let id = match storage.user_by_email(&user.email).await? {
            Some(existing) => {
                storage
                    .set_user_validated(existing.id, user.validated)
                    .await?;
                existing.id
            }
            None => {
                storage
                    .create_user(&user.email, &user.name, user.validated)
                    .await?
            }
        };
        lines.push(format!("user {} {id}", user.email));
    }
    for membership in &file.memberships {
        let role: OrganizationRole = membership.role.parse().map_err(anyhow::Error::msg)?;
        let org = resolve_organization(storage, &membership.organization).await?;
        let user = resolve_user(storage, &membership.user).await?;
        let id = storage.put_organization_member(org, user, role).await?;
        lines.push(format!(
            "membership {}/{} {id}",
            membership.organization, membership.user
        ));
    }
    for credentials in &file.credentials {
        let kind: CredentialsKind = credentials.kind.parse().map_err(anyhow::Error::msg)?;
        let org = resolve_organization(storage, &credentials.organization).await?;
        let id = match storage.credentials_by_name(org, &credentials.name).await? {
            Some(existing) => existing.id,
            None => {
                storage
                    .create_credentials(org, kind, &credentials.name)
                    .await?
            }
        };
        lines.push(format!(
            "credentials {}/{} {id}",
            credentials.organization, credentials.name
        ));
    }
    for token in &file.api_tokens {
        let user = resolve_user(storage, &token.user).await?;
        if let Some(existing) = storage.api_token_by_name(user, &token.name).await? {
            lines.push(format!(
                "api_token {}/{} {} (exists)",
                token.user, token.name, existing.id
            ));
            continue;
        }
        let created =
            create_api_token(storage, user, &token.name, token.token.as_deref(), None).await?;
        lines.push(format!(
            "api_token {}/{} {}",
            token.user, token.name, created.token
        ));
    }
    for session in &file.sessions {
        let user = resolve_user(storage, &session.user).await?;
        let hash = hash_secret(&session.token);
        if storage.user_of_session(&hash, Utc::now()).await?.is_some() {
            lines.push(format!("session {} (exists)", session.user));
            continue;
        }
        create_session(
            storage,
            user,
            Some(&session.token),
            Duration::hours(session.ttl_hours),
        )
        .await?;
        lines.push(format!("session {} created", session.user));
    }
    Ok(lines)
}

/// Slug of the demo organization.
pub const DEMO_SLUG: &str = "demo";
/// Email of the demo organization's owner.
pub const DEMO_OWNER: &str = "owner@demo.example";
const DEMO_TOKEN_NAME: &str = "demo";

/// Seeds the demo organization, owner and API token when missing, and
/// replaces the demo token on every start (only its hash is stored, so a
/// new one is the only way to print a working command). Returns the token.
pub async fn seed_demo(storage: &Storage) -> anyhow::Result<String> {
    let file = BootstrapFile {
        plans: vec![BootstrapPlan {
            name: "demo".into(),
            creation_allowed: true,
            workspace_limit: Some(100),
        }],
        organizations: vec![BootstrapOrganization {
            name: "Demo Organization".into(),
            slug: DEMO_SLUG.into(),
            plan: "demo".into(),
            workspace_creation: None,
        }],
        users: vec![BootstrapUser {
            email: DEMO_OWNER.into(),
            name: "Demo Owner".into(),
            validated: true,
        }],
        memberships: vec![BootstrapMembership {
            organization: DEMO_SLUG.into(),
            user: DEMO_OWNER.into(),
            role: "OWNER".into(),
        }],
        ..BootstrapFile::default()
    };
    if storage.organization_by_slug(DEMO_SLUG).await?.is_none() {
        apply_bootstrap(storage, &file).await?;
    }
    let owner = resolve_user(storage, DEMO_OWNER).await?;
    storage
        .delete_api_tokens_named(owner, DEMO_TOKEN_NAME)
        .await?;
    Ok(
        create_api_token(storage, owner, DEMO_TOKEN_NAME, None, None)
            .await?
            .token,
    )
}

//! The admin command line (`workspace-service admin …`), the bootstrap
//! file and the demo seed: this service's copy of organizations, users,
//! memberships, plans, policy, credentials, API tokens and sessions.
//!
//! - `cli.rs`: the command tree; `run` here carries it out.
//! - `bootstrap.rs`: the idempotent bootstrap file.
//! - `demo.rs`: the demo organization seeded at start on SQLite.
//! - `events.rs`: parked events, retried or dropped.
//!
//! Every `create` prints the new id (or the secret) as the last line of its
//! stdout, so scripts can capture it; logs go to stderr.

mod bootstrap;
mod cli;
mod demo;
mod events;

use std::fs;

use anyhow::{Context, bail};
use chrono::{Duration, Utc};
use uuid::Uuid;

pub use bootstrap::{
    BootstrapApiToken, BootstrapCredentials, BootstrapFile, BootstrapMembership,
    BootstrapOrganization, BootstrapPlan, BootstrapSession, BootstrapUser, apply_bootstrap,
};
pub use cli::{
    AdminArgs, AdminCommand, CredentialsCommand, EventsCommand, MemberCommand, OrgCommand,
    PlanCommand, SessionCommand, TokenCommand, UserCommand, WorkspaceCommand,
};
pub use demo::{DEMO_OWNER, DEMO_SLUG, seed_demo};

/// The actor of the events an operator's commands cause: nobody's user.
const OPERATOR: Uuid = Uuid::nil();

use crate::{
    auth::issue::{create_api_token, create_session},
    storage::{Changed, MemberChange, OwnersProtected, Storage},
};

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
        AdminCommand::Workspace(WorkspaceCommand::Delete { id }) => {
            let id =
                Uuid::try_parse(&id).with_context(|| format!("{id:?} is not a workspace id"))?;
            let organization = storage
                .workspace_organization(id)
                .await?
                .with_context(|| format!("no workspace {id}"))?;
            match storage
                .delete_workspace(id, organization, None, OPERATOR)
                .await?
            {
                Changed::Done(()) => id.to_string(),
                _ => bail!("no workspace {id}"),
            }
        }
        AdminCommand::Workspace(WorkspaceCommand::SetMember {
            workspace,
            user,
            role,
        }) => {
            let id = Uuid::try_parse(&workspace)
                .with_context(|| format!("{workspace:?} is not a workspace id"))?;
            let user = resolve_user(storage, &user).await?;
            let organization = storage
                .workspace_organization(id)
                .await?
                .with_context(|| format!("no workspace {id}"))?;
            let added = storage
                .add_member(id, organization, user, role, OPERATOR)
                .await?;
            let outcome = match added {
                MemberChange::AlreadyMember => {
                    storage
                        .change_member(
                            id,
                            organization,
                            user,
                            Some(role),
                            OwnersProtected::No,
                            OPERATOR,
                        )
                        .await?
                }
                other => other,
            };
            match outcome {
                MemberChange::Done(_) => user.to_string(),
                MemberChange::NotInOrganization => {
                    bail!("user {user} is not a member of the workspace's organization")
                }
                MemberChange::LastOwner => bail!("the workspace would have no OWNER left"),
                _ => bail!("no workspace {id}"),
            }
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
        AdminCommand::Events(command) => events::run(storage, command).await?,
    };
    println!("{answer}");
    Ok(())
}

pub(super) fn check_limit(limit: Option<i32>) -> anyhow::Result<Option<i32>> {
    match limit {
        Some(n) if n < 0 => bail!("a workspace limit cannot be negative"),
        other => Ok(other),
    }
}

pub(super) async fn resolve_plan(storage: &Storage, plan: &str) -> anyhow::Result<Uuid> {
    if let Ok(id) = Uuid::try_parse(plan) {
        return Ok(id);
    }
    let found = storage.plan_id_by_name(plan).await?;
    found.with_context(|| format!("no plan named {plan:?}"))
}

pub(super) async fn resolve_organization(storage: &Storage, org: &str) -> anyhow::Result<Uuid> {
    if let Ok(id) = Uuid::try_parse(org) {
        return Ok(id);
    }
    let found = storage.organization_id_by_slug(org).await?;
    found.with_context(|| format!("no organization with slug {org:?}"))
}

pub(super) async fn resolve_user(storage: &Storage, user: &str) -> anyhow::Result<Uuid> {
    if let Ok(id) = Uuid::try_parse(user) {
        return Ok(id);
    }
    let found = storage.user_id_by_email(user).await?;
    found.with_context(|| format!("no user with email {user:?}"))
}

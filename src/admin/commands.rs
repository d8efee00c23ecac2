//! `workspace-service admin …`'s subcommands, but the workspace repairs
//! (`workspace.rs`): each returns the line it prints last, the new id or
//! secret.

use chrono::{Duration, Utc};

use super::resolve::{bound_to, check_limit, resolve_organization, resolve_plan, resolve_user};
use super::{
    CredentialsCommand, MemberCommand, OrgCommand, PlanCommand, SessionCommand, TokenCommand,
    UserCommand,
};
use crate::{
    auth::issue::{create_bound_api_token, create_bound_session},
    storage::Storage,
};

pub(super) async fn plan(storage: &Storage, command: PlanCommand) -> anyhow::Result<String> {
    Ok(match command {
        PlanCommand::Create {
            name,
            workspace_limit,
            no_workspace_creation,
        } => storage
            .create_plan(&name, !no_workspace_creation, check_limit(workspace_limit)?)
            .await?
            .to_string(),
        PlanCommand::Update {
            plan,
            workspace_limit,
            no_workspace_creation,
        } => {
            let id = resolve_plan(storage, &plan).await?;
            storage
                .update_plan(id, !no_workspace_creation, check_limit(workspace_limit)?)
                .await?;
            id.to_string()
        }
    })
}

pub(super) async fn org(storage: &Storage, command: OrgCommand) -> anyhow::Result<String> {
    Ok(match command {
        OrgCommand::Create {
            name,
            slug,
            plan,
            workspace_creation,
        } => {
            let plan = resolve_plan(storage, &plan).await?;
            storage
                .create_organization(&name, &slug, plan, workspace_creation)
                .await?
                .to_string()
        }
        OrgCommand::SetPolicy {
            org,
            workspace_creation,
        } => {
            let id = resolve_organization(storage, &org).await?;
            storage
                .set_organization_policy(id, workspace_creation)
                .await?;
            id.to_string()
        }
        OrgCommand::SetPlan { org, plan } => {
            let id = resolve_organization(storage, &org).await?;
            let plan = resolve_plan(storage, &plan).await?;
            storage.set_organization_plan(id, plan).await?;
            id.to_string()
        }
    })
}

pub(super) async fn user(storage: &Storage, command: UserCommand) -> anyhow::Result<String> {
    Ok(match command {
        UserCommand::Create {
            email,
            name,
            unvalidated,
        } => storage
            .create_user(&email, &name, !unvalidated)
            .await?
            .to_string(),
        UserCommand::Validate { user, no } => {
            let id = resolve_user(storage, &user).await?;
            storage.set_user_validated(id, !no).await?;
            id.to_string()
        }
    })
}

pub(super) async fn member(storage: &Storage, command: MemberCommand) -> anyhow::Result<String> {
    let MemberCommand::Add { org, user, role } = command;
    let org = resolve_organization(storage, &org).await?;
    let user = resolve_user(storage, &user).await?;
    Ok(storage
        .put_organization_member(org, user, role)
        .await?
        .to_string())
}

pub(super) async fn credentials(
    storage: &Storage,
    command: CredentialsCommand,
) -> anyhow::Result<String> {
    let CredentialsCommand::Create { org, kind, name } = command;
    let org = resolve_organization(storage, &org).await?;
    Ok(storage
        .create_credentials(org, kind, &name)
        .await?
        .to_string())
}

/// `token create`: the token, bound to `--organization` when given.
pub(super) async fn token(storage: &Storage, command: TokenCommand) -> anyhow::Result<String> {
    let TokenCommand::Create {
        user,
        name,
        expires_in_days,
        organization,
    } = command;
    let user = resolve_user(storage, &user).await?;
    let organization = bound_to(storage, organization.as_deref()).await?;
    let expires_at = expires_in_days.map(|days| Utc::now() + Duration::days(days));
    let created =
        create_bound_api_token(storage, user, &name, None, expires_at, organization).await?;
    Ok(created.token)
}

/// `session create`: the cookie value, bound to `--organization` when
/// given.
pub(super) async fn session(storage: &Storage, command: SessionCommand) -> anyhow::Result<String> {
    let SessionCommand::Create {
        user,
        ttl_hours,
        organization,
    } = command;
    let user = resolve_user(storage, &user).await?;
    let organization = bound_to(storage, organization.as_deref()).await?;
    create_bound_session(
        storage,
        user,
        None,
        Duration::hours(ttl_hours),
        organization,
    )
    .await
}

//! `workspace-service admin workspace …`: what an operator may need to
//! repair.

use anyhow::{Context, bail};
use uuid::Uuid;

use super::{WorkspaceCommand, resolve::resolve_user};
use crate::{
    domain::WorkspaceRole,
    storage::{Changed, MemberChange, OwnersProtected, Storage},
};

/// The actor of the events an operator's commands cause: nobody's user.
const OPERATOR: Uuid = Uuid::nil();

pub(super) async fn run(storage: &Storage, command: WorkspaceCommand) -> anyhow::Result<String> {
    match command {
        WorkspaceCommand::Delete { id } => delete(storage, &id).await,
        WorkspaceCommand::SetMember {
            workspace,
            user,
            role,
        } => set_member(storage, &workspace, &user, role).await,
    }
}

async fn delete(storage: &Storage, id: &str) -> anyhow::Result<String> {
    let id = Uuid::try_parse(id).with_context(|| format!("{id:?} is not a workspace id"))?;
    let organization = storage
        .workspace_organization(id)
        .await?
        .with_context(|| format!("no workspace {id}"))?;
    match storage
        .delete_workspace(id, organization, None, OPERATOR)
        .await?
    {
        Changed::Done(()) => Ok(id.to_string()),
        _ => bail!("no workspace {id}"),
    }
}

async fn set_member(
    storage: &Storage,
    workspace: &str,
    user: &str,
    role: WorkspaceRole,
) -> anyhow::Result<String> {
    let id = Uuid::try_parse(workspace)
        .with_context(|| format!("{workspace:?} is not a workspace id"))?;
    let user = resolve_user(storage, user).await?;
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
        MemberChange::Done(_) => Ok(user.to_string()),
        MemberChange::NotInOrganization => {
            bail!("user {user} is not a member of the workspace's organization")
        }
        MemberChange::LastOwner => bail!("the workspace would have no OWNER left"),
        _ => bail!("no workspace {id}"),
    }
}

//! Who may do what to a workspace: see it, manage it, delete it.

use crate::{domain::WorkspaceRole, storage::WorkspaceAccess};

/// What an operation needs the caller to be allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Right {
    See,
    Manage,
    Delete,
}

pub(super) fn allows(access: &WorkspaceAccess, right: Right) -> bool {
    let runs_organization = access.organization_role.sees_all_workspaces();
    runs_organization
        || match (right, access.workspace_role) {
            (_, None) => false,
            (Right::See, Some(_)) => true,
            (Right::Manage, Some(role)) => {
                matches!(role, WorkspaceRole::Owner | WorkspaceRole::Admin)
            }
            (Right::Delete, Some(role)) => role == WorkspaceRole::Owner,
        }
}

//! Protobuf messages to domain types and back.

use chrono::{DateTime, Utc};
use prost_types::Timestamp;

use crate::{
    domain::{CreateWorkspaceInput, UpdateWorkspaceInput, WorkspaceRole},
    proto,
};

pub use crate::messages::{access_token, membership, workspace};

pub fn create_input(request: proto::CreateWorkspaceRequest) -> CreateWorkspaceInput {
    CreateWorkspaceInput {
        organization_id: request.organization_id,
        name: request.name,
        description: request.description,
        billing_account_email: request.billing_account_email,
        first_member_id: request.first_member_id,
        document_store_credentials: request.document_store_credentials.map(|d| {
            (
                d.workspace_document_store_credentials_id,
                d.pipeline_document_store_credentials_id,
            )
        }),
        file_store_credentials: request
            .file_store_credentials
            .map(|f| f.file_store_credentials_id),
        request_id: request.request_id,
        validate_only: request.validate_only,
    }
}

pub fn update_input(request: proto::UpdateWorkspaceRequest) -> UpdateWorkspaceInput {
    UpdateWorkspaceInput {
        name: request.name,
        description: request.description,
        paths: request.update_mask.map(|m| m.paths).unwrap_or_default(),
        etag: request.etag,
    }
}

/// A workspace role from the API's enum; `None` for ROLE_UNSPECIFIED and
/// numbers the enum does not have.
pub fn workspace_role(value: i32) -> Option<WorkspaceRole> {
    match proto::Role::try_from(value).ok()? {
        proto::Role::WorkspaceOwner => Some(WorkspaceRole::Owner),
        proto::Role::WorkspaceAdmin => Some(WorkspaceRole::Admin),
        proto::Role::WorkspaceMember => Some(WorkspaceRole::Member),
        proto::Role::Unspecified => None,
    }
}

/// A timestamp from the API, `None` when unset or out of range.
pub fn time_of(at: Option<Timestamp>) -> Option<DateTime<Utc>> {
    let at = at?;
    DateTime::from_timestamp(at.seconds, u32::try_from(at.nanos).ok()?)
}

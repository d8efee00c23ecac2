//! Domain types as the API's protobuf messages: for the gRPC answers, the
//! JSON/HTTP mapping built on them, and the events of the outbox.

use chrono::{DateTime, Utc};
use prost_types::Timestamp;

use crate::{
    domain::{AccessTokenView, EventKind, WorkspaceMember, WorkspaceRole, WorkspaceView, etag_of},
    proto,
};

/// An event kind as the API's enum.
pub fn event_type(kind: EventKind) -> proto::EventType {
    match kind {
        EventKind::WorkspaceCreated => proto::EventType::WorkspaceCreated,
        EventKind::WorkspaceUpdated => proto::EventType::WorkspaceUpdated,
        EventKind::WorkspaceDeleted => proto::EventType::WorkspaceDeleted,
        EventKind::MemberAdded => proto::EventType::MemberAdded,
        EventKind::MemberUpdated => proto::EventType::MemberUpdated,
        EventKind::MemberRemoved => proto::EventType::MemberRemoved,
        EventKind::AccessTokenCreated => proto::EventType::AccessTokenCreated,
        EventKind::AccessTokenRevoked => proto::EventType::AccessTokenRevoked,
    }
}

pub fn membership(workspace_id: &str, m: &WorkspaceMember) -> proto::WorkspaceMembership {
    proto::WorkspaceMembership {
        id: m.id.map(|id| id.to_string()).unwrap_or_default(),
        workspace_id: workspace_id.to_owned(),
        user_id: m.user_id.to_string(),
        privileges: vec![role(m.role) as i32],
        access_tokens: m.access_tokens.iter().map(access_token).collect(),
        created_at: timestamp(m.created_at),
        updated_at: timestamp(m.updated_at),
    }
}

pub fn access_token(t: &AccessTokenView) -> proto::WorkspaceAccessToken {
    proto::WorkspaceAccessToken {
        id: t.id.to_string(),
        name: t.name.clone(),
        hash: t.hash.clone(),
        created_at: timestamp(t.created_at),
        expires_at: t.expires_at.and_then(timestamp),
    }
}

/// A time as a protobuf Timestamp, within the range every encoding of a
/// reply can write (a stored time past year 9999 shows as its last
/// instant): no stored value can make a read fail.
pub fn timestamp(at: DateTime<Utc>) -> Option<Timestamp> {
    let at = at.min(crate::domain::latest_time());
    Some(Timestamp {
        seconds: at.timestamp(),
        nanos: at.timestamp_subsec_nanos() as i32,
    })
}

fn role(role: WorkspaceRole) -> proto::Role {
    match role {
        WorkspaceRole::Owner => proto::Role::WorkspaceOwner,
        WorkspaceRole::Admin => proto::Role::WorkspaceAdmin,
        WorkspaceRole::Member => proto::Role::WorkspaceMember,
    }
}

pub fn workspace(view: WorkspaceView) -> proto::Workspace {
    let id = view.id.map(|id| id.to_string()).unwrap_or_default();
    proto::Workspace {
        memberships: view.members.iter().map(|m| membership(&id, m)).collect(),
        members_count: view.members.len() as i32,
        id,
        name: view.name,
        description: view.description,
        organization_id: view.organization.id.to_string(),
        organization: Some(proto::Organization {
            id: view.organization.id.to_string(),
            name: view.organization.name,
            slug: view.organization.slug,
        }),
        workspace_type: view.workspace_type,
        document_upload_method: view.document_upload_method,
        user_role: view.user_role.map_or(proto::Role::Unspecified, role) as i32,
        billing_account_email: view.billing_account_email,
        document_store_credentials: view
            .document_store
            .map(|d| proto::DocumentStoreCredentials {
                workspace_document_store_credentials_id: d.workspace.to_string(),
                pipeline_document_store_credentials_id: d.pipeline.to_string(),
            }),
        file_store_credentials: view.file_store.map(|id| proto::FileStoreCredentials {
            file_store_credentials_id: id.to_string(),
        }),
        used_storage: view.used_storage,
        files_count: view.files_count,
        summaries: Vec::new(),
        created_at: timestamp(view.created_at),
        updated_at: timestamp(view.updated_at),
        number: view.number,
        etag: if view.revision > 0 {
            etag_of(view.revision)
        } else {
            String::new()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_time_past_year_9999_is_written_as_its_last_instant() {
        let year_14645 = DateTime::from_timestamp(400_000_000_000, 0).unwrap();
        let written = timestamp(year_14645).unwrap();
        assert_eq!(written.seconds, 253_402_300_799);
        // prost-types' RFC 3339 form, which the JSON mapping writes, works.
        assert_eq!(written.to_string(), "9999-12-31T23:59:59.999999999Z");
    }
}

//! The read models: a workspace, its organization, its members and their
//! access tokens, as callers are shown them.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{WorkspaceRole, workspace::DocumentStoreIds};

/// The organization a workspace belongs to (seed 004).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationSummary {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
}

/// A member of a workspace (seed 001's memberships).
#[derive(Debug, Clone, PartialEq)]
pub struct WorkspaceMember {
    /// `None` in a `validate_only` preview.
    pub id: Option<Uuid>,
    pub user_id: Uuid,
    pub role: WorkspaceRole,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The member's workspace access tokens (seed 001's `accessTokens`).
    pub access_tokens: Vec<AccessTokenView>,
}

/// A workspace as a caller sees it: the union of the seeds' responses.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkspaceView {
    /// `None` in a `validate_only` preview.
    pub id: Option<Uuid>,
    pub name: String,
    pub description: String,
    pub organization: OrganizationSummary,
    pub workspace_type: String,
    pub document_upload_method: String,
    /// The caller's role; `None` when it sees the workspace as an
    /// organization OWNER or ADMIN without being a member.
    pub user_role: Option<WorkspaceRole>,
    pub members: Vec<WorkspaceMember>,
    pub billing_account_email: String,
    pub document_store: Option<DocumentStoreIds>,
    pub file_store: Option<Uuid>,
    pub used_storage: f64,
    pub files_count: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Counts the workspace's changes (its etag); 0 in a preview.
    pub revision: i64,
    /// The database's number for it (seed 002's `id`); 0 in a preview.
    pub number: i64,
}

/// Where a page ordered by creation time, then id, ended: the last item's
/// `created_at` (microseconds, what both databases keep) and id. Lists of
/// workspaces and of memberships are in this order (their ids are random).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: DateTime<Utc>,
    pub id: Uuid,
}

/// An access token as memberships and listings show it: never its secret.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessTokenView {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    /// SHA-256 of the secret, hex.
    pub hash: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl WorkspaceView {
    /// Whether the caller this view was read for may manage the
    /// workspace's access tokens (ListWorkspaceAccessTokens' right): an
    /// OWNER or ADMIN of the workspace, or of its organization (who sees
    /// it without a role of their own).
    pub fn caller_manages(&self) -> bool {
        matches!(
            self.user_role,
            None | Some(WorkspaceRole::Owner | WorkspaceRole::Admin)
        )
    }

    /// Keeps token hashes from a caller who may not list the workspace's
    /// tokens: they see their own tokens' hashes only.
    pub fn hide_token_hashes(&mut self, caller: Uuid) {
        if !self.caller_manages() {
            hide_token_hashes(&mut self.members, caller);
        }
    }
}

/// Empties the hash of every token in `members` but `caller`'s own.
pub fn hide_token_hashes(members: &mut [WorkspaceMember], caller: Uuid) {
    for token in members
        .iter_mut()
        .flat_map(|member| member.access_tokens.iter_mut())
        .filter(|token| token.user_id != caller)
    {
        token.hash.clear();
    }
}
